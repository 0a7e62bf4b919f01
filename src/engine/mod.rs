//! The GPU engine: forward pass over the paged KV cache, sampler, generation loop.

pub mod gpu_forward;
