//! Every GPU kernel against a CPU oracle on whatever adapter `GpuContext::new` picks (Mesa
//! lavapipe in CI): matvec/matmul/embedding against `hearth::quant` (`dot_row`,
//! `dequantize`), the rest against plain Rust written here from the formulas. Shapes include
//! odd sizes (rows not a multiple of the workgroup, k not a power of two) and weights split
//! into several chunks. Without an adapter the tests skip, unless `CI` is set.

mod common;

use std::sync::OnceLock;

use hearth::gpu::ops::{self, RopeParams, RopeStyle};
use hearth::gpu::{AdapterChoice, Dispatch, GpuContext, GpuError, GpuWeight};
use hearth::quant::{self, GgmlType};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Matvec/matmul: |gpu - cpu| ≤ DOT_REL_TOL × Σ|w_i·x_i| (+ 1e-6): both sum the same f32
/// products in a different order, so the error is a few f32 ulps of the L1 mass.
const DOT_REL_TOL: f32 = 1e-5;
/// Embedding rows: |gpu - cpu| ≤ EMBED_TOL × max|row| (one or two f32 roundings per value).
const EMBED_TOL: f32 = 1e-6;
/// RMSNorm: relative error per element (f32 sum of squares vs an f64 oracle).
const NORM_REL_TOL: f32 = 1e-5;
/// RoPE: absolute error on unit-scale inputs at positions < 512. lavapipe measures ≤ 4e-5;
/// the bound leaves room for GPUs whose sin/cos only meet WGSL's 2^-11 absolute accuracy.
const ROPE_ABS_TOL: f32 = 2e-3;
/// Add and SwiGLU: relative error (one add / exp+div+mul in f32).
const ELEM_REL_TOL: f32 = 1e-5;

fn ctx() -> Option<&'static GpuContext> {
    static CTX: OnceLock<Result<GpuContext, String>> = OnceLock::new();
    match CTX.get_or_init(|| GpuContext::new().map_err(|e| e.to_string())) {
        Ok(c) => Some(c),
        Err(e) if std::env::var_os("CI").is_some() => panic!("no GPU adapter and CI is set: {e}"),
        Err(e) => {
            eprintln!("SKIP: no GPU adapter ({e})");
            None
        }
    }
}

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn random_f32(r: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| r.random_range(-scale..scale)).collect()
}

/// Weights of `ty` made by quantizing random values, as the GGUF bytes.
fn random_weights(r: &mut ChaCha8Rng, ty: GgmlType, k: usize, rows: usize) -> Vec<u8> {
    let vals = random_f32(r, k * rows, 1.0);
    quant::quantize(ty, &vals).expect("quantize")
}

fn run_all(ctx: &GpuContext, ds: &[Dispatch]) {
    ctx.run(&ds.iter().collect::<Vec<_>>()).expect("run");
}

fn check_close(what: &str, got: &[f32], want: &[f32], bound: impl Fn(usize) -> f32) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0.0f32;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        let b = bound(i);
        assert!(
            err <= b,
            "{what}: element {i}: gpu {g} cpu {w} (|err| {err} > bound {b})"
        );
        worst = worst.max(err / b.max(f32::MIN_POSITIVE));
    }
    worst
}

/// CPU oracle for a matvec: (dot_row per row, Σ|w·x| per row for the error bound).
fn cpu_matvec(ty: GgmlType, data: &[u8], k: usize, rows: usize, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let rb = data.len() / rows;
    let mut y = Vec::with_capacity(rows);
    let mut mass = Vec::with_capacity(rows);
    for r in 0..rows {
        let row = &data[r * rb..(r + 1) * rb];
        y.push(quant::dot_row(ty, row, x).expect("dot_row"));
        let w = quant::dequantize_to_vec(ty, row, k).expect("dequantize");
        mass.push(w.iter().zip(x).map(|(a, b)| (a * b).abs()).sum());
    }
    (y, mass)
}

const TYPES: [GgmlType; 9] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// (k, rows) shapes valid for `ty`: odd row counts, k not a power of two.
fn shapes(ty: GgmlType) -> Vec<(usize, usize)> {
    match ty.block_elems() {
        1 => vec![(4, 3), (100, 17), (1028, 9), (64, 129)],
        32 => vec![(32, 1), (96, 7), (160, 65), (1056, 3)],
        _ => vec![(256, 33), (768, 67), (1280, 5)],
    }
}

#[test]
fn matvec_matches_dot_row_for_every_type_and_reduction() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(1);
    for ty in TYPES {
        for (k, rows) in shapes(ty) {
            let data = random_weights(&mut r, ty, k, rows);
            // x sits at an offset inside a larger buffer, as activations do.
            let x_off = 8;
            let x = random_f32(&mut r, k, 1.0);
            let mut xbuf = vec![0.0f32; x_off + k];
            xbuf[x_off..].copy_from_slice(&x);
            let (want, mass) = cpu_matvec(ty, &data, k, rows, &x);
            let xg = ctx.upload_pod("x", &xbuf).unwrap();
            // Whole tensor in one chunk, and split into chunks of 2 rows.
            let row_bytes = data.len() as u64 / rows as u64;
            for limit in [u64::MAX, 2 * row_bytes] {
                let w =
                    GpuWeight::upload_with_limit(ctx, "w", ty, k as u64, rows as u64, &data, limit)
                        .unwrap();
                assert_eq!(
                    w.chunks.len(),
                    if limit == u64::MAX {
                        1
                    } else {
                        rows.div_ceil(2)
                    }
                );
                for (wg, subgroup) in [
                    (64, true),
                    (64, false),
                    (32, false),
                    (256, true),
                    (8, true),
                    (4, false),
                ] {
                    let y_off = 3;
                    let y = ctx.zeroed("y", ((y_off + rows) * 4) as u64).unwrap();
                    let ds = ops::prepare_matvec(
                        ctx, &w, &xg.buffer, x_off, &y.buffer, y_off, wg, subgroup,
                    )
                    .unwrap();
                    run_all(ctx, &ds);
                    let got = ctx.read_f32(&y.buffer, y_off as u64, rows as u64).unwrap();
                    let worst = check_close(
                        &format!(
                            "matvec {} k={k} rows={rows} chunks={} wg={wg} subgroup={subgroup}",
                            ty.name(),
                            w.chunks.len()
                        ),
                        &got,
                        &want,
                        |i| DOT_REL_TOL * mass[i] + 1e-6,
                    );
                    if limit == u64::MAX && wg == 64 && subgroup {
                        eprintln!(
                            "matvec {:5} k={k:5} rows={rows:4}: worst err / bound = {worst:.3}",
                            ty.name()
                        );
                    }
                }
            }
        }
    }
}

/// Matvec over several tokens at once (short prefills): every token row of Y equals the
/// single-token product, for every type, 2–8 tokens, weights whole or in 2-row chunks, and
/// the token rows at an offset inside larger buffers.
#[test]
fn matvec_over_several_tokens_matches_dot_row_for_every_type() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(11);
    for ty in TYPES {
        for (k, rows) in shapes(ty) {
            let data = random_weights(&mut r, ty, k, rows);
            let row_bytes = data.len() as u64 / rows as u64;
            for m in [2usize, 3, 8] {
                let (t_off, y_stride) = (1, rows + 5);
                let xs: Vec<Vec<f32>> = (0..m).map(|_| random_f32(&mut r, k, 1.0)).collect();
                let mut xbuf = vec![0.0f32; k * t_off];
                xs.iter().for_each(|x| xbuf.extend_from_slice(x));
                let xg = ctx.upload_pod("x", &xbuf).unwrap();
                for limit in [u64::MAX, 2 * row_bytes] {
                    let w = GpuWeight::upload_with_limit(
                        ctx,
                        "w",
                        ty,
                        k as u64,
                        rows as u64,
                        &data,
                        limit,
                    )
                    .unwrap();
                    let y = ctx
                        .zeroed("y", ((t_off + m) * y_stride * 4) as u64)
                        .unwrap();
                    let cols = ops::Columns {
                        m,
                        x_offset: t_off * k,
                        x_stride: k,
                        y_offset: t_off * y_stride,
                        y_stride,
                    };
                    run_all(
                        ctx,
                        &ops::prepare_matvec_cols(ctx, &w, &xg.buffer, &y.buffer, &cols, 64)
                            .unwrap(),
                    );
                    for (t, x) in xs.iter().enumerate() {
                        let (want, mass) = cpu_matvec(ty, &data, k, rows, x);
                        let at = ((t_off + t) * y_stride) as u64;
                        let got = ctx.read_f32(&y.buffer, at, rows as u64).unwrap();
                        check_close(
                            &format!(
                                "matvec cols {} k={k} rows={rows} m={m} token {t} chunks={}",
                                ty.name(),
                                w.chunks.len()
                            ),
                            &got,
                            &want,
                            |i| DOT_REL_TOL * mass[i] + 1e-6,
                        );
                    }
                }
            }
        }
    }
    let w = GpuWeight::upload(ctx, "w", GgmlType::F32, 4, 1, &[0; 16]).unwrap();
    let buf = ctx.zeroed("b", 64).unwrap();
    let nine = ops::Columns {
        m: 9,
        x_offset: 0,
        x_stride: 4,
        y_offset: 0,
        y_stride: 1,
    };
    assert!(
        ops::prepare_matvec_cols(ctx, &w, &buf.buffer, &buf.buffer, &nine, 64).is_err(),
        "at most 8 tokens"
    );
}

#[test]
fn matmul_matches_dot_row_for_every_type() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(2);
    for ty in TYPES {
        for (k, rows) in shapes(ty) {
            for m in [1usize, 5, 17, 33] {
                let data = random_weights(&mut r, ty, k, rows);
                let x = random_f32(&mut r, m * k, 1.0);
                let mut want = vec![0.0f32; m * rows];
                let mut mass = vec![0.0f32; m * rows];
                for t in 0..m {
                    let (y, ms) = cpu_matvec(ty, &data, k, rows, &x[t * k..(t + 1) * k]);
                    want[t * rows..(t + 1) * rows].copy_from_slice(&y);
                    mass[t * rows..(t + 1) * rows].copy_from_slice(&ms);
                }
                let row_bytes = data.len() as u64 / rows as u64;
                let w = GpuWeight::upload_with_limit(
                    ctx,
                    "w",
                    ty,
                    k as u64,
                    rows as u64,
                    &data,
                    3 * row_bytes,
                )
                .unwrap();
                let xg = ctx.upload_pod("x", &x).unwrap();
                let y = ctx.zeroed("y", (m * rows * 4) as u64).unwrap();
                let ds = ops::prepare_matmul(ctx, &w, &xg.buffer, &y.buffer, m).unwrap();
                run_all(ctx, &ds);
                let got = ctx.read_f32(&y.buffer, 0, (m * rows) as u64).unwrap();
                let worst = check_close(
                    &format!("matmul {} k={k} rows={rows} m={m}", ty.name()),
                    &got,
                    &want,
                    |i| DOT_REL_TOL * mass[i] + 1e-6,
                );
                if m == 17 {
                    eprintln!(
                        "matmul {:5} k={k:5} rows={rows:4} m={m}: worst err / bound = {worst:.3}",
                        ty.name()
                    );
                }
            }
        }
    }
}

/// Raw random blocks (every bit pattern of the scales and quants), with the f16 scale fields
/// overwritten by finite values, so the layout is tested beyond what the quantizer emits.
fn random_raw_blocks(r: &mut ChaCha8Rng, ty: GgmlType, n_blocks: usize) -> Vec<u8> {
    let bb = ty.block_bytes();
    let mut data: Vec<u8> = (0..n_blocks * bb).map(|_| r.random()).collect();
    let f16 = |v: f32| half::f16::from_f32(v).to_le_bytes();
    for b in 0..n_blocks {
        let blk = &mut data[b * bb..(b + 1) * bb];
        let d = f16(r.random_range(-0.1f32..0.1));
        let m = f16(r.random_range(-0.1f32..0.1));
        match ty {
            GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q5_0 => blk[..2].copy_from_slice(&d),
            GgmlType::Q4_1 | GgmlType::Q4_K | GgmlType::Q5_K => {
                blk[..2].copy_from_slice(&d);
                blk[2..4].copy_from_slice(&m);
            }
            GgmlType::Q6_K => blk[208..210].copy_from_slice(&d),
            GgmlType::F16 => blk.copy_from_slice(&f16(r.random_range(-2.0f32..2.0))),
            GgmlType::F32 => blk.copy_from_slice(&r.random_range(-2.0f32..2.0).to_le_bytes()),
            _ => unreachable!(),
        }
    }
    data
}

#[test]
fn embedding_gather_matches_dequantize_on_raw_blocks() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(3);
    for ty in TYPES {
        let k = if ty.block_elems() == 256 { 512 } else { 96 };
        let rows = 37;
        let n_blocks = k * rows / ty.block_elems();
        let data = random_raw_blocks(&mut r, ty, n_blocks);
        let row_bytes = data.len() / rows;
        // 5 rows per chunk: tokens land in different chunks.
        let w = GpuWeight::upload_with_limit(
            ctx,
            "embd",
            ty,
            k as u64,
            rows as u64,
            &data,
            5 * row_bytes as u64,
        )
        .unwrap();
        let tokens: Vec<u32> = vec![0, 36, 5, 4, 17, 17, 30];
        let tg = ctx.upload_pod("tok", &tokens).unwrap();
        let y = ctx.zeroed("y", (tokens.len() * k * 4) as u64).unwrap();
        let ds = ops::prepare_embed(ctx, &w, &tg.buffer, &y.buffer, tokens.len()).unwrap();
        run_all(ctx, &ds);
        let got = ctx
            .read_f32(&y.buffer, 0, (tokens.len() * k) as u64)
            .unwrap();
        let mut worst = 0.0f32;
        for (t, &tok) in tokens.iter().enumerate() {
            let row = &data[tok as usize * row_bytes..(tok as usize + 1) * row_bytes];
            let want = quant::dequantize_to_vec(ty, row, k).unwrap();
            let maxabs = want.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            worst = worst.max(check_close(
                &format!("embed {} token {tok}", ty.name()),
                &got[t * k..(t + 1) * k],
                &want,
                |_| EMBED_TOL * maxabs + 1e-12,
            ));
        }
        eprintln!("embed {:5}: worst err / bound = {worst:.3}", ty.name());
    }
}

#[test]
fn rmsnorm_matches_cpu() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(4);
    for (n_rows, n) in [(1usize, 1usize), (3, 5), (2, 100), (4, 1000), (1, 4100)] {
        for subgroup in [true, false] {
            let x = random_f32(&mut r, n_rows * n, 3.0);
            let g = random_f32(&mut r, n, 2.0);
            let eps = 1e-5f32;
            let mut want = vec![0.0f32; n_rows * n];
            for row in 0..n_rows {
                let xs = &x[row * n..(row + 1) * n];
                let ms = xs.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / n as f64;
                let s = 1.0 / (ms + eps as f64).sqrt();
                for i in 0..n {
                    want[row * n + i] = (xs[i] as f64 * s * g[i] as f64) as f32;
                }
            }
            let xg = ctx.upload_pod("x", &x).unwrap();
            let gg = ctx.upload_pod("g", &g).unwrap();
            let y = ctx.zeroed("y", (n_rows * n * 4) as u64).unwrap();
            let d = ops::prepare_rmsnorm(
                ctx, &xg.buffer, &gg.buffer, &y.buffer, n_rows, n, eps, subgroup,
            )
            .unwrap();
            ctx.run(&[&d]).unwrap();
            let got = ctx.read_f32(&y.buffer, 0, (n_rows * n) as u64).unwrap();
            check_close(
                &format!("rmsnorm rows={n_rows} n={n} subgroup={subgroup}"),
                &got,
                &want,
                |i| NORM_REL_TOL * want[i].abs() + 1e-6,
            );
        }
    }
}

#[allow(clippy::needless_range_loop)] // the formulas index by position and pair
fn cpu_rope(x: &mut [f32], pos: &[u32], ff: &[f32], p: &RopeParams) {
    let half = p.n_rot / 2;
    for t in 0..p.n_tokens {
        for h in 0..p.n_heads {
            let base = (t * p.n_heads + h) * p.head_dim;
            for i in 0..half {
                let inv = (p.freq_base as f64).powf(-2.0 * i as f64 / p.n_rot as f64);
                let theta = p.freq_scale as f64 * pos[t] as f64 * inv / ff[i] as f64;
                let (a, b) = match p.style {
                    RopeStyle::Normal => (base + 2 * i, base + 2 * i + 1),
                    RopeStyle::Neox => (base + i, base + i + half),
                };
                let (x0, x1) = (x[a] as f64, x[b] as f64);
                x[a] = (x0 * theta.cos() - x1 * theta.sin()) as f32;
                x[b] = (x0 * theta.sin() + x1 * theta.cos()) as f32;
            }
        }
    }
}

#[test]
fn rope_matches_cpu_for_both_styles_partial_rotation_and_freq_factors() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(5);
    let cases = [
        (
            RopeStyle::Normal,
            3usize,
            4usize,
            64usize,
            64usize,
            10000.0f32,
            1.0f32,
            false,
        ),
        (RopeStyle::Neox, 5, 3, 64, 64, 1_000_000.0, 1.0, false),
        (RopeStyle::Normal, 2, 2, 48, 32, 10000.0, 0.5, false),
        (RopeStyle::Neox, 7, 2, 80, 80, 500_000.0, 1.0, true),
        (RopeStyle::Normal, 1, 32, 128, 128, 500_000.0, 1.0, true),
    ];
    for (style, n_tokens, n_heads, head_dim, n_rot, freq_base, freq_scale, with_ff) in cases {
        let p = RopeParams {
            n_tokens,
            n_heads,
            head_dim,
            n_rot,
            style,
            freq_base,
            freq_scale,
        };
        let x = random_f32(&mut r, n_tokens * n_heads * head_dim, 1.0);
        let pos: Vec<u32> = (0..n_tokens).map(|_| r.random_range(0..512)).collect();
        let ff: Vec<f32> = (0..n_rot / 2)
            .map(|_| {
                if with_ff {
                    r.random_range(1.0f32..8.0)
                } else {
                    1.0
                }
            })
            .collect();
        let mut want = x.clone();
        cpu_rope(&mut want, &pos, &ff, &p);
        let xg = ctx.upload_pod("x", &x).unwrap();
        let pg = ctx.upload_pod("pos", &pos).unwrap();
        let fg = ctx.upload_pod("ff", &ff).unwrap();
        let d = ops::prepare_rope(ctx, &xg.buffer, &pg.buffer, &fg.buffer, &p).unwrap();
        ctx.run(&[&d]).unwrap();
        let got = ctx.read_f32(&xg.buffer, 0, x.len() as u64).unwrap();
        let worst = check_close(&format!("rope {p:?}"), &got, &want, |_| ROPE_ABS_TOL);
        eprintln!(
            "rope {style:?} n_rot={n_rot}/{head_dim} ff={with_ff}: worst err = {:.2e}",
            worst * ROPE_ABS_TOL
        );
    }
}

#[test]
fn add_and_swiglu_match_cpu_with_offsets() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(6);
    for n in [1usize, 255, 257, 11008] {
        let (a_off, b_off) = (4usize, 12usize);
        let a = random_f32(&mut r, a_off + n, 6.0);
        let b = random_f32(&mut r, b_off + n, 3.0);
        for swiglu in [false, true] {
            let ag = ctx.upload_pod("a", &a).unwrap();
            let bg = ctx.upload_pod("b", &b).unwrap();
            let d = if swiglu {
                ops::prepare_swiglu(ctx, &ag.buffer, a_off, &bg.buffer, b_off, n).unwrap()
            } else {
                ops::prepare_add(ctx, &ag.buffer, a_off, &bg.buffer, b_off, n).unwrap()
            };
            ctx.run(&[&d]).unwrap();
            let got = ctx.read_f32(&ag.buffer, 0, (a_off + n) as u64).unwrap();
            let want: Vec<f32> = (0..a_off + n)
                .map(|i| {
                    if i < a_off {
                        return a[i];
                    }
                    let (g, u) = (a[i] as f64, b[i - a_off + b_off] as f64);
                    (if swiglu {
                        g / (1.0 + (-g).exp()) * u
                    } else {
                        g + u
                    }) as f32
                })
                .collect();
            check_close(
                &format!("{} n={n}", if swiglu { "swiglu" } else { "add" }),
                &got,
                &want,
                |i| ELEM_REL_TOL * want[i].abs() + 1e-6,
            );
        }
    }
}

#[test]
fn bias_add_repeats_over_rows() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(9);
    let (rows, period) = (5usize, 36usize);
    let a = random_f32(&mut r, rows * period, 4.0);
    let bias = random_f32(&mut r, period, 1.0);
    let ag = ctx.upload_pod("a", &a).unwrap();
    let bg = ctx.upload_pod("bias", &bias).unwrap();
    let d = ops::prepare_add_bias(ctx, &ag.buffer, 0, &bg.buffer, period, rows * period).unwrap();
    ctx.run(&[&d]).unwrap();
    let got = ctx.read_f32(&ag.buffer, 0, a.len() as u64).unwrap();
    let want: Vec<f32> = a
        .iter()
        .enumerate()
        .map(|(i, v)| v + bias[i % period])
        .collect();
    check_close("add_bias", &got, &want, |i| {
        ELEM_REL_TOL * want[i].abs() + 1e-6
    });
}

#[test]
fn argmax_finds_first_maximum_and_ignores_nan() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(7);
    for n in [1usize, 7, 1000, 152_064] {
        let off = 16;
        let mut x = random_f32(&mut r, off + n, 10.0);
        if n > 10 {
            // A tie: the lower index must win. A NaN must not.
            let m = x[off..].iter().fold(f32::MIN, |a, &v| a.max(v)) + 1.0;
            x[off + n / 3] = m;
            x[off + n / 2] = m;
            x[off + 2] = f32::NAN;
        }
        let want = (0..n).fold(
            0usize,
            |best, i| if x[off + i] > x[off + best] { i } else { best },
        );
        let xg = ctx.upload_pod("x", &x).unwrap();
        let out = ctx.zeroed("out", 16).unwrap();
        let d = ops::prepare_argmax(ctx, &xg.buffer, off, n, &out.buffer, 2).unwrap();
        ctx.run(&[&d]).unwrap();
        let got = ctx.read_u32(&out.buffer, 2, 1).unwrap()[0];
        assert_eq!(got as usize, want, "argmax n={n}");
    }
}

#[test]
fn recorded_dispatches_submit_once_and_create_no_buffers() {
    // Its own context so that parallel tests do not move the counters.
    let ctx = match GpuContext::new() {
        Ok(c) => c,
        Err(e) if std::env::var_os("CI").is_some() => panic!("no GPU adapter and CI is set: {e}"),
        Err(e) => return eprintln!("SKIP: no GPU adapter ({e})"),
    };
    let mut r = rng(8);
    let (k, rows) = (256, 20);
    let data = random_weights(&mut r, GgmlType::Q4_K, k, rows);
    let w = GpuWeight::upload(&ctx, "w", GgmlType::Q4_K, k as u64, rows as u64, &data).unwrap();
    let x = ctx.upload_pod("x", &random_f32(&mut r, k, 1.0)).unwrap();
    let y = ctx.zeroed("y", (rows * 4) as u64).unwrap();
    let out = ctx.zeroed("out", 4).unwrap();
    let mut ds = ops::prepare_matvec(&ctx, &w, &x.buffer, 0, &y.buffer, 0, 64, true).unwrap();
    ds.push(ops::prepare_argmax(&ctx, &y.buffer, 0, rows, &out.buffer, 0).unwrap());
    let refs: Vec<&Dispatch> = ds.iter().collect();
    ctx.run(&refs).unwrap(); // warm-up
    let before = ctx.counters().snapshot();
    for _ in 0..3 {
        ctx.run(&refs).unwrap();
    }
    let delta = ctx.counters().snapshot() - before;
    assert_eq!(delta.submits, 3, "one submit per recorded step");
    assert_eq!(delta.buffers_created, 0, "no buffer creation after warm-up");
}

#[test]
fn adapter_info_is_reported() {
    let Some(ctx) = ctx() else { return };
    let info = ctx.info();
    eprintln!("{info}");
    assert!(!info.name.is_empty());
    assert!(
        info.max_storage_buffer_binding_size >= 128 << 20,
        "WebGPU guarantees 128 MiB bindings"
    );
    assert_eq!(
        ctx.max_binding_bytes(),
        info.max_storage_buffer_binding_size
            .min(info.max_buffer_size)
    );
}

#[test]
fn unknown_adapter_name_is_a_typed_error() {
    if ctx().is_none() {
        return;
    }
    let e = GpuContext::with_choice(&AdapterChoice::NameContains("no-such-adapter-zz9".into()))
        .err()
        .expect("must fail");
    assert!(matches!(e, GpuError::AdapterNotFound { .. }), "{e}");
    assert!(e.to_string().contains("no-such-adapter-zz9"), "{e}");
}

#[test]
fn bad_weight_shapes_are_typed_errors() {
    let Some(ctx) = ctx() else { return };
    let e = GpuWeight::upload(ctx, "w", GgmlType::Q4_0, 30, 2, &[0u8; 36])
        .err()
        .expect("k not a block multiple");
    assert!(e.to_string().contains("w"), "{e}");
    assert!(
        GpuWeight::upload(ctx, "w", GgmlType::Q4_0, 32, 2, &[0u8; 35]).is_err(),
        "short data"
    );
    assert!(
        GpuWeight::upload(ctx, "w", GgmlType::Q5_1, 32, 1, &[0u8; 24]).is_err(),
        "no kernel for Q5_1"
    );
    let one_row = 34u64;
    assert!(
        GpuWeight::upload_with_limit(ctx, "w", GgmlType::Q8_0, 64, 1, &[0u8; 68], one_row).is_err(),
        "row > limit"
    );
}

/// GPU vs CPU reference logits on the same weights: max |diff| ≤ this × max(1, max |logit|)
/// (summation order only; the bound tests/gpu_forward.rs uses).
const FORWARD_REL_TOL: f32 = 1e-4;

/// A fixture model whose 2-D tensors are re-quantized to `ty` (the others kept as they are), so
/// that GpuForward loads and runs `ty` in every kernel family: embedding, matmul and matvec.
#[test]
fn forward_runs_models_requantized_to_the_newer_types() {
    use hearth::engine::gpu_forward::{GpuForward, GpuForwardOptions, PrefillKernel};
    use hearth::gguf::{GgufFile, GgufWriter};
    use hearth::reference::ReferenceModel;
    use std::sync::Arc;

    let Some(path) = common::fixture_model("rand-llama-spm-q4_k.gguf") else {
        return;
    };
    let ctx = match GpuContext::new() {
        Ok(c) => Arc::new(c),
        Err(e) if std::env::var_os("CI").is_some() => panic!("no GPU adapter and CI is set: {e}"),
        Err(e) => return eprintln!("SKIP: no GPU adapter ({e})"),
    };
    let src = GgufFile::open(&path).unwrap();
    for ty in [GgmlType::Q5_K, GgmlType::Q5_0, GgmlType::Q4_1] {
        let mut w = GgufWriter::new();
        for (k, v) in src.metadata() {
            w.add_metadata(k.clone(), v.clone());
        }
        let mut n_converted = 0;
        for t in src.tensors() {
            let bytes = src.tensor_data(t);
            let (out_ty, data) = if t.dims.len() == 2 && t.dims[0] % ty.block_elems() as u64 == 0 {
                n_converted += 1;
                let vals =
                    quant::dequantize_to_vec(t.ggml_type, bytes, t.n_elements as usize).unwrap();
                (ty, quant::quantize(ty, &vals).unwrap())
            } else {
                (t.ggml_type, bytes.to_vec())
            };
            w.add_tensor(t.name.clone(), &t.dims, out_ty, data).unwrap();
        }
        assert!(
            n_converted >= 8,
            "{}: only {n_converted} tensors converted",
            ty.name()
        );
        let file = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
        let reference = ReferenceModel::load(&file).unwrap();
        let n_vocab = reference.config().n_vocab;
        let tokens: Vec<u32> = (0..24u32)
            .map(|i| (i * 977 + 13) % n_vocab as u32)
            .collect();
        let mut cache = reference.new_cache(tokens.len());
        let want = reference.forward(&mut cache, &tokens).unwrap();
        let opts = GpuForwardOptions {
            max_ctx: 64,
            max_batch: 32,
            block_size: 16,
            kv_f16: false,
            max_weight_chunk_bytes: None,
            memory_limit_bytes: None,
            prefill: PrefillKernel::Tiled,
            max_sequences: 1,
        };
        let mut gpu = GpuForward::load(ctx.clone(), &file, opts).unwrap();
        // Prefill (matmul) for all but the last token, then one decode step (matvec).
        let mut got = gpu.step(&tokens[..tokens.len() - 1], true).unwrap();
        got.extend(gpu.step(&tokens[tokens.len() - 1..], true).unwrap());
        let scale = want.iter().fold(1.0f32, |a, v| a.max(v.abs()));
        let worst = check_close(&format!("forward {}", ty.name()), &got, &want, |_| {
            FORWARD_REL_TOL * scale
        });
        eprintln!(
            "forward {:5}: {n_converted} tensors, worst err / bound = {worst:.3}",
            ty.name()
        );
    }
}
