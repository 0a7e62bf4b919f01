//! Reference-counted allocation of a pool's physical blocks.

use super::KvError;

/// A physical block index into a layer's pool.
pub type BlockId = u32;

/// Hands out blocks from a fixed pool; a block is free when its reference count is 0.
#[derive(Debug)]
pub struct BlockAllocator {
    refcounts: Vec<u32>,
    /// Free blocks, popped from the end (lowest ids first).
    free: Vec<BlockId>,
    block_size: usize,
}

impl BlockAllocator {
    pub fn new(n_blocks: usize, block_size: usize) -> Self {
        BlockAllocator {
            refcounts: vec![0; n_blocks],
            free: (0..n_blocks as BlockId).rev().collect(),
            block_size,
        }
    }

    pub fn n_blocks(&self) -> usize {
        self.refcounts.len()
    }

    pub fn n_free(&self) -> usize {
        self.free.len()
    }

    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Users of `id` (0 when free or out of range).
    pub fn refcount(&self, id: BlockId) -> u32 {
        self.refcounts.get(id as usize).copied().unwrap_or(0)
    }

    /// A free block with a reference count of 1.
    pub fn allocate(&mut self) -> Result<BlockId, KvError> {
        let id = self.free.pop().ok_or(KvError::Exhausted {
            n_blocks: self.refcounts.len(),
            block_size: self.block_size,
        })?;
        self.refcounts[id as usize] = 1;
        Ok(id)
    }

    /// One more user of an allocated block.
    pub fn retain(&mut self, id: BlockId) -> Result<(), KvError> {
        match self.refcounts.get_mut(id as usize) {
            Some(rc) if *rc > 0 => {
                *rc += 1;
                Ok(())
            }
            _ => Err(KvError::NotAllocated(id)),
        }
    }

    /// One user fewer; the block is free again when none is left (returns true then).
    pub fn release(&mut self, id: BlockId) -> Result<bool, KvError> {
        match self.refcounts.get_mut(id as usize) {
            Some(rc) if *rc > 0 => {
                *rc -= 1;
                if *rc == 0 {
                    self.free.push(id);
                    return Ok(true);
                }
                Ok(false)
            }
            _ => Err(KvError::NotAllocated(id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
