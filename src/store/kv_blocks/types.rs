//! The public data types of the KV block database.

use std::sync::atomic::{AtomicU64, Ordering};

use super::chain::HASH_LEN;

/// Owners starting with this prefix pin their blocks: the disk budget never collects them.
pub const PIN_PREFIX: &str = "pin:";

/// How the store is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvStoreOptions {
    /// Total block bytes (`byte_len`) kept on disk; least recently used unpinned blocks are
    /// deleted after each write batch until the total fits. `u64::MAX` for no limit.
    pub budget_bytes: u64,
    /// Blocks waiting for the writer; a `put` beyond this is dropped, not blocked. At least 1.
    pub queue_capacity: usize,
    /// Blocks not used for this long are deleted (unpinned ones; checked about once a
    /// second by the writer). None: blocks stay until the budget needs their room.
    pub ttl: Option<std::time::Duration>,
}

impl Default for KvStoreOptions {
    fn default() -> Self {
        KvStoreOptions {
            budget_bytes: 8 << 30,
            queue_capacity: 256,
            ttl: None,
        }
    }
}

/// One full block as the engine hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRecord {
    /// Must equal `chain_hash(parent, tokens)`; `put` refuses the block otherwise.
    pub hash: [u8; HASH_LEN],
    pub parent: [u8; HASH_LEN],
    pub fingerprint: [u8; HASH_LEN],
    pub tokens: Vec<u32>,
    /// K and V of every layer, opaque to the store.
    pub data: Vec<u8>,
    /// Added to the block's owners (kept if the block is already stored).
    pub owners: Vec<String>,
}

/// What `put` did with a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued for the writer (committed by the next batch; `flush` waits for it).
    Queued,
    /// The queue was full: the block was dropped (and counted) instead of blocking the caller.
    Dropped,
}

/// The answer of `get`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The block's data, verified.
    Hit(Vec<u8>),
    /// No block with this hash.
    Miss,
    /// A row was found but failed verification; it has been deleted. Treat as a miss.
    Invalid(InvalidBlock),
}

/// Why a stored row is not a usable block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBlock {
    #[error("data checksum mismatch")]
    Checksum,
    /// The data's length differs from the recorded `byte_len` (usually a truncated BLOB).
    #[error("data is {got} bytes, expected {expected}")]
    Truncated { expected: u64, got: u64 },
    #[error("block belongs to another model fingerprint")]
    Fingerprint,
    /// The stored tokens do not hash to the block's hash, or differ from the requested tokens.
    #[error("tokens do not match the block's hash chain")]
    Tokens,
    /// A column is missing, NULL, of the wrong type or of the wrong length.
    #[error("undecodable row: {0}")]
    Decode(String),
}

/// Counts of invalid rows found (by `get` and `verify_all`) since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvalidCounts {
    pub checksum: u64,
    pub truncated: u64,
    pub fingerprint: u64,
    pub tokens: u64,
    pub decode: u64,
}

/// This process's counters since `open` (not persisted; other processes keep their own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvCounters {
    /// Blocks newly inserted (a block already stored only has its last use refreshed).
    pub writes: u64,
    /// Blocks refused by `put` because the queue was full.
    pub dropped: u64,
    /// Blocks deleted by the disk budget.
    pub collected: u64,
    /// Blocks deleted because they were not used within the TTL.
    pub expired: u64,
    /// Blocks lost because their batch failed to commit.
    pub write_errors: u64,
    pub invalid: InvalidCounts,
    /// Times a model file was read to compute its hash (memo misses).
    pub model_files_hashed: u64,
}

/// Blocks and bytes under one fingerprint or owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage<K> {
    pub key: K,
    pub blocks: u64,
    pub bytes: u64,
}

/// What the disk tier holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskStats {
    pub blocks: u64,
    /// Sum of the blocks' `byte_len`.
    pub bytes: u64,
    pub budget_bytes: u64,
    /// The database file, its WAL not included.
    pub file_bytes: u64,
    /// By fingerprint as stored (a damaged row may hold one that is not 32 bytes).
    pub per_fingerprint: Vec<Usage<Vec<u8>>>,
    /// By owner; a block with several owners counts under each. Unowned blocks are not listed.
    pub per_owner: Vec<Usage<String>>,
    pub counters: KvCounters,
}

/// Which blocks `clear` deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClearFilter {
    All,
    Fingerprint([u8; HASH_LEN]),
    /// Every block this owner holds, even if other owners (or pins) hold it too.
    Owner(String),
    /// The blocks only this owner holds; the others just lose this owner (a cleared
    /// conversation leaves the prefix it shares with others on disk).
    SoleOwner(String),
}

/// What `verify_all` does with rows that fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyAction {
    ReportOnly,
    DeleteInvalid,
}

/// A row that failed `verify_all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRow {
    pub rowid: i64,
    /// The hash as stored (possibly not 32 bytes, or empty when unreadable).
    pub hash: Vec<u8>,
    pub reason: InvalidBlock,
}

/// The result of `verify_all`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub checked: u64,
    pub valid: u64,
    /// The failing rows, the first `MAX_LISTED_INVALID` of them; `invalid_count` has them all.
    pub invalid: Vec<InvalidRow>,
    pub invalid_count: u64,
    pub deleted: u64,
}

/// At most this many failing rows are listed in a `VerifyReport`.
pub const MAX_LISTED_INVALID: usize = 1000;

/// The live counters, shared by the callers' threads and the writer.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub writes: AtomicU64,
    pub dropped: AtomicU64,
    pub collected: AtomicU64,
    pub expired: AtomicU64,
    pub write_errors: AtomicU64,
    pub checksum: AtomicU64,
    pub truncated: AtomicU64,
    pub fingerprint: AtomicU64,
    pub tokens: AtomicU64,
    pub decode: AtomicU64,
    pub model_files_hashed: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn count_invalid(&self, reason: &InvalidBlock) {
        let counter = match reason {
            InvalidBlock::Checksum => &self.checksum,
            InvalidBlock::Truncated { .. } => &self.truncated,
            InvalidBlock::Fingerprint => &self.fingerprint,
            InvalidBlock::Tokens => &self.tokens,
            InvalidBlock::Decode(_) => &self.decode,
        };
        Counters::add(counter, 1);
    }

    pub fn snapshot(&self) -> KvCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        KvCounters {
            writes: get(&self.writes),
            dropped: get(&self.dropped),
            collected: get(&self.collected),
            expired: get(&self.expired),
            write_errors: get(&self.write_errors),
            invalid: InvalidCounts {
                checksum: get(&self.checksum),
                truncated: get(&self.truncated),
                fingerprint: get(&self.fingerprint),
                tokens: get(&self.tokens),
                decode: get(&self.decode),
            },
            model_files_hashed: get(&self.model_files_hashed),
        }
    }
}
