//! The GPU side of the paged KV cache: per-layer K and V pool buffers, one block-table
//! buffer per sequence slot, and the host-side allocator and tables that drive them.

use std::sync::Arc;

use crate::gpu::ops::KvLayout;
use crate::gpu::{GpuBuffer, GpuContext};

use super::{BlockAllocator, BlockCopy, BlockTable, KvError};

/// A sequence slot of a [`KvPool`].
pub type SeqId = usize;

struct Sequence {
    table: BlockTable,
    /// The block table on the GPU (`max_blocks_per_seq` u32), bound by the kernels.
    gpu_table: GpuBuffer,
    /// The GPU copy lags the host table.
    dirty: bool,
    live: bool,
}

/// Every layer's K and V blocks plus the sequences that use them.
///
/// A step: [`KvPool::append`] the step's tokens to the sequence, then [`KvPool::sync`] into
/// the step's encoder (uploads changed block tables, replays copy-on-write block copies)
/// before the compute pass that writes and reads the cache.
pub struct KvPool {
    ctx: Arc<GpuContext>,
    layout: KvLayout,
    layers: Vec<(GpuBuffer, GpuBuffer)>,
    alloc: BlockAllocator,
    seqs: Vec<Sequence>,
    max_blocks_per_seq: usize,
    pending_copies: Vec<BlockCopy>,
    /// One block's bytes: a copy within one buffer goes through it (WebGPU forbids copies
    /// whose source and destination are the same buffer).
    block_tmp: GpuBuffer,
}

impl KvPool {
    /// `n_blocks` blocks per layer pool; `max_seqs` sequence slots, each at most
    /// `max_tokens_per_seq` tokens. Each layer's K (and V) pool is one buffer, which must fit
    /// one storage binding.
    pub fn new(
        ctx: Arc<GpuContext>,
        layout: KvLayout,
        n_layers: usize,
        n_blocks: usize,
        max_seqs: usize,
        max_tokens_per_seq: usize,
    ) -> Result<Self, KvError> {
        if layout.block_size == 0 || n_blocks == 0 || max_seqs == 0 || n_blocks > u32::MAX as usize
        {
            return Err(KvError::Layout(format!(
                "{layout:?}, {n_blocks} blocks, {max_seqs} sequences: all must be > 0"
            )));
        }
        let bytes = layout.pool_bytes(n_blocks);
        let limit = ctx.max_binding_bytes();
        if bytes > limit {
            return Err(KvError::PoolTooLarge { bytes, limit });
        }
        let layers = (0..n_layers)
            .map(|l| {
                Ok((
                    ctx.zeroed(&format!("k-pool.{l}"), bytes)?,
                    ctx.zeroed(&format!("v-pool.{l}"), bytes)?,
                ))
            })
            .collect::<Result<Vec<_>, KvError>>()?;
        let max_blocks_per_seq = max_tokens_per_seq.div_ceil(layout.block_size).max(1);
        let seqs = (0..max_seqs)
            .map(|s| {
                Ok(Sequence {
                    table: BlockTable::new(),
                    gpu_table: ctx
                        .zeroed(&format!("block-table.{s}"), max_blocks_per_seq as u64 * 4)?,
                    dirty: false,
                    live: false,
                })
            })
            .collect::<Result<Vec<_>, KvError>>()?;
        let block_tmp = ctx.zeroed("kv-block-copy", layout.pool_bytes(1))?;
        Ok(KvPool {
            block_tmp,
            alloc: BlockAllocator::new(n_blocks, layout.block_size),
            ctx,
            layout,
            layers,
            seqs,
            max_blocks_per_seq,
            pending_copies: Vec::new(),
        })
    }

    pub fn layout(&self) -> &KvLayout {
        &self.layout
    }

    pub fn allocator(&self) -> &BlockAllocator {
        &self.alloc
    }

    /// The K and V pool buffers of `layer`.
    pub fn layer(&self, layer: usize) -> Option<(&wgpu::Buffer, &wgpu::Buffer)> {
        self.layers.get(layer).map(|(k, v)| (&k.buffer, &v.buffer))
    }

    /// Most tokens one sequence may hold.
    pub fn max_tokens_per_seq(&self) -> usize {
        self.max_blocks_per_seq * self.layout.block_size
    }

    fn seq(&self, s: SeqId) -> Result<&Sequence, KvError> {
        self.seqs
            .get(s)
            .filter(|q| q.live)
            .ok_or(KvError::UnknownSequence(s))
    }

    fn seq_mut(&mut self, s: SeqId) -> Result<&mut Sequence, KvError> {
        self.seqs
            .get_mut(s)
            .filter(|q| q.live)
            .ok_or(KvError::UnknownSequence(s))
    }

    /// The GPU block table of sequence `s` (kernels bind it).
    pub fn table_buffer(&self, s: SeqId) -> Result<&wgpu::Buffer, KvError> {
        Ok(&self.seq(s)?.gpu_table.buffer)
    }

    /// The host copy of sequence `s`'s table.
    pub fn table(&self, s: SeqId) -> Result<&BlockTable, KvError> {
        Ok(&self.seq(s)?.table)
    }

    /// Tokens in sequence `s`.
    pub fn len(&self, s: SeqId) -> Result<usize, KvError> {
        Ok(self.seq(s)?.table.len())
    }

    /// An empty sequence in a free slot.
    pub fn new_sequence(&mut self) -> Result<SeqId, KvError> {
        let max = self.seqs.len();
        let (id, q) = self
            .seqs
            .iter_mut()
            .enumerate()
            .find(|(_, q)| !q.live)
            .ok_or(KvError::NoSequenceSlot { max })?;
        q.live = true;
        q.dirty = true;
        Ok(id)
    }

    /// A new sequence sharing the first `n` tokens of `s` (its blocks' counts go up).
    pub fn fork(&mut self, s: SeqId, n: usize) -> Result<SeqId, KvError> {
        self.seq(s)?;
        let id = self.new_sequence()?;
        match self.seqs[s].table.share_prefix(&mut self.alloc, n) {
            Ok(t) => {
                self.seqs[id].table = t;
                Ok(id)
            }
            Err(e) => {
                self.seqs[id].live = false;
                Err(e)
            }
        }
    }

    /// Makes room for `n` more tokens in `s` (see [`BlockTable::append`]).
    pub fn append(&mut self, s: SeqId, n: usize) -> Result<(), KvError> {
        let max = self.max_tokens_per_seq();
        let q = self
            .seqs
            .get_mut(s)
            .filter(|q| q.live)
            .ok_or(KvError::UnknownSequence(s))?;
        let wanted = q.table.len() + n;
        if wanted > max {
            return Err(KvError::SequenceTooLong { wanted, max });
        }
        let copy = q.table.append(&mut self.alloc, n)?;
        q.dirty = true;
        self.pending_copies.extend(copy);
        Ok(())
    }

    /// Keeps the first `len` tokens of `s`, freeing the blocks past them.
    pub fn truncate(&mut self, s: SeqId, len: usize) -> Result<(), KvError> {
        let q = self
            .seqs
            .get_mut(s)
            .filter(|q| q.live)
            .ok_or(KvError::UnknownSequence(s))?;
        q.table.truncate(&mut self.alloc, len)?;
        q.dirty = true;
        Ok(())
    }

    /// Frees sequence `s` and its slot.
    pub fn free_sequence(&mut self, s: SeqId) -> Result<(), KvError> {
        let q = self.seq_mut(s)?;
        q.live = false;
        let mut table = std::mem::take(&mut q.table);
        table.clear(&mut self.alloc)
    }

    /// Records what the GPU must see before the step's kernels run: block copies go into
    /// `enc` (ahead of the compute pass), changed block tables are written through the
    /// queue (applied at the next submit, before `enc`'s commands).
    pub fn sync(&mut self, enc: &mut wgpu::CommandEncoder) {
        let block_bytes = self.layout.pool_bytes(1);
        for c in self.pending_copies.drain(..) {
            for (k, v) in &self.layers {
                for pool in [&k.buffer, &v.buffer] {
                    let tmp = &self.block_tmp.buffer;
                    enc.copy_buffer_to_buffer(
                        pool,
                        c.src as u64 * block_bytes,
                        tmp,
                        0,
                        block_bytes,
                    );
                    enc.copy_buffer_to_buffer(
                        tmp,
                        0,
                        pool,
                        c.dst as u64 * block_bytes,
                        block_bytes,
                    );
                }
            }
        }
        for q in self.seqs.iter_mut().filter(|q| q.dirty) {
            if !q.table.blocks().is_empty() {
                self.ctx.write(
                    &q.gpu_table.buffer,
                    0,
                    bytemuck::cast_slice(q.table.blocks()),
                );
            }
            q.dirty = false;
        }
    }
}
