//! Errors of the embedding model: files, shapes and the backend.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is {size} bytes, over the {limit}-byte limit for this file")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{path}: {reason}")]
    BadConfig { path: PathBuf, reason: String },
    #[error("the embedding model's weights ({path}): {reason}")]
    BadWeights { path: PathBuf, reason: String },
    #[error("the embedding model's tokenizer ({path}): {reason}")]
    BadTokenizer { path: PathBuf, reason: String },
    #[error("tokenizing text for an embedding: {0}")]
    Tokenize(String),
    #[error("no embedding model found (looked in: {looked})")]
    NoModel { looked: String },
    #[error("the GPU embedding backend: {0}")]
    Backend(String),
}
