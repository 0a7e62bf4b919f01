//! The Redis tier's writer thread: sends queued blocks in pipelined batches and, with a TTL,
//! sweeps the TTL index about once a second to count the blocks that expired.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use super::super::kv_blocks::{BlockRecord, HASH_LEN, encode_record};
use super::{Link, Shared, TTL_INDEX_KEY, block_key, index_member, ttl_ms, unix_ms};

/// A batch holds at most this many blocks or bytes of records.
const BATCH_BLOCKS: usize = 32;
const BATCH_BYTES: usize = 32 << 20;
/// How often the TTL index is swept, and how many due entries one sweep looks at.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
const SWEEP_LIMIT: usize = 512;

pub(super) enum Command {
    Put(Box<BlockRecord>),
    /// Delete a value that failed verification.
    Delete(String),
    /// Answer once everything queued before it has been sent or given up on.
    Flush(SyncSender<()>),
}

pub(super) struct Writer {
    pub link: Link,
    pub rx: Receiver<Command>,
    pub shared: Arc<Shared>,
    pub ttl: Option<Duration>,
}

impl Writer {
    pub fn run(mut self) {
        let mut last_sweep = Instant::now();
        loop {
            let first = match self.rx.recv_timeout(SWEEP_EVERY) {
                Ok(c) => Some(c),
                Err(RecvTimeoutError::Timeout) => None,
                // The tier is gone and the queue is empty.
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let (mut puts, mut deletes, mut flushes) = (Vec::new(), Vec::new(), Vec::new());
            let mut bytes = 0;
            let mut next = first;
            while let Some(command) = next.take() {
                match command {
                    Command::Put(b) => {
                        bytes += b.data.len();
                        puts.push(b);
                    }
                    Command::Delete(key) => deletes.push(key),
                    Command::Flush(reply) => flushes.push(reply),
                }
                if puts.len() < BATCH_BLOCKS && bytes < BATCH_BYTES {
                    next = self.rx.try_recv().ok();
                }
            }
            self.send(&puts, &deletes);
            for reply in flushes {
                let _ = reply.send(());
            }
            if self.ttl.is_some() && last_sweep.elapsed() >= SWEEP_EVERY {
                self.sweep();
                last_sweep = Instant::now();
            }
        }
    }

    /// One pipeline for the batch; blocks of a batch that fails (or that meets the tier in
    /// back-off) are lost and counted as dropped.
    fn send(&mut self, puts: &[Box<BlockRecord>], deletes: &[String]) {
        if puts.is_empty() && deletes.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        // Deletes first: a rejected value's block recomputed since is then written afresh.
        for key in deletes {
            pipe.cmd("DEL").arg(key).ignore();
        }
        let deadline = self
            .ttl
            .map(|t| (ttl_ms(t), unix_ms().saturating_add(ttl_ms(t))));
        for b in puts {
            let key = block_key(&b.fingerprint, &b.hash);
            let set = pipe.cmd("SET").arg(&key).arg(encode_record(b));
            match deadline {
                // Rewriting refreshes the TTL like a read does.
                Some((ms, _)) => set.arg("PX").arg(ms).ignore(),
                // Same content under a content address: keep what is there (and its TTL).
                None => set.arg("NX").ignore(),
            };
            if let Some((_, at)) = deadline {
                pipe.cmd("ZADD")
                    .arg(TTL_INDEX_KEY)
                    .arg(at)
                    .arg(index_member(&b.fingerprint, &b.hash))
                    .ignore();
            }
        }
        match self.link.run(&self.shared, |c| pipe.query::<()>(c)) {
            Ok(()) => Shared::add(&self.shared.written, puts.len() as u64),
            Err(_) => Shared::add(&self.shared.dropped, puts.len() as u64),
        }
    }

    /// Looks at index entries whose deadline passed: a block still present with a TTL was
    /// refreshed by someone (re-scored from its PTTL); one that is gone expired (removed and
    /// counted), and so did one now without a TTL — only a process without a TTL writes that,
    /// and its writes (`NX`) never touch an existing key, so the TTL'd block was gone first.
    fn sweep(&mut self) {
        let now = unix_ms();
        let due: Vec<Vec<u8>> = match self.link.run(&self.shared, |c| {
            redis::cmd("ZRANGEBYSCORE")
                .arg(TTL_INDEX_KEY)
                .arg("-inf")
                .arg(now)
                .arg("LIMIT")
                .arg(0)
                .arg(SWEEP_LIMIT)
                .query(c)
        }) {
            Ok(d) => d,
            Err(_) => return,
        };
        if due.is_empty() {
            return;
        }
        // Members are fingerprint ‖ hash; anything else is not ours to interpret: dropped.
        let parsed: Vec<Option<String>> = due.iter().map(|m| member_key(m)).collect();
        let mut pipe = redis::pipe();
        for key in parsed.iter().flatten() {
            pipe.cmd("PTTL").arg(key);
        }
        let pttls: Vec<i64> = match self.link.run(&self.shared, |c| pipe.query(c)) {
            Ok(p) => p,
            Err(_) => return,
        };
        let (mut gone, mut stale, mut live) = (Vec::new(), Vec::new(), Vec::new());
        let mut ttls = pttls.into_iter();
        for (member, key) in due.iter().zip(&parsed) {
            match key.as_ref().map(|_| ttls.next().unwrap_or(-2)) {
                // -2: no such key; -1: a key without a TTL (written again since, see above).
                Some(-2 | -1) => gone.push(member),
                Some(ms) if ms >= 0 => live.push((member, now.saturating_add(ms as u64))),
                // Not a member we wrote.
                _ => stale.push(member),
            }
        }
        let mut pipe = redis::pipe();
        if !gone.is_empty() {
            pipe.cmd("ZREM").arg(TTL_INDEX_KEY).arg(&gone);
        }
        if !stale.is_empty() {
            pipe.cmd("ZREM").arg(TTL_INDEX_KEY).arg(&stale).ignore();
        }
        for (member, at) in &live {
            pipe.cmd("ZADD")
                .arg(TTL_INDEX_KEY)
                .arg("XX")
                .arg(*at)
                .arg(*member)
                .ignore();
        }
        if let Ok(removed) = self.link.run(&self.shared, |c| pipe.query::<Vec<u64>>(c)) {
            Shared::add(&self.shared.expired, removed.iter().sum());
        }
    }
}

/// The block key of a TTL index member (fingerprint ‖ hash), if it is one.
fn member_key(member: &[u8]) -> Option<String> {
    if member.len() != 2 * HASH_LEN {
        return None;
    }
    let mut fingerprint = [0; HASH_LEN];
    let mut hash = [0; HASH_LEN];
    fingerprint.copy_from_slice(&member[..HASH_LEN]);
    hash.copy_from_slice(&member[HASH_LEN..]);
    Some(block_key(&fingerprint, &hash))
}
