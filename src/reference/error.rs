//! The reference module's error type.

use crate::model::ModelError;
use crate::quant::QuantError;

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Quant(#[from] QuantError),
    #[error(
        "token id {token} at input index {index} is out of range (vocabulary has {n_vocab} tokens)"
    )]
    TokenOutOfRange {
        token: u32,
        index: usize,
        n_vocab: usize,
    },
    #[error("KV cache overflow: it holds {len} of {capacity} tokens and {adding} more were given")]
    CacheOverflow {
        len: usize,
        adding: usize,
        capacity: usize,
    },
    #[error("KV cache was made for {found} (layers × kv width), this model needs {expected}")]
    CacheMismatch { expected: String, found: String },
    #[error("tensor {name} is invalid: {reason}")]
    BadTensor { name: String, reason: String },
}
