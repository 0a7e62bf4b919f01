//! The paged KV cache: a pool of fixed-size blocks (per layer, one K and one V buffer on the
//! GPU), a reference-counted block allocator, and per-sequence block tables (logical block →
//! physical block) mirrored in GPU buffers that the attention kernels read.
//!
//! Several sequences may point at the same block (a shared prompt prefix): blocks carry
//! reference counts, a block returns to the free list when its last user lets go, and a
//! sequence about to write into a block that others still read first gets a private copy
//! (copy-on-write, recorded as a [`BlockCopy`] that the pool replays on the GPU). Today blocks
//! are anonymous: nothing finds a block by its content yet, and only tests share prefixes
//! (through [`KvPool::fork`] / [`BlockTable::share_prefix`]).
//!
//! Layout of a block in a layer's pool: see shaders/paged_kv.wgsl.

mod allocator;
mod pool;
mod table;

pub use allocator::{BlockAllocator, BlockId};
pub use pool::{KvPool, SeqId};
pub use table::{BlockCopy, BlockTable};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KvError {
    #[error("the KV pool is out of blocks ({n_blocks} blocks of {block_size} tokens in use)")]
    Exhausted { n_blocks: usize, block_size: usize },
    #[error("a sequence may hold at most {max} tokens ({wanted} asked)")]
    SequenceTooLong { wanted: usize, max: usize },
    #[error("no free sequence slot (at most {max} sequences)")]
    NoSequenceSlot { max: usize },
    #[error("sequence {0} does not exist")]
    UnknownSequence(usize),
    #[error("sequence {0} is in use and cannot be freed")]
    SequenceInUse(usize),
    #[error("block {0} is not allocated")]
    NotAllocated(u32),
    #[error("one layer's KV pool of {bytes} bytes exceeds one storage binding ({limit} bytes)")]
    PoolTooLarge { bytes: u64, limit: u64 },
    #[error("KV layout: {0}")]
    Layout(String),
    /// A device error while creating the pool (kept as text so that `KvError` stays
    /// comparable in tests).
    #[error("GPU: {0}")]
    Gpu(String),
}

impl From<crate::gpu::GpuError> for KvError {
    fn from(e: crate::gpu::GpuError) -> Self {
        KvError::Gpu(e.to_string())
    }
}
