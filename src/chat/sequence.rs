//! The one sequence in the KV cache, as the chat layer needs it: append tokens, read the last
//! logits, cut back to a prefix. `GpuForward` is the implementation; tests may use others.

use std::sync::Arc;

use crate::engine::gpu_forward::{GpuForward, GpuForwardError, GpuForwardOptions};
use crate::gguf::GgufFile;
use crate::gpu::GpuContext;

pub trait SequenceModel: Send {
    /// Tokens in the KV cache.
    fn len(&self) -> usize;
    /// Drops cached positions ≥ `len`.
    fn truncate(&mut self, len: usize);
    /// Most tokens one step takes.
    fn max_batch(&self) -> usize;
    /// KV capacity in tokens.
    fn max_ctx(&self) -> usize;
    /// Runs `tokens` (at most `max_batch`) at positions `len()..`; the last token's logits.
    fn step_last(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GpuForwardError>;
}

/// The GPU engine's sequence.
pub struct GpuSequence {
    forward: GpuForward,
}

impl GpuSequence {
    pub fn load(
        ctx: Arc<GpuContext>,
        file: &GgufFile,
        opts: GpuForwardOptions,
    ) -> Result<Self, GpuForwardError> {
        Ok(GpuSequence {
            forward: GpuForward::load(ctx, file, opts)?,
        })
    }
}

impl SequenceModel for GpuSequence {
    fn len(&self) -> usize {
        self.forward.len()
    }

    fn truncate(&mut self, len: usize) {
        self.forward.truncate(len);
    }

    fn max_batch(&self) -> usize {
        self.forward.max_batch()
    }

    fn max_ctx(&self) -> usize {
        self.forward.max_ctx()
    }

    fn step_last(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GpuForwardError> {
        self.forward.step(tokens, false)
    }
}
