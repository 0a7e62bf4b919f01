//! A sequence's block table: the physical block of each logical block of `block_size`
//! tokens, and the number of tokens written.

use super::{BlockAllocator, BlockId, KvError};

/// "Copy block `src` into block `dst`" (every layer, K and V): the copy-on-write that gives
/// a sequence a private copy of a shared block before it writes into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockCopy {
    pub src: BlockId,
    pub dst: BlockId,
}

#[derive(Debug, Default)]
pub struct BlockTable {
    blocks: Vec<BlockId>,
    len: usize,
}

impl BlockTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// A table over `blocks`, each already retained for it, holding `len` tokens.
    pub(crate) fn from_retained(blocks: Vec<BlockId>, len: usize) -> BlockTable {
        BlockTable { blocks, len }
    }

    /// Tokens in the sequence.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Physical blocks in logical order.
    pub fn blocks(&self) -> &[BlockId] {
        &self.blocks
    }

    /// Makes room for `n` more tokens (positions len..len+n), allocating blocks as needed.
    /// When the first of those positions falls in a block that other sequences share (or
    /// that the prefix cache holds under its hash), the block is replaced by a private copy, returned for the caller to perform on the GPU
    /// before the tokens are written. On error nothing changes.
    pub fn append(
        &mut self,
        alloc: &mut BlockAllocator,
        n: usize,
    ) -> Result<Option<BlockCopy>, KvError> {
        let bs = alloc.block_size();
        let new_len = self.len + n;
        let needed = new_len.div_ceil(bs);
        let partial = !self.len.is_multiple_of(bs);
        let last = self.len / bs;
        // A block that others read, or whose content the cache names by hash, is never
        // written in place.
        let cow = n > 0
            && partial
            && self
                .blocks
                .get(last)
                .is_some_and(|&b| alloc.refcount(b) > 1 || alloc.hash_of(b).is_some());
        let fresh = needed.saturating_sub(self.blocks.len()) + usize::from(cow);
        if fresh > alloc.n_free() {
            return Err(KvError::Exhausted {
                n_blocks: alloc.n_blocks(),
                block_size: bs,
            });
        }
        let mut copy = None;
        if cow {
            let src = self.blocks[last];
            let dst = alloc.allocate()?;
            alloc.release(src)?;
            self.blocks[last] = dst;
            copy = Some(BlockCopy { src, dst });
        }
        while self.blocks.len() < needed {
            self.blocks.push(alloc.allocate()?);
        }
        self.len = new_len;
        Ok(copy)
    }

    /// Keeps the first `len` tokens (no-op when `len >= self.len()`); whole blocks past them
    /// are released.
    pub fn truncate(&mut self, alloc: &mut BlockAllocator, len: usize) -> Result<(), KvError> {
        if len >= self.len {
            return Ok(());
        }
        let keep = len.div_ceil(alloc.block_size());
        for b in self.blocks.drain(keep..) {
            alloc.release(b)?;
        }
        self.len = len;
        Ok(())
    }

    /// Releases every block.
    pub fn clear(&mut self, alloc: &mut BlockAllocator) -> Result<(), KvError> {
        self.truncate(alloc, 0)
    }

    /// A new table that shares this one's blocks for its first `n` tokens (at most len()).
    /// A partial last block is shared too: whichever sequence writes into it first gets a
    /// copy (see [`BlockTable::append`]).
    pub fn share_prefix(
        &self,
        alloc: &mut BlockAllocator,
        n: usize,
    ) -> Result<BlockTable, KvError> {
        let n = n.min(self.len);
        let blocks = self.blocks[..n.div_ceil(alloc.block_size())].to_vec();
        for &b in &blocks {
            alloc.retain(b)?;
        }
        Ok(BlockTable { blocks, len: n })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_free(a: &BlockAllocator) -> bool {
        a.n_free() == a.n_blocks() && (0..a.n_blocks() as u32).all(|b| a.refcount(b) == 0)
    }

    #[test]
    fn append_allocates_whole_blocks_and_clear_frees_them() {
        let mut a = BlockAllocator::new(8, 4);
        let mut t = BlockTable::new();
        assert_eq!(t.append(&mut a, 1), Ok(None));
        assert_eq!(t.blocks(), [0]);
        t.append(&mut a, 3).unwrap();
        assert_eq!(t.blocks().len(), 1, "4 tokens fill one block");
        t.append(&mut a, 6).unwrap();
        assert_eq!((t.len(), t.blocks().len()), (10, 3));
        assert_eq!(a.n_free(), 5);
        t.clear(&mut a).unwrap();
        assert!(t.is_empty() && t.blocks().is_empty());
        assert!(all_free(&a), "no leak");
    }

    #[test]
    fn truncate_frees_the_blocks_past_the_kept_prefix() {
        let mut a = BlockAllocator::new(8, 4);
        let mut t = BlockTable::new();
        t.append(&mut a, 13).unwrap();
        assert_eq!(a.n_free(), 4);
        t.truncate(&mut a, 5).unwrap();
        assert_eq!((t.len(), t.blocks().len(), a.n_free()), (5, 2, 6));
        t.truncate(&mut a, 9).unwrap(); // beyond len: no-op
        assert_eq!(t.len(), 5);
        t.truncate(&mut a, 4).unwrap();
        assert_eq!((t.blocks().len(), a.n_free()), (1, 7));
        t.append(&mut a, 1).unwrap();
        assert_eq!(t.blocks().len(), 2);
        t.clear(&mut a).unwrap();
        assert!(all_free(&a));
    }

    #[test]
    fn exhaustion_is_a_typed_error_and_changes_nothing() {
        let mut a = BlockAllocator::new(2, 4);
        let mut t = BlockTable::new();
        t.append(&mut a, 5).unwrap();
        let err = t.append(&mut a, 4).unwrap_err();
        assert_eq!(
            err,
            KvError::Exhausted {
                n_blocks: 2,
                block_size: 4
            }
        );
        assert_eq!((t.len(), t.blocks().len()), (5, 2));
        t.append(&mut a, 3).unwrap(); // still fits the last block
        assert_eq!(t.len(), 8);
    }

    #[test]
    fn shared_prefix_blocks_are_refcounted_and_copied_on_write() {
        let mut a = BlockAllocator::new(8, 4);
        let mut base = BlockTable::new();
        base.append(&mut a, 10).unwrap(); // blocks 0, 1, 2 (2 is partial)
        let mut fork = base.share_prefix(&mut a, 10).unwrap();
        assert_eq!(fork.blocks(), base.blocks());
        assert!(base.blocks().iter().all(|&b| a.refcount(b) == 2));
        // The fork writes into the shared partial block: it gets a copy first.
        let copy = fork.append(&mut a, 1).unwrap();
        assert_eq!(copy, Some(BlockCopy { src: 2, dst: 3 }));
        assert_eq!(fork.blocks(), [0, 1, 3]);
        assert_eq!((a.refcount(2), a.refcount(3)), (1, 1));
        // The base now owns block 2 alone and writes in place.
        assert_eq!(base.append(&mut a, 1), Ok(None));
        // A fork on a block boundary shares only full blocks: appends need no copy.
        let mut whole = base.share_prefix(&mut a, 8).unwrap();
        assert_eq!(whole.blocks(), [0, 1]);
        assert_eq!(a.refcount(0), 3);
        assert_eq!(whole.append(&mut a, 2), Ok(None));
        assert_eq!(whole.blocks().len(), 3);
        // Truncating into a shared block, then appending, copies.
        let mut t = base.share_prefix(&mut a, 11).unwrap();
        t.truncate(&mut a, 6).unwrap();
        assert_eq!(
            t.append(&mut a, 1).unwrap().map(|c| c.src),
            Some(base.blocks()[1])
        );
        for mut s in [base, fork, whole, t] {
            s.clear(&mut a).unwrap();
        }
        assert!(all_free(&a), "no leak after every sharer let go");
    }

    #[test]
    fn random_workload_never_leaks() {
        let mut a = BlockAllocator::new(32, 4);
        let mut seqs: Vec<BlockTable> = Vec::new();
        let mut state = 12345u64;
        let mut rnd = |n: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize % n
        };
        for _ in 0..2000 {
            match rnd(5) {
                0 => seqs.push(BlockTable::new()),
                1 if !seqs.is_empty() => {
                    let i = rnd(seqs.len());
                    let _ = seqs[i].append(&mut a, rnd(9));
                }
                2 if !seqs.is_empty() => {
                    let i = rnd(seqs.len());
                    let n = rnd(seqs[i].len() + 1);
                    seqs[i].truncate(&mut a, n).unwrap();
                }
                3 if !seqs.is_empty() => {
                    let i = rnd(seqs.len());
                    let n = rnd(seqs[i].len() + 1);
                    if let Ok(f) = seqs[i].share_prefix(&mut a, n) {
                        seqs.push(f);
                    }
                }
                4 if !seqs.is_empty() => {
                    let i = rnd(seqs.len());
                    seqs.swap_remove(i).clear(&mut a).unwrap();
                }
                _ => {}
            }
            // Every block's count equals the number of tables that hold it.
            for b in 0..32u32 {
                let users = seqs
                    .iter()
                    .map(|s| s.blocks().iter().filter(|&&x| x == b).count())
                    .sum::<usize>();
                assert_eq!(a.refcount(b) as usize, users, "block {b}");
            }
        }
        for mut s in seqs {
            s.clear(&mut a).unwrap();
        }
        assert!(all_free(&a));
    }
}
