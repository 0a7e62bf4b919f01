//! The disk tier of the KV cache: full KV blocks in a SQLite database of their own
//! (`kv.sqlite`, separate from the app database), keyed by content hash.
//!
//! - A block is one BLOB (K and V of every layer, opaque here) with its chain hash, parent hash,
//!   model fingerprint, tokens, length, blake3 checksum, owners and last use.
//! - The API is synchronous (the engine is); inside, sqlx runs on a small private tokio runtime.
//!   Do not call it from inside an async task (use `spawn_blocking`).
//! - Writes are off the caller's path: [`KvBlockStore::put`] queues the block on a bounded queue
//!   and never blocks — a full queue drops the block and counts it. One writer thread commits
//!   batches (up to 64 blocks / 64 MiB / 50 ms per transaction) and then enforces the disk
//!   budget: least recently used blocks go first; blocks with an owner starting with `pin:`
//!   ([`PIN_PREFIX`]) are never collected, even if that leaves the store over budget.
//! - Reads run on the caller's thread through a small connection pool (WAL lets them run
//!   beside the writer, in this process or another one: the app and the CLI share the file).
//! - Rows are untrusted: [`KvBlockStore::get`] checks length, hash chain, fingerprint, tokens and
//!   checksum; a row that fails is deleted and reported as [`Fetched::Invalid`], never returned.
//!   A file that is not a SQLite database is a [`KvStoreError::Corrupt`] and is left untouched.
//! - Crash safety comes from SQLite transactions: a killed writer loses at most its open batch.

mod chain;
mod error;
mod inspect;
mod model_hash;
mod record;
mod row;
mod types;
mod writer;

use std::collections::HashSet;
use std::path::Path;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use std::time::Instant;

use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, SqliteConnection};

pub use chain::{HASH_LEN, chain_hash};
pub use error::KvStoreError;
pub use model_hash::hash_file;
pub use record::{encode_record, verify_record};
pub use types::{
    BlockRecord, ClearFilter, DiskStats, Enqueued, Fetched, InvalidBlock, InvalidCounts,
    InvalidRow, KvCounters, KvStoreOptions, MAX_LISTED_INVALID, PIN_PREFIX, Usage, VerifyAction,
    VerifyReport,
};

use row::{decode_row, select_block_rows};
use types::Counters;
use writer::{Command, Control, MAX_PENDING_TOUCHES, Shared, Writer, now_ms};

/// The KV database's own schema (never the app's `migrations/`).
static KV_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./kv_migrations");

/// Large pages suit BLOBs of 10 KB–2 MB (fewer overflow pages to chain); measured in
/// `tests/kv_blocks.rs::page_size_measurement`. Only applies to a new file.
pub const PAGE_SIZE: u32 = 65536;
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const READ_POOL_SIZE: u32 = 4;
/// Opening retries "database is locked" this many times (about 5 s in all, see `retry_busy`).
const OPEN_BUSY_RETRIES: u32 = 30;
/// Largest block `put` accepts.
pub const MAX_BLOCK_BYTES: usize = 256 << 20;
/// Longest owner name `put` and `add_owner` accept.
pub const MAX_OWNER_BYTES: usize = 256;
/// `contains_prefix` asks about this many hashes per query.
const PREFIX_QUERY_HASHES: usize = 512;
/// `verify_all` reads this many rows at a time (bounded memory).
const VERIFY_ROWS_PER_QUERY: i64 = 8;

/// A handle to the KV block database: `Send + Sync`, cheap to clone (clones share the writer;
/// it stops when the last clone is dropped or closed).
#[derive(Clone)]
pub struct KvBlockStore {
    inner: Arc<Inner>,
}

struct Inner {
    rt: Option<tokio::runtime::Runtime>,
    pool: SqlitePool,
    queue: Option<SyncSender<Command>>,
    writer: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for KvBlockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvBlockStore")
            .field("path", &self.inner.shared.path)
            .finish_non_exhaustive()
    }
}

impl KvBlockStore {
    /// Opens (creating if needed) the KV database at `path` and starts its writer thread.
    pub fn open(path: &Path, opts: KvStoreOptions) -> Result<KvBlockStore, KvStoreError> {
        let path = path.to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| KvStoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hearth-kv-db")
            .enable_all()
            .build()
            .map_err(|source| KvStoreError::Start {
                what: "runtime",
                source,
            })?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            // page_size and auto_vacuum only take effect on a new file; sqlx sends them first.
            .page_size(PAGE_SIZE)
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL survives application crashes; a power loss may drop the last
            // commits, never corrupt the file.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let (pool, conn) = rt.block_on(connect(&path, options))?;
        let shared = Arc::new(Shared {
            path: path.clone(),
            budget_bytes: opts.budget_bytes.into(),
            ttl_ms: opts
                .ttl
                .map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX).max(1)),
            counters: Counters::default(),
            touched: Mutex::new(Vec::new()),
        });
        let (queue, rx) = sync_channel(opts.queue_capacity.max(1));
        let writer = Writer {
            conn,
            rt: rt.handle().clone(),
            rx,
            shared: shared.clone(),
            pending_error: None,
            last_sweep: Instant::now(),
        };
        let writer = std::thread::Builder::new()
            .name("hearth-kv-writer".into())
            .spawn(move || writer.run())
            .map_err(|source| KvStoreError::Start {
                what: "writer thread",
                source,
            })?;
        Ok(KvBlockStore {
            inner: Arc::new(Inner {
                rt: Some(rt),
                pool,
                queue: Some(queue),
                writer: Some(writer),
                shared,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.shared.path
    }

    /// Queues `block` for the writer without blocking. Refuses (with an error) a block whose
    /// hash is not `chain_hash(parent, tokens)`, that has no tokens or no data, or a bad owner.
    pub fn put(&self, block: BlockRecord) -> Result<Enqueued, KvStoreError> {
        check_block(&block)?;
        match self.queue()?.try_send(Command::Put(Box::new(block))) {
            Ok(()) => Ok(Enqueued::Queued),
            Err(TrySendError::Full(_)) => {
                Counters::add(&self.inner.shared.counters.dropped, 1);
                Ok(Enqueued::Dropped)
            }
            Err(TrySendError::Disconnected(_)) => Err(KvStoreError::WriterStopped),
        }
    }

    /// Waits until everything queued before it is committed. Reports a batch that failed to
    /// commit since the previous flush as [`KvStoreError::Write`].
    pub fn flush(&self) -> Result<(), KvStoreError> {
        self.control(Control::Flush).map(|_| ())
    }

    /// How many of `hashes` (in chain order) are stored under `fingerprint`, counting from the
    /// first and stopping at the first missing one. One query per 512 hashes.
    pub fn contains_prefix(
        &self,
        fingerprint: &[u8; HASH_LEN],
        hashes: &[[u8; HASH_LEN]],
    ) -> Result<usize, KvStoreError> {
        let mut found = 0;
        for chunk in hashes.chunks(PREFIX_QUERY_HASHES) {
            let sql = format!(
                "SELECT hash FROM blocks WHERE fingerprint = ? AND hash IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            // Only `?` placeholders are spliced in; every value is bound.
            let mut query =
                sqlx::query_scalar::<_, Vec<u8>>(sqlx::AssertSqlSafe(sql)).bind(&fingerprint[..]);
            for hash in chunk {
                query = query.bind(&hash[..]);
            }
            let present: HashSet<Vec<u8>> = self
                .block_on(query.fetch_all(&self.inner.pool))
                .map_err(self.err("looking up cached block hashes"))?
                .into_iter()
                .collect();
            let run = chunk
                .iter()
                .take_while(|h| present.contains(&h[..]))
                .count();
            found += run;
            if run < chunk.len() {
                break;
            }
        }
        Ok(found)
    }

    /// The data of block `hash`, verified against the caller's `fingerprint` and `tokens` and
    /// its own length, hash chain and checksum. A row that fails is deleted and returned as
    /// [`Fetched::Invalid`]. A hit refreshes the block's last use (applied by the writer).
    ///
    /// A fingerprint mismatch is `Invalid(Fingerprint)`, not a miss: hashes chain from `h_0`,
    /// which derives from the fingerprint, so an honest row found under this hash always carries
    /// the caller's fingerprint. A mismatch means a damaged row (or a caller bug) and is worth
    /// reporting as the reason for the recompute.
    pub fn get(
        &self,
        fingerprint: &[u8; HASH_LEN],
        hash: &[u8; HASH_LEN],
        tokens: &[u32],
    ) -> Result<Fetched, KvStoreError> {
        let sql = select_block_rows!("WHERE hash = ?");
        let row = self
            .block_on(
                sqlx::query(sql)
                    .bind(&hash[..])
                    .fetch_optional(&self.inner.pool),
            )
            .map_err(self.err("reading a KV block"))?;
        let Some(row) = row else {
            return Ok(Fetched::Miss);
        };
        let verdict = decode_row(&row).and_then(|block| {
            if block.fingerprint != *fingerprint {
                Err(InvalidBlock::Fingerprint)
            } else if block.tokens != tokens {
                Err(InvalidBlock::Tokens)
            } else {
                block.verify_checksum().map(|()| block)
            }
        });
        match verdict {
            Ok(block) => {
                self.touch(hash);
                Ok(Fetched::Hit(block.data))
            }
            Err(reason) => {
                self.inner.shared.counters.count_invalid(&reason);
                let query = sqlx::query("DELETE FROM blocks WHERE hash = ?").bind(&hash[..]);
                self.block_on(query.execute(&self.inner.pool))
                    .map_err(self.err("deleting an invalid KV block"))?;
                Ok(Fetched::Invalid(reason))
            }
        }
    }

    /// Adds `owner` to a stored block (after the blocks queued before this call are written).
    /// Returns false when the block is not stored or already has this owner.
    pub fn add_owner(&self, hash: &[u8; HASH_LEN], owner: &str) -> Result<bool, KvStoreError> {
        check_owner(owner)?;
        self.control(Control::AddOwner(*hash, owner.to_string()))
            .map(|n| n > 0)
    }

    /// Changes the disk budget; the writer enforces it after its next write batch.
    pub fn set_budget(&self, bytes: u64) {
        self.inner
            .shared
            .budget_bytes
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Removes `owner` from one block; returns whether it was there.
    pub fn remove_owner(&self, hash: &[u8; HASH_LEN], owner: &str) -> Result<bool, KvStoreError> {
        self.control(Control::RemoveOwner(*hash, owner.to_string()))
            .map(|n| n > 0)
    }

    /// Removes `owner` from every block (the blocks stay, collectable if no pin is left);
    /// returns how many blocks it owned.
    pub fn remove_owner_everywhere(&self, owner: &str) -> Result<u64, KvStoreError> {
        self.control(Control::RemoveOwnerEverywhere(owner.to_string()))
    }

    /// Deletes the blocks `filter` selects (after the blocks queued before this call are
    /// written); returns how many.
    pub fn clear(&self, filter: ClearFilter) -> Result<u64, KvStoreError> {
        self.control(Control::Clear(filter))
    }

    /// Flushes, then stops the writer if this is the last handle. Dropping the last handle also
    /// writes everything queued, but cannot report an error.
    pub fn close(self) -> Result<(), KvStoreError> {
        self.flush()
    }

    fn queue(&self) -> Result<&SyncSender<Command>, KvStoreError> {
        self.inner.queue.as_ref().ok_or(KvStoreError::WriterStopped)
    }

    /// Sends a control command through the queue (blocking while it is full) and waits for it.
    fn control(&self, control: Control) -> Result<u64, KvStoreError> {
        let (reply, answer) = sync_channel(1);
        self.queue()?
            .send(Command::Control(control, reply))
            .map_err(|_| KvStoreError::WriterStopped)?;
        answer.recv().map_err(|_| KvStoreError::WriterStopped)?
    }

    /// Records a read for the writer to apply as the block's last use.
    fn touch(&self, hash: &[u8; HASH_LEN]) {
        if let Ok(mut touched) = self.inner.shared.touched.lock()
            && touched.len() < MAX_PENDING_TOUCHES
        {
            touched.push((*hash, now_ms()));
        }
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        match &self.inner.rt {
            Some(rt) => rt.block_on(future),
            None => unreachable!("the runtime lives as long as the store"),
        }
    }

    fn err(&self, op: &'static str) -> impl FnOnce(sqlx::Error) -> KvStoreError + '_ {
        KvStoreError::db(op, &self.inner.shared.path)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue lets the writer drain it, commit, and exit.
        self.queue.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        if let Some(rt) = self.rt.take() {
            if tokio::runtime::Handle::try_current().is_err() {
                rt.block_on(self.pool.close());
            }
            rt.shutdown_background();
        }
    }
}

/// Opens the read pool, runs the migrations, and opens the writer's connection.
async fn connect(
    path: &Path,
    options: SqliteConnectOptions,
) -> Result<(SqlitePool, SqliteConnection), KvStoreError> {
    let open_err = |source: sqlx::Error| match crate::store::error::corruption_detail(&source) {
        Some(detail) => KvStoreError::Corrupt {
            path: path.to_path_buf(),
            detail,
        },
        None => KvStoreError::Open {
            path: path.to_path_buf(),
            source,
        },
    };
    let pool = retry_busy(|| {
        SqlitePoolOptions::new()
            .max_connections(READ_POOL_SIZE)
            .connect_with(options.clone())
    })
    .await
    .map_err(open_err)?;
    if let Err(err) = migrate(&pool, path).await {
        pool.close().await;
        return Err(err);
    }
    match retry_busy(|| SqliteConnection::connect_with(&options)).await {
        Ok(conn) => Ok((pool, conn)),
        Err(source) => {
            pool.close().await;
            Err(open_err(source))
        }
    }
}

/// Runs `attempt` again while SQLite answers "database is locked" without waiting on the busy
/// timeout: switching a brand-new file to WAL needs a lock that the busy handler does not wait
/// for, so stores opening a new file at the same moment (app and CLI) would otherwise fail.
async fn retry_busy<T, F, Fut>(mut attempt: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut retries = 0;
    loop {
        match attempt().await {
            Err(err) if is_busy(&err) && retries < OPEN_BUSY_RETRIES => {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(10 * u64::from(retries))).await;
            }
            result => return result,
        }
    }
}

/// Whether `err` is SQLITE_BUSY (any extended code).
fn is_busy(err: &sqlx::Error) -> bool {
    const SQLITE_BUSY: i64 = 5;
    err.as_database_error()
        .and_then(|e| e.code())
        .and_then(|code| code.parse::<i64>().ok())
        .is_some_and(|code| code & 0xff == SQLITE_BUSY)
}

/// Runs the migrations; a second try covers another process creating the same new file at the
/// same moment (the loser's first attempt fails on the tables or version row the winner made).
async fn migrate(pool: &SqlitePool, path: &Path) -> Result<(), KvStoreError> {
    match KV_MIGRATOR.run(pool).await {
        Ok(()) => Ok(()),
        Err(sqlx::migrate::MigrateError::VersionMissing(version)) => {
            Err(KvStoreError::NewerSchema {
                path: path.to_path_buf(),
                version,
            })
        }
        Err(first) => match KV_MIGRATOR.run(pool).await {
            Ok(()) => Ok(()),
            Err(_) => Err(KvStoreError::migrate(first, path)),
        },
    }
}

fn check_block(block: &BlockRecord) -> Result<(), KvStoreError> {
    let refuse = |reason: String| Err(KvStoreError::BadBlock { reason });
    if block.tokens.is_empty() {
        return refuse("a block has at least one token".into());
    }
    if block.data.is_empty() {
        return refuse("a block has data".into());
    }
    if block.data.len() > MAX_BLOCK_BYTES {
        return refuse(format!(
            "data is {} bytes, more than the {MAX_BLOCK_BYTES} allowed",
            block.data.len()
        ));
    }
    if chain_hash(&block.parent, &block.tokens) != block.hash {
        return refuse("hash is not chain_hash(parent, tokens)".into());
    }
    block.owners.iter().try_for_each(|o| check_owner(o))
}

fn check_owner(owner: &str) -> Result<(), KvStoreError> {
    let reason = if owner.is_empty() {
        "empty"
    } else if owner.len() > MAX_OWNER_BYTES {
        "longer than 256 bytes"
    } else {
        return Ok(());
    };
    Err(KvStoreError::BadOwner {
        owner: owner.chars().take(64).collect(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_can_be_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<KvBlockStore>();
    }

    #[test]
    fn put_refuses_inconsistent_blocks() {
        let parent = [1; HASH_LEN];
        let good = BlockRecord {
            hash: chain_hash(&parent, &[5, 6]),
            parent,
            fingerprint: [2; HASH_LEN],
            tokens: vec![5, 6],
            data: vec![9; 10],
            owners: vec!["request".into()],
        };
        assert!(check_block(&good).is_ok());
        let bad = |f: fn(&mut BlockRecord)| {
            let mut b = good.clone();
            f(&mut b);
            check_block(&b).is_err()
        };
        assert!(bad(|b| b.tokens = vec![5, 7]));
        assert!(bad(|b| b.hash[0] ^= 1));
        assert!(bad(|b| b.data.clear()));
        assert!(bad(|b| b.owners.push(String::new())));
        assert!(bad(|b| b.owners.push("x".repeat(300))));
    }
}
