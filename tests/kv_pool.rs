//! The GPU side of the paged KV pool: block tables reach the GPU, and a copy-on-write block
//! copy replays the shared block's K and V bytes exactly (every layer).

use std::sync::Arc;

use hearth::gpu::GpuContext;
use hearth::gpu::ops::KvLayout;
use hearth::kv::{KvError, KvPool};

fn ctx() -> Option<Arc<GpuContext>> {
    match GpuContext::new() {
        Ok(c) => Some(Arc::new(c)),
        Err(e) if std::env::var_os("CI").is_some() => panic!("no GPU adapter and CI is set: {e}"),
        Err(e) => {
            eprintln!("SKIP: no GPU adapter ({e})");
            None
        }
    }
}

#[test]
fn tables_sync_and_copy_on_write_copies_every_layer() {
    let Some(ctx) = ctx() else { return };
    let layout = KvLayout {
        block_size: 4,
        n_kv_head: 2,
        head_dim: 8,
        f16: false,
    };
    let mut pool = KvPool::new(ctx.clone(), layout, 3, 6, 2, 16).unwrap();
    let a = pool.new_sequence().unwrap();
    pool.append(a, 6).unwrap(); // blocks 0, 1 (1 partial)
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
    pool.append(b, 1).unwrap(); // writes into shared block 1: copy to a fresh block
    let copied = pool.table(b).unwrap().blocks()[1];
    assert_ne!(copied, 1);
    let mut enc = ctx.encoder("kv-sync");
    pool.sync(&mut enc);
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
    let table = ctx.read_u32(pool.table_buffer(b).unwrap(), 0, 2).unwrap();
    assert_eq!(table, [0, copied]);
    // Exhaustion and limits are typed errors; freeing both sequences frees every block.
    assert!(matches!(
        pool.append(a, 100),
        Err(KvError::SequenceTooLong { .. })
    ));
    assert!(matches!(
        pool.new_sequence(),
        Err(KvError::NoSequenceSlot { max: 2 })
    ));
    pool.append(a, 10).unwrap(); // 16 tokens: blocks 0, 1, +2
    assert!(matches!(pool.append(b, 9), Err(KvError::Exhausted { .. })));
    pool.free_sequence(a).unwrap();
    pool.free_sequence(b).unwrap();
    assert_eq!(pool.allocator().n_free(), 6);
    assert!(matches!(pool.len(a), Err(KvError::UnknownSequence(_))));
}
