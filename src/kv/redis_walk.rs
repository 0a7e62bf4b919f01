//! Walking a prompt's hash chain through the Redis tier during one acquire: one round trip
//! asks which blocks exist from the first one the local tiers lack, then runs of them are
//! fetched (one `MGET` per run of up to ~32 MiB) as the walk reaches them. The walk stops at
//! the first block that is missing (also one that vanished since the existence check: expired
//! or evicted mid-restore), fails verification, or meets a Redis error — each a miss.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::metrics::Metrics;
use crate::store::kv_blocks::Fetched;
use crate::store::kv_redis::RedisTier;

use super::hash::BlockHash;
use super::tiers::verify_label;

/// Bytes of blocks asked for in one `MGET`.
const FETCH_BYTES: u64 = 32 << 20;

pub(super) struct RedisWalk {
    /// (first block asked, blocks Redis holds from it), once asked.
    reach: Option<(usize, usize)>,
    /// Fetched blocks not used yet, by block index.
    fetched: VecDeque<(usize, Fetched)>,
    per_fetch: usize,
}

impl RedisWalk {
    pub fn new(block_bytes: u64) -> RedisWalk {
        RedisWalk {
            reach: None,
            fetched: VecDeque::new(),
            per_fetch: (FETCH_BYTES / block_bytes.max(1)).max(1) as usize,
        }
    }

    /// The verified bytes of block `i` of the chain (`hashes`, over `tokens`, `bs` tokens a
    /// block), or `None` where the walk ends.
    #[allow(clippy::too_many_arguments)]
    pub fn next(
        &mut self,
        redis: &mut RedisTier,
        metrics: &Metrics,
        root: &BlockHash,
        hashes: &[BlockHash],
        tokens: &[u32],
        bs: usize,
        i: usize,
    ) -> Option<Arc<[u8]>> {
        let (from, n) = match self.reach {
            Some(r) => r,
            None => {
                // An error is counted by the tier; here it is only a miss.
                let n = redis.reach(root, &hashes[i..]).unwrap_or(0);
                *self.reach.insert((i, n))
            }
        };
        let end = from + n;
        if i >= end {
            return None;
        }
        while self.fetched.front().is_some_and(|(j, _)| *j < i) {
            self.fetched.pop_front();
        }
        if self.fetched.is_empty() {
            let last = (i + self.per_fetch).min(end);
            let asked: Vec<(BlockHash, &[u32])> = (i..last)
                .map(|j| (hashes[j], &tokens[j * bs..(j + 1) * bs]))
                .collect();
            match redis.fetch(root, &asked) {
                Ok(blocks) => {
                    // Every value read and rejected counts (the tier has deleted them all).
                    for f in &blocks {
                        if let Fetched::Invalid(reason) = f {
                            metrics.verification_failure(verify_label(reason));
                        }
                    }
                    self.fetched = (i..last).zip(blocks).collect();
                }
                Err(_) => {
                    self.reach = Some((from, 0));
                    return None;
                }
            }
        }
        match self.fetched.pop_front() {
            Some((j, Fetched::Hit(data))) if j == i => Some(data.into()),
            _ => None,
        }
    }
}
