//! The paged KV cache: a pool of fixed-size blocks (per layer, one K and one V buffer on the
//! GPU), a reference-counted block allocator, and per-sequence block tables (logical block →
//! physical block); the kernels bind one block-table buffer filled with the running
//! sequence's table.
//!
//! The cache is content addressed: a full block is named by the chain hash of every token up
//! to its end (`hash.rs`; `h_0` is the model fingerprint), registered once its K/V are
//! written, and found by any sequence with the same prefix ([`KvPool::acquire`]), whoever
//! computed it. Blocks carry reference counts; a hashed block nobody uses stays cached on a
//! least-recently-released list and is evicted only when a free block is needed; pinned
//! blocks are never evicted. A sequence about to write into a block that others read (or that
//! the cache names) first gets a private copy (copy-on-write, a [`BlockCopy`] the pool replays
//! on the GPU), so the last, open block of a shared prefix stays private.
//!
//! Layout of a block in a layer's pool: see shaders/paged_kv.wgsl.

mod allocator;
pub mod hash;
mod pool;
mod ram;
mod redis_walk;
mod table;
mod tiers;
mod transfer;

pub use allocator::{BlockAllocator, BlockId, Owner};
pub use hash::{BlockHash, KV_LAYOUT_VERSION, ModelFingerprint, block_hashes, chain_hash};
pub use pool::{KvPool, SeqId};
pub use ram::RamTier;
pub use table::{BlockCopy, BlockTable};
pub use tiers::{CacheTier, DEFAULT_RAM_BUDGET_BYTES, Found, Tiers, owner_key};
pub use transfer::FreshBlock;

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
    #[error("block {0} is not allocated")]
    NotAllocated(u32),
    #[error("block {0} is not pinned")]
    NotPinned(u32),
    #[error("block {0} holds no cached content, so it cannot be pinned")]
    NotHashed(u32),
    #[error("one layer's KV pool of {bytes} bytes exceeds one storage binding ({limit} bytes)")]
    PoolTooLarge { bytes: u64, limit: u64 },
    #[error("KV layout: {0}")]
    Layout(String),
    /// A lower tier (the disk store) failed; kept as text so that `KvError` stays comparable.
    #[error("KV tier: {0}")]
    Tier(String),
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
