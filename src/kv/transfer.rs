//! Moving whole blocks between the GPU pool and host memory, for the RAM and disk tiers.
//!
//! A block's bytes on the host are one contiguous buffer holding every layer's K and V for
//! the block, layer by layer: `[K layer 0][V layer 0][K layer 1][V layer 1]…`, each part the
//! block's slice of that layer's pool (layout in shaders/paged_kv.wgsl). A batch of blocks is
//! read back with one submit and one map.

use super::hash::BlockHash;
use super::{BlockId, KvError, KvPool, Owner, SeqId};
use crate::gpu::GpuError;

/// Most bytes one readback batch stages (bigger batches are split).
const MAX_READBACK_BYTES: u64 = 64 << 20;

/// A block registered since the last [`KvPool::take_fresh`]: computed here, not yet copied
/// to a lower tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreshBlock {
    pub id: BlockId,
    pub hash: BlockHash,
    pub parent: BlockHash,
    pub tokens: Vec<u32>,
    pub owner: Option<Owner>,
}

impl KvPool {
    /// Bytes of one block on the host: every layer's K and V.
    pub fn block_bytes(&self) -> u64 {
        self.layout().pool_bytes(1) * 2 * self.n_layers() as u64
    }

    /// The host bytes of `ids` (see the module docs), in batches of at most 64 MiB.
    pub fn read_blocks(&self, ids: &[BlockId]) -> Result<Vec<Vec<u8>>, KvError> {
        let per_block = self.block_bytes();
        let per_batch = (MAX_READBACK_BYTES / per_block.max(1)).max(1) as usize;
        let mut out = Vec::with_capacity(ids.len());
        for batch in ids.chunks(per_batch) {
            let bytes = self.read_batch(batch)?;
            out.extend(bytes.chunks_exact(per_block as usize).map(<[u8]>::to_vec));
        }
        Ok(out)
    }

    fn read_batch(&self, ids: &[BlockId]) -> Result<Vec<u8>, KvError> {
        let ctx = self.context();
        let part = self.layout().pool_bytes(1);
        let size = self.block_bytes() * ids.len() as u64;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let staging = ctx.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kv-block-readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = ctx.encoder("kv-block-readback");
        let mut at = 0;
        for &id in ids {
            if id as usize >= self.allocator().n_blocks() {
                return Err(KvError::NotAllocated(id));
            }
            for l in 0..self.n_layers() {
                let (k, v) = self
                    .layer(l)
                    .ok_or(KvError::Layout(format!("no layer {l}")))?;
                for pool in [k, v] {
                    enc.copy_buffer_to_buffer(pool, id as u64 * part, &staging, at, part);
                    at += part;
                }
            }
        }
        ctx.submit([enc.finish()]);
        ctx.map_and_copy_range(&staging, size)
            .map_err(|e: GpuError| KvError::Gpu(e.to_string()))
    }

    /// Writes a block's host bytes into physical block `id` (through the queue: the next
    /// submit sees them).
    pub fn write_block(&self, id: BlockId, bytes: &[u8]) -> Result<(), KvError> {
        if bytes.len() as u64 != self.block_bytes() {
            return Err(KvError::Layout(format!(
                "a block is {} bytes, got {}",
                self.block_bytes(),
                bytes.len()
            )));
        }
        if id as usize >= self.allocator().n_blocks() {
            return Err(KvError::NotAllocated(id));
        }
        let part = self.layout().pool_bytes(1) as usize;
        let mut parts = bytes.chunks_exact(part);
        for l in 0..self.n_layers() {
            let (k, v) = self
                .layer(l)
                .ok_or(KvError::Layout(format!("no layer {l}")))?;
            for pool in [k, v] {
                let chunk = parts
                    .next()
                    .ok_or(KvError::Layout("short block bytes".into()))?;
                self.context().write(pool, id as u64 * part as u64, chunk);
            }
        }
        Ok(())
    }

    /// Appends one whole block to `s` from a lower tier: `tokens` (one block's worth) whose
    /// chain hash is `hash`, with their K/V `bytes`. `s` must end on a block boundary. The
    /// block is registered, so later lookups find it on the GPU.
    pub fn append_restored(
        &mut self,
        s: SeqId,
        tokens: &[u32],
        hash: BlockHash,
        bytes: &[u8],
    ) -> Result<BlockId, KvError> {
        let bs = self.layout().block_size;
        let len = self.len(s)?;
        if tokens.len() != bs || !len.is_multiple_of(bs) {
            return Err(KvError::Layout(format!(
                "a restored block is {bs} tokens at a block boundary ({} tokens at {len})",
                tokens.len()
            )));
        }
        if bytes.len() as u64 != self.block_bytes() {
            return Err(KvError::Layout(format!(
                "a block is {} bytes, got {}",
                self.block_bytes(),
                bytes.len()
            )));
        }
        self.append(s, tokens)?;
        let id = self.table(s)?.blocks()[len / bs];
        self.write_block(id, bytes)?;
        self.seal_restored(s, hash)?;
        Ok(id)
    }
}
