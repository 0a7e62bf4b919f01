//! The KV cache's sequences, as the chat layer needs them: pick one, append tokens, read the
//! last logits, cut back to a prefix, free it. `GpuForward` is the implementation; tests may
//! use others.

use std::sync::Arc;

use crate::engine::gpu_forward::{GpuForward, GpuForwardError, GpuForwardOptions};
use crate::gguf::GgufFile;
use crate::gpu::GpuContext;
use crate::kv::{Found, KvError, Owner, SeqId, Tiers};

pub trait SequenceModel: Send {
    /// The sequence the other calls act on.
    fn current(&self) -> SeqId;
    /// A new, empty sequence (None when every slot is taken).
    fn new_sequence(&mut self) -> Option<SeqId>;
    /// Makes `s` current; false when `s` does not exist.
    fn select(&mut self, s: SeqId) -> bool;
    /// Frees `s` (its cached blocks stay findable by hash). Freeing the current sequence
    /// leaves none current until the next `select` or `acquire`.
    fn free(&mut self, s: SeqId);
    /// A new sequence holding the longest prefix of `tokens` the cache has (from any
    /// conversation, any tier), made current; with the tokens it holds by tier. None when
    /// every slot is taken.
    fn acquire(&mut self, tokens: &[u32]) -> Option<(SeqId, Found)>;
    /// After a turn: copies the blocks it computed to the lower tiers and publishes what each
    /// tier holds.
    fn persist(&mut self);
    /// Tokens of the longest prefix of `tokens` the cache holds.
    fn cached_prefix(&self, tokens: &[u32]) -> usize;
    /// The token ids the current sequence holds.
    fn tokens(&self) -> Vec<u32>;
    /// Tokens of K/V the pool holds: in use by a sequence or cached for reuse.
    fn tokens_held(&self) -> usize;
    /// Blocks the pool holds (in use or cached) and the GPU bytes of one block (every
    /// layer's K and V): measured from the pool, not estimated.
    fn blocks_held(&self) -> (u64, u64);
    /// Forgets every cached block no sequence uses (a cleared cache).
    fn drop_cached(&mut self);
    /// Keeps the current sequence's blocks for `owner` (accounting, clean-up).
    fn set_owner(&mut self, owner: Owner);
    /// Drops `owner` from every block, freeing cached blocks nobody else used.
    fn remove_owner(&mut self, owner: Owner);
    /// Adds `owner` to the cached whole blocks of `tokens`' longest cached prefix.
    fn own_prefix(&mut self, _tokens: &[u32], _owner: Owner) {}
    /// Pins the cached whole blocks of `tokens`' longest cached prefix (never evicted until
    /// unpinned); returns the tokens pinned.
    fn pin_prefix(&mut self, _tokens: &[u32]) -> usize {
        0
    }
    /// Undoes [`SequenceModel::pin_prefix`]; returns the tokens unpinned.
    fn unpin_prefix(&mut self, _tokens: &[u32]) -> usize {
        0
    }
    /// Clears `owner`'s cache on every tier: its blocks nobody else uses leave the GPU, and
    /// its copies in RAM and on disk go (blocks shared with others stay for them).
    fn clear_owner(&mut self, owner: Owner) -> Result<(), KvError> {
        self.remove_owner(owner);
        Ok(())
    }
    /// Empties the RAM tier and/or the disk tier (every model's blocks).
    fn clear_lower(&mut self, _ram: bool, _disk: bool) -> Result<(), KvError> {
        Ok(())
    }
    /// Tokens the whole GPU pool holds (every sequence and cached block).
    fn capacity_tokens(&self) -> usize {
        self.max_ctx()
    }
    /// Tokens in pinned blocks.
    fn pinned_tokens(&self) -> usize {
        0
    }
    /// KV space a step can take (free and evictable cached blocks), in tokens.
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
    /// Tokens per KV block: only whole blocks are shared and persisted.
    fn block_size(&self) -> usize;
    /// KV capacity in tokens.
    fn max_ctx(&self) -> usize;
    /// Runs `tokens` (at most `max_batch`) at positions `len()..`; the last token's logits.
    fn step_last(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GpuForwardError>;
}

/// The GPU engine's sequences over the tiered KV cache.
pub struct GpuSequence {
    forward: GpuForward,
    tiers: Tiers,
}

impl GpuSequence {
    pub fn load(
        ctx: Arc<GpuContext>,
        file: &GgufFile,
        opts: GpuForwardOptions,
        tiers: Tiers,
    ) -> Result<Self, GpuForwardError> {
        Ok(GpuSequence {
            forward: GpuForward::load(ctx, file, opts)?,
            tiers,
        })
    }

    pub fn tiers(&self) -> &Tiers {
        &self.tiers
    }

    pub fn forward(&self) -> &GpuForward {
        &self.forward
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

    fn acquire(&mut self, tokens: &[u32]) -> Option<(SeqId, Found)> {
        let (s, found) = self.tiers.acquire(self.forward.kv_mut(), tokens).ok()?;
        self.forward.select_sequence(s).ok()?;
        Some((s, found))
    }

    fn persist(&mut self) {
        // A failed copy only costs a later recompute; the turn itself is done.
        let _ = self.tiers.spill(self.forward.kv_mut());
        self.tiers.publish(self.forward.kv());
    }

    fn cached_prefix(&self, tokens: &[u32]) -> usize {
        self.forward.kv().cached_prefix(tokens)
    }

    fn tokens(&self) -> Vec<u32> {
        self.forward.tokens().to_vec()
    }

    fn drop_cached(&mut self) {
        self.forward.kv_mut().drop_cached();
        self.tiers.publish(self.forward.kv());
    }

    fn set_owner(&mut self, owner: Owner) {
        let s = self.forward.sequence();
        let _ = self.forward.kv_mut().set_owner(s, owner);
        // Blocks this sequence restored from disk are the owner's in RAM too.
        if let Ok(hashes) = self.forward.kv().hashes(s) {
            let hashes = hashes.to_vec();
            self.tiers.tag_ram(&hashes, owner);
        }
    }

    fn clear_owner(&mut self, owner: Owner) -> Result<(), KvError> {
        let shared = self.forward.kv().shared_by(owner);
        self.forward.kv_mut().remove_owner(owner);
        let out = self
            .tiers
            .clear_owner(self.forward.kv(), owner, &shared)
            .map(|_| ());
        self.tiers.publish(self.forward.kv());
        out
    }

    fn clear_lower(&mut self, ram: bool, disk: bool) -> Result<(), KvError> {
        if ram {
            self.tiers.clear_ram();
        }
        let out = if disk {
            self.tiers.clear_disk().map(|_| ())
        } else {
            Ok(())
        };
        self.tiers.publish(self.forward.kv());
        out
    }

    fn capacity_tokens(&self) -> usize {
        let a = self.forward.kv().allocator();
        a.n_blocks() * a.block_size()
    }

    fn pinned_tokens(&self) -> usize {
        let a = self.forward.kv().allocator();
        a.n_pinned() * a.block_size()
    }

    fn remove_owner(&mut self, owner: Owner) {
        self.forward.kv_mut().remove_owner(owner);
        let _ = self.tiers.remove_owner(owner);
        self.tiers.publish(self.forward.kv());
    }

    fn own_prefix(&mut self, tokens: &[u32], owner: Owner) {
        self.forward.kv_mut().own_prefix(tokens, owner);
    }

    fn pin_prefix(&mut self, tokens: &[u32]) -> usize {
        self.forward.kv_mut().pin_prefix(tokens).unwrap_or(0)
    }

    fn unpin_prefix(&mut self, tokens: &[u32]) -> usize {
        self.forward.kv_mut().unpin_prefix(tokens).unwrap_or(0)
    }

    fn blocks_held(&self) -> (u64, u64) {
        let kv = self.forward.kv();
        let a = kv.allocator();
        (
            (a.n_blocks() - (a.n_free() - a.n_cached())) as u64,
            kv.block_bytes(),
        )
    }

    fn tokens_held(&self) -> usize {
        let a = self.forward.kv().allocator();
        (a.n_blocks() - (a.n_free() - a.n_cached())) * a.block_size()
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

    fn block_size(&self) -> usize {
        self.forward.options().block_size
    }

    fn max_ctx(&self) -> usize {
        self.forward.max_ctx()
    }

    fn step_last(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GpuForwardError> {
        self.forward.step(tokens, false)
    }
}
