//! Plain-Rust CPU forward pass for llama and qwen2 models: the oracle every GPU kernel is tested
//! against. Activations are f32; weights stay in their stored (often quantized) format in the
//! GGUF mapping and every matrix-vector product goes through `quant::matvec` (row dot products
//! with `quant::dot_row`'s arithmetic). Prefill runs token by token.

mod error;
mod forward;
mod kv_cache;
mod matrix;
pub mod ops;
pub mod rope;

pub use error::ReferenceError;
pub use forward::ReferenceModel;
pub use kv_cache::KvCache;
