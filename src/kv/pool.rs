//! The GPU side of the paged KV cache: per-layer K and V pool buffers, the host-side
//! allocator (with the content-addressed GPU tier of the prefix cache) and the sequences that
//! use them, and the one block-table buffer the kernels bind.
//!
//! A sequence keeps its tokens and the chain hashes of its full blocks. After a step has
//! written a block's K/V, [`KvPool::commit`] registers the block under its hash, so any later
//! sequence with the same prefix — another conversation, a request, a document's reader —
//! finds it ([`KvPool::acquire`]) and shares it instead of computing it. Step plans bind a
//! single block-table buffer that [`KvPool::sync`] fills with the running sequence's table, so
//! a plan serves every sequence and nothing is created per sequence.

use std::sync::Arc;

use crate::gpu::ops::KvLayout;
use crate::gpu::{GpuBuffer, GpuContext};

use super::hash::{BlockHash, block_hashes, chain_hash};
use super::transfer::FreshBlock;
use super::{BlockAllocator, BlockCopy, BlockTable, KvError, Owner};

/// A sequence slot of a [`KvPool`].
pub type SeqId = usize;

#[derive(Default)]
struct Sequence {
    table: BlockTable,
    tokens: Vec<u32>,
    /// Chain hashes of the full blocks: `hashes[i]` names block i.
    hashes: Vec<BlockHash>,
    /// Full blocks registered in (or found in) the prefix index.
    sealed: usize,
    /// Who the sequence's blocks are kept for.
    owner: Option<Owner>,
    live: bool,
}

/// Every layer's K and V blocks plus the sequences that use them.
///
/// A step: [`KvPool::append`] the step's tokens to the sequence, [`KvPool::sync`] into the
/// step's encoder (replays copy-on-write block copies, points the block-table buffer at the
/// sequence) before the compute pass that writes and reads the cache, and after the step has
/// been submitted [`KvPool::commit`] the sequence.
pub struct KvPool {
    ctx: Arc<GpuContext>,
    layout: KvLayout,
    layers: Vec<(GpuBuffer, GpuBuffer)>,
    alloc: BlockAllocator,
    seqs: Vec<Sequence>,
    max_blocks_per_seq: usize,
    pending_copies: Vec<BlockCopy>,
    /// One block's bytes: a copy within one buffer goes through it (WebGPU forbids copies
    /// whose source and destination are the same buffer).
    block_tmp: GpuBuffer,
    /// `h_0` of every chain: the model fingerprint's root.
    root: BlockHash,
    /// The block tables the kernels bind: one row of `max_blocks_per_seq` u32 per sequence
    /// slot, so a batched step can bind every sequence it runs (row i for its i-th); steps of
    /// one sequence use row 0.
    step_table: GpuBuffer,
    /// The sequence whose current table `step_table` holds (None: stale).
    step_table_of: Option<SeqId>,
    /// Blocks computed and registered here since the last `take_fresh` (for the lower tiers).
    fresh: Vec<FreshBlock>,
}

impl KvPool {
    /// `n_blocks` blocks per layer pool; `max_seqs` sequence slots, each at most
    /// `max_tokens_per_seq` tokens. Each layer's K (and V) pool is one buffer, which must fit
    /// one storage binding. Chains start at `root` (see [`KvPool::set_root`]).
    pub fn new(
        ctx: Arc<GpuContext>,
        layout: KvLayout,
        n_layers: usize,
        n_blocks: usize,
        max_seqs: usize,
        max_tokens_per_seq: usize,
    ) -> Result<Self, KvError> {
        if layout.block_size == 0 || n_blocks == 0 || max_seqs == 0 || n_blocks > u32::MAX as usize
        {
            return Err(KvError::Layout(format!(
                "{layout:?}, {n_blocks} blocks, {max_seqs} sequences: all must be > 0"
            )));
        }
        let bytes = layout.pool_bytes(n_blocks);
        let limit = ctx.max_binding_bytes();
        if bytes > limit {
            return Err(KvError::PoolTooLarge { bytes, limit });
        }
        let layers = (0..n_layers)
            .map(|l| {
                Ok((
                    ctx.zeroed(&format!("k-pool.{l}"), bytes)?,
                    ctx.zeroed(&format!("v-pool.{l}"), bytes)?,
                ))
            })
            .collect::<Result<Vec<_>, KvError>>()?;
        let max_blocks_per_seq = max_tokens_per_seq.div_ceil(layout.block_size).max(1);
        let step_table = ctx.zeroed("block-table", (max_blocks_per_seq * max_seqs) as u64 * 4)?;
        let block_tmp = ctx.zeroed("kv-block-copy", layout.pool_bytes(1))?;
        Ok(KvPool {
            block_tmp,
            alloc: BlockAllocator::new(n_blocks, layout.block_size),
            ctx,
            layout,
            layers,
            seqs: (0..max_seqs).map(|_| Sequence::default()).collect(),
            max_blocks_per_seq,
            pending_copies: Vec::new(),
            root: [0; 32],
            step_table,
            step_table_of: None,
            fresh: Vec::new(),
        })
    }

    /// Sets `h_0` (the model fingerprint's root). Blocks cached under another root are
    /// dropped; sequences in use keep theirs but are not registered under the new root.
    pub fn set_root(&mut self, root: BlockHash) {
        if root != self.root {
            self.root = root;
            self.alloc.drop_cached();
            self.fresh.clear();
        }
    }

    pub fn root(&self) -> &BlockHash {
        &self.root
    }

    pub fn layout(&self) -> &KvLayout {
        &self.layout
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    pub fn allocator(&self) -> &BlockAllocator {
        &self.alloc
    }

    /// The K and V pool buffers of `layer`.
    pub fn layer(&self, layer: usize) -> Option<(&wgpu::Buffer, &wgpu::Buffer)> {
        self.layers.get(layer).map(|(k, v)| (&k.buffer, &v.buffer))
    }

    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// Most tokens one sequence may hold.
    pub fn max_tokens_per_seq(&self) -> usize {
        self.max_blocks_per_seq * self.layout.block_size
    }

    fn seq(&self, s: SeqId) -> Result<&Sequence, KvError> {
        self.seqs
            .get(s)
            .filter(|q| q.live)
            .ok_or(KvError::UnknownSequence(s))
    }

    fn seq_mut(&mut self, s: SeqId) -> Result<&mut Sequence, KvError> {
        if self.step_table_of == Some(s) {
            self.step_table_of = None;
        }
        self.seqs
            .get_mut(s)
            .filter(|q| q.live)
            .ok_or(KvError::UnknownSequence(s))
    }

    /// The block-table buffer the kernels bind (filled by [`KvPool::sync`]).
    pub fn table_buffer(&self) -> &wgpu::Buffer {
        &self.step_table.buffer
    }

    /// Entries per row of [`KvPool::table_buffer`] (a batched step's sequence i reads row i).
    pub fn table_stride(&self) -> usize {
        self.max_blocks_per_seq
    }

    /// Most rows [`KvPool::sync_batch`] can fill (the sequence slots).
    pub fn max_table_rows(&self) -> usize {
        self.seqs.len()
    }

    /// The host copy of sequence `s`'s table.
    pub fn table(&self, s: SeqId) -> Result<&BlockTable, KvError> {
        Ok(&self.seq(s)?.table)
    }

    /// Tokens in sequence `s`.
    pub fn len(&self, s: SeqId) -> Result<usize, KvError> {
        Ok(self.seq(s)?.table.len())
    }

    /// The token ids sequence `s` holds.
    pub fn tokens(&self, s: SeqId) -> Result<&[u32], KvError> {
        Ok(&self.seq(s)?.tokens)
    }

    /// Live sequences.
    pub fn n_sequences(&self) -> usize {
        self.seqs.iter().filter(|q| q.live).count()
    }

    /// An empty sequence in a free slot.
    pub fn new_sequence(&mut self) -> Result<SeqId, KvError> {
        let max = self.seqs.len();
        let id = self
            .seqs
            .iter()
            .position(|q| !q.live)
            .ok_or(KvError::NoSequenceSlot { max })?;
        self.seqs[id] = Sequence {
            live: true,
            ..Sequence::default()
        };
        Ok(id)
    }

    /// Tokens of the longest prefix of `tokens` whose full blocks the GPU tier holds.
    pub fn cached_prefix(&self, tokens: &[u32]) -> usize {
        self.cached_blocks(&self.hashes_of(tokens)).len() * self.layout.block_size
    }

    /// The chain hashes of the whole blocks of `tokens` under this pool's root.
    pub fn hashes_of(&self, tokens: &[u32]) -> Vec<BlockHash> {
        block_hashes(&self.root, tokens, self.layout.block_size)
    }

    /// The GPU blocks (with their hashes) of the longest run of `hashes` the index holds.
    fn cached_blocks(&self, hashes: &[BlockHash]) -> Vec<(u32, BlockHash)> {
        hashes
            .iter()
            .map_while(|h| self.alloc.lookup(h).map(|b| (b, *h)))
            .collect()
    }

    /// A new sequence holding the longest prefix of `tokens` that the cache has, sharing its
    /// blocks (whoever computed them). Returns the sequence and how many tokens it holds
    /// (whole blocks; the caller runs the rest).
    pub fn acquire(&mut self, tokens: &[u32]) -> Result<(SeqId, usize), KvError> {
        let hashes = self.hashes_of(tokens);
        self.acquire_hashed(tokens, &hashes)
    }

    /// [`KvPool::acquire`] with the blocks' chain hashes already computed
    /// ([`KvPool::hashes_of`]).
    pub fn acquire_hashed(
        &mut self,
        tokens: &[u32],
        hashes: &[BlockHash],
    ) -> Result<(SeqId, usize), KvError> {
        let found = self.cached_blocks(hashes);
        let found = &found[..found.len().min(self.max_blocks_per_seq)];
        let id = self.new_sequence()?;
        for &(b, _) in found {
            self.alloc.retain(b)?;
        }
        let len = found.len() * self.layout.block_size;
        self.seqs[id] = Sequence {
            table: BlockTable::from_retained(found.iter().map(|&(b, _)| b).collect(), len),
            tokens: tokens[..len].to_vec(),
            hashes: found.iter().map(|&(_, h)| h).collect(),
            sealed: found.len(),
            owner: None,
            live: true,
        };
        Ok((id, len))
    }

    /// A new sequence sharing the first `n` tokens of `s` (its blocks' counts go up).
    pub fn fork(&mut self, s: SeqId, n: usize) -> Result<SeqId, KvError> {
        self.seq(s)?;
        let id = self.new_sequence()?;
        match self.seqs[s].table.share_prefix(&mut self.alloc, n) {
            Ok(t) => {
                let n = t.len();
                let full = n / self.layout.block_size;
                let src = &self.seqs[s];
                let full = full.min(src.hashes.len());
                let (tokens, hashes) = (src.tokens[..n].to_vec(), src.hashes[..full].to_vec());
                let sealed = src.sealed.min(full);
                self.seqs[id] = Sequence {
                    table: t,
                    tokens,
                    hashes,
                    sealed,
                    owner: src.owner,
                    live: true,
                };
                Ok(id)
            }
            Err(e) => {
                self.seqs[id].live = false;
                Err(e)
            }
        }
    }

    /// Makes room for `tokens` at the end of `s` (see [`BlockTable::append`]); the step that
    /// follows writes their K/V.
    pub fn append(&mut self, s: SeqId, tokens: &[u32]) -> Result<(), KvError> {
        let max = self.max_tokens_per_seq();
        let alloc = &mut self.alloc;
        if self.step_table_of == Some(s) {
            self.step_table_of = None;
        }
        let q = self
            .seqs
            .get_mut(s)
            .filter(|q| q.live)
            .ok_or(KvError::UnknownSequence(s))?;
        let wanted = q.table.len() + tokens.len();
        if wanted > max {
            return Err(KvError::SequenceTooLong { wanted, max });
        }
        let copy = q.table.append(alloc, tokens.len())?;
        q.tokens.extend_from_slice(tokens);
        self.pending_copies.extend(copy);
        Ok(())
    }

    /// Registers the full blocks of `s` written since the last commit under their chain
    /// hashes (call once their K/V are computed). Returns how many were registered (a block
    /// whose content another block already holds stays private).
    pub fn commit(&mut self, s: SeqId) -> Result<usize, KvError> {
        let bs = self.layout.block_size;
        let root = self.root;
        let q = self
            .seqs
            .get_mut(s)
            .filter(|q| q.live)
            .ok_or(KvError::UnknownSequence(s))?;
        let full = q.tokens.len() / bs;
        let mut registered = 0;
        for i in q.hashes.len()..full {
            let parent = if i == 0 { root } else { q.hashes[i - 1] };
            q.hashes
                .push(chain_hash(&parent, &q.tokens[i * bs..(i + 1) * bs]));
        }
        for i in q.sealed..full {
            let b = q.table.blocks()[i];
            if self.alloc.register(b, q.hashes[i])? {
                registered += 1;
                self.fresh.push(FreshBlock {
                    id: b,
                    hash: q.hashes[i],
                    parent: if i == 0 { root } else { q.hashes[i - 1] },
                    tokens: q.tokens[i * bs..(i + 1) * bs].to_vec(),
                    owner: q.owner,
                });
            }
            if let Some(o) = q.owner {
                self.alloc.add_owner(b, o);
            }
        }
        q.sealed = full;
        Ok(registered)
    }

    /// Registers the last block of `s`, just restored from a lower tier, under `hash`.
    pub(super) fn seal_restored(&mut self, s: SeqId, hash: BlockHash) -> Result<(), KvError> {
        let q = self
            .seqs
            .get_mut(s)
            .filter(|q| q.live)
            .ok_or(KvError::UnknownSequence(s))?;
        let i = q.hashes.len();
        let b = *q.table.blocks().get(i).ok_or(KvError::Layout(
            "no block to seal at the end of the sequence".into(),
        ))?;
        q.hashes.push(hash);
        q.sealed = q.hashes.len();
        self.alloc.register(b, hash)?;
        if let Some(o) = q.owner {
            self.alloc.add_owner(b, o);
        }
        Ok(())
    }

    /// The blocks computed and registered since the last call that still hold their content
    /// (a block evicted meanwhile is gone from the GPU and is skipped).
    pub fn take_fresh(&mut self) -> Vec<FreshBlock> {
        let fresh = std::mem::take(&mut self.fresh);
        fresh
            .into_iter()
            .filter(|f| self.alloc.hash_of(f.id) == Some(&f.hash))
            .collect()
    }

    /// The hashes of the full blocks of `s` (a chain from the root).
    pub fn hashes(&self, s: SeqId) -> Result<&[BlockHash], KvError> {
        Ok(&self.seq(s)?.hashes)
    }

    /// Keeps the first `len` tokens of `s`, freeing the blocks past them.
    pub fn truncate(&mut self, s: SeqId, len: usize) -> Result<(), KvError> {
        let bs = self.layout.block_size;
        let alloc = &mut self.alloc;
        if self.step_table_of == Some(s) {
            self.step_table_of = None;
        }
        let q = self
            .seqs
            .get_mut(s)
            .filter(|q| q.live)
            .ok_or(KvError::UnknownSequence(s))?;
        q.table.truncate(alloc, len)?;
        let len = q.table.len();
        q.tokens.truncate(len);
        q.hashes.truncate(len / bs);
        q.sealed = q.sealed.min(len / bs);
        Ok(())
    }

    /// Frees sequence `s` and its slot (its registered blocks stay cached).
    pub fn free_sequence(&mut self, s: SeqId) -> Result<(), KvError> {
        let q = self.seq_mut(s)?;
        let mut table = std::mem::take(&mut q.table);
        *q = Sequence::default();
        table.clear(&mut self.alloc)
    }

    /// Makes `owner` the owner of `s`'s blocks, those it holds and those it registers later.
    pub fn set_owner(&mut self, s: SeqId, owner: Owner) -> Result<(), KvError> {
        let q = self
            .seqs
            .get_mut(s)
            .filter(|q| q.live)
            .ok_or(KvError::UnknownSequence(s))?;
        q.owner = Some(owner);
        for &b in q.table.blocks() {
            self.alloc.add_owner(b, owner);
        }
        Ok(())
    }

    /// Drops `owner` from every block; cached blocks kept for nobody else are freed. Returns
    /// the blocks freed.
    pub fn remove_owner(&mut self, owner: Owner) -> usize {
        for q in self.seqs.iter_mut().filter(|q| q.owner == Some(owner)) {
            q.owner = None;
        }
        self.alloc.remove_owner(owner)
    }

    /// The hashed blocks `owner` shares with other owners, and those others (before a
    /// per-owner clear: the lower tiers keep these for them).
    pub fn shared_by(&self, owner: Owner) -> Vec<(BlockHash, Vec<Owner>)> {
        (0..self.alloc.n_blocks() as u32)
            .filter_map(|b| {
                let owners = self.alloc.owners(b);
                let h = self.alloc.hash_of(b)?;
                (owners.contains(&owner) && owners.len() > 1).then(|| {
                    let others = owners.iter().copied().filter(|o| *o != owner).collect();
                    (*h, others)
                })
            })
            .collect()
    }

    /// Adds `owner` to the cached blocks of `tokens`' longest cached prefix (a document's
    /// prefix found already cached stays the document's). Returns the blocks.
    pub fn own_prefix(&mut self, tokens: &[u32], owner: Owner) -> usize {
        let found = self.cached_blocks(&self.hashes_of(tokens));
        for &(b, _) in &found {
            self.alloc.add_owner(b, owner);
        }
        found.len()
    }

    /// Whether the GPU tier holds the block named `h`.
    pub fn holds(&self, h: &BlockHash) -> bool {
        self.alloc.lookup(h).is_some()
    }

    /// Pins the cached blocks of the longest cached prefix of `tokens` (a document, a system
    /// prompt): they are never evicted until unpinned. Returns the tokens pinned.
    pub fn pin_prefix(&mut self, tokens: &[u32]) -> Result<usize, KvError> {
        let found = self.cached_blocks(&self.hashes_of(tokens));
        for &(b, _) in &found {
            self.alloc.pin(b)?;
        }
        Ok(found.len() * self.layout.block_size)
    }

    /// Undoes [`KvPool::pin_prefix`] for the blocks of `tokens` still cached and pinned.
    pub fn unpin_prefix(&mut self, tokens: &[u32]) -> Result<usize, KvError> {
        let found = self.cached_blocks(&self.hashes_of(tokens));
        let mut n = 0;
        for &(b, _) in &found {
            if self.alloc.is_pinned(b) {
                self.alloc.unpin(b)?;
                n += 1;
            }
        }
        Ok(n * self.layout.block_size)
    }

    /// Forgets every cached block not in use (a cleared cache).
    pub fn drop_cached(&mut self) -> usize {
        self.alloc.drop_cached()
    }

    /// Blocks evicted from the GPU tier since the last call, with their hashes.
    pub fn take_evicted(&mut self) -> Vec<(u32, BlockHash)> {
        self.alloc.take_evicted()
    }

    /// Records what the GPU must see before a step of sequence `s` runs: block copies go into
    /// `enc` (ahead of the compute pass); the block-table buffer is pointed at `s` through
    /// the queue (applied at the next submit, before `enc`'s commands).
    pub fn sync(&mut self, enc: &mut wgpu::CommandEncoder, s: SeqId) -> Result<(), KvError> {
        self.seq(s)?;
        self.replay_copies(enc);
        if self.step_table_of != Some(s) {
            self.write_row(0, s)?;
            self.step_table_of = Some(s);
        }
        Ok(())
    }

    /// [`KvPool::sync`] for a step that runs several sequences at once: row i of the
    /// block-table buffer gets `seqs[i]`'s table.
    pub fn sync_batch(
        &mut self,
        enc: &mut wgpu::CommandEncoder,
        seqs: &[SeqId],
    ) -> Result<(), KvError> {
        if seqs.len() > self.seqs.len() {
            return Err(KvError::Layout(format!(
                "a step of {} sequences, over the {} table rows",
                seqs.len(),
                self.seqs.len()
            )));
        }
        for &s in seqs {
            self.seq(s)?;
        }
        self.replay_copies(enc);
        for (row, &s) in seqs.iter().enumerate() {
            if row > 0 || self.step_table_of != Some(s) {
                self.write_row(row, s)?;
            }
        }
        self.step_table_of = seqs.first().copied();
        Ok(())
    }

    fn write_row(&self, row: usize, s: SeqId) -> Result<(), KvError> {
        let blocks = self.seq(s)?.table.blocks();
        if !blocks.is_empty() {
            let at = (row * self.max_blocks_per_seq * 4) as u64;
            self.ctx
                .write(&self.step_table.buffer, at, bytemuck::cast_slice(blocks));
        }
        Ok(())
    }

    /// Block copies (copy on write) recorded into `enc`, ahead of the step's compute pass.
    fn replay_copies(&mut self, enc: &mut wgpu::CommandEncoder) {
        let block_bytes = self.layout.pool_bytes(1);
        for c in self.pending_copies.drain(..) {
            for (k, v) in &self.layers {
                for pool in [&k.buffer, &v.buffer] {
                    let tmp = &self.block_tmp.buffer;
                    enc.copy_buffer_to_buffer(
                        pool,
                        c.src as u64 * block_bytes,
                        tmp,
                        0,
                        block_bytes,
                    );
                    enc.copy_buffer_to_buffer(
                        tmp,
                        0,
                        pool,
                        c.dst as u64 * block_bytes,
                        block_bytes,
                    );
                }
            }
        }
    }
}
