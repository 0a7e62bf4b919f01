//! The wgpu foundation of the GPU engine: device context and capability probe, a counting
//! wrapper around submits and buffer creation, buffer helpers, weights split into chunks that
//! fit one storage binding, the WGSL shader registry with its small preprocessor, a pipeline
//! cache, and the prepared dispatches of every kernel family (`ops`).
//!
//! Everything that touches the device goes through [`GpuContext`] so that tests can count
//! `queue.submit` calls and buffer creations (see [`GpuCounters`]).

mod buffers;
mod context;
mod counters;
mod dispatch;
mod info;
pub mod ops;
mod pipelines;
pub mod profile;
mod shaders;
mod weights;

pub use buffers::{GpuBuffer, ReadbackError};
pub use context::{AdapterChoice, GpuContext, WANTED_FEATURES};
pub use counters::{CounterSnapshot, GpuCounters};
pub use dispatch::{Dispatch, max_workgroups_grid};
pub use info::GpuInfo;
pub use pipelines::{PipelineCache, PipelineKey, kernel_family};
pub use profile::{KernelProfiler, KernelTime, StepProfile};
pub use shaders::{ShaderId, preprocess};
pub use weights::{GPU_TYPES, GpuWeight, WeightChunk};

use crate::quant::GgmlType;

/// Errors of the GPU layer.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error(
        "no GPU adapter found (backends tried: {backends}); install a Vulkan driver (e.g. mesa-vulkan-drivers for lavapipe)"
    )]
    NoAdapter { backends: String },
    #[error("no GPU adapter name contains {wanted:?} (HEARTH_ADAPTER); available: {available}")]
    AdapterNotFound { wanted: String, available: String },
    #[error("requesting the device failed: {0}")]
    RequestDevice(String),
    #[error("shader {shader} ({entry}) failed to compile: {message}")]
    ShaderCompile {
        shader: &'static str,
        entry: String,
        message: String,
    },
    #[error("shader preprocessor: {0}")]
    Preprocess(String),
    #[error("GPU validation error in {what}: {message}")]
    Validation { what: String, message: String },
    #[error("tensor type {0:?} has no GPU kernel")]
    UnsupportedType(GgmlType),
    #[error("{what}: {detail}")]
    Shape { what: &'static str, detail: String },
    #[error(
        "one row of {row_bytes} bytes is larger than the storage binding limit ({limit} bytes)"
    )]
    RowTooLarge { row_bytes: u64, limit: u64 },
    #[error("buffer of {bytes} bytes exceeds the adapter's max_buffer_size ({limit})")]
    BufferTooLarge { bytes: u64, limit: u64 },
    #[error("adapter {adapter} cannot write timestamp queries, so kernels cannot be timed on it")]
    NoTimestamps { adapter: String },
    #[error(transparent)]
    Readback(#[from] ReadbackError),
}
