//! Model configuration read from GGUF metadata, tensor shape checks, memory estimate, and a
//! generator of deterministic random-weight GGUF models for tests and benchmarks.

mod config;
mod error;
mod gguf_stream;
mod memory;
mod rope_factors;
pub mod tensor_names;
mod tensors;
pub mod testgen;
mod testgen_blocks;
mod testgen_vocab;

pub use config::{Arch, ModelConfig, RopeConfig, RopeScaling, RopeStyle};
pub use error::ModelError;
pub use memory::{MemoryEstimate, PREFILL_CHUNK_TOKENS, estimate_memory};
pub use rope_factors::{Llama3RopeScaling, llama3_rope_factors};
pub use testgen::{TestModelSpec, preset, write_test_model};
