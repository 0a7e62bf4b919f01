//! The GPU side of the paged KV pool: block tables reach the GPU, and a copy-on-write block
//! copy replays the shared block's K and V bytes exactly (every layer).

mod common;

use hearth::gpu::ops::KvLayout;
use hearth::kv::{KvError, KvPool};

fn toks(r: std::ops::Range<u32>) -> Vec<u32> {
    r.collect()
}

#[test]
fn tables_sync_and_copy_on_write_copies_every_layer() {
    let Some(ctx) = common::gpu() else { return };
    let layout = KvLayout {
        block_size: 4,
        n_kv_head: 2,
        head_dim: 8,
        f16: false,
    };
    let mut pool = KvPool::new(ctx.clone(), layout, 3, 6, 2, 16).unwrap();
    let a = pool.new_sequence().unwrap();
    pool.append(a, &toks(0..6)).unwrap(); // blocks 0, 1 (1 partial)
    let block_bytes = layout.pool_bytes(1);
    let words = (block_bytes / 4) as usize;
    // Fill block 1 of every layer's K and V with a distinct pattern.
    for l in 0..3 {
        let (k, v) = pool.layer(l).unwrap();
        for (i, buf) in [k, v].into_iter().enumerate() {
            let pattern: Vec<u32> = (0..words as u32)
                .map(|w| w + 1000 * (l * 2 + i) as u32)
                .collect();
            ctx.write(buf, block_bytes, bytemuck::cast_slice(&pattern));
        }
    }
    let b = pool.fork(a, 6).unwrap();
    assert_eq!(pool.table(b).unwrap().blocks(), [0, 1]);
    assert_eq!(pool.allocator().refcount(1), 2);
    pool.append(b, &[7]).unwrap(); // writes into shared block 1: copy to a fresh block
    let copied = pool.table(b).unwrap().blocks()[1];
    assert_ne!(copied, 1);
    let mut enc = ctx.encoder("kv-sync");
    pool.sync(&mut enc, b).unwrap();
    ctx.submit([enc.finish()]);
    for l in 0..3 {
        let (k, v) = pool.layer(l).unwrap();
        for buf in [k, v] {
            let src = ctx.read_u32(buf, words as u64, words as u64).unwrap();
            let dst = ctx
                .read_u32(buf, copied as u64 * words as u64, words as u64)
                .unwrap();
            assert_eq!(src, dst, "layer {l}");
        }
    }
    let table = ctx.read_u32(pool.table_buffer(), 0, 2).unwrap();
    assert_eq!(table, [0, copied]);
    // Exhaustion and limits are typed errors; freeing both sequences frees every block.
    assert!(matches!(
        pool.append(a, &toks(0..100)),
        Err(KvError::SequenceTooLong { .. })
    ));
    assert!(matches!(
        pool.new_sequence(),
        Err(KvError::NoSequenceSlot { max: 2 })
    ));
    pool.append(a, &toks(6..16)).unwrap(); // 16 tokens: blocks 0, 1, +2
    assert!(matches!(
        pool.append(b, &toks(0..9)),
        Err(KvError::Exhausted { .. })
    ));
    pool.free_sequence(a).unwrap();
    pool.free_sequence(b).unwrap();
    assert_eq!(pool.allocator().n_free(), 6);
    assert!(matches!(pool.len(a), Err(KvError::UnknownSequence(_))));
}

/// The prefix index: full blocks registered after their step are found by content from any
/// other sequence; a partial block never is; a hit shares the physical blocks; a write into
/// a shared or registered block copies it first; freed sequences leave their blocks cached
/// until an allocation needs them.
#[test]
fn full_blocks_are_found_by_content_and_shared() {
    let Some(ctx) = common::gpu() else { return };
    let layout = KvLayout {
        block_size: 4,
        n_kv_head: 1,
        head_dim: 8,
        f16: true,
    };
    let mut pool = KvPool::new(ctx.clone(), layout, 2, 8, 4, 32).unwrap();
    pool.set_root([1; 32]);
    let a = pool.new_sequence().unwrap();
    pool.append(a, &toks(0..10)).unwrap();
    assert_eq!(
        pool.cached_prefix(&toks(0..10)),
        0,
        "nothing registered before commit"
    );
    assert_eq!(
        pool.commit(a).unwrap(),
        2,
        "two full blocks; the third is open"
    );
    assert_eq!(pool.cached_prefix(&toks(0..10)), 8);
    assert_eq!(pool.cached_prefix(&toks(0..7)), 4);
    let mut other = toks(0..5);
    other.push(99);
    assert_eq!(pool.cached_prefix(&other), 4, "the second block differs");

    let (b, reused) = pool.acquire(&toks(0..12)).unwrap();
    assert_eq!(reused, 8);
    assert_eq!(pool.tokens(b).unwrap(), toks(0..8).as_slice());
    let (ta, tb) = (pool.table(a).unwrap(), pool.table(b).unwrap());
    assert_eq!(ta.blocks()[..2], tb.blocks()[..2], "same physical blocks");
    assert_eq!(pool.allocator().refcount(ta.blocks()[0]), 2);
    // b truncates into its second (registered) block and writes: a private copy.
    pool.truncate(b, 6).unwrap();
    pool.append(b, &[50, 51]).unwrap();
    let tb = pool.table(b).unwrap().blocks().to_vec();
    assert_ne!(tb[1], pool.table(a).unwrap().blocks()[1]);
    pool.commit(b).unwrap();
    let mut fork = toks(0..6);
    fork.extend([50, 51]);
    assert_eq!(
        pool.cached_prefix(&fork),
        8,
        "b's own second block, registered"
    );
    assert_eq!(
        pool.cached_prefix(&toks(0..8)),
        8,
        "a's block is still there"
    );

    // Freed sequences: their registered blocks stay cached (evictable), others are free.
    pool.free_sequence(a).unwrap();
    pool.free_sequence(b).unwrap();
    let alloc = pool.allocator();
    assert_eq!(alloc.n_free(), 8);
    assert_eq!(alloc.n_cached(), 3);
    assert_eq!(pool.cached_prefix(&toks(0..10)), 8);
    // Pinned blocks survive a pool-filling allocation; the rest are evicted.
    assert_eq!(pool.pin_prefix(&toks(0..8)).unwrap(), 8);
    let c = pool.new_sequence().unwrap();
    pool.append(c, &toks(100..124)).unwrap(); // 6 blocks: every free and cached one
    assert_eq!(pool.cached_prefix(&toks(0..8)), 8, "pinned");
    assert_eq!(
        pool.cached_prefix(&fork),
        4,
        "b's private block was evicted"
    );
    assert_eq!(pool.take_evicted().len(), 1);
    assert!(matches!(
        pool.append(c, &toks(0..1)),
        Err(KvError::Exhausted { .. })
    ));
    assert_eq!(pool.unpin_prefix(&toks(0..8)).unwrap(), 8);
    pool.append(c, &toks(0..1)).unwrap();
    // A new root (another model or KV type) forgets every cached block.
    pool.free_sequence(c).unwrap();
    pool.set_root([2; 32]);
    assert_eq!(pool.cached_prefix(&toks(0..8)), 0);
    assert_eq!(pool.allocator().n_cached(), 0);
}
