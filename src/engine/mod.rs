//! Inference: token sampling and the generation loop, over any forward pass (the CPU
//! reference today; the GPU engine over the paged KV cache joins it here).

pub mod cached;
pub mod generate;
pub mod gpu_forward;
pub mod sampler;

pub use cached::{Admitted, CacheUse, CachedRequest, CachedRun, admit, generate_cached, release};
pub use generate::{GenerationStats, Generator, StopReason, TokenLoop};
pub use sampler::{Sampler, SamplerConfig};
