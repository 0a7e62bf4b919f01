//! The fused decode kernels (issue 13) against plain Rust: q/k/v in one launch (mixed weight
//! types, qwen2 biases, the RMSNorm folded in or not), gate/up/SwiGLU in one launch, the
//! accumulating matvec (residual add folded in), for every GPU weight type at odd sizes and at
//! 7B widths (k = 4096, and 18,944 for the down projection: loops that grow with k must stay
//! inside llvmpipe's loop budget); and rope_kv (RoPE of q and k with the K/V append) against
//! the unfused rope + kv_write kernels it replaces, both RoPE styles, GQA, partial rotation,
//! f16 and f32 pools. Without an adapter the tests skip, unless `CI` is set.

mod common;

use common::kernels::*;
use hearth::gpu::ops::{self, FoldedNorm, KvLayout, RopeKvBuffers, RopeParams, RopeStyle};
use hearth::gpu::{AdapterChoice, GpuContext, GpuWeight, WANTED_FEATURES};
use hearth::quant::GgmlType;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// x / sqrt(mean(x²) + eps) * g, in f64.
fn cpu_rmsnorm(x: &[f32], g: &[f32], eps: f32) -> Vec<f32> {
    let ms = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / x.len() as f64;
    let s = 1.0 / (ms + eps as f64).sqrt();
    x.iter()
        .zip(g)
        .map(|(&v, &w)| (v as f64 * s * w as f64) as f32)
        .collect()
}

fn silu(v: f32) -> f32 {
    v / (1.0 + (-v).exp())
}

/// A weight of `ty` with `rows` rows of `k`: (GGUF bytes, uploaded).
fn weight(
    ctx: &GpuContext,
    r: &mut ChaCha8Rng,
    ty: GgmlType,
    k: usize,
    rows: usize,
) -> (Vec<u8>, GpuWeight) {
    let data = random_weights(r, ty, k, rows);
    let w = GpuWeight::upload(ctx, "w", ty, k as u64, rows as u64, &data).unwrap();
    (data, w)
}

/// Input for a fused matvec: the raw x, the norm weight and what the product sees (the normed
/// x when `norm`), and the extra error per unit of mass the norm adds.
fn fused_input(r: &mut ChaCha8Rng, k: usize, norm: bool) -> (Vec<f32>, Vec<f32>, Vec<f32>, f32) {
    let x = random_f32(r, k, 3.0);
    let g = random_f32(r, k, 2.0);
    if norm {
        let seen = cpu_rmsnorm(&x, &g, 1e-5);
        (x, g, seen, NORM_REL_TOL)
    } else {
        (x.clone(), g, x, 0.0)
    }
}

/// (k, rows of q, rows of k/v) per type: odd row counts, k not a power of two where the block
/// size allows; and q/k rows multiples of 64, the shapes where CPU adapters' broadcast
/// activations (8 rows × 8 lanes per subgroup, which must not straddle two weights) apply.
fn fused_shapes(ty: GgmlType) -> Vec<(usize, usize, usize)> {
    match ty.block_elems() {
        1 => vec![(4, 3, 1), (100, 17, 5), (1028, 9, 3)],
        32 => vec![(32, 1, 1), (96, 7, 3), (1056, 13, 5), (96, 128, 64)],
        _ => vec![(256, 33, 9), (768, 19, 7), (256, 128, 64)],
    }
}

#[allow(clippy::too_many_arguments)]
fn check_qkv(
    ctx: &GpuContext,
    r: &mut ChaCha8Rng,
    types: [GgmlType; 3],
    k: usize,
    rows: [usize; 3],
    norm: bool,
    bias: bool,
    what: &str,
) {
    let ws: Vec<(Vec<u8>, GpuWeight)> = (0..3)
        .map(|i| weight(ctx, r, types[i], k, rows[i]))
        .collect();
    let (x, g, seen, norm_tol) = fused_input(r, k, norm);
    let b = random_f32(r, rows.iter().sum(), 1.0);
    let xg = ctx.upload_pod("x", &x).unwrap();
    let gg = ctx.upload_pod("g", &g).unwrap();
    let bg = ctx.upload_pod("b", &b).unwrap();
    let ys: Vec<_> = rows
        .iter()
        .map(|&n| ctx.zeroed("y", (n * 4) as u64).unwrap())
        .collect();
    let w3 = [&ws[0].1, &ws[1].1, &ws[2].1];
    assert!(ops::fused_matvec_supported(ctx, &w3, norm), "{what}");
    let d = ops::prepare_matvec_qkv(
        ctx,
        w3,
        &xg.buffer,
        norm.then_some(FoldedNorm {
            weight: &gg.buffer,
            eps: 1e-5,
        }),
        bias.then_some(&bg.buffer),
        [&ys[0].buffer, &ys[1].buffer, &ys[2].buffer],
    )
    .unwrap();
    ctx.run(&[&d]).unwrap();
    let mut b_off = 0;
    for i in 0..3 {
        let (mut want, mass) = cpu_matvec(types[i], &ws[i].0, k, rows[i], &seen);
        if bias {
            want.iter_mut()
                .zip(&b[b_off..])
                .for_each(|(w, bb)| *w += bb);
        }
        let got = ctx.read_f32(&ys[i].buffer, 0, rows[i] as u64).unwrap();
        check_close(
            &format!("{what}: output {i} ({})", types[i].name()),
            &got,
            &want,
            |j| (DOT_REL_TOL + norm_tol) * mass[j] + 1e-5 * want[j].abs() + 1e-6,
        );
        b_off += rows[i];
    }
}

/// q/k/v in one launch equals three matvecs (+ biases), for every type with q and k of that
/// type and v of the next type in the list (Q4_K_M mixes types the same way), the norm folded
/// in or not, with and without biases.
#[test]
fn fused_qkv_matches_cpu_for_every_type_mixed_types_and_biases() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(21);
    for (i, &ty) in TYPES.iter().enumerate() {
        let other = TYPES[(i + 1) % TYPES.len()];
        for (k, qr, kvr) in fused_shapes(ty) {
            for (norm, bias) in [(false, false), (true, false), (true, true), (false, true)] {
                check_qkv(
                    ctx,
                    &mut r,
                    [ty, ty, ty],
                    k,
                    [qr, kvr, kvr],
                    norm,
                    bias,
                    &format!(
                        "qkv {} k={k} rows={qr}/{kvr} norm={norm} bias={bias}",
                        ty.name()
                    ),
                );
            }
        }
        // k = 512 is a whole number of blocks of every type: v of another type.
        check_qkv(
            ctx,
            &mut r,
            [ty, ty, other],
            512,
            [21, 7, 7],
            true,
            true,
            &format!("qkv {}/{}/{} k=512", ty.name(), ty.name(), other.name()),
        );
    }
}

fn check_glu(
    ctx: &GpuContext,
    r: &mut ChaCha8Rng,
    types: [GgmlType; 2],
    k: usize,
    rows: usize,
    norm: bool,
) {
    let what = format!(
        "glu {}/{} k={k} rows={rows} norm={norm}",
        types[0].name(),
        types[1].name()
    );
    let (gd, gw) = weight(ctx, r, types[0], k, rows);
    let (ud, uw) = weight(ctx, r, types[1], k, rows);
    let (x, g, seen, norm_tol) = fused_input(r, k, norm);
    let xg = ctx.upload_pod("x", &x).unwrap();
    let gg = ctx.upload_pod("g", &g).unwrap();
    let y = ctx.zeroed("y", (rows * 4) as u64).unwrap();
    assert!(
        ops::fused_matvec_supported(ctx, &[&gw, &uw], norm),
        "{what}"
    );
    let d = ops::prepare_matvec_glu(
        ctx,
        &gw,
        &uw,
        &xg.buffer,
        norm.then_some(FoldedNorm {
            weight: &gg.buffer,
            eps: 1e-5,
        }),
        &y.buffer,
    )
    .unwrap();
    ctx.run(&[&d]).unwrap();
    let (gate, gmass) = cpu_matvec(types[0], &gd, k, rows, &seen);
    let (up, umass) = cpu_matvec(types[1], &ud, k, rows, &seen);
    let want: Vec<f32> = gate.iter().zip(&up).map(|(&a, &b)| silu(a) * b).collect();
    let got = ctx.read_f32(&y.buffer, 0, rows as u64).unwrap();
    let tol = DOT_REL_TOL + norm_tol;
    // |d silu(g)/dg| ≤ 1.1: the gate's error scaled by |up|, the up's by |silu(gate)|.
    check_close(&what, &got, &want, |j| {
        1.1 * tol * gmass[j] * up[j].abs()
            + tol * umass[j] * silu(gate[j]).abs()
            + ELEM_REL_TOL * want[j].abs()
            + 1e-6
    });
}

/// gate, up and SwiGLU in one launch equal silu(gate · x) * (up · x), every type, norm folded in
/// or not, and a gate/up pair of different types.
#[test]
fn fused_glu_matches_cpu_for_every_type() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(22);
    for (i, &ty) in TYPES.iter().enumerate() {
        for (k, rows, _) in fused_shapes(ty) {
            for norm in [false, true] {
                check_glu(ctx, &mut r, [ty, ty], k, rows + 2, norm);
            }
        }
        check_glu(
            ctx,
            &mut r,
            [ty, TYPES[(i + 3) % TYPES.len()]],
            512,
            37,
            true,
        );
    }
}

/// The accumulating matvec adds the product to what y holds (the residual add of the o and
/// down projections), every type, whole and chunked weights.
#[test]
fn matvec_add_accumulates_for_every_type() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(23);
    for ty in TYPES {
        for (k, rows) in shapes(ty) {
            let data = random_weights(&mut r, ty, k, rows);
            let x = random_f32(&mut r, k, 1.0);
            let y0 = random_f32(&mut r, rows, 4.0);
            let (prod, mass) = cpu_matvec(ty, &data, k, rows, &x);
            let want: Vec<f32> = prod.iter().zip(&y0).map(|(a, b)| a + b).collect();
            let row_bytes = data.len() as u64 / rows as u64;
            for limit in [u64::MAX, 2 * row_bytes] {
                let w =
                    GpuWeight::upload_with_limit(ctx, "w", ty, k as u64, rows as u64, &data, limit)
                        .unwrap();
                let xg = ctx.upload_pod("x", &x).unwrap();
                let yg = ctx.upload_pod("y", &y0).unwrap();
                let ds = ops::prepare_matvec_add(ctx, &w, &xg.buffer, 0, &yg.buffer, 0).unwrap();
                run_all(ctx, &ds);
                let got = ctx.read_f32(&yg.buffer, 0, rows as u64).unwrap();
                check_close(
                    &format!(
                        "matvec add {} k={k} rows={rows} chunks={}",
                        ty.name(),
                        w.chunks.len()
                    ),
                    &got,
                    &want,
                    |i| DOT_REL_TOL * mass[i] + 1e-6 * want[i].abs() + 1e-6,
                );
            }
        }
    }
}

/// 7B widths: q/k/v and gate/up at k = 4096 (the largest the folded norm takes; Q4_K q/k with
/// a Q6_K v as Q4_K_M files have them, and Q4_0/Q8_0), and the down projection's accumulating
/// matvec at k = 18,944 (Qwen2.5-7B's ffn), so every loop runs its full trip count on an
/// adapter that ends loops after 65,535 iterations.
#[test]
fn fused_kernels_at_seven_b_widths() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(24);
    let k = ops::FUSED_NORM_MAX_K;
    for types in [
        [GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q6_K],
        [GgmlType::Q4_0, GgmlType::Q4_0, GgmlType::Q8_0],
        [GgmlType::F16, GgmlType::F16, GgmlType::F16],
    ] {
        check_qkv(
            ctx,
            &mut r,
            types,
            k,
            [40, 9, 9],
            true,
            true,
            &format!("qkv 7B {types:?}"),
        );
        check_glu(ctx, &mut r, [types[0], types[1]], k, 24, true);
    }
    for ty in [GgmlType::Q6_K, GgmlType::Q4_0, GgmlType::F16] {
        let k = 18_944;
        let rows = 6;
        let data = random_weights(&mut r, ty, k, rows);
        let x = random_f32(&mut r, k, 1.0);
        let (want, mass) = cpu_matvec(ty, &data, k, rows, &x);
        let w = GpuWeight::upload(ctx, "down", ty, k as u64, rows as u64, &data).unwrap();
        let xg = ctx.upload_pod("x", &x).unwrap();
        let yg = ctx.zeroed("y", (rows * 4) as u64).unwrap();
        run_all(
            ctx,
            &ops::prepare_matvec_add(ctx, &w, &xg.buffer, 0, &yg.buffer, 0).unwrap(),
        );
        let got = ctx.read_f32(&yg.buffer, 0, rows as u64).unwrap();
        check_close(&format!("down {} k={k}", ty.name()), &got, &want, |i| {
            DOT_REL_TOL * mass[i] + 1e-6
        });
    }
    // Past the folded norm's capacity the fused kernels still run, on a normed input.
    let (_, a) = weight(ctx, &mut r, GgmlType::Q4_0, k + 32, 2);
    let (_, b) = weight(ctx, &mut r, GgmlType::Q4_0, k + 32, 2);
    assert!(!ops::fused_matvec_supported(ctx, &[&a, &b], true));
    assert!(ops::fused_matvec_supported(ctx, &[&a, &b], false));
    check_glu(
        ctx,
        &mut r,
        [GgmlType::Q4_0, GgmlType::Q4_K],
        k + 256,
        5,
        false,
    );
}

/// Unpacked pool values: f32 words, or two f16 halves per word.
fn pool_values(words: &[u32], f16: bool) -> Vec<f32> {
    if f16 {
        words
            .iter()
            .flat_map(|&w| {
                [
                    half::f16::from_bits(w as u16).to_f32(),
                    half::f16::from_bits((w >> 16) as u16).to_f32(),
                ]
            })
            .collect()
    } else {
        words.iter().map(|&w| f32::from_bits(w)).collect()
    }
}

/// rope_kv (one dispatch) equals rope on q, rope on k, and kv_write of k and v (four): both
/// RoPE styles, GQA, partial rotation, frequency factors, f16 and f32 pools, positions spread
/// over a shuffled block table, one token (decode) and several.
#[test]
fn rope_kv_matches_rope_and_kv_write() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(25);
    // (style, tokens, n_head, n_kv_head, head_dim, n_rot, f16)
    let cases = [
        (
            RopeStyle::Normal,
            1usize,
            4usize,
            2usize,
            64usize,
            64usize,
            true,
        ),
        (RopeStyle::Neox, 1, 14, 2, 64, 64, false),
        (RopeStyle::Normal, 5, 6, 3, 12, 8, false),
        (RopeStyle::Neox, 7, 4, 1, 16, 12, true),
        (RopeStyle::Neox, 3, 8, 8, 128, 128, true),
        (RopeStyle::Normal, 2, 32, 8, 128, 128, false),
    ];
    for (style, n, n_head, n_kv_head, head_dim, n_rot, f16) in cases {
        let what = format!(
            "rope_kv {style:?} tokens={n} heads={n_head}/{n_kv_head} dims={n_rot}/{head_dim} f16={f16}"
        );
        let block_size = 4;
        let n_blocks = 13;
        let layout = KvLayout {
            block_size,
            n_kv_head,
            head_dim,
            f16,
        };
        let mut table: Vec<u32> = (0..n_blocks as u32).collect();
        table.shuffle(&mut r);
        let start = r.random_range(0..(n_blocks * block_size - n));
        let pos: Vec<u32> = (start..start + n).map(|p| p as u32).collect();
        let rp = RopeParams {
            n_tokens: n,
            n_heads: n_head,
            head_dim,
            n_rot,
            style,
            freq_base: 10_000.0,
            freq_scale: 1.0,
        };
        let ff: Vec<f32> = (0..n_rot / 2)
            .map(|_| r.random_range(1.0f32..4.0))
            .collect();
        let q = random_f32(&mut r, n * n_head * head_dim, 1.0);
        let k = random_f32(&mut r, n * n_kv_head * head_dim, 1.0);
        let v = random_f32(&mut r, n * n_kv_head * head_dim, 1.0);
        let pool_bytes = layout.pool_bytes(n_blocks);
        let up = |what: &str, x: &[f32]| ctx.upload_pod(what, x).unwrap();
        let (pg, bt, fg) = (
            ctx.upload_pod("pos", &pos).unwrap(),
            ctx.upload_pod("bt", &table).unwrap(),
            up("ff", &ff),
        );
        // Fused.
        let (qf, kf, vf) = (up("q", &q), up("k", &k), up("v", &v));
        let (kpf, vpf) = (
            ctx.zeroed("kp", pool_bytes).unwrap(),
            ctx.zeroed("vp", pool_bytes).unwrap(),
        );
        let d = ops::prepare_rope_kv(
            ctx,
            &layout,
            &rp,
            &RopeKvBuffers {
                q: &qf.buffer,
                k: &kf.buffer,
                v: &vf.buffer,
                k_pool: &kpf.buffer,
                v_pool: &vpf.buffer,
                positions: &pg.buffer,
                block_table: &bt.buffer,
                freq_factors: &fg.buffer,
            },
        )
        .unwrap();
        ctx.run(&[&d]).unwrap();
        // Unfused.
        let (qu, ku, vu) = (up("q", &q), up("k", &k), up("v", &v));
        let (kpu, vpu) = (
            ctx.zeroed("kp", pool_bytes).unwrap(),
            ctx.zeroed("vp", pool_bytes).unwrap(),
        );
        let kv_rope = RopeParams {
            n_heads: n_kv_head,
            ..rp
        };
        let ds = [
            ops::prepare_rope(ctx, &qu.buffer, &pg.buffer, &fg.buffer, &rp).unwrap(),
            ops::prepare_rope(ctx, &ku.buffer, &pg.buffer, &fg.buffer, &kv_rope).unwrap(),
            ops::prepare_kv_write(
                ctx,
                &layout,
                &ku.buffer,
                &kpu.buffer,
                &pg.buffer,
                &bt.buffer,
                n,
            )
            .unwrap(),
            ops::prepare_kv_write(
                ctx,
                &layout,
                &vu.buffer,
                &vpu.buffer,
                &pg.buffer,
                &bt.buffer,
                n,
            )
            .unwrap(),
        ];
        ctx.run(&ds.iter().collect::<Vec<_>>()).unwrap();
        let got_q = ctx.read_f32(&qf.buffer, 0, q.len() as u64).unwrap();
        let want_q = ctx.read_f32(&qu.buffer, 0, q.len() as u64).unwrap();
        check_close(&format!("{what}: q"), &got_q, &want_q, |_| 1e-6);
        let got_k = ctx.read_f32(&kf.buffer, 0, k.len() as u64).unwrap();
        assert_eq!(got_k, k, "{what}: k is read only");
        let words = pool_bytes / 4;
        for (name, fused, unfused) in [("K", &kpf, &kpu), ("V", &vpf, &vpu)] {
            let got = pool_values(&ctx.read_u32(&fused.buffer, 0, words).unwrap(), f16);
            let want = pool_values(&ctx.read_u32(&unfused.buffer, 0, words).unwrap(), f16);
            let tol = if f16 { 1e-3 } else { 1e-6 };
            check_close(&format!("{what}: {name} pool"), &got, &want, |i| {
                tol * want[i].abs() + 1e-6
            });
            assert!(want.iter().any(|&x| x != 0.0), "{what}: {name} written");
        }
    }
}

/// Adapters without SUBGROUP: the fused kernels' shared-memory reductions (a context with the
/// feature masked off), every type, the norm folded in, biases.
#[test]
fn fused_kernels_without_subgroups_match_cpu() {
    let Some(_) = ctx() else { return };
    let Some(plain) = common::gpu_result(GpuContext::with_features(
        &AdapterChoice::FromEnv,
        WANTED_FEATURES.difference(wgpu::Features::SUBGROUP),
    )) else {
        return;
    };
    assert!(!plain.has_subgroup());
    let mut r = rng(26);
    for (i, &ty) in TYPES.iter().enumerate() {
        let other = TYPES[(i + 1) % TYPES.len()];
        check_qkv(
            &plain,
            &mut r,
            [ty, ty, other],
            512,
            [21, 7, 7],
            true,
            true,
            &format!("qkv (no subgroups) {}", ty.name()),
        );
        check_glu(&plain, &mut r, [ty, other], 512, 19, true);
        check_glu(&plain, &mut r, [ty, ty], 1024, 5, false);
    }
}
