//! K-quants: 256-value super-blocks with quantized per-group scales (Q2_K … Q6_K).
//!
//! Ports of ggml's `dequantize_row_q{2..6}_K` and `quantize_row_q{4,5,6}_K_ref`
//! (ggml-quants.c), keeping ggml's float operations and order so re-quantized bytes match.

use super::blocks::{BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K, BlockQ6K, F16Le, QK_K};
use super::codec::{dequantize_blocks, quantize_blocks};
use super::kquant_fit::{
    GROUP_MAX_EPS, Qkx2Search, make_q3_quants, make_qkx2_quants, make_qx_quants, nearest_int,
};

/// Scale and min (both 6 bits) of group `j` (0..8) from Q4_K/Q5_K's 12 packed bytes
/// (ggml's `get_scale_min_k4`): groups 0..4 use the low 6 bits of bytes j and j+4; groups
/// 4..8 take 4 bits from byte j+4 and their top 2 bits from the spare high bits of bytes
/// j-4 (scale) and j (min).
pub fn scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        let j = j & 7;
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Inverse of [`scale_min_k4`]: packs 8 six-bit scales and mins (values above 63 are clipped).
pub fn pack_scale_min_k4(scales: &[u8; 8], mins: &[u8; 8]) -> [u8; 12] {
    let mut q = [0u8; 12];
    for j in 0..8 {
        let (ls, lm) = (scales[j].min(63), mins[j].min(63));
        if j < 4 {
            q[j] |= ls;
            q[j + 4] |= lm;
        } else {
            q[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            q[j - 4] |= (ls >> 4) << 6;
            q[j] |= (lm >> 4) << 6;
        }
    }
    q
}

/// The 16 signed scales of a Q3_K block (6 bits each, stored with a +32 bias).
fn q3k_scales(s: &[u8; 12]) -> [i8; 16] {
    std::array::from_fn(|j| {
        let low = if j < 8 { s[j] & 0xF } else { s[j - 8] >> 4 };
        let high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        (low | (high << 4)) as i8 - 32
    })
}

pub(crate) fn dequantize_q2_k(data: &[u8], out: &mut [f32]) {
    dequantize_blocks(data, out, |b: &BlockQ2K, y: &mut [f32; QK_K]| {
        let (d, min) = (b.d.to_f32(), b.dmin.to_f32());
        // Each 128-value half uses 32 bytes of qs; 2-bit planes at shifts 0,2,4,6 each give
        // 32 values (two groups of 16 with their own scale byte).
        for (half, (q, ys)) in
            b.qs.chunks_exact(32)
                .zip(y.chunks_exact_mut(128))
                .enumerate()
        {
            for (plane, ys) in ys.chunks_exact_mut(32).enumerate() {
                let shift = 2 * plane;
                for (g, ys) in ys.chunks_exact_mut(16).enumerate() {
                    let sc = b.scales[half * 8 + plane * 2 + g];
                    let dl = d * (sc & 0xF) as f32;
                    let ml = min * (sc >> 4) as f32;
                    for (o, &qb) in ys.iter_mut().zip(&q[g * 16..g * 16 + 16]) {
                        *o = dl * ((qb >> shift) & 3) as f32 - ml;
                    }
                }
            }
        }
    });
}

pub(crate) fn dequantize_q3_k(data: &[u8], out: &mut [f32]) {
    dequantize_blocks(data, out, |b: &BlockQ3K, y: &mut [f32; QK_K]| {
        let d_all = b.d.to_f32();
        let scales = q3k_scales(&b.scales);
        for (half, (q, ys)) in
            b.qs.chunks_exact(32)
                .zip(y.chunks_exact_mut(128))
                .enumerate()
        {
            for (plane, ys) in ys.chunks_exact_mut(32).enumerate() {
                let shift = 2 * plane;
                let mask = 1u8 << (half * 4 + plane);
                for (g, ys) in ys.chunks_exact_mut(16).enumerate() {
                    let dl = d_all * scales[half * 8 + plane * 2 + g] as f32;
                    let lanes = g * 16..g * 16 + 16;
                    for ((o, &qb), &hb) in ys.iter_mut().zip(&q[lanes.clone()]).zip(&b.hmask[lanes])
                    {
                        let low = ((qb >> shift) & 3) as i32;
                        let sub = if hb & mask != 0 { 0 } else { 4 };
                        *o = dl * (low - sub) as f32;
                    }
                }
            }
        }
    });
}

pub(crate) fn dequantize_q4_k(data: &[u8], out: &mut [f32]) {
    dequantize_blocks(data, out, |b: &BlockQ4K, y: &mut [f32; QK_K]| {
        let (d, min) = (b.d.to_f32(), b.dmin.to_f32());
        for (j, (q, ys)) in
            b.qs.chunks_exact(32)
                .zip(y.chunks_exact_mut(64))
                .enumerate()
        {
            let (sc1, m1) = scale_min_k4(2 * j, &b.scales);
            let (sc2, m2) = scale_min_k4(2 * j + 1, &b.scales);
            let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
            let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
            let (lo, hi) = ys.split_at_mut(32);
            for ((a, b), &qb) in lo.iter_mut().zip(hi.iter_mut()).zip(q) {
                *a = d1 * (qb & 0xF) as f32 - m1;
                *b = d2 * (qb >> 4) as f32 - m2;
            }
        }
    });
}

pub(crate) fn dequantize_q5_k(data: &[u8], out: &mut [f32]) {
    dequantize_blocks(data, out, |b: &BlockQ5K, y: &mut [f32; QK_K]| {
        let (d, min) = (b.d.to_f32(), b.dmin.to_f32());
        for (j, (ql, ys)) in
            b.qs.chunks_exact(32)
                .zip(y.chunks_exact_mut(64))
                .enumerate()
        {
            let (sc1, m1) = scale_min_k4(2 * j, &b.scales);
            let (sc2, m2) = scale_min_k4(2 * j + 1, &b.scales);
            let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
            let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
            let (u1, u2) = (1u8 << (2 * j), 2u8 << (2 * j));
            let (lo, hi) = ys.split_at_mut(32);
            for (((a, b), &qb), &h) in lo.iter_mut().zip(hi.iter_mut()).zip(ql).zip(&b.qh) {
                let q1 = (qb & 0xF) + if h & u1 != 0 { 16 } else { 0 };
                let q2 = (qb >> 4) + if h & u2 != 0 { 16 } else { 0 };
                *a = d1 * q1 as f32 - m1;
                *b = d2 * q2 as f32 - m2;
            }
        }
    });
}

pub(crate) fn dequantize_q6_k(data: &[u8], out: &mut [f32]) {
    dequantize_blocks(data, out, |b: &BlockQ6K, y: &mut [f32; QK_K]| {
        let d = b.d.to_f32();
        // Each 128-value half: 64 bytes of ql (low nibbles, then high nibbles), 32 of qh
        // (four 2-bit planes) and 8 scales (one per 16 values).
        for (n, ys) in y.chunks_exact_mut(128).enumerate() {
            let ql = &b.ql[64 * n..64 * n + 64];
            let qh = &b.qh[32 * n..32 * n + 32];
            let sc = &b.scales[8 * n..8 * n + 8];
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
                let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                ys[l] = d * sc[is] as f32 * q1 as f32;
                ys[l + 32] = d * sc[is + 2] as f32 * q2 as f32;
                ys[l + 64] = d * sc[is + 4] as f32 * q3 as f32;
                ys[l + 96] = d * sc[is + 6] as f32 * q4 as f32;
            }
        }
    });
}

/// The shared scale search of Q4_K and Q5_K (`quantize_row_q{4,5}_K_ref`): per group of 32,
/// fit scale/min with weights `rms + |x|`, quantize those to 6 bits against the block maxima,
/// then recompute each value's level against the stored (rounded) scales.
/// Returns (d, dmin, packed scales, levels 0..=nmax).
fn fit_scale_min_blocks(
    x: &[f32; QK_K],
    search: &Qkx2Search,
) -> (F16Le, F16Le, [u8; 12], [u8; QK_K]) {
    let mut levels = [0u8; QK_K];
    let mut scales = [0.0f32; 8];
    let mut mins = [0.0f32; 8];
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for j in 0..8 {
        let group: [f32; 32] = sub_array(x, 32 * j);
        let sum_x2 = group.iter().fold(0.0f32, |s, v| s + v * v);
        let av_x = (sum_x2 / 32.0).sqrt();
        let weights: [f32; 32] = std::array::from_fn(|l| av_x + group[l].abs());
        let mut l = [0u8; 32];
        (scales[j], mins[j]) = make_qkx2_quants(search, &group, &weights, &mut l);
        levels[32 * j..32 * j + 32].copy_from_slice(&l);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    // `as u8` wraps like ggml's int -> uint8_t assignment before its MIN(63, ...).
    let ls: [u8; 8] = std::array::from_fn(|j| (nearest_int(inv_scale * scales[j]) as u8).min(63));
    let lm: [u8; 8] = std::array::from_fn(|j| (nearest_int(inv_min * mins[j]) as u8).min(63));
    let packed = pack_scale_min_k4(&ls, &lm);
    let d = F16Le::from_f32(max_scale / 63.0);
    let dmin = F16Le::from_f32(max_min / 63.0);
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, &packed);
        let dj = d.to_f32() * sc as f32;
        if dj == 0.0 {
            continue;
        }
        let dm = dmin.to_f32() * m as f32;
        for ii in 32 * j..32 * j + 32 {
            levels[ii] = nearest_int((x[ii] + dm) / dj).clamp(0, search.nmax) as u8;
        }
    }
    (d, dmin, packed, levels)
}

/// A copy of `N` values of `x` from `start` (callers keep start + N within the block).
fn sub_array<const N: usize>(x: &[f32; QK_K], start: usize) -> [f32; N] {
    std::array::from_fn(|i| x[start + i])
}

pub(crate) fn quantize_q4_k(src: &[f32], out: &mut Vec<u8>) {
    let search = Qkx2Search {
        nmax: 15,
        rmin: -1.0,
        rdelta: 0.1,
        nstep: 20,
        use_mad: false,
    };
    quantize_blocks(src, out, |x: &[f32; QK_K]| {
        let (d, dmin, scales, l) = fit_scale_min_blocks(x, &search);
        let mut qs = [0u8; QK_K / 2];
        for (j, q) in qs.chunks_exact_mut(32).enumerate() {
            for (i, qb) in q.iter_mut().enumerate() {
                *qb = l[64 * j + i] | (l[64 * j + i + 32] << 4);
            }
        }
        BlockQ4K {
            d,
            dmin,
            scales,
            qs,
        }
    });
}

pub(crate) fn quantize_q5_k(src: &[f32], out: &mut Vec<u8>) {
    let search = Qkx2Search {
        nmax: 31,
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: false,
    };
    quantize_blocks(src, out, |x: &[f32; QK_K]| {
        let (d, dmin, scales, l) = fit_scale_min_blocks(x, &search);
        let mut qs = [0u8; QK_K / 2];
        let mut qh = [0u8; QK_K / 8];
        for (j, q) in qs.chunks_exact_mut(32).enumerate() {
            let (m1, m2) = (1u8 << (2 * j), 2u8 << (2 * j));
            for (i, qb) in q.iter_mut().enumerate() {
                let (l1, l2) = (l[64 * j + i], l[64 * j + i + 32]);
                if l1 > 15 {
                    qh[i] |= m1;
                }
                if l2 > 15 {
                    qh[i] |= m2;
                }
                *qb = (l1 & 0xF) | ((l2 & 0xF) << 4);
            }
        }
        BlockQ5K {
            d,
            dmin,
            scales,
            qh,
            qs,
        }
    });
}

pub(crate) fn quantize_q6_k(src: &[f32], out: &mut Vec<u8>) {
    quantize_blocks(src, out, |x: &[f32; QK_K]| {
        let mut l = [0i8; QK_K];
        let mut scales = [0.0f32; 16];
        let (mut max_scale, mut max_abs_scale) = (0.0f32, 0.0f32);
        for ib in 0..16 {
            let mut group = [0i8; 16];
            scales[ib] = make_qx_quants(32, &sub_array(x, 16 * ib), &mut group);
            l[16 * ib..16 * ib + 16].copy_from_slice(&group);
            if scales[ib].abs() > max_abs_scale {
                max_abs_scale = scales[ib].abs();
                max_scale = scales[ib];
            }
        }
        if max_abs_scale < GROUP_MAX_EPS {
            return bytemuck::Zeroable::zeroed();
        }
        let iscale = -128.0 / max_scale;
        let d = F16Le::from_f32(1.0 / iscale);
        // MIN(127, ...) then ggml's int -> int8_t wrap.
        let sc: [i8; 16] =
            std::array::from_fn(|ib| nearest_int(iscale * scales[ib]).min(127) as i8);
        for (j, &scale) in sc.iter().enumerate() {
            let dj = d.to_f32() * scale as f32;
            if dj == 0.0 {
                continue;
            }
            for ii in 16 * j..16 * j + 16 {
                l[ii] = (nearest_int(x[ii] / dj).clamp(-32, 31) + 32) as i8;
            }
        }
        let mut block = BlockQ6K {
            ql: [0; QK_K / 2],
            qh: [0; QK_K / 4],
            scales: sc,
            d,
        };
        let lv = |i: usize| l[i] as u8;
        for n in 0..2 {
            let (base, ql, qh) = (
                128 * n,
                &mut block.ql[64 * n..64 * n + 64],
                &mut block.qh[32 * n..32 * n + 32],
            );
            for i in 0..32 {
                let q = [
                    lv(base + i),
                    lv(base + i + 32),
                    lv(base + i + 64),
                    lv(base + i + 96),
                ];
                ql[i] = (q[0] & 0xF) | ((q[2] & 0xF) << 4);
                ql[i + 32] = (q[1] & 0xF) | ((q[3] & 0xF) << 4);
                qh[i] = (q[0] >> 4) | ((q[1] >> 4) << 2) | ((q[2] >> 4) << 4) | ((q[3] >> 4) << 6);
            }
        }
        block
    });
}

/// Packs 256 two-bit levels as Q2_K/Q3_K's `qs`: per 128-value half, byte l holds values
/// l, l+32, l+64, l+96 at bit offsets 0, 2, 4, 6.
fn pack_2bit(l: &[u8; QK_K]) -> [u8; QK_K / 4] {
    std::array::from_fn(|i| {
        let (half, lane) = (i / 32, i % 32);
        let base = 128 * half + lane;
        (l[base] & 3)
            | ((l[base + 32] & 3) << 2)
            | ((l[base + 64] & 3) << 4)
            | ((l[base + 96] & 3) << 6)
    })
}

pub(crate) fn quantize_q2_k(src: &[f32], out: &mut Vec<u8>) {
    let search = Qkx2Search {
        nmax: 3,
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: true,
    };
    quantize_blocks(src, out, |x: &[f32; QK_K]| {
        let mut levels = [0u8; QK_K];
        let mut scales = [0.0f32; 16];
        let mut mins = [0.0f32; 16];
        let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
        for j in 0..16 {
            let group: [f32; 16] = sub_array(x, 16 * j);
            let weights = group.map(f32::abs);
            let mut l = [0u8; 16];
            (scales[j], mins[j]) = make_qkx2_quants(&search, &group, &weights, &mut l);
            levels[16 * j..16 * j + 16].copy_from_slice(&l);
            if scales[j] > max_scale {
                max_scale = scales[j];
            }
            if mins[j] > max_min {
                max_min = mins[j];
            }
        }
        let mut block = BlockQ2K {
            scales: [0; 16],
            qs: [0; QK_K / 4],
            d: F16Le::from_f32(0.0),
            dmin: F16Le::from_f32(0.0),
        };
        if max_scale > 0.0 {
            let iscale = 15.0 / max_scale;
            // `as u8` wraps like ggml's int -> uint8_t stores.
            block.scales = std::array::from_fn(|j| nearest_int(iscale * scales[j]) as u8);
            block.d = F16Le::from_f32(max_scale / 15.0);
        }
        if max_min > 0.0 {
            let iscale = 15.0 / max_min;
            for (s, m) in block.scales.iter_mut().zip(mins) {
                *s |= (nearest_int(iscale * m) << 4) as u8;
            }
            block.dmin = F16Le::from_f32(max_min / 15.0);
        }
        for (j, &sc) in block.scales.iter().enumerate() {
            let d = block.d.to_f32() * (sc & 0xF) as f32;
            if d == 0.0 {
                continue;
            }
            let dm = block.dmin.to_f32() * (sc >> 4) as f32;
            for ii in 16 * j..16 * j + 16 {
                levels[ii] = nearest_int((x[ii] + dm) / d).clamp(0, 3) as u8;
            }
        }
        block.qs = pack_2bit(&levels);
        block
    });
}

pub(crate) fn quantize_q3_k(src: &[f32], out: &mut Vec<u8>) {
    quantize_blocks(src, out, |x: &[f32; QK_K]| {
        let mut levels = [0i8; QK_K];
        let mut scales = [0.0f32; 16];
        let (mut max_scale, mut amax) = (0.0f32, 0.0f32);
        for j in 0..16 {
            let mut l = [0i8; 16];
            scales[j] = make_q3_quants(4, &sub_array(x, 16 * j), &mut l);
            levels[16 * j..16 * j + 16].copy_from_slice(&l);
            if scales[j].abs() > amax {
                amax = scales[j].abs();
                max_scale = scales[j];
            }
        }
        let mut packed = [0u8; 12];
        let mut d = F16Le::from_f32(0.0);
        if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            for (j, &s) in scales.iter().enumerate() {
                // ggml: int8_t l = nearest_int(...) (wrapping), then clamp to -32..=31, +32.
                let l = ((nearest_int(iscale * s) as i8).clamp(-32, 31) + 32) as u8;
                if j < 8 {
                    packed[j] = l & 0xF;
                } else {
                    packed[j - 8] |= (l & 0xF) << 4;
                }
                packed[8 + j % 4] |= (l >> 4) << (2 * (j / 4));
            }
            d = F16Le::from_f32(1.0 / iscale);
        }
        for (j, sc) in q3k_scales(&packed).into_iter().enumerate() {
            let dj = d.to_f32() * sc as f32;
            if dj == 0.0 {
                continue;
            }
            for ii in 16 * j..16 * j + 16 {
                levels[ii] = (nearest_int(x[ii] / dj).clamp(-4, 3) + 4) as i8;
            }
        }
        // Value j's high bit goes to hmask[j % 32], bit j / 32.
        let mut hmask = [0u8; QK_K / 8];
        let mut low = [0u8; QK_K];
        for (j, &l) in levels.iter().enumerate() {
            let mut l = l as u8;
            if l > 3 {
                hmask[j % 32] |= 1 << (j / 32);
                l -= 4;
            }
            low[j] = l;
        }
        BlockQ3K {
            hmask,
            qs: pack_2bit(&low),
            scales: packed,
            d,
        }
    });
}
