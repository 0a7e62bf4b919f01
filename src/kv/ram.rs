//! The RAM tier: block bytes in host memory by content hash, within a byte budget, least
//! recently used dropped first. Blocks arrive when they are computed (written behind, off the
//! step's critical path), so a block evicted from the GPU is usually still here and comes back
//! with an upload instead of a recompute.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::Owner;
use super::hash::BlockHash;

struct Entry {
    data: Arc<[u8]>,
    tick: u64,
    /// Who computed (or restored) the block: clearing one owner's cache drops its blocks.
    owner: Option<Owner>,
}

pub struct RamTier {
    budget_bytes: u64,
    bytes: u64,
    map: HashMap<BlockHash, Entry>,
    /// tick → hash, oldest first.
    lru: BTreeMap<u64, BlockHash>,
    clock: u64,
    evicted: u64,
}

impl RamTier {
    pub fn new(budget_bytes: u64) -> RamTier {
        RamTier {
            budget_bytes,
            bytes: 0,
            map: HashMap::new(),
            lru: BTreeMap::new(),
            clock: 0,
            evicted: 0,
        }
    }

    /// Keeps `data` under `h` (a block larger than the whole budget is not kept); drops the
    /// least recently used blocks to stay within the budget. Returns how many were dropped.
    pub fn insert(&mut self, h: BlockHash, data: Arc<[u8]>) -> usize {
        self.insert_owned(h, data, None)
    }

    /// [`RamTier::insert`] for `owner`'s block (a re-insert without an owner keeps the old one).
    pub fn insert_owned(&mut self, h: BlockHash, data: Arc<[u8]>, owner: Option<Owner>) -> usize {
        if data.len() as u64 > self.budget_bytes {
            return 0;
        }
        let owner = owner.or_else(|| self.map.get(&h).and_then(|e| e.owner));
        self.remove(&h);
        self.clock += 1;
        self.bytes += data.len() as u64;
        self.lru.insert(self.clock, h);
        self.map.insert(
            h,
            Entry {
                data,
                tick: self.clock,
                owner,
            },
        );
        let mut dropped = 0;
        while self.bytes > self.budget_bytes {
            let Some((_, old)) = self.lru.pop_first() else {
                break;
            };
            if let Some(e) = self.map.remove(&old) {
                self.bytes -= e.data.len() as u64;
            }
            dropped += 1;
        }
        self.evicted += dropped as u64;
        dropped
    }

    /// The bytes under `h`, marked most recently used.
    pub fn get(&mut self, h: &BlockHash) -> Option<Arc<[u8]>> {
        let e = self.map.get_mut(h)?;
        self.lru.remove(&e.tick);
        self.clock += 1;
        e.tick = self.clock;
        self.lru.insert(self.clock, *h);
        Some(Arc::clone(&e.data))
    }

    pub fn contains(&self, h: &BlockHash) -> bool {
        self.map.contains_key(h)
    }

    pub fn remove(&mut self, h: &BlockHash) -> bool {
        match self.map.remove(h) {
            Some(e) => {
                self.lru.remove(&e.tick);
                self.bytes -= e.data.len() as u64;
                true
            }
            None => false,
        }
    }

    /// Records `owner` for the block under `h` when it has none (a block restored from disk).
    pub fn tag(&mut self, h: &BlockHash, owner: Owner) {
        if let Some(e) = self.map.get_mut(h) {
            e.owner.get_or_insert(owner);
        }
    }

    /// Drops `owner`'s blocks except those `keep` says others still use; returns how many.
    pub fn remove_owner(&mut self, owner: Owner, keep: impl Fn(&BlockHash) -> bool) -> usize {
        let gone: Vec<BlockHash> = self
            .map
            .iter()
            .filter(|(h, e)| e.owner == Some(owner) && !keep(h))
            .map(|(h, _)| *h)
            .collect();
        for h in &gone {
            self.remove(h);
        }
        gone.len()
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.lru.clear();
        self.bytes = 0;
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn budget_bytes(&self) -> u64 {
        self.budget_bytes
    }

    /// Blocks dropped for the budget so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: u8, len: usize) -> Arc<[u8]> {
        vec![n; len].into()
    }

    #[test]
    fn the_budget_drops_least_recently_used_blocks() {
        let mut r = RamTier::new(300);
        r.insert([1; 32], block(1, 100));
        r.insert([2; 32], block(2, 100));
        r.insert([3; 32], block(3, 100));
        assert_eq!((r.len(), r.bytes()), (3, 300));
        assert_eq!(r.get(&[1; 32]).unwrap()[0], 1, "touch 1: 2 is now oldest");
        assert_eq!(r.insert([4; 32], block(4, 100)), 1);
        assert!(!r.contains(&[2; 32]));
        assert!(r.contains(&[1; 32]) && r.contains(&[3; 32]) && r.contains(&[4; 32]));
        assert_eq!(
            r.insert([5; 32], block(5, 1000)),
            0,
            "larger than the budget"
        );
        assert!(!r.contains(&[5; 32]));
        // Re-inserting a hash replaces it without double counting.
        r.insert([4; 32], block(9, 100));
        assert_eq!(r.bytes(), 300);
        assert!(r.remove(&[4; 32]));
        assert_eq!((r.len(), r.bytes(), r.evicted()), (2, 200, 1));
        r.clear();
        assert!(r.is_empty() && r.bytes() == 0);
    }

    #[test]
    fn removing_an_owner_drops_its_blocks_but_not_the_kept_ones() {
        let (a, b) = (Owner::Conversation(1), Owner::Conversation(2));
        let mut r = RamTier::new(1000);
        r.insert_owned([1; 32], block(1, 10), Some(a));
        r.insert_owned([2; 32], block(2, 10), Some(a));
        r.insert_owned([3; 32], block(3, 10), Some(b));
        r.insert([4; 32], block(4, 10));
        r.tag(&[4; 32], a);
        r.insert([1; 32], block(1, 10));
        assert_eq!(
            r.remove_owner(a, |h| *h == [2; 32]),
            2,
            "1 (owner kept) and 4"
        );
        assert!(!r.contains(&[1; 32]) && !r.contains(&[4; 32]));
        assert!(r.contains(&[2; 32]) && r.contains(&[3; 32]));
        assert_eq!(r.bytes(), 20);
    }
}
