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
    forward: GpuForward<'static>,
    opts: GpuForwardOptions,
}

impl GpuSequence {
    pub fn load(ctx: Arc<GpuContext>, file: &GgufFile, opts: GpuForwardOptions) -> Result<Self, GpuForwardError> {
        // GpuForward borrows its context until it owns an Arc (branch gpu2); one context per
        // engine, kept for the process's life.
        let ctx: &'static GpuContext = Box::leak(Box::new(ArcHolder(ctx))).0.as_ref();
        Ok(GpuSequence { forward: GpuForward::load(ctx, file, opts)?, opts })
    }
}

struct ArcHolder(Arc<GpuContext>);

impl SequenceModel for GpuSequence {
    fn len(&self) -> usize {
        self.forward.len()
    }

    fn truncate(&mut self, len: usize) {
        if len < self.forward.len() {
            // Until GpuForward::truncate lands the whole sequence is recomputed.
            self.forward.reset();
        }
    }

    fn max_batch(&self) -> usize {
        self.opts.max_batch
    }

    fn max_ctx(&self) -> usize {
        self.opts.max_ctx
    }

    fn step_last(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GpuForwardError> {
        self.forward.step(tokens, false)
    }
}
