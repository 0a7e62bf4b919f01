//! The model module's error type.

use crate::gguf::GgufError;
use crate::quant::{GgmlType, QuantError};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("unsupported architecture {0:?} (supported: llama, qwen2)")]
    UnsupportedArch(String),
    #[error("metadata {key} = {value} is invalid: {reason}")]
    BadValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("tensor {name} is missing")]
    MissingTensor { name: String },
    #[error("tensor {name} has shape {found:?}, expected {expected:?} (ggml order)")]
    TensorShape {
        name: String,
        expected: Vec<u64>,
        found: Vec<u64>,
    },
    #[error("tensor {name} has type {ty}, which this build cannot dequantize")]
    TensorType { name: String, ty: GgmlType },
    #[error("tensor {name} is invalid: {reason}")]
    BadTensor { name: String, reason: String },
    #[error("test model spec is invalid: {0}")]
    BadSpec(String),
    #[error("vocabulary source is invalid: {0}")]
    BadVocab(String),
    #[error(transparent)]
    Quant(#[from] QuantError),
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl ModelError {
    pub(crate) fn bad_value(key: &str, value: impl ToString, reason: impl Into<String>) -> Self {
        ModelError::BadValue {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
