//! Paged KV write and split-K attention against plain-Rust causal attention (f64), for f32
//! and f16 pools, grouped-query heads, decode (one query) and prefill (many queries),
//! sequences longer than one split, and block tables that are not in order.

mod common;

use hearth::gpu::GpuContext;
use hearth::gpu::ops::{self, KvLayout};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// |gpu - cpu| ≤ ATTN_TOL with values in [-1, 1]: the oracle reads the same stored (f32 or
/// f16-rounded) K/V in f64, so the error is f32 softmax and accumulation only.
const ATTN_TOL: f32 = 1e-5;

fn ctx() -> Option<GpuContext> {
    match GpuContext::new() {
        Ok(c) => Some(c),
        Err(e) if std::env::var_os("CI").is_some() => panic!("no GPU adapter and CI is set: {e}"),
        Err(e) => {
            eprintln!("SKIP: no GPU adapter ({e})");
            None
        }
    }
}

struct Case {
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    block_size: usize,
    /// Tokens already in the cache before this step.
    past: usize,
    /// Queries (= new tokens) of this step.
    n_q: usize,
    f16: bool,
    /// The tiled prefill kernel (attention_tiled.wgsl) instead of split-K.
    tiled: bool,
    /// Keys per split of the tiled kernel; None: what the adapter needs
    /// (`ops::prefill_split_keys`).
    split_keys: Option<usize>,
}

fn round_f16(v: f32) -> f32 {
    half::f16::from_f32(v).to_f32()
}

fn run_case(ctx: &GpuContext, c: &Case, seed: u64) {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let total = c.past + c.n_q;
    let row = c.n_kv_head * c.head_dim;
    let mut rand_vec =
        |n: usize| -> Vec<f32> { (0..n).map(|_| r.random_range(-1.0f32..1.0)).collect() };
    let keys = rand_vec(total * row);
    let vals = rand_vec(total * row);
    let q = rand_vec(c.n_q * c.n_head * c.head_dim);
    let n_blocks_seq = total.div_ceil(c.block_size);
    // Physical blocks in scrambled order within a larger pool.
    // Coprime to the stride 7 so the scrambled table never repeats a block.
    let pool_blocks = (n_blocks_seq + 3..).find(|n| n % 7 != 0).unwrap();
    let table: Vec<u32> = (0..n_blocks_seq)
        .map(|i| ((i * 7 + 2) % pool_blocks) as u32)
        .collect();
    let mut seen = std::collections::HashSet::new();
    assert!(
        table.iter().all(|b| seen.insert(*b)),
        "block table must not repeat"
    );
    let layout = KvLayout {
        block_size: c.block_size,
        n_kv_head: c.n_kv_head,
        head_dim: c.head_dim,
        f16: c.f16,
    };
    let k_pool = ctx.zeroed("k", layout.pool_bytes(pool_blocks)).unwrap();
    let v_pool = ctx.zeroed("v", layout.pool_bytes(pool_blocks)).unwrap();
    let bt = ctx.upload_pod("bt", &table).unwrap();
    // Write all tokens through the kernel, in two batches (past, then the new ones).
    for (lo, hi) in [(0, c.past), (c.past, total)] {
        if hi == lo {
            continue;
        }
        let pos: Vec<u32> = (lo as u32..hi as u32).collect();
        let pg = ctx.upload_pod("pos", &pos).unwrap();
        let kg = ctx.upload_pod("knew", &keys[lo * row..hi * row]).unwrap();
        let vg = ctx.upload_pod("vnew", &vals[lo * row..hi * row]).unwrap();
        let dk = ops::prepare_kv_write(
            ctx,
            &layout,
            &kg.buffer,
            &k_pool.buffer,
            &pg.buffer,
            &bt.buffer,
            hi - lo,
        )
        .unwrap();
        let dv = ops::prepare_kv_write(
            ctx,
            &layout,
            &vg.buffer,
            &v_pool.buffer,
            &pg.buffer,
            &bt.buffer,
            hi - lo,
        )
        .unwrap();
        ctx.run(&[&dk, &dv]).unwrap();
    }
    // The pool holds exactly the values at their slots.
    let store = |v: f32| if c.f16 { round_f16(v) } else { v };
    let kp = ctx
        .read_bytes(&k_pool.buffer, 0, k_pool.buffer.size())
        .unwrap();
    for t in [0, total / 2, total - 1] {
        let slot = table[t / c.block_size] as usize * c.block_size + t % c.block_size;
        for e in [0, row - 1] {
            let i = slot * row + e;
            let got = if c.f16 {
                half::f16::from_le_bytes([kp[2 * i], kp[2 * i + 1]]).to_f32()
            } else {
                f32::from_le_bytes([kp[4 * i], kp[4 * i + 1], kp[4 * i + 2], kp[4 * i + 3]])
            };
            assert_eq!(
                got,
                store(keys[t * row + e]),
                "pool slot of token {t} elem {e}"
            );
        }
    }
    let scale = 1.0 / (c.head_dim as f32).sqrt();
    let qpos: Vec<u32> = (c.past as u32..total as u32).collect();
    let qg = ctx.upload_pod("q", &q).unwrap();
    let qp = ctx.upload_pod("qpos", &qpos).unwrap();
    let out = ctx.zeroed("out", (q.len() * 4) as u64).unwrap();
    // max_len larger than needed: empty splits must not change the result.
    let max_len = total + 70;
    let scratch = ctx
        .zeroed(
            "scratch",
            ops::attention_scratch_bytes(c.n_q, c.n_head, c.head_dim, max_len),
        )
        .unwrap();
    let split_keys = c.split_keys.unwrap_or_else(|| {
        ops::prefill_split_keys(c.head_dim, max_len, ctx.info().loops_limited())
    });
    let prefill_scratch = ctx
        .zeroed(
            "prefill-scratch",
            ops::prefill_attention_scratch_bytes(c.n_q, c.n_head, c.head_dim, max_len, split_keys)
                .max(4),
        )
        .unwrap();
    let ds = if c.tiled {
        ops::prepare_prefill_attention(
            ctx,
            &layout,
            c.n_head,
            &qg.buffer,
            &k_pool.buffer,
            &v_pool.buffer,
            &bt.buffer,
            &qp.buffer,
            &out.buffer,
            &prefill_scratch.buffer,
            c.n_q,
            max_len,
            split_keys,
            scale,
        )
        .unwrap()
    } else {
        ops::prepare_attention(
            ctx,
            &layout,
            c.n_head,
            &qg.buffer,
            &k_pool.buffer,
            &v_pool.buffer,
            &bt.buffer,
            &qp.buffer,
            &out.buffer,
            &scratch.buffer,
            c.n_q,
            max_len,
            scale,
        )
        .unwrap()
    };
    ctx.run(&ds.iter().collect::<Vec<_>>()).unwrap();
    let got = ctx.read_f32(&out.buffer, 0, q.len() as u64).unwrap();
    // CPU oracle: causal softmax attention in f64 over the stored (possibly f16) values.
    let group = c.n_head / c.n_kv_head;
    let hd = c.head_dim;
    let tol = ATTN_TOL;
    let mut worst = 0.0f32;
    for qi in 0..c.n_q {
        let len = c.past + qi + 1;
        for h in 0..c.n_head {
            let kvh = h / group;
            let qv = &q[(qi * c.n_head + h) * hd..][..hd];
            let scores: Vec<f64> = (0..len)
                .map(|t| {
                    let kv = &keys[t * row + kvh * hd..][..hd];
                    qv.iter()
                        .zip(kv)
                        .map(|(a, b)| (*a * scale) as f64 * store(*b) as f64)
                        .sum()
                })
                .collect();
            let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let w: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
            let l: f64 = w.iter().sum();
            for d in 0..hd {
                let want: f64 = (0..len)
                    .map(|t| w[t] * store(vals[t * row + kvh * hd + d]) as f64)
                    .sum::<f64>()
                    / l;
                let g = got[(qi * c.n_head + h) * hd + d];
                let err = (g as f64 - want).abs() as f32;
                worst = worst.max(err);
                assert!(
                    err <= tol,
                    "attention q{qi} h{h} d{d} (past {}, n_q {}, f16 {}): gpu {g} cpu {want} err {err} > {tol}",
                    c.past,
                    c.n_q,
                    c.f16
                );
            }
        }
    }
    eprintln!(
        "attention past={} n_q={} f16={} tiled={}: worst abs err {worst:.2e}",
        c.past, c.n_q, c.f16, c.tiled
    );
}

#[test]
fn decode_attention_over_paged_kv_matches_cpu() {
    let Some(ctx) = ctx() else { return };
    for (i, f16) in [false, true].into_iter().enumerate() {
        // One query after 150 cached tokens: three splits, GQA 4:1, 16-token blocks.
        run_case(
            &ctx,
            &Case {
                n_head: 8,
                n_kv_head: 2,
                head_dim: 64,
                block_size: 16,
                past: 150,
                n_q: 1,
                f16,
                tiled: false,
                split_keys: None,
            },
            10 + i as u64,
        );
        // First token ever (one key), MHA, odd head_dim.
        run_case(
            &ctx,
            &Case {
                n_head: 3,
                n_kv_head: 3,
                head_dim: 34,
                block_size: 16,
                past: 0,
                n_q: 1,
                f16,
                tiled: false,
                split_keys: None,
            },
            20 + i as u64,
        );
        // Head sizes at the vec4 path's edges: 8 (one f16 word group per key) and 256 (the
        // largest; 32 or 64 word columns), and 24 (f16: three columns that do not divide the
        // workgroup's 64 lanes).
        for (j, (head_dim, past)) in [(8, 70), (256, 100), (24, 65)].into_iter().enumerate() {
            run_case(
                &ctx,
                &Case {
                    n_head: 4,
                    n_kv_head: 2,
                    head_dim,
                    block_size: 16,
                    past,
                    n_q: 1,
                    f16,
                    tiled: false,
                    split_keys: None,
                },
                50 + 10 * j as u64 + i as u64,
            );
        }
    }
}

#[test]
fn prefill_attention_is_causal_and_matches_cpu() {
    let Some(ctx) = ctx() else { return };
    for (i, f16) in [false, true].into_iter().enumerate() {
        run_case(
            &ctx,
            &Case {
                n_head: 4,
                n_kv_head: 1,
                head_dim: 128,
                block_size: 16,
                past: 0,
                n_q: 70,
                f16,
                tiled: false,
                split_keys: None,
            },
            30 + i as u64,
        );
        run_case(
            &ctx,
            &Case {
                n_head: 6,
                n_kv_head: 2,
                head_dim: 48,
                block_size: 8,
                past: 37,
                n_q: 29,
                f16,
                tiled: false,
                split_keys: None,
            },
            40 + i as u64,
        );
    }
}

/// The tiled causal prefill kernel against the same oracle: odd query counts (partial query
/// tiles), tokens already cached, key counts that are not a multiple of the key tile, block
/// sizes that do not divide anything, GQA, head sizes 4 · odd, 128 and 256 (the smallest
/// key tile), and block tables in scrambled order (run_case permutes the physical blocks) —
/// in one split, and cut into splits of one or a few key tiles merged by `combine` (splits
/// past some queries' lengths, splits past every query of a tile).
#[test]
fn tiled_prefill_attention_matches_cpu() {
    let Some(ctx) = ctx() else { return };
    let cases = [
        (4, 1, 128, 16, 0, 70),
        (6, 2, 48, 8, 37, 29),
        (3, 3, 12, 5, 0, 1),
        (2, 1, 20, 7, 19, 33),
        (2, 2, 256, 16, 9, 17),
        (8, 2, 64, 16, 130, 5),
    ];
    for (i, (n_head, n_kv_head, head_dim, block_size, past, n_q)) in cases.into_iter().enumerate() {
        let tile: usize = (2048 / head_dim).min(16);
        let total: usize = past + n_q;
        for (j, split_keys) in [total + 70, tile, 3 * tile].into_iter().enumerate() {
            let split_keys = split_keys.next_multiple_of(tile);
            for f16 in [false, true] {
                run_case(
                    &ctx,
                    &Case {
                        n_head,
                        n_kv_head,
                        head_dim,
                        block_size,
                        past,
                        n_q,
                        f16,
                        tiled: true,
                        split_keys: Some(split_keys),
                    },
                    100 + 6 * i as u64 + 2 * j as u64 + f16 as u64,
                );
            }
        }
    }
}

/// Contexts past llvmpipe's loop budget (`ops::LLVMPIPE_LOOP_LIMIT`: every loop of an
/// invocation stops, silently, once all of them have run 65,535 iterations). Before the tiled
/// kernel split its keys, a query over > ~1,600 keys at head_dim 64 (SmolLM2, Qwen2.5-0.5B)
/// and > ~900 at head_dim 128 (7B models) came out wrong on lavapipe. Each shape runs a
/// context that fills one split exactly (the budget itself is right) and one of 1½ splits.
#[test]
fn long_context_tiled_attention_matches_cpu() {
    let Some(ctx) = ctx() else { return };
    let cases = [
        // (n_head, n_kv_head, head_dim, n_q): SmolLM2's heads, a 7B's head size, the
        // largest head size, and a small one whose per-tile overhead dominates.
        (9, 3, 64, 20),
        (2, 1, 128, 3),
        (1, 1, 256, 17),
        (1, 1, 8, 1),
    ];
    for (i, (n_head, n_kv_head, head_dim, n_q)) in cases.into_iter().enumerate() {
        let keys = ops::prefill_split_keys(head_dim, usize::MAX / 2, true);
        for (j, (total, split_keys)) in [(keys, keys), (keys + keys / 2, keys)]
            .into_iter()
            .enumerate()
        {
            run_case(
                &ctx,
                &Case {
                    n_head,
                    n_kv_head,
                    head_dim,
                    block_size: 16,
                    past: total - n_q,
                    n_q,
                    f16: i % 2 == 1,
                    tiled: true,
                    split_keys: Some(split_keys),
                },
                300 + 2 * i as u64 + j as u64,
            );
        }
    }
    // The split-K decode kernel at the same length, for comparison.
    run_case(
        &ctx,
        &Case {
            n_head: 9,
            n_kv_head: 3,
            head_dim: 64,
            block_size: 16,
            past: 1999,
            n_q: 1,
            f16: false,
            tiled: false,
            split_keys: None,
        },
        399,
    );
}
