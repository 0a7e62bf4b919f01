//! Random tensor data generated directly in its storage format (no f32 round trip and no
//! quantizer), so a 4 GB 7B-shaped model takes seconds. Values are roughly N(0, std²):
//! uniform integer quants with the block scale chosen for that spread.

use half::f16;
use rand::{Rng, RngCore};

use crate::quant::{GgmlType, pack_scale_min_k4};

/// What the values of a tensor should look like.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fill {
    /// ≈ N(0, std²).
    Normal { std: f32 },
    /// 1 + N(0, std²) (norm weights).
    AroundOne { std: f32 },
}

/// Types `fill` can generate.
pub(crate) fn can_generate(ty: GgmlType) -> bool {
    matches!(
        ty,
        GgmlType::F32 | GgmlType::F16 | GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q4_K
    )
}

/// Fills `out` (whole blocks of `ty`) with random values.
pub(crate) fn fill(ty: GgmlType, fill: Fill, rng: &mut impl RngCore, out: &mut [u8]) {
    let (std, mean) = match fill {
        Fill::Normal { std } => (std, 0.0),
        Fill::AroundOne { std } => (std, 1.0),
    };
    match ty {
        GgmlType::F32 => {
            for v in out.chunks_exact_mut(4) {
                v.copy_from_slice(&(mean + std * normal(rng)).to_le_bytes());
            }
        }
        GgmlType::F16 => {
            for v in out.chunks_exact_mut(2) {
                v.copy_from_slice(&f16::from_f32(mean + std * normal(rng)).to_le_bytes());
            }
        }
        // Integer quants are zero-mean; `AroundOne` is only used for F32 norms.
        GgmlType::Q8_0 => quant_blocks(rng, out, 34, |rng, b| {
            // qs uniform over i8: std = sqrt((256² - 1) / 12) ≈ 73.9.
            set_f16(b, 0, std / 73.9 * scale_jitter(rng));
        }),
        GgmlType::Q4_0 => quant_blocks(rng, out, 18, |rng, b| {
            // nibbles - 8 uniform over -8..=7: std ≈ 4.61.
            set_f16(b, 0, std / 4.61 * scale_jitter(rng));
        }),
        GgmlType::Q4_K => quant_blocks(rng, out, 144, |rng, b| {
            // x = d·sc·q − dmin·m per 32-value sub-block; m = sc and dmin = 7.5·d centre q
            // (uniform 0..=15, std 4.61) on zero. Six-bit sc drawn from 32..=63 (mean ≈ 47.5).
            let d = std / (47.5 * 4.61) * scale_jitter(rng).abs();
            set_f16(b, 0, d);
            set_f16(b, 2, 7.5 * d);
            let sc: [u8; 8] = std::array::from_fn(|_| rng.random_range(32..=63));
            b[4..16].copy_from_slice(&pack_scale_min_k4(&sc, &sc));
        }),
        other => unreachable!("fill() called for {other}, which can_generate() rejects"),
    }
}

/// Random bytes for whole blocks, then `fix` sets each block's scales.
fn quant_blocks<R: RngCore>(
    rng: &mut R,
    out: &mut [u8],
    block_bytes: usize,
    mut fix: impl FnMut(&mut R, &mut [u8]),
) {
    rng.fill_bytes(out);
    for b in out.chunks_exact_mut(block_bytes) {
        fix(rng, b);
    }
}

fn set_f16(b: &mut [u8], at: usize, v: f32) {
    b[at..at + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
}

/// ±(0.75..1.25): block scales vary a little, as real ones do, and a random sign cancels the
/// −0.5 mean of the unsigned-offset quants (q − 8 spans −8..=7).
fn scale_jitter(rng: &mut impl RngCore) -> f32 {
    let magnitude = rng.random_range(0.75..1.25);
    if rng.random::<bool>() {
        magnitude
    } else {
        -magnitude
    }
}

/// ≈ N(0, 1) by Irwin–Hall (sum of 4 uniforms): plain arithmetic, so the bytes are the same on
/// every platform, unlike Box–Muller's libm calls.
fn normal(rng: &mut impl RngCore) -> f32 {
    let s: f32 = (0..4).map(|_| rng.random::<f32>()).sum();
    (s - 2.0) * 3f32.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn generated_values_have_the_requested_spread() {
        for ty in [
            GgmlType::F32,
            GgmlType::F16,
            GgmlType::Q8_0,
            GgmlType::Q4_0,
            GgmlType::Q4_K,
        ] {
            let n = 256 * 64;
            let mut bytes = vec![0u8; ty.bytes_for(n as u64).unwrap() as usize];
            fill(
                ty,
                Fill::Normal { std: 0.02 },
                &mut ChaCha8Rng::seed_from_u64(7),
                &mut bytes,
            );
            let v = crate::quant::dequantize_to_vec(ty, &bytes, n).unwrap();
            let mean = v.iter().sum::<f32>() / n as f32;
            let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n as f32).sqrt();
            // 20% on the spread: the scale jitter and the Irwin–Hall shape move it a little.
            assert!(mean.abs() < 0.002, "{ty}: mean {mean}");
            assert!((std - 0.02).abs() < 0.004, "{ty}: std {std}");
        }
    }
}
