//! The writer thread: it owns the write connection, takes blocks from the bounded queue and
//! commits them in batches (one `BEGIN IMMEDIATE` transaction each), applies the last-use
//! touches that reads recorded, and enforces the disk budget inside the same transaction.
//! Control commands (flush, owners, clear) run in queue order, after the blocks queued before.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::{Connection, SqliteConnection};

use super::chain::{HASH_LEN, checksum, encode_tokens};
use super::error::KvStoreError;
use super::types::{BlockRecord, ClearFilter, Counters, PIN_PREFIX};

/// A batch commits when it holds this many blocks ...
const BATCH_MAX_BLOCKS: usize = 64;
/// ... or this many bytes of data ...
const BATCH_MAX_BYTES: usize = 64 << 20;
/// ... or when this long has passed since its first block arrived.
const BATCH_WINDOW: Duration = Duration::from_millis(50);
/// An idle writer wakes this often to apply last-use touches from reads.
const TOUCH_INTERVAL: Duration = Duration::from_millis(500);
/// Budget collection deletes candidates in rounds of this many.
const COLLECT_ROUND: i64 = 64;
/// How often the TTL is applied.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) type Reply = SyncSender<Result<u64, KvStoreError>>;

pub(crate) enum Command {
    Put(Box<BlockRecord>),
    Control(Control, Reply),
}

pub(crate) enum Control {
    /// Answers once everything queued before it is committed, with the first batch error since
    /// the previous flush.
    Flush,
    AddOwner([u8; HASH_LEN], String),
    RemoveOwner([u8; HASH_LEN], String),
    RemoveOwnerEverywhere(String),
    Clear(ClearFilter),
}

/// What the writer shares with the callers' threads.
#[derive(Debug)]
pub(crate) struct Shared {
    pub path: PathBuf,
    /// Changed live by [`super::KvBlockStore::set_budget`]; read by each write batch.
    pub budget_bytes: std::sync::atomic::AtomicU64,
    /// Unused blocks older than this (ms) are deleted; None: no TTL.
    pub ttl_ms: Option<i64>,
    pub counters: Counters,
    /// Blocks read since the last batch, with the time they were read (unix ms).
    pub touched: std::sync::Mutex<Vec<([u8; HASH_LEN], i64)>>,
}

/// At most this many touches wait for the writer; more are dropped (last use is advisory).
pub(crate) const MAX_PENDING_TOUCHES: usize = 4096;

/// Milliseconds since the Unix epoch (0 for a clock before 1970).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) struct Writer {
    pub conn: SqliteConnection,
    pub rt: tokio::runtime::Handle,
    pub rx: Receiver<Command>,
    pub shared: Arc<Shared>,
    /// The first batch failure since the last flush, reported by the next flush.
    pub pending_error: Option<String>,
    /// When the TTL was last applied.
    pub last_sweep: Instant,
}

/// What one batch collected from the queue.
struct Batch {
    blocks: Vec<BlockRecord>,
    control: Option<(Control, Reply)>,
    disconnected: bool,
}

impl Writer {
    /// Runs until every sender is gone and the queue is drained, then closes the connection.
    pub fn run(mut self) {
        loop {
            let first = match self.rx.recv_timeout(TOUCH_INTERVAL) {
                Ok(command) => command,
                Err(RecvTimeoutError::Timeout) => {
                    self.commit(Vec::new());
                    self.expire();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let batch = self.collect(first);
            self.commit(batch.blocks);
            self.expire();
            if let Some((control, reply)) = batch.control {
                let result = self.control(control);
                // The caller may have given up waiting; nothing to do then.
                let _ = reply.send(result);
            }
            if batch.disconnected {
                break;
            }
        }
        self.commit(Vec::new());
        let rt = self.rt.clone();
        let _ = rt.block_on(self.conn.close());
    }

    /// Gathers a batch starting with `first`: up to the size limits, the time window, or the
    /// next control command (which runs right after the batch commits).
    fn collect(&self, first: Command) -> Batch {
        let mut batch = Batch {
            blocks: Vec::new(),
            control: None,
            disconnected: false,
        };
        let mut bytes = 0;
        match first {
            Command::Put(block) => {
                bytes += block.data.len();
                batch.blocks.push(*block);
            }
            Command::Control(control, reply) => {
                batch.control = Some((control, reply));
                return batch;
            }
        }
        let deadline = Instant::now() + BATCH_WINDOW;
        while batch.blocks.len() < BATCH_MAX_BLOCKS && bytes < BATCH_MAX_BYTES {
            match self
                .rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(Command::Put(block)) => {
                    bytes += block.data.len();
                    batch.blocks.push(*block);
                }
                Ok(Command::Control(control, reply)) => {
                    batch.control = Some((control, reply));
                    break;
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    batch.disconnected = true;
                    break;
                }
            }
        }
        batch
    }

    /// Commits `blocks` and the pending touches in one transaction, then the budget.
    fn commit(&mut self, blocks: Vec<BlockRecord>) {
        let touches = match self.shared.touched.lock() {
            Ok(mut touched) => std::mem::take(&mut *touched),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        if blocks.is_empty() && touches.is_empty() {
            return;
        }
        let count = blocks.len() as u64;
        // Hash before taking the write lock: other processes wait less.
        let blocks: Vec<(BlockRecord, [u8; HASH_LEN])> = blocks
            .into_iter()
            .map(|b| {
                let sum = checksum(&b.data);
                (b, sum)
            })
            .collect();
        let budget = self
            .shared
            .budget_bytes
            .load(std::sync::atomic::Ordering::Relaxed);
        let result = self
            .rt
            .block_on(write_batch(&mut self.conn, blocks, &touches, budget));
        let counters = &self.shared.counters;
        match result {
            Ok(outcome) => {
                Counters::add(&counters.writes, outcome.inserted);
                Counters::add(&counters.collected, outcome.collected);
            }
            Err(err) => {
                Counters::add(&counters.write_errors, count);
                self.pending_error
                    .get_or_insert_with(|| format!("{count} blocks lost: {err}"));
            }
        }
    }

    /// Deletes the unpinned blocks not used within the TTL, about once a second. A block
    /// deleted while a reader walks its chain is a miss there (recomputed), never an error.
    fn expire(&mut self) {
        let Some(ttl) = self.shared.ttl_ms else {
            return;
        };
        if self.last_sweep.elapsed() < SWEEP_INTERVAL {
            return;
        }
        self.last_sweep = Instant::now();
        // Pending touches first: a block read a moment ago is not stale.
        self.commit(Vec::new());
        let cutoff = now_ms().saturating_sub(ttl);
        match self.rt.block_on(expire_before(&mut self.conn, cutoff)) {
            Ok(n) => Counters::add(&self.shared.counters.expired, n),
            Err(err) => {
                self.pending_error
                    .get_or_insert_with(|| format!("expiring KV blocks failed: {err}"));
            }
        }
    }

    fn control(&mut self, control: Control) -> Result<u64, KvStoreError> {
        let path = self.shared.path.clone();
        let conn = &mut self.conn;
        match control {
            Control::Flush => match self.pending_error.take() {
                Some(detail) => Err(KvStoreError::Write { detail }),
                None => Ok(0),
            },
            Control::AddOwner(hash, owner) => {
                let sql = "INSERT OR IGNORE INTO block_owners (hash, owner) \
                           SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM blocks WHERE hash = ?1)";
                let query = sqlx::query(sql).bind(&hash[..]).bind(owner);
                self.rt
                    .block_on(query.execute(conn))
                    .map(|r| r.rows_affected())
                    .map_err(KvStoreError::db("adding a block owner", &path))
            }
            Control::RemoveOwner(hash, owner) => {
                let sql = "DELETE FROM block_owners WHERE hash = ? AND owner = ?";
                let query = sqlx::query(sql).bind(&hash[..]).bind(owner);
                self.rt
                    .block_on(query.execute(conn))
                    .map(|r| r.rows_affected())
                    .map_err(KvStoreError::db("removing a block owner", &path))
            }
            Control::RemoveOwnerEverywhere(owner) => {
                let query = sqlx::query("DELETE FROM block_owners WHERE owner = ?").bind(owner);
                self.rt
                    .block_on(query.execute(conn))
                    .map(|r| r.rows_affected())
                    .map_err(KvStoreError::db("removing an owner", &path))
            }
            Control::Clear(filter) => self
                .rt
                .block_on(clear(conn, filter))
                .map_err(KvStoreError::db("clearing KV blocks", &path)),
        }
    }
}

struct BatchOutcome {
    inserted: u64,
    collected: u64,
}

async fn write_batch(
    conn: &mut SqliteConnection,
    blocks: Vec<(BlockRecord, [u8; HASH_LEN])>,
    touches: &[([u8; HASH_LEN], i64)],
    budget_bytes: u64,
) -> Result<BatchOutcome, sqlx::Error> {
    let now = now_ms();
    // IMMEDIATE: take the write lock up front, so two writers queue on the busy timeout
    // instead of failing a read-to-write upgrade.
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let mut inserted = 0;
    for (block, sum) in blocks {
        let byte_len = block.data.len() as i64;
        let result = sqlx::query(
            "INSERT OR IGNORE INTO blocks (hash, parent, fingerprint, n_tokens, tokens, \
             byte_len, checksum, last_use, created, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&block.hash[..])
        .bind(&block.parent[..])
        .bind(&block.fingerprint[..])
        .bind(block.tokens.len() as i64)
        .bind(encode_tokens(&block.tokens))
        .bind(byte_len)
        .bind(&sum[..])
        .bind(now)
        .bind(now)
        .bind(block.data)
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 1 {
            inserted += 1;
        } else {
            // Content addressed: the stored block is this block; it was just used again.
            touch(&mut tx, &block.hash, now).await?;
        }
        for owner in &block.owners {
            sqlx::query("INSERT OR IGNORE INTO block_owners (hash, owner) VALUES (?, ?)")
                .bind(&block.hash[..])
                .bind(owner)
                .execute(&mut *tx)
                .await?;
        }
    }
    for (hash, at) in touches {
        touch(&mut tx, hash, *at).await?;
    }
    let collected = enforce_budget(&mut tx, budget_bytes).await?;
    tx.commit().await?;
    Ok(BatchOutcome {
        inserted,
        collected,
    })
}

async fn touch(
    conn: &mut SqliteConnection,
    hash: &[u8; HASH_LEN],
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE blocks SET last_use = max(last_use, ?) WHERE hash = ?")
        .bind(at)
        .bind(&hash[..])
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes least recently used blocks without a `pin:` owner until the stored bytes fit the
/// budget (or only pinned blocks are left). Returns how many it deleted.
async fn enforce_budget(
    conn: &mut SqliteConnection,
    budget_bytes: u64,
) -> Result<u64, sqlx::Error> {
    let budget = i64::try_from(budget_bytes).unwrap_or(i64::MAX);
    let mut collected = 0;
    loop {
        let total: i64 = sqlx::query_scalar("SELECT bytes FROM kv_totals WHERE id = 0")
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or(0);
        if total <= budget {
            break;
        }
        let candidates: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT rowid, byte_len FROM blocks AS b WHERE NOT EXISTS ( \
               SELECT 1 FROM block_owners AS o \
               WHERE o.hash = b.hash AND substr(o.owner, 1, length(?1)) = ?1) \
             ORDER BY last_use, rowid LIMIT ?2",
        )
        .bind(PIN_PREFIX)
        .bind(COLLECT_ROUND)
        .fetch_all(&mut *conn)
        .await?;
        if candidates.is_empty() {
            break; // everything left is pinned
        }
        let excess = total.saturating_sub(budget);
        let mut freed: i64 = 0;
        for (rowid, byte_len) in candidates {
            if freed >= excess {
                break;
            }
            sqlx::query("DELETE FROM blocks WHERE rowid = ?")
                .bind(rowid)
                .execute(&mut *conn)
                .await?;
            freed = freed.saturating_add(byte_len);
            collected += 1;
        }
    }
    Ok(collected)
}

/// Deletes unpinned blocks last used before `cutoff_ms`, in rounds. Returns how many.
async fn expire_before(conn: &mut SqliteConnection, cutoff_ms: i64) -> Result<u64, sqlx::Error> {
    let mut expired = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM blocks WHERE rowid IN ( \
               SELECT rowid FROM blocks AS b WHERE b.last_use < ?1 AND NOT EXISTS ( \
                 SELECT 1 FROM block_owners AS o \
                 WHERE o.hash = b.hash AND substr(o.owner, 1, length(?2)) = ?2) \
               LIMIT ?3)",
        )
        .bind(cutoff_ms)
        .bind(PIN_PREFIX)
        .bind(COLLECT_ROUND)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        expired += n;
        if n < COLLECT_ROUND as u64 {
            break;
        }
    }
    if expired > 0 {
        sqlx::query("PRAGMA incremental_vacuum")
            .execute(&mut *conn)
            .await?;
    }
    Ok(expired)
}

async fn clear(conn: &mut SqliteConnection, filter: ClearFilter) -> Result<u64, sqlx::Error> {
    let query = match &filter {
        ClearFilter::All => sqlx::query("DELETE FROM blocks"),
        ClearFilter::Fingerprint(fingerprint) => {
            sqlx::query("DELETE FROM blocks WHERE fingerprint = ?").bind(&fingerprint[..])
        }
        ClearFilter::Owner(owner) => sqlx::query(
            "DELETE FROM blocks WHERE hash IN (SELECT hash FROM block_owners WHERE owner = ?)",
        )
        .bind(owner.as_str()),
        // Blocks another owner (or a pin) also holds lose only this owner.
        ClearFilter::SoleOwner(owner) => sqlx::query(
            "DELETE FROM blocks WHERE hash IN (SELECT hash FROM block_owners WHERE owner = ?1)
               AND hash NOT IN (SELECT hash FROM block_owners WHERE owner <> ?1)",
        )
        .bind(owner.as_str()),
    };
    let deleted = query.execute(&mut *conn).await?.rows_affected();
    if let ClearFilter::SoleOwner(owner) = &filter {
        sqlx::query("DELETE FROM block_owners WHERE owner = ?")
            .bind(owner.as_str())
            .execute(&mut *conn)
            .await?;
    }
    // Hand the freed pages back to the file system (auto_vacuum is INCREMENTAL).
    sqlx::query("PRAGMA incremental_vacuum")
        .execute(&mut *conn)
        .await?;
    Ok(deleted)
}
