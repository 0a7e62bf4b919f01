//! Block quantization formats: the ggml type table, block layouts, dequantize and quantize.

mod types;

pub use types::GgmlType;
