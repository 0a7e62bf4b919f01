//! The Redis tier of the KV cache: blocks shared by several Hearth processes (e.g. servers on
//! separate machines or data dirs) through one Redis server.
//!
//! - A block is stored under `hearth:kv:v1:<hex h_0>:<hex hash>` (h_0, the chain's root, is the
//!   model fingerprint) as a self-verifying record ([`encode_record`]); what comes back is
//!   checked like a disk row ([`verify_record`]: length, hash chain, fingerprint, tokens,
//!   checksum) and a value that fails is deleted and reported, never returned.
//! - Writes never block the caller: [`RedisTier::put`] queues the block for a writer thread
//!   (bounded; full → dropped and counted) that sends batches as one pipeline. Without a TTL a
//!   block is written `NX` (identical content under a content address; an existing key keeps
//!   its TTL); with one, `SET … PX ttl`, and every read refreshes it (`PEXPIRE`).
//! - Reads run on the caller's thread over a synchronous connection whose connect, read and
//!   write each time out after [`RedisOptions::timeout`]: [`RedisTier::reach`] asks which of a
//!   chain's blocks exist (one pipeline), [`RedisTier::fetch`] gets a run of them (`MGET`, one
//!   round trip). A block that vanished in between (expired, evicted) is a miss.
//! - Any failure (refused, timed out, dropped, error reply) is counted, logged once per outage
//!   on stderr, and puts that side of the tier in back-off for [`RedisOptions::retry_after`]:
//!   the caller gets an error it treats as a miss, and the tier is not asked again until then.
//! - Expirations: with a TTL every write and read also records `hash → deadline` in one sorted
//!   set (`hearth:kv:v1:ttl`); the writer sweeps entries whose deadline passed about once a
//!   second: a block still there (refreshed elsewhere) is re-scored, one that is gone is removed
//!   from the set and counted. `ZREM` answers how many it removed, so with several processes
//!   sweeping, each expired block is counted once, by one of them.

mod error;
mod writer;

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redis::{Client, Connection, RedisResult};

pub use error::RedisTierError;

use super::kv_blocks::{BlockRecord, Fetched, HASH_LEN, verify_record};
use writer::{Command, Writer};

/// Every key of this tier starts with this (bump the version with the record layout).
pub const KEY_PREFIX: &str = "hearth:kv:v1:";
/// The sorted set of (fingerprint ‖ hash) → TTL deadline (unix ms), for counting expirations.
pub const TTL_INDEX_KEY: &str = "hearth:kv:v1:ttl";

/// How the tier connects and behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Blocks not read or written for this long expire (Redis deletes them). None: they stay
    /// until Redis evicts them (its `maxmemory` policy).
    pub ttl: Option<Duration>,
    /// Limit on connecting and on each read or write of the socket.
    pub timeout: Duration,
    /// After a failure, the tier is skipped this long before it is tried again.
    pub retry_after: Duration,
    /// Blocks waiting for the writer; beyond this `put` drops them.
    pub queue_capacity: usize,
}

impl RedisOptions {
    pub fn new(url: impl Into<String>) -> RedisOptions {
        RedisOptions {
            url: url.into(),
            ttl: None,
            timeout: Duration::from_millis(250),
            retry_after: Duration::from_secs(2),
            queue_capacity: 256,
        }
    }
}

/// This process's counts since the tier was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedisCounters {
    /// Operations that failed (connect, send, read, timeout, error reply).
    pub errors: u64,
    /// Blocks `put` dropped because the writer's queue was full, or the writer lost because
    /// Redis was down or failed their batch.
    pub dropped: u64,
    /// Blocks written (sent in a pipeline that succeeded).
    pub written: u64,
    /// Blocks whose TTL passed and that were found gone by this process's sweeps.
    pub expired: u64,
    /// Values that failed verification (and were deleted).
    pub invalid: u64,
}

/// State shared by the caller's side and the writer.
#[derive(Debug, Default)]
struct Shared {
    errors: AtomicU64,
    dropped: AtomicU64,
    written: AtomicU64,
    expired: AtomicU64,
    invalid: AtomicU64,
    /// Whether an outage has been logged and not yet ended (one log line per outage).
    down: AtomicBool,
}

impl Shared {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn failed(&self, addr: &str, e: &redis::RedisError) {
        Shared::add(&self.errors, 1);
        if !self.down.swap(true, Ordering::SeqCst) {
            eprintln!(
                "hearth: the Redis KV tier at {addr} failed ({e}); skipping it until it answers again"
            );
        }
    }

    fn answered(&self, addr: &str) {
        if self.down.swap(false, Ordering::SeqCst) {
            eprintln!("hearth: the Redis KV tier at {addr} answers again");
        }
    }
}

/// One connection with its back-off: used by the caller's side and, separately, the writer.
struct Link {
    client: Client,
    addr: String,
    timeout: Duration,
    retry_after: Duration,
    conn: Option<Connection>,
    retry_at: Option<Instant>,
}

impl Link {
    fn new(client: Client, opts: &RedisOptions) -> Link {
        Link {
            addr: client.get_connection_info().addr().to_string(),
            client,
            timeout: opts.timeout,
            retry_after: opts.retry_after,
            conn: None,
            retry_at: None,
        }
    }

    /// Runs `f` on the connection (connecting first if needed). A failure drops the
    /// connection and starts the back-off; during the back-off nothing is tried.
    fn run<T>(
        &mut self,
        shared: &Shared,
        f: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, RedisTierError> {
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err(RedisTierError::Down {
                addr: self.addr.clone(),
            });
        }
        let result = match self.conn.as_mut() {
            Some(conn) => f(conn),
            None => self.connect().and_then(|conn| f(self.conn.insert(conn))),
        };
        match result {
            Ok(v) => {
                self.retry_at = None;
                shared.answered(&self.addr);
                Ok(v)
            }
            Err(source) => {
                self.conn = None;
                self.retry_at = Some(Instant::now() + self.retry_after);
                shared.failed(&self.addr, &source);
                Err(RedisTierError::Io {
                    addr: self.addr.clone(),
                    source,
                })
            }
        }
    }

    fn connect(&self) -> RedisResult<Connection> {
        let conn = self.client.get_connection_with_timeout(self.timeout)?;
        conn.set_read_timeout(Some(self.timeout))?;
        conn.set_write_timeout(Some(self.timeout))?;
        Ok(conn)
    }
}

/// The Redis tier. `Send`; used from the engine's thread (`&mut self` for reads).
pub struct RedisTier {
    link: Link,
    ttl: Option<Duration>,
    shared: Arc<Shared>,
    queue: Option<SyncSender<Command>>,
    writer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RedisTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTier")
            .field("addr", &self.link.addr)
            .finish_non_exhaustive()
    }
}

/// `hearth:kv:v1:<hex fingerprint>:<hex hash>`.
pub fn block_key(fingerprint: &[u8; HASH_LEN], hash: &[u8; HASH_LEN]) -> String {
    let mut key = String::with_capacity(KEY_PREFIX.len() + 4 * HASH_LEN + 1);
    key.push_str(KEY_PREFIX);
    for b in fingerprint {
        let _ = write!(key, "{b:02x}");
    }
    key.push(':');
    for b in hash {
        let _ = write!(key, "{b:02x}");
    }
    key
}

/// The TTL index's member for a block: fingerprint ‖ hash.
fn index_member(fingerprint: &[u8; HASH_LEN], hash: &[u8; HASH_LEN]) -> Vec<u8> {
    [&fingerprint[..], &hash[..]].concat()
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Whether `url` is a Redis URL this tier can use (parsed only; nothing is connected).
pub fn check_url(url: &str) -> Result<(), RedisTierError> {
    Client::open(url)
        .map(|_| ())
        .map_err(|source| RedisTierError::Url {
            url: url.to_string(),
            source,
        })
}

impl RedisTier {
    /// Checks the URL and starts the writer thread. Does not connect: an unreachable Redis is
    /// found (and logged) at the first use, and skipped, never an error here.
    pub fn open(opts: RedisOptions) -> Result<RedisTier, RedisTierError> {
        let client = Client::open(opts.url.as_str()).map_err(|source| RedisTierError::Url {
            url: opts.url.clone(),
            source,
        })?;
        let shared = Arc::new(Shared::default());
        let (queue, rx) = sync_channel(opts.queue_capacity.max(1));
        let writer = Writer {
            link: Link::new(client.clone(), &opts),
            rx,
            shared: shared.clone(),
            ttl: opts.ttl,
        };
        let writer = std::thread::Builder::new()
            .name("hearth-redis-writer".into())
            .spawn(move || writer.run())
            .map_err(RedisTierError::Start)?;
        Ok(RedisTier {
            link: Link::new(client, &opts),
            ttl: opts.ttl,
            shared,
            queue: Some(queue),
            writer: Some(writer),
        })
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> &str {
        &self.link.addr
    }

    pub fn ttl(&self) -> Option<Duration> {
        self.ttl
    }

    pub fn counters(&self) -> RedisCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let s = &self.shared;
        RedisCounters {
            errors: get(&s.errors),
            dropped: get(&s.dropped),
            written: get(&s.written),
            expired: get(&s.expired),
            invalid: get(&s.invalid),
        }
    }

    /// Queues `block` for the writer without blocking; false when the queue was full (the
    /// block is dropped and counted).
    pub fn put(&self, block: BlockRecord) -> Result<bool, RedisTierError> {
        let queue = self.queue.as_ref().ok_or(RedisTierError::WriterStopped)?;
        match queue.try_send(Command::Put(Box::new(block))) {
            Ok(()) => Ok(true),
            Err(TrySendError::Full(_)) => {
                Shared::add(&self.shared.dropped, 1);
                Ok(false)
            }
            Err(TrySendError::Disconnected(_)) => Err(RedisTierError::WriterStopped),
        }
    }

    /// Waits until every block queued before this call has been sent (or given up on).
    pub fn flush(&self) -> Result<(), RedisTierError> {
        let queue = self.queue.as_ref().ok_or(RedisTierError::WriterStopped)?;
        let (reply, done) = sync_channel(1);
        queue
            .send(Command::Flush(reply))
            .map_err(|_| RedisTierError::WriterStopped)?;
        done.recv().map_err(|_| RedisTierError::WriterStopped)
    }

    /// How many of `hashes` (in chain order) Redis holds under `fingerprint`, counting from
    /// the first and stopping at the first missing one. One round trip.
    pub fn reach(
        &mut self,
        fingerprint: &[u8; HASH_LEN],
        hashes: &[[u8; HASH_LEN]],
    ) -> Result<usize, RedisTierError> {
        if hashes.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for h in hashes {
            pipe.cmd("EXISTS").arg(block_key(fingerprint, h));
        }
        let present: Vec<i64> = self.link.run(&self.shared, |c| pipe.query(c))?;
        Ok(present.iter().take_while(|&&n| n > 0).count())
    }

    /// The blocks `(hash, tokens)` under `fingerprint`, in one round trip, each verified:
    /// `Hit(data)`, `Miss` (not there — it may have expired since [`RedisTier::reach`]), or
    /// `Invalid(reason)` (deleted, counted). With a TTL, the blocks read are refreshed.
    pub fn fetch(
        &mut self,
        fingerprint: &[u8; HASH_LEN],
        blocks: &[([u8; HASH_LEN], &[u32])],
    ) -> Result<Vec<Fetched>, RedisTierError> {
        if blocks.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = blocks
            .iter()
            .map(|(h, _)| block_key(fingerprint, h))
            .collect();
        let mut pipe = redis::pipe();
        pipe.cmd("MGET").arg(&keys);
        if let Some(ttl) = self.ttl {
            let ms = ttl_ms(ttl);
            let deadline = unix_ms().saturating_add(ms);
            for ((h, _), key) in blocks.iter().zip(&keys) {
                pipe.cmd("PEXPIRE").arg(key).arg(ms).ignore();
                pipe.cmd("ZADD")
                    .arg(TTL_INDEX_KEY)
                    .arg("XX")
                    .arg(deadline)
                    .arg(index_member(fingerprint, h))
                    .ignore();
            }
        }
        let (values,): (Vec<Option<Vec<u8>>>,) = self.link.run(&self.shared, |c| pipe.query(c))?;
        let mut out = Vec::with_capacity(blocks.len());
        for (i, (hash, tokens)) in blocks.iter().enumerate() {
            let fetched = match values.get(i).cloned().flatten() {
                None => Fetched::Miss,
                Some(value) => match verify_record(value, fingerprint, hash, tokens) {
                    Ok(data) => Fetched::Hit(data),
                    Err(reason) => {
                        self.reject(&keys[i]);
                        Fetched::Invalid(reason)
                    }
                },
            };
            out.push(fetched);
        }
        Ok(out)
    }

    /// Counts a value that failed verification and has the writer delete it.
    fn reject(&self, key: &str) {
        Shared::add(&self.shared.invalid, 1);
        if let Some(q) = &self.queue {
            let _ = q.try_send(Command::Delete(key.to_string()));
        }
    }
}

impl Drop for RedisTier {
    fn drop(&mut self) {
        // Closing the queue lets the writer send what is queued (or give up on it) and exit.
        self.queue.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}
