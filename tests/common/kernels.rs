//! Shared by the GPU kernel tests: the adapter (skip or fail when there is none), seeded
//! random inputs, the CPU oracles and the tolerances they are checked with.

use std::sync::OnceLock;

use hearth::gpu::{Dispatch, GpuContext};
use hearth::quant::{self, GgmlType};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Matvec/matmul: |gpu - cpu| ≤ DOT_REL_TOL × Σ|w_i·x_i| (+ 1e-6): both sum the same f32
/// products in a different order, so the error is a few f32 ulps of the L1 mass.
pub const DOT_REL_TOL: f32 = 1e-5;
/// Embedding rows: |gpu - cpu| ≤ EMBED_TOL × max|row| (one or two f32 roundings per value).
pub const EMBED_TOL: f32 = 1e-6;
/// RMSNorm: relative error per element (f32 sum of squares vs an f64 oracle).
pub const NORM_REL_TOL: f32 = 1e-5;
/// RoPE: absolute error on unit-scale inputs at positions < 512. lavapipe measures ≤ 4e-5;
/// the bound leaves room for GPUs whose sin/cos only meet WGSL's 2^-11 absolute accuracy.
pub const ROPE_ABS_TOL: f32 = 2e-3;
/// Add and SwiGLU: relative error (one add / exp+div+mul in f32).
pub const ELEM_REL_TOL: f32 = 1e-5;

pub fn ctx() -> Option<&'static GpuContext> {
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

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn random_f32(r: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| r.random_range(-scale..scale)).collect()
}

/// Weights of `ty` made by quantizing random values, as the GGUF bytes.
pub fn random_weights(r: &mut ChaCha8Rng, ty: GgmlType, k: usize, rows: usize) -> Vec<u8> {
    let vals = random_f32(r, k * rows, 1.0);
    quant::quantize(ty, &vals).expect("quantize")
}

pub fn run_all(ctx: &GpuContext, ds: &[Dispatch]) {
    ctx.run(&ds.iter().collect::<Vec<_>>()).expect("run");
}

pub fn check_close(what: &str, got: &[f32], want: &[f32], bound: impl Fn(usize) -> f32) -> f32 {
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
pub fn cpu_matvec(
    ty: GgmlType,
    data: &[u8],
    k: usize,
    rows: usize,
    x: &[f32],
) -> (Vec<f32>, Vec<f32>) {
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

/// Every type with GPU kernels: the engine's own list.
#[allow(unused_imports)] // not every test binary uses it
pub use hearth::gpu::GPU_TYPES as TYPES;

/// (k, rows) shapes valid for `ty`: odd row counts, k not a power of two.
pub fn shapes(ty: GgmlType) -> Vec<(usize, usize)> {
    match ty.block_elems() {
        1 => vec![(4, 3), (100, 17), (1028, 9), (64, 129)],
        32 => vec![(32, 1), (96, 7), (160, 65), (1056, 3)],
        _ => vec![(256, 33), (768, 67), (1280, 5)],
    }
}
