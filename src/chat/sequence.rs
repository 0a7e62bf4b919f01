//! The KV cache's sequences, as the chat layer needs them: pick one, append tokens, read the
//! last logits, cut back to a prefix, free it. `GpuForward` is the implementation; tests may
//! use others.

use std::sync::Arc;

use crate::engine::gpu_forward::{GpuForward, GpuForwardError, GpuForwardOptions};
use crate::gguf::GgufFile;
use crate::gpu::GpuContext;
use crate::kv::SeqId;

pub trait SequenceModel: Send {
    /// The sequence the other calls act on.
    fn current(&self) -> SeqId;
    /// A new, empty sequence (None when every slot is taken).
    fn new_sequence(&mut self) -> Option<SeqId>;
    /// Makes `s` current; false when `s` does not exist.
    fn select(&mut self, s: SeqId) -> bool;
    /// Frees `s` and its blocks (never the current one).
    fn free(&mut self, s: SeqId);
    /// KV space no sequence holds, in tokens.
    fn free_tokens(&self) -> usize;
    /// Tokens in the current sequence.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Drops the current sequence's positions ≥ `len`.
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
    fn current(&self) -> SeqId {
        self.forward.sequence()
    }

    fn new_sequence(&mut self) -> Option<SeqId> {
        self.forward.new_sequence().ok()
    }

    fn select(&mut self, s: SeqId) -> bool {
        self.forward.select_sequence(s).is_ok()
    }

    fn free(&mut self, s: SeqId) {
        let _ = self.forward.free_sequence(s);
    }

    fn free_tokens(&self) -> usize {
        self.forward.free_tokens()
    }

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
