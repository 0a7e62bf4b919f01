//! `ChatError`: every failure of the chat layer, worded for the person using the app.

use std::path::PathBuf;

use crate::engine::gpu_forward::GpuForwardError;
use crate::gguf::GgufError;
use crate::model::ModelError;
use crate::store::StoreError;
use crate::store::kv_blocks::KvStoreError;
use crate::tokenizer::{ChatTemplateError, TokenizerError};

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// No GPU context could be created; the text says why and what to install.
    #[error("{0}")]
    NoGpu(String),
    #[error("No model is loaded. Open a GGUF model first.")]
    NoModel,
    #[error("{path} does not exist")]
    FileMissing { path: PathBuf },
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path} could not be read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a GGUF model (it starts with {found}, not \"GGUF\")")]
    NotGguf { path: PathBuf, found: String },
    #[error("{path} is not a usable GGUF file: {source}")]
    Gguf { path: PathBuf, source: GgufError },
    #[error("this model is not supported: {0}")]
    Model(#[from] ModelError),
    #[error("the embedding model failed: {0}")]
    Embed(#[from] crate::embed::EmbedError),
    #[error("the model's tokenizer could not be read: {0}")]
    Tokenizer(#[from] TokenizerError),
    #[error("the model's chat template failed: {0}")]
    Template(#[from] ChatTemplateError),
    #[error("the GPU engine failed: {0}")]
    Forward(#[from] GpuForwardError),
    #[error("the model does not fit: {0}")]
    DoesNotFit(String),
    #[error(
        "the message is too long for the context: the prompt needs {prompt_tokens} tokens and \
         the context holds {context} (raise the context length in Settings, or shorten the message)"
    )]
    PromptTooLong {
        prompt_tokens: usize,
        context: usize,
    },
    #[error(
        "the document cannot be split into windows that fit: it has {doc_tokens} tokens and \
         the context leaves {budget} tokens per window next to the conversation (raise the \
         context length in Settings, or shorten the system prompt)"
    )]
    DocumentTooLarge { budget: usize, doc_tokens: usize },
    #[error("the document could not be read: {0}")]
    Document(String),
    #[error("the message is empty")]
    EmptyMessage,
    #[error("the KV cache has no free sequence slot for this conversation")]
    NoSequenceSlot,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the KV cache's disk tier failed: {0}")]
    KvDisk(#[from] KvStoreError),
    #[error(
        "pinning this would keep {wanted} tokens on the GPU for good, more than pins may take \
         ({limit} tokens: at most half of the GPU cache, always leaving room for one full \
         context; {pinned} are pinned already). Unpin something first or raise the GPU budget"
    )]
    PinLimit {
        wanted: usize,
        pinned: usize,
        limit: usize,
    },
    #[error("the KV cache's tiers failed: {0}")]
    Kv(#[from] crate::kv::KvError),
}
