//! The tokenizer's error type: every way tokenizer data or a request can be wrong.

use crate::gguf::GgufError;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A GGUF metadata key is missing or has the wrong type.
    #[error("tokenizer metadata: {0}")]
    Metadata(#[from] GgufError),
    /// `tokenizer.ggml.model` names a tokenizer this crate does not implement.
    #[error("unsupported tokenizer model '{0}' (supported: llama, gpt2)")]
    UnsupportedModel(String),
    /// `tokenizer.ggml.pre` names a pre-tokenizer this crate does not implement.
    #[error("unsupported pre-tokenizer '{0}'")]
    UnsupportedPreTokenizer(String),
    #[error("the vocabulary is empty")]
    EmptyVocab,
    #[error("the vocabulary has {0} tokens; at most {max} are supported", max = u32::MAX)]
    VocabTooLarge(usize),
    /// A per-token array (`scores`, `token_type`) is shorter than the token list.
    #[error("tokenizer.ggml.{key} has {found} entries but the vocabulary has {expected} tokens")]
    LengthMismatch {
        key: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("token text {text:?} appears twice (ids {first} and {second})")]
    DuplicateToken {
        text: String,
        first: u32,
        second: u32,
    },
    /// A special-token id in the metadata lies outside the vocabulary.
    #[error("{key} = {id} is outside the vocabulary of {vocab_size} tokens")]
    SpecialIdOutOfRange {
        key: String,
        id: u64,
        vocab_size: usize,
    },
    #[error("merge #{index} {merge:?} is not two tokens separated by a space")]
    MalformedMerge { index: usize, merge: String },
    #[error("merge #{index} {merge:?} refers to {part:?}, which is not in the vocabulary")]
    MergeUnknownToken {
        index: usize,
        merge: String,
        part: String,
    },
    /// The model needs BOS/EOS added but the vocabulary has none.
    #[error("the model asks for a {0} token to be added but defines none")]
    MissingSpecialToken(&'static str),
    /// Text needed a byte-fallback token the vocabulary does not have.
    #[error("no token for byte 0x{0:02X} (byte fallback)")]
    NoByteToken(u8),
    #[error("token id {id} is outside the vocabulary of {vocab_size} tokens")]
    IdOutOfRange { id: u32, vocab_size: usize },
    /// A token piece is malformed (e.g. a byte token that is not `<0xXX>`).
    #[error("token {id} {text:?}: {why}")]
    BadToken {
        id: u32,
        text: String,
        why: &'static str,
    },
    /// Errors from the `tokenizers` crate (tokenizer.json input).
    #[error("tokenizer.json: {0}")]
    HuggingFace(String),
}
