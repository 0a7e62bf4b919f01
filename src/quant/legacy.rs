//! The 32-element "legacy" formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0.
//!
//! Ports of ggml's `dequantize_row_*` and `quantize_row_*_ref` (ggml-quants.c), with the same
//! float operations in the same order, so that re-quantizing reproduces llama.cpp's bytes.

use super::blocks::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, F16Le, QK};
use super::codec::{dequantize_blocks, quantize_blocks};

const HALF: usize = QK / 2;

pub(crate) fn dequantize_q4_0(data: &[u8], out: &mut [f32]) {
    dequantize_blocks(data, out, |b: &BlockQ4_0, y: &mut [f32; QK]| {
        let d = b.d.to_f32();
        for j in 0..HALF {
            y[j] = ((b.qs[j] & 0x0F) as i32 - 8) as f32 * d;
            y[j + HALF] = ((b.qs[j] >> 4) as i32 - 8) as f32 * d;
        }
    });
}

pub(crate) fn dequantize_q4_1(data: &[u8], out: &mut [f32]) {
    dequantize_blocks(data, out, |b: &BlockQ4_1, y: &mut [f32; QK]| {
        let (d, m) = (b.d.to_f32(), b.m.to_f32());
        for j in 0..HALF {
            y[j] = (b.qs[j] & 0x0F) as f32 * d + m;
            y[j + HALF] = (b.qs[j] >> 4) as f32 * d + m;
        }
    });
}

/// The 5-bit values of a Q5 block, 0..32, in element order.
fn q5_values(qh: [u8; 4], qs: &[u8; HALF]) -> [u8; QK] {
    let qh = u32::from_le_bytes(qh);
    let mut v = [0u8; QK];
    for j in 0..HALF {
        let hi0 = (((qh >> j) << 4) & 0x10) as u8;
        let hi1 = ((qh >> (j + 12)) & 0x10) as u8;
        v[j] = (qs[j] & 0x0F) | hi0;
        v[j + HALF] = (qs[j] >> 4) | hi1;
    }
    v
}

pub(crate) fn dequantize_q5_0(data: &[u8], out: &mut [f32]) {
    dequantize_blocks(data, out, |b: &BlockQ5_0, y: &mut [f32; QK]| {
        let d = b.d.to_f32();
        for (o, q) in y.iter_mut().zip(q5_values(b.qh, &b.qs)) {
            *o = (q as i32 - 16) as f32 * d;
        }
    });
}

pub(crate) fn dequantize_q5_1(data: &[u8], out: &mut [f32]) {
    dequantize_blocks(data, out, |b: &BlockQ5_1, y: &mut [f32; QK]| {
        let (d, m) = (b.d.to_f32(), b.m.to_f32());
        for (o, q) in y.iter_mut().zip(q5_values(b.qh, &b.qs)) {
            *o = q as f32 * d + m;
        }
    });
}

pub(crate) fn dequantize_q8_0(data: &[u8], out: &mut [f32]) {
    dequantize_blocks(data, out, |b: &BlockQ8_0, y: &mut [f32; QK]| {
        let d = b.d.to_f32();
        for (o, q) in y.iter_mut().zip(b.qs) {
            *o = q as f32 * d;
        }
    });
}

/// The value of largest magnitude (the first one on ties), as ggml picks it.
fn signed_absmax(x: &[f32; QK]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

fn min_max(x: &[f32; QK]) -> (f32, f32) {
    x.iter().fold((f32::MAX, -f32::MAX), |(lo, hi), &v| {
        (if v < lo { v } else { lo }, if v > hi { v } else { hi })
    })
}

fn inverse(d: f32) -> f32 {
    if d != 0.0 { 1.0 / d } else { 0.0 }
}

/// Packs 32 values 0..16 as ggml does: element j in the low nibble of byte j, j+16 in the high.
fn pack_nibbles(l: &[u8; QK]) -> [u8; HALF] {
    std::array::from_fn(|j| (l[j] & 0x0F) | ((l[j + HALF] & 0x0F) << 4))
}

/// The 5th bits of 32 values as Q5's little-endian `qh`.
fn pack_high_bits(l: &[u8; QK]) -> [u8; 4] {
    let qh = l
        .iter()
        .enumerate()
        .fold(0u32, |acc, (j, &q)| acc | (((q as u32 & 0x10) >> 4) << j));
    qh.to_le_bytes()
}

/// `(int8_t)(v)` clamped above as in ggml's `MIN(15, (int8_t)(x + 8.5f))`.
fn trunc_min(v: f32, max: i8) -> u8 {
    (v as i8).min(max) as u8
}

pub(crate) fn quantize_q4_0(src: &[f32], out: &mut Vec<u8>) {
    quantize_blocks(src, out, |x: &[f32; QK]| {
        let d = signed_absmax(x) / -8.0;
        let id = inverse(d);
        let l: [u8; QK] = std::array::from_fn(|j| trunc_min(x[j] * id + 8.5, 15));
        BlockQ4_0 {
            d: F16Le::from_f32(d),
            qs: pack_nibbles(&l),
        }
    });
}

pub(crate) fn quantize_q4_1(src: &[f32], out: &mut Vec<u8>) {
    quantize_blocks(src, out, |x: &[f32; QK]| {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = inverse(d);
        let l: [u8; QK] = std::array::from_fn(|j| trunc_min((x[j] - min) * id + 0.5, 15));
        BlockQ4_1 {
            d: F16Le::from_f32(d),
            m: F16Le::from_f32(min),
            qs: pack_nibbles(&l),
        }
    });
}

pub(crate) fn quantize_q5_0(src: &[f32], out: &mut Vec<u8>) {
    quantize_blocks(src, out, |x: &[f32; QK]| {
        let d = signed_absmax(x) / -16.0;
        let id = inverse(d);
        let l: [u8; QK] = std::array::from_fn(|j| trunc_min(x[j] * id + 16.5, 31));
        BlockQ5_0 {
            d: F16Le::from_f32(d),
            qh: pack_high_bits(&l),
            qs: pack_nibbles(&l),
        }
    });
}

pub(crate) fn quantize_q5_1(src: &[f32], out: &mut Vec<u8>) {
    quantize_blocks(src, out, |x: &[f32; QK]| {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = inverse(d);
        // ggml casts straight to uint8_t here (no clamp); values stay within 0..=31.
        let l: [u8; QK] = std::array::from_fn(|j| ((x[j] - min) * id + 0.5) as u8);
        BlockQ5_1 {
            d: F16Le::from_f32(d),
            m: F16Le::from_f32(min),
            qh: pack_high_bits(&l),
            qs: pack_nibbles(&l),
        }
    });
}

pub(crate) fn quantize_q8_0(src: &[f32], out: &mut Vec<u8>) {
    quantize_blocks(src, out, |x: &[f32; QK]| {
        let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = inverse(d);
        // roundf: halves away from zero, like Rust's `round`.
        BlockQ8_0 {
            d: F16Le::from_f32(d),
            qs: std::array::from_fn(|j| (x[j] * id).round() as i8),
        }
    });
}
