//! The tiers below the GPU pool: host RAM ([`RamTier`]), SQLite on disk ([`KvBlockStore`],
//! shared by processes on one data dir, surviving restarts) and Redis ([`RedisTier`], shared by
//! processes anywhere; optional).
//!
//! - Write-behind: after a turn, [`Tiers::spill`] reads back the blocks computed since the
//!   last call (one submit, one map) and hands them to RAM and to the disk writer's queue, off
//!   the step's critical path. A GPU eviction then loses nothing worth keeping.
//! - Lookup: [`Tiers::acquire`] takes the longest prefix the GPU index holds, then continues
//!   the hash chain in RAM, on disk, then in Redis, uploading each block found instead of
//!   computing it. A block that fails verification (checksum, length, fingerprint, tokens) is a
//!   miss — the caller computes it — and is counted; wrong bytes never reach the GPU. A block
//!   from Redis is kept in RAM and on disk too.
//! - Redis is never an error: unreachable, slow (each socket operation times out) or failing,
//!   it is skipped — a miss — and counted; see `store::kv_redis`.
//! - The disk store's fingerprint of a block is `h_0`, the pool's root: the model file's
//!   content and every setting that changes a block's bytes.

use std::sync::Arc;

use crate::metrics::{LowerTier, Metrics, OwnerKind, Tier, TierTokens, VerifyFailure};
use crate::store::kv_blocks::{
    BlockRecord, ClearFilter, Enqueued, Fetched, InvalidBlock, KvBlockStore, KvStoreError,
};
use crate::store::kv_redis::{RedisCounters, RedisTier};

use super::hash::BlockHash;
use super::ram::RamTier;
use super::redis_walk::RedisWalk;
use super::{KvError, KvPool, Owner, SeqId};

/// Default RAM tier budget.
pub const DEFAULT_RAM_BUDGET_BYTES: u64 = 2 << 30;

/// One tier of the KV cache (the cache panel clears them one by one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheTier {
    Gpu,
    Ram,
    Disk,
}

/// What one acquire found, by tier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Found {
    pub gpu: usize,
    pub ram: usize,
    pub disk: usize,
    pub redis: usize,
}

impl Found {
    pub fn total(&self) -> usize {
        self.gpu + self.ram + self.disk + self.redis
    }

    pub fn as_tier_tokens(&self) -> TierTokens {
        TierTokens {
            gpu: self.gpu as u64,
            ram: self.ram as u64,
            disk: self.disk as u64,
            redis: self.redis as u64,
        }
    }

    /// The first `keep` tokens of what was found (tiers in chain order GPU → RAM → disk →
    /// Redis: the cut falls on the last ones).
    pub fn cut(self, keep: usize) -> Found {
        let mut left = keep;
        let mut take = |n: usize| {
            let t = n.min(left);
            left -= t;
            t
        };
        Found {
            gpu: take(self.gpu),
            ram: take(self.ram),
            disk: take(self.disk),
            redis: take(self.redis),
        }
    }
}

/// The owner's name in the disk store.
pub fn owner_key(o: Owner) -> String {
    match o {
        Owner::Conversation(id) => format!("conversation:{id}"),
        Owner::Document(id) => format!("document:{id}"),
        Owner::Request(id) => format!("request:{id}"),
    }
}

pub struct Tiers {
    ram: RamTier,
    disk: Option<KvBlockStore>,
    redis: Option<RedisTier>,
    metrics: Metrics,
    /// Blocks the disk writer dropped because its queue was full.
    dropped: u64,
    /// The disk tier's budget collections and TTL expirations already counted in the metrics.
    disk_collected: std::cell::Cell<u64>,
    disk_expired: std::cell::Cell<u64>,
    /// The Redis tier's counters already published to the metrics.
    redis_seen: std::cell::Cell<RedisCounters>,
}

pub(super) fn verify_label(reason: &InvalidBlock) -> VerifyFailure {
    match reason {
        InvalidBlock::Checksum => VerifyFailure::Checksum,
        InvalidBlock::Truncated { .. } => VerifyFailure::Truncated,
        InvalidBlock::Fingerprint => VerifyFailure::Fingerprint,
        InvalidBlock::Tokens | InvalidBlock::Decode(_) => VerifyFailure::Decode,
    }
}

fn disk_err(e: KvStoreError) -> KvError {
    KvError::Tier(e.to_string())
}

impl Tiers {
    pub fn new(ram_budget_bytes: u64, disk: Option<KvBlockStore>, metrics: Metrics) -> Tiers {
        Tiers {
            ram: RamTier::new(ram_budget_bytes),
            disk,
            redis: None,
            metrics,
            dropped: 0,
            disk_collected: Default::default(),
            disk_expired: Default::default(),
            redis_seen: Default::default(),
        }
    }

    /// Adds the Redis tier, asked after the disk (`hearth serve --redis`).
    pub fn with_redis(mut self, redis: RedisTier) -> Tiers {
        self.redis = Some(redis);
        self
    }

    pub fn redis(&self) -> Option<&RedisTier> {
        self.redis.as_ref()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn ram(&self) -> &RamTier {
        &self.ram
    }

    pub fn disk(&self) -> Option<&KvBlockStore> {
        self.disk.as_ref()
    }

    /// A new sequence in `pool` holding the longest prefix of `tokens` found in any tier
    /// (whole blocks), and where it came from. The chain is hashed once for every tier.
    pub fn acquire(
        &mut self,
        pool: &mut KvPool,
        tokens: &[u32],
    ) -> Result<(SeqId, Found), KvError> {
        let bs = pool.layout().block_size;
        let max = pool.max_tokens_per_seq().min(tokens.len());
        let hashes = pool.hashes_of(&tokens[..max]);
        let (s, gpu) = pool.acquire_hashed(tokens, &hashes)?;
        let mut found = Found {
            gpu,
            ..Found::default()
        };
        let root = *pool.root();
        // How many of the blocks RAM lacks the disk holds, asked once (one query).
        let mut disk_reach: Option<(usize, usize)> = None;
        let mut remote = RedisWalk::new(pool.block_bytes());
        for i in gpu / bs..hashes.len() {
            let (h, block) = (hashes[i], &tokens[i * bs..(i + 1) * bs]);
            let (bytes, tier) = if let Some(b) = self.ram.get(&h) {
                (b, LowerTier::Ram)
            } else if let Some(b) = self.fetch_disk(&root, &hashes, i, block, &mut disk_reach)? {
                (b, LowerTier::Disk)
            } else if let Some(redis) = self.redis.as_mut() {
                match remote.next(redis, &self.metrics, &root, &hashes, tokens, bs, i) {
                    Some(b) => (b, LowerTier::Redis),
                    None => break,
                }
            } else {
                break;
            };
            if pool.append_restored(s, block, h, &bytes).is_err() {
                // No room on the GPU for more: compute the rest.
                break;
            }
            self.metrics.restore(tier, 1, bytes.len() as u64);
            match tier {
                LowerTier::Ram => found.ram += bs,
                LowerTier::Disk => {
                    found.disk += bs;
                    self.ram.insert(h, bytes);
                }
                LowerTier::Redis => {
                    found.redis += bs;
                    let parent = if i == 0 { root } else { hashes[i - 1] };
                    self.keep_on_disk(root, parent, h, block, &bytes)?;
                    self.ram.insert(h, bytes);
                }
            }
        }
        Ok((s, found))
    }

    /// The verified bytes of block `i` (tokens `block`, hash `hashes[i]`) from disk, when the
    /// disk's chain reaches it; `reach` remembers (first block asked, blocks held from it).
    fn fetch_disk(
        &mut self,
        root: &BlockHash,
        hashes: &[BlockHash],
        i: usize,
        block: &[u32],
        reach: &mut Option<(usize, usize)>,
    ) -> Result<Option<Arc<[u8]>>, KvError> {
        let Some(disk) = &self.disk else {
            return Ok(None);
        };
        let (from, n) = match *reach {
            Some(r) => r,
            None => {
                let n = disk.contains_prefix(root, &hashes[i..]).map_err(disk_err)?;
                *reach = Some((i, n));
                (i, n)
            }
        };
        if i >= from + n {
            return Ok(None);
        }
        match disk.get(root, &hashes[i], block).map_err(disk_err)? {
            Fetched::Hit(bytes) => Ok(Some(bytes.into())),
            Fetched::Miss => Ok(None),
            Fetched::Invalid(reason) => {
                self.metrics.verification_failure(verify_label(&reason));
                Ok(None)
            }
        }
    }

    /// Queues a block restored from Redis for the local disk tier (no owner: collectable).
    fn keep_on_disk(
        &mut self,
        root: BlockHash,
        parent: BlockHash,
        hash: BlockHash,
        tokens: &[u32],
        data: &[u8],
    ) -> Result<(), KvError> {
        let Some(disk) = &self.disk else {
            return Ok(());
        };
        let record = BlockRecord {
            hash,
            parent,
            fingerprint: root,
            tokens: tokens.to_vec(),
            data: data.to_vec(),
            owners: Vec::new(),
        };
        match disk.put(record).map_err(disk_err)? {
            Enqueued::Queued => self.metrics.spill(LowerTier::Disk, 1),
            Enqueued::Dropped => {
                self.dropped += 1;
                self.metrics.spill_drop(LowerTier::Disk, 1);
            }
        }
        Ok(())
    }

    /// Copies the blocks computed since the last call to RAM, the disk queue and the Redis
    /// queue (one readback for all of them); counts GPU evictions. Returns the blocks copied.
    pub fn spill(&mut self, pool: &mut KvPool) -> Result<usize, KvError> {
        let evicted = pool.take_evicted().len() as u64;
        if evicted > 0 {
            self.metrics.eviction(Tier::Gpu, evicted);
        }
        let fresh = pool.take_fresh();
        if fresh.is_empty() {
            return Ok(0);
        }
        let ids: Vec<u32> = fresh.iter().map(|f| f.id).collect();
        let bytes = pool.read_blocks(&ids)?;
        let root = *pool.root();
        let before = self.ram.evicted();
        for (f, data) in fresh.iter().zip(bytes) {
            let record = || BlockRecord {
                hash: f.hash,
                parent: f.parent,
                fingerprint: root,
                tokens: f.tokens.clone(),
                data: data.clone(),
                owners: f.owner.map(owner_key).into_iter().collect(),
            };
            if let Some(disk) = &self.disk {
                match disk.put(record()).map_err(disk_err)? {
                    Enqueued::Queued => self.metrics.spill(LowerTier::Disk, 1),
                    Enqueued::Dropped => {
                        self.dropped += 1;
                        self.metrics.spill_drop(LowerTier::Disk, 1);
                    }
                }
            }
            // A full queue is counted by the tier itself (published below); a stopped writer
            // only means this block is not shared.
            if let Some(redis) = &self.redis
                && let Ok(true) = redis.put(record())
            {
                self.metrics.spill(LowerTier::Redis, 1);
            }
            self.ram.insert_owned(f.hash, data.into(), f.owner);
            self.metrics.spill(LowerTier::Ram, 1);
        }
        let dropped = self.ram.evicted() - before;
        if dropped > 0 {
            self.metrics.eviction(Tier::Ram, dropped);
        }
        Ok(fresh.len())
    }

    /// Waits until every block handed to the disk writer is committed and every block handed
    /// to the Redis writer is sent (or given up on: Redis is never an error).
    pub fn flush(&self) -> Result<(), KvError> {
        if let Some(r) = &self.redis {
            let _ = r.flush();
        }
        match &self.disk {
            Some(d) => d.flush().map_err(disk_err),
            None => Ok(()),
        }
    }

    /// Forgets every block in RAM and, with `disk`, on disk for this fingerprint.
    pub fn clear(&mut self, root: &BlockHash, disk: bool) -> Result<(), KvError> {
        self.ram.clear();
        if disk && let Some(d) = &self.disk {
            d.clear(ClearFilter::Fingerprint(*root)).map_err(disk_err)?;
        }
        Ok(())
    }

    /// Forgets every block in RAM (a cleared RAM tier).
    pub fn clear_ram(&mut self) {
        self.ram.clear();
    }

    /// Deletes every block on disk, of every model (a cleared disk tier).
    pub fn clear_disk(&self) -> Result<u64, KvError> {
        match &self.disk {
            Some(d) => d.clear(ClearFilter::All).map_err(disk_err),
            None => Ok(0),
        }
    }

    /// Marks the RAM copies of `hashes` as `owner`'s when they have no owner yet (blocks
    /// restored from disk), so that clearing the owner finds them.
    pub fn tag_ram(&mut self, hashes: &[BlockHash], owner: Owner) {
        for h in hashes {
            self.ram.tag(h, owner);
        }
    }

    /// Clears `owner`'s blocks below the GPU (after the pool let them go): `shared` are the
    /// blocks it shared with others on the GPU, which pass to those others on disk and stay;
    /// RAM keeps whatever the pool still holds. Returns (RAM blocks, disk blocks) deleted.
    pub fn clear_owner(
        &mut self,
        pool: &KvPool,
        owner: Owner,
        shared: &[(BlockHash, Vec<Owner>)],
    ) -> Result<(usize, u64), KvError> {
        let ram = self.ram.remove_owner(owner, |h| pool.holds(h));
        let Some(d) = &self.disk else {
            return Ok((ram, 0));
        };
        // Blocks still queued must land before the delete sees them.
        d.flush().map_err(disk_err)?;
        for (h, others) in shared {
            for o in others {
                d.add_owner(h, &owner_key(*o)).map_err(disk_err)?;
            }
        }
        let disk = d
            .clear(ClearFilter::SoleOwner(owner_key(owner)))
            .map_err(disk_err)?;
        Ok((ram, disk))
    }

    /// Forgets an owner's blocks on disk (a deleted conversation); RAM copies age out.
    pub fn remove_owner(&self, owner: Owner) -> Result<(), KvError> {
        if let Some(d) = &self.disk {
            d.remove_owner_everywhere(&owner_key(owner))
                .map_err(disk_err)?;
        }
        Ok(())
    }

    /// Publishes what each tier holds to the metrics.
    pub fn publish(&self, pool: &KvPool) {
        let a = pool.allocator();
        let per_block = pool.block_bytes();
        let held = (a.n_blocks() - (a.n_free() - a.n_cached())) as u64;
        let gpu_budget = a.n_blocks() as u64 * per_block;
        self.metrics
            .set_tier(Tier::Gpu, held, held * per_block, gpu_budget);
        self.metrics.set_tier(
            Tier::Ram,
            self.ram.len() as u64,
            self.ram.bytes(),
            self.ram.budget_bytes(),
        );
        if let Some(d) = &self.disk
            && let Ok(s) = d.stats()
        {
            self.metrics
                .set_tier(Tier::Disk, s.blocks, s.bytes, s.budget_bytes);
            let (collected, expired) = (s.counters.collected, s.counters.expired);
            self.metrics.eviction(
                Tier::Disk,
                collected.saturating_sub(self.disk_collected.get()),
            );
            self.metrics.expiration(
                LowerTier::Disk,
                expired.saturating_sub(self.disk_expired.get()),
            );
            self.disk_collected
                .set(collected.max(self.disk_collected.get()));
            self.disk_expired.set(expired.max(self.disk_expired.get()));
        }
        self.publish_redis();
        self.metrics.set_pinned_blocks(a.n_pinned() as u64);
        let mut by_kind = [0u64; 4];
        for (owner, blocks) in a.blocks_by_owner() {
            let i = match owner {
                Owner::Conversation(_) => 0,
                Owner::Document(_) => 1,
                Owner::Request(_) => 3,
            };
            by_kind[i] += blocks as u64 * per_block;
        }
        let shared = (0..a.n_blocks() as u32)
            .filter(|&b| a.owners(b).len() > 1)
            .count() as u64;
        by_kind[2] = shared * per_block;
        for (kind, bytes) in [
            OwnerKind::Conversation,
            OwnerKind::Document,
            OwnerKind::Shared,
            OwnerKind::Request,
        ]
        .into_iter()
        .zip(by_kind)
        {
            self.metrics.set_owner_bytes(kind, bytes);
        }
    }

    /// Adds what the Redis tier counted since the last call to the metrics.
    fn publish_redis(&self) {
        let Some(r) = &self.redis else { return };
        let (now, seen) = (r.counters(), self.redis_seen.get());
        self.metrics
            .tier_error(Tier::Redis, now.errors.saturating_sub(seen.errors));
        self.metrics
            .spill_drop(LowerTier::Redis, now.dropped.saturating_sub(seen.dropped));
        self.metrics
            .expiration(LowerTier::Redis, now.expired.saturating_sub(seen.expired));
        self.redis_seen.set(now);
    }

    /// Blocks the disk writer dropped (its queue was full).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}
