//! Reference-counted allocation of a pool's physical blocks, with the GPU tier of the prefix
//! cache: full blocks registered under their content hash stay cached when their last user
//! lets go (on a least-recently-released list) and are handed out again — evicted — only when
//! no free block is left. Pinned blocks are never evicted.
//!
//! A block is in exactly one state: free (refcount 0, no hash), in use (refcount > 0, with or
//! without a hash), cached (refcount 0, hashed, unpinned: on the LRU list) or parked (refcount
//! 0, hashed, pinned: kept, not on the list).

use std::collections::{BTreeMap, HashMap};

use super::KvError;
use super::hash::BlockHash;

/// Who a block's content is kept for: accounting (bytes per owner) and clean-up (deleting a
/// conversation frees the blocks nobody else used).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    Conversation(i64),
    Document(i64),
    /// An anonymous request (the CLI, the server).
    Request(u64),
}

/// A physical block index into a layer's pool.
pub type BlockId = u32;

#[derive(Debug)]
pub struct BlockAllocator {
    refcounts: Vec<u32>,
    /// Free blocks, popped from the end (lowest ids first).
    free: Vec<BlockId>,
    block_size: usize,
    hashes: Vec<Option<BlockHash>>,
    by_hash: HashMap<BlockHash, BlockId>,
    /// Cached blocks by release tick, oldest first.
    lru: BTreeMap<u64, BlockId>,
    /// The tick under which a block sits in `lru` (0: not there).
    lru_tick: Vec<u64>,
    clock: u64,
    pins: Vec<u32>,
    /// Blocks evicted since the last [`BlockAllocator::take_evicted`], with the hash they had.
    evicted: Vec<(BlockId, BlockHash)>,
    /// The owners each hashed block is kept for (few per block: a list).
    owners: Vec<Vec<Owner>>,
}

impl BlockAllocator {
    pub fn new(n_blocks: usize, block_size: usize) -> Self {
        BlockAllocator {
            refcounts: vec![0; n_blocks],
            free: (0..n_blocks as BlockId).rev().collect(),
            block_size,
            hashes: vec![None; n_blocks],
            by_hash: HashMap::new(),
            lru: BTreeMap::new(),
            lru_tick: vec![0; n_blocks],
            clock: 0,
            pins: vec![0; n_blocks],
            evicted: Vec::new(),
            owners: vec![Vec::new(); n_blocks],
        }
    }

    pub fn n_blocks(&self) -> usize {
        self.refcounts.len()
    }

    /// Blocks an allocation can take: free ones and cached ones (evicted on demand).
    pub fn n_free(&self) -> usize {
        self.free.len() + self.lru.len()
    }

    /// Cached blocks: unreferenced, kept for their content, evictable.
    pub fn n_cached(&self) -> usize {
        self.lru.len()
    }

    /// Blocks registered under a hash (in use, cached or parked).
    pub fn n_hashed(&self) -> usize {
        self.by_hash.len()
    }

    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Users of `id` (0 when free, cached or out of range).
    pub fn refcount(&self, id: BlockId) -> u32 {
        self.refcounts.get(id as usize).copied().unwrap_or(0)
    }

    /// The content hash `id` is registered under.
    pub fn hash_of(&self, id: BlockId) -> Option<&BlockHash> {
        self.hashes.get(id as usize).and_then(Option::as_ref)
    }

    /// The block holding the content with hash `h` (any state but free).
    pub fn lookup(&self, h: &BlockHash) -> Option<BlockId> {
        self.by_hash.get(h).copied()
    }

    /// A block with a reference count of 1: a free one, else the least recently released
    /// cached one (evicted: its hash is forgotten and logged for the lower tiers).
    pub fn allocate(&mut self) -> Result<BlockId, KvError> {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                let (_, id) = self.lru.pop_first().ok_or(KvError::Exhausted {
                    n_blocks: self.refcounts.len(),
                    block_size: self.block_size,
                })?;
                self.lru_tick[id as usize] = 0;
                self.owners[id as usize].clear();
                if let Some(h) = self.hashes[id as usize].take() {
                    self.by_hash.remove(&h);
                    self.evicted.push((id, h));
                }
                id
            }
        };
        self.refcounts[id as usize] = 1;
        Ok(id)
    }

    /// One more user of a block in use, or the first user of a cached or parked one.
    pub fn retain(&mut self, id: BlockId) -> Result<(), KvError> {
        let i = id as usize;
        match self.refcounts.get(i) {
            Some(0) if self.hashes[i].is_some() => {
                self.leave_lru(id);
                self.refcounts[i] = 1;
                Ok(())
            }
            Some(rc) if *rc > 0 => {
                self.refcounts[i] += 1;
                Ok(())
            }
            _ => Err(KvError::NotAllocated(id)),
        }
    }

    /// One user fewer. With none left a hashed block stays cached (or parked when pinned)
    /// and an anonymous one is free again (returns true then).
    pub fn release(&mut self, id: BlockId) -> Result<bool, KvError> {
        let i = id as usize;
        match self.refcounts.get_mut(i) {
            Some(rc) if *rc > 0 => {
                *rc -= 1;
                if *rc > 0 {
                    return Ok(false);
                }
                if self.hashes[i].is_some() {
                    if self.pins[i] == 0 {
                        self.enter_lru(id);
                    }
                    Ok(false)
                } else {
                    self.owners[i].clear();
                    self.free.push(id);
                    Ok(true)
                }
            }
            _ => Err(KvError::NotAllocated(id)),
        }
    }

    /// Registers block `id` (in use, its K/V written) as holding the content `h`. Returns
    /// false, changing nothing, when another block already holds `h` or `id` has a hash.
    pub fn register(&mut self, id: BlockId, h: BlockHash) -> Result<bool, KvError> {
        if self.refcount(id) == 0 {
            return Err(KvError::NotAllocated(id));
        }
        if self.by_hash.contains_key(&h) || self.hashes[id as usize].is_some() {
            return Ok(false);
        }
        self.hashes[id as usize] = Some(h);
        self.by_hash.insert(h, id);
        Ok(true)
    }

    /// Keeps the hashed block `id` even when no sequence uses it (a document, a system
    /// prompt). Pins nest.
    pub fn pin(&mut self, id: BlockId) -> Result<(), KvError> {
        let i = id as usize;
        if self.hash_of(id).is_none() {
            return Err(KvError::NotHashed(id));
        }
        self.pins[i] += 1;
        self.leave_lru(id);
        Ok(())
    }

    /// Undoes one [`BlockAllocator::pin`]; an unreferenced block becomes evictable again.
    pub fn unpin(&mut self, id: BlockId) -> Result<(), KvError> {
        let i = id as usize;
        match self.pins.get(i) {
            Some(p) if *p > 0 => {
                self.pins[i] -= 1;
                if self.pins[i] == 0 && self.refcounts[i] == 0 && self.hashes[i].is_some() {
                    self.enter_lru(id);
                }
                Ok(())
            }
            _ => Err(KvError::NotPinned(id)),
        }
    }

    pub fn is_pinned(&self, id: BlockId) -> bool {
        self.pins.get(id as usize).is_some_and(|&p| p > 0)
    }

    /// Pinned blocks.
    pub fn n_pinned(&self) -> usize {
        self.pins.iter().filter(|&&p| p > 0).count()
    }

    /// Forgets every cached block (their hashes too): they become free. Blocks in use or
    /// pinned keep their hashes.
    pub fn drop_cached(&mut self) -> usize {
        let ids: Vec<BlockId> = self.lru.values().copied().collect();
        for &id in &ids {
            self.forget(id);
        }
        ids.len()
    }

    /// Records that `owner` uses the hashed block `id` (no-op for anonymous blocks).
    pub fn add_owner(&mut self, id: BlockId, owner: Owner) {
        let i = id as usize;
        if self.hash_of(id).is_some() && !self.owners[i].contains(&owner) {
            self.owners[i].push(owner);
        }
    }

    /// The owners block `id` is kept for.
    pub fn owners(&self, id: BlockId) -> &[Owner] {
        self.owners.get(id as usize).map_or(&[], Vec::as_slice)
    }

    /// Drops `owner` from every block; cached blocks no owner is left for are freed (a
    /// deleted conversation takes its own blocks along, not the ones others used). Returns
    /// the blocks freed.
    pub fn remove_owner(&mut self, owner: Owner) -> usize {
        let mut freed = 0;
        for i in 0..self.owners.len() {
            let before = self.owners[i].len();
            self.owners[i].retain(|o| *o != owner);
            let id = i as BlockId;
            if before != self.owners[i].len()
                && self.owners[i].is_empty()
                && self.refcounts[i] == 0
                && self.pins[i] == 0
                && self.hashes[i].is_some()
            {
                self.forget(id);
                freed += 1;
            }
        }
        freed
    }

    /// Blocks holding content (in use, cached or parked) per owner; a block with several
    /// owners counts for each.
    pub fn blocks_by_owner(&self) -> std::collections::BTreeMap<Owner, usize> {
        let mut out = std::collections::BTreeMap::new();
        for owners in &self.owners {
            for o in owners {
                *out.entry(*o).or_insert(0) += 1;
            }
        }
        out
    }

    /// A cached block back to the free list, hash and owners forgotten.
    fn forget(&mut self, id: BlockId) {
        self.leave_lru(id);
        self.owners[id as usize].clear();
        if let Some(h) = self.hashes[id as usize].take() {
            self.by_hash.remove(&h);
        }
        self.free.push(id);
    }

    /// The blocks evicted since the last call, with the hashes they held.
    pub fn take_evicted(&mut self) -> Vec<(BlockId, BlockHash)> {
        std::mem::take(&mut self.evicted)
    }

    fn enter_lru(&mut self, id: BlockId) {
        self.leave_lru(id);
        self.clock += 1;
        self.lru.insert(self.clock, id);
        self.lru_tick[id as usize] = self.clock;
    }

    fn leave_lru(&mut self, id: BlockId) {
        let tick = std::mem::take(&mut self.lru_tick[id as usize]);
        if tick != 0 {
            self.lru.remove(&tick);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> BlockHash {
        [n; 32]
    }

    #[test]
    fn allocate_until_exhausted_then_reuse_released_blocks() {
        let mut a = BlockAllocator::new(3, 16);
        let ids: Vec<_> = (0..3).map(|_| a.allocate().unwrap()).collect();
        assert_eq!(ids, [0, 1, 2]);
        assert_eq!(
            a.allocate(),
            Err(KvError::Exhausted {
                n_blocks: 3,
                block_size: 16
            })
        );
        assert_eq!(a.release(1), Ok(true));
        assert_eq!(a.allocate(), Ok(1));
    }

    #[test]
    fn shared_blocks_are_freed_by_their_last_user() {
        let mut a = BlockAllocator::new(2, 16);
        let b = a.allocate().unwrap();
        a.retain(b).unwrap();
        assert_eq!(a.refcount(b), 2);
        assert_eq!(a.release(b), Ok(false));
        assert_eq!(a.n_free(), 1);
        assert_eq!(a.release(b), Ok(true));
        assert_eq!(a.n_free(), 2);
        assert_eq!(a.release(b), Err(KvError::NotAllocated(b)), "double free");
        assert_eq!(a.retain(b), Err(KvError::NotAllocated(b)));
        assert_eq!(a.retain(99), Err(KvError::NotAllocated(99)));
    }

    #[test]
    fn hashed_blocks_stay_cached_and_are_evicted_least_recently_released_first() {
        let mut a = BlockAllocator::new(3, 4);
        let (x, y, z) = (
            a.allocate().unwrap(),
            a.allocate().unwrap(),
            a.allocate().unwrap(),
        );
        assert!(a.register(x, h(1)).unwrap());
        assert!(a.register(y, h(2)).unwrap());
        assert!(!a.register(z, h(1)).unwrap(), "h(1) is already held by x");
        assert_eq!(a.release(y), Ok(false), "y stays cached");
        assert_eq!(a.release(x), Ok(false));
        assert_eq!(a.release(z), Ok(true), "z had no hash: free");
        assert_eq!((a.n_free(), a.n_cached()), (3, 2));
        assert_eq!(a.lookup(&h(1)), Some(x));
        // Free blocks go first, then the least recently released cached one (y).
        assert_eq!(a.allocate(), Ok(z));
        assert_eq!(a.allocate(), Ok(y));
        assert_eq!(a.take_evicted(), vec![(y, h(2))]);
        assert_eq!(a.lookup(&h(2)), None);
        // A cached block is taken back by a new user, leaving the LRU list.
        a.retain(x).unwrap();
        assert_eq!((a.refcount(x), a.n_cached()), (1, 0));
        assert!(a.allocate().is_err(), "nothing free, nothing cached");
    }

    #[test]
    fn pinned_blocks_are_never_evicted() {
        let mut a = BlockAllocator::new(2, 4);
        let (x, y) = (a.allocate().unwrap(), a.allocate().unwrap());
        a.register(x, h(1)).unwrap();
        a.register(y, h(2)).unwrap();
        a.pin(x).unwrap();
        a.release(x).unwrap();
        a.release(y).unwrap();
        assert_eq!((a.n_free(), a.n_pinned()), (1, 1));
        assert_eq!(a.allocate(), Ok(y), "y is evicted, x is pinned");
        assert_eq!(
            a.allocate(),
            Err(KvError::Exhausted {
                n_blocks: 2,
                block_size: 4
            })
        );
        assert_eq!(a.lookup(&h(1)), Some(x));
        a.unpin(x).unwrap();
        assert_eq!(a.unpin(x), Err(KvError::NotPinned(x)));
        assert_eq!(a.allocate(), Ok(x), "unpinned: evictable again");
        assert_eq!(
            a.pin(1),
            Err(KvError::NotHashed(1)),
            "only content can be pinned"
        );
    }

    #[test]
    fn removing_an_owner_frees_only_the_blocks_nobody_else_used() {
        let mut a = BlockAllocator::new(4, 4);
        let (x, y, z) = (
            a.allocate().unwrap(),
            a.allocate().unwrap(),
            a.allocate().unwrap(),
        );
        for (b, n) in [(x, 1), (y, 2), (z, 3)] {
            a.register(b, h(n)).unwrap();
        }
        let (c1, c2) = (Owner::Conversation(1), Owner::Conversation(2));
        a.add_owner(x, c1); // shared prefix: both conversations
        a.add_owner(x, c2);
        a.add_owner(y, c1);
        a.add_owner(z, c1);
        a.add_owner(z, c1);
        assert_eq!(a.owners(z), [c1], "owners are a set");
        a.release(x).unwrap();
        a.release(y).unwrap(); // z stays in use
        assert_eq!(a.blocks_by_owner()[&c1], 3);
        assert_eq!(a.remove_owner(c1), 1, "only y: x is c2's too, z is in use");
        assert_eq!(a.lookup(&h(2)), None);
        assert_eq!(a.lookup(&h(1)), Some(x));
        assert_eq!(a.owners(x), [c2]);
        assert_eq!(a.n_free(), 3, "y free, x cached, one never used");
        assert!(!a.blocks_by_owner().contains_key(&c1));
    }

    #[test]
    fn random_workload_keeps_every_state_consistent() {
        let n = 16;
        let mut a = BlockAllocator::new(n, 4);
        let mut held: Vec<BlockId> = Vec::new();
        let mut state = 99u64;
        let mut rnd = |m: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize % m
        };
        for step in 0..5000 {
            match rnd(6) {
                0 | 1 => {
                    if let Ok(b) = a.allocate() {
                        held.push(b);
                    }
                }
                2 if !held.is_empty() => {
                    let b = held.swap_remove(rnd(held.len()));
                    a.release(b).unwrap();
                }
                3 if !held.is_empty() => {
                    let b = held[rnd(held.len())];
                    let _ = a.register(b, h(rnd(40) as u8));
                }
                4 => {
                    if let Some(b) = a.lookup(&h(rnd(40) as u8)) {
                        a.retain(b).unwrap();
                        held.push(b);
                    }
                }
                5 => {
                    let b = rnd(n) as BlockId;
                    if a.is_pinned(b) {
                        a.unpin(b).unwrap();
                    } else {
                        let _ = a.pin(b);
                    }
                }
                _ => {}
            }
            for b in 0..n as BlockId {
                let users = held.iter().filter(|&&x| x == b).count() as u32;
                assert_eq!(a.refcount(b), users, "step {step}, block {b}");
                if let Some(hh) = a.hash_of(b) {
                    assert_eq!(a.lookup(hh), Some(b));
                }
                let in_lru = a.lru_tick[b as usize] != 0;
                let cached = users == 0 && a.hash_of(b).is_some() && !a.is_pinned(b);
                assert_eq!(in_lru, cached, "step {step}, block {b}");
                assert_eq!(a.free.contains(&b), users == 0 && a.hash_of(b).is_none());
            }
        }
    }
}
