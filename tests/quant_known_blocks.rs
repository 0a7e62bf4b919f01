//! Hand-built blocks decode to the values the documented layouts (ggml-common.h, the
//! `dequantize_row_*` loops) say. Expected values are computed here per element from the
//! layout description, independently of the library's block loops. Exact equality: every
//! value is a small integer times a power-of-two scale, so no rounding is involved.
#![allow(clippy::needless_range_loop)] // element indices are what the layouts talk about

use hearth::quant::blocks::*;
use hearth::quant::{GgmlType, dequantize_to_vec, pack_scale_min_k4, scale_min_k4};

/// Deterministic pseudo-random bytes (xorshift).
fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

fn decode(ty: GgmlType, block: &[u8]) -> Vec<f32> {
    dequantize_to_vec(ty, block, ty.block_elems()).unwrap()
}

#[test]
fn float_types_decode_little_endian() {
    let f32s = [1.5f32, -0.0, 65504.0, f32::MIN_POSITIVE];
    let raw: Vec<u8> = f32s.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(dequantize_to_vec(GgmlType::F32, &raw, 4).unwrap(), f32s);
    // f16 0x3C00 = 1.0, 0xC000 = -2.0, 0x7BFF = 65504, 0x0001 = 2^-24 (subnormal).
    let raw = [0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B, 0x01, 0x00];
    assert_eq!(
        dequantize_to_vec(GgmlType::F16, &raw, 4).unwrap(),
        [1.0, -2.0, 65504.0, 2f32.powi(-24)]
    );
    // bf16 is the top half of an f32: 0x3F80 = 1.0, 0xC040 = -3.0.
    let raw = [0x80, 0x3F, 0x40, 0xC0];
    assert_eq!(
        dequantize_to_vec(GgmlType::BF16, &raw, 2).unwrap(),
        [1.0, -3.0]
    );
}

#[test]
fn q4_0_nibbles_0_to_15_with_d_half() {
    // Byte j: low nibble j (element j), high nibble 15 - j (element j + 16).
    let qs: [u8; 16] = std::array::from_fn(|j| j as u8 | ((15 - j as u8) << 4));
    let b = BlockQ4_0 {
        d: F16Le::from_f32(0.5),
        qs,
    };
    let got = decode(GgmlType::Q4_0, bytemuck::bytes_of(&b));
    let want: Vec<f32> = (0..16)
        .map(|j| (j as f32 - 8.0) * 0.5)
        .chain((0..16).map(|j| (7.0 - j as f32) * 0.5))
        .collect();
    assert_eq!(got, want);
    assert_eq!((got[0], got[15], got[16]), (-4.0, 3.5, 3.5));
}

#[test]
fn q4_1_adds_the_min() {
    let qs: [u8; 16] = std::array::from_fn(|j| j as u8 | ((15 - j as u8) << 4));
    let b = BlockQ4_1 {
        d: F16Le::from_f32(0.25),
        m: F16Le::from_f32(-1.0),
        qs,
    };
    let got = decode(GgmlType::Q4_1, bytemuck::bytes_of(&b));
    for j in 0..16 {
        assert_eq!(got[j], j as f32 * 0.25 - 1.0);
        assert_eq!(got[j + 16], (15 - j) as f32 * 0.25 - 1.0);
    }
}

#[test]
fn q5_high_bits_come_from_qh_bit_j() {
    let qh = 0xA5C3_0F96u32;
    let qs: [u8; 16] = std::array::from_fn(|j| (j as u8 * 7) & 0xF | (((j as u8 * 3) & 0xF) << 4));
    let five_bit = |j: usize| {
        let low = if j < 16 { qs[j] & 0xF } else { qs[j - 16] >> 4 };
        (low | (((qh >> j) & 1) as u8) << 4) as f32
    };
    let b0 = BlockQ5_0 {
        d: F16Le::from_f32(0.125),
        qh: qh.to_le_bytes(),
        qs,
    };
    let b1 = BlockQ5_1 {
        d: F16Le::from_f32(2.0),
        m: F16Le::from_f32(-3.0),
        qh: qh.to_le_bytes(),
        qs,
    };
    let got0 = decode(GgmlType::Q5_0, bytemuck::bytes_of(&b0));
    let got1 = decode(GgmlType::Q5_1, bytemuck::bytes_of(&b1));
    for j in 0..32 {
        assert_eq!(got0[j], (five_bit(j) - 16.0) * 0.125, "Q5_0 element {j}");
        assert_eq!(got1[j], five_bit(j) * 2.0 - 3.0, "Q5_1 element {j}");
    }
    // qh bit 1 is set (0x96 = 0b1001_0110) and qs[1] low nibble is 7: (7 + 16 - 16) * 0.125.
    assert_eq!(got0[1], 7.0 * 0.125);
}

#[test]
fn q8_0_signed_bytes_times_d() {
    let qs: [i8; 32] = std::array::from_fn(|j| if j == 0 { -128 } else { j as i8 * 4 - 64 });
    let b = BlockQ8_0 {
        d: F16Le::from_f32(0.0625),
        qs,
    };
    let got = decode(GgmlType::Q8_0, bytemuck::bytes_of(&b));
    assert_eq!(got[0], -8.0);
    for j in 1..32 {
        assert_eq!(got[j], (j as f32 * 4.0 - 64.0) * 0.0625);
    }
}

/// Hand packing of Q4_K/Q5_K scales as ggml-common.h documents it, written out per byte.
fn pack_k4_by_hand(sc: &[u8; 8], mn: &[u8; 8]) -> [u8; 12] {
    let mut q = [0u8; 12];
    for j in 0..4 {
        q[j] = (sc[j] & 63) | ((sc[j + 4] >> 4) << 6);
        q[j + 4] = (mn[j] & 63) | ((mn[j + 4] >> 4) << 6);
        q[j + 8] = (sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4);
    }
    q
}

// Scales and mins that exercise the high bits (>= 16 for groups 4..8, up to 63).
const K4_SCALES: [u8; 8] = [1, 17, 33, 63, 5, 32, 48, 63];
const K4_MINS: [u8; 8] = [0, 2, 40, 63, 16, 31, 47, 62];

#[test]
fn k4_scale_packing_round_trips_including_high_bits() {
    let packed = pack_k4_by_hand(&K4_SCALES, &K4_MINS);
    assert_eq!(pack_scale_min_k4(&K4_SCALES, &K4_MINS), packed);
    for j in 0..8 {
        assert_eq!(
            scale_min_k4(j, &packed),
            (K4_SCALES[j], K4_MINS[j]),
            "group {j}"
        );
    }
}

#[test]
fn q4_k_decodes_per_group_scale_and_min() {
    let qs: [u8; 128] = bytes(7, 128).try_into().unwrap();
    let b = BlockQ4K {
        d: F16Le::from_f32(1.0),
        dmin: F16Le::from_f32(0.5),
        scales: pack_k4_by_hand(&K4_SCALES, &K4_MINS),
        qs,
    };
    let got = decode(GgmlType::Q4_K, bytemuck::bytes_of(&b));
    for i in 0..256 {
        // 64-value chunk c uses qs[32c..32c+32]: low nibbles first, then high nibbles.
        let (c, r) = (i / 64, i % 64);
        let byte = qs[32 * c + r % 32];
        let q = if r < 32 { byte & 0xF } else { byte >> 4 };
        let g = i / 32;
        assert_eq!(
            got[i],
            K4_SCALES[g] as f32 * q as f32 - 0.5 * K4_MINS[g] as f32,
            "element {i}"
        );
    }
    // Group 7 (scale 63, min 62): element 255 = 63 * (qs[127] >> 4) - 31.
    assert_eq!(got[255], 63.0 * (qs[127] >> 4) as f32 - 31.0);
}

#[test]
fn q5_k_adds_the_fifth_bit_from_qh() {
    let qs: [u8; 128] = bytes(11, 128).try_into().unwrap();
    let qh: [u8; 32] = bytes(13, 32).try_into().unwrap();
    let b = BlockQ5K {
        d: F16Le::from_f32(0.25),
        dmin: F16Le::from_f32(2.0),
        scales: pack_k4_by_hand(&K4_SCALES, &K4_MINS),
        qh,
        qs,
    };
    let got = decode(GgmlType::Q5_K, bytemuck::bytes_of(&b));
    for i in 0..256 {
        let (c, r) = (i / 64, i % 64);
        let byte = qs[32 * c + r % 32];
        let low = if r < 32 { byte & 0xF } else { byte >> 4 };
        // Value i's high bit: qh[i % 32], bit i / 32.
        let high = (qh[i % 32] >> (i / 32)) & 1;
        let q = (low | (high << 4)) as f32;
        let g = i / 32;
        assert_eq!(
            got[i],
            0.25 * K4_SCALES[g] as f32 * q - 2.0 * K4_MINS[g] as f32,
            "element {i}"
        );
    }
}

#[test]
fn q6_k_decodes_ql_qh_layout_and_signed_scales() {
    let ql: [u8; 128] = bytes(17, 128).try_into().unwrap();
    let qh: [u8; 64] = bytes(19, 64).try_into().unwrap();
    let scales: [i8; 16] = [
        -128, 127, -1, 1, 64, -64, 3, -7, 100, -100, -128, 0, 5, -5, 127, -3,
    ];
    let b = BlockQ6K {
        ql,
        qh,
        scales,
        d: F16Le::from_f32(0.125),
    };
    let got = decode(GgmlType::Q6_K, bytemuck::bytes_of(&b));
    for i in 0..256 {
        // Half n, 32-value plane k, lane l: low 4 bits from ql[64n + l + 32*(k&1)] (low nibble
        // for k < 2, high for k >= 2); high 2 bits from qh[32n + l] at bit 2k.
        let (n, k, l) = (i / 128, (i % 128) / 32, i % 32);
        let lb = ql[64 * n + l + 32 * (k & 1)];
        let low = if k < 2 { lb & 0xF } else { lb >> 4 };
        let high = (qh[32 * n + l] >> (2 * k)) & 3;
        let q = (low | (high << 4)) as i32 - 32;
        assert_eq!(
            got[i],
            0.125 * scales[i / 16] as f32 * q as f32,
            "element {i}"
        );
    }
}

#[test]
fn q2_k_decodes_2bit_planes() {
    let scales: [u8; 16] = bytes(23, 16).try_into().unwrap();
    let qs: [u8; 64] = bytes(29, 64).try_into().unwrap();
    let b = BlockQ2K {
        scales,
        qs,
        d: F16Le::from_f32(0.5),
        dmin: F16Le::from_f32(0.25),
    };
    let got = decode(GgmlType::Q2_K, bytemuck::bytes_of(&b));
    for i in 0..256 {
        // Half n, plane k (bits 2k..2k+2), lane l of 32 bytes qs[32n..32n+32].
        let (n, k, l) = (i / 128, (i % 128) / 32, i % 32);
        let q = (qs[32 * n + l] >> (2 * k)) & 3;
        let sc = scales[i / 16];
        let want = 0.5 * (sc & 0xF) as f32 * q as f32 - 0.25 * (sc >> 4) as f32;
        assert_eq!(got[i], want, "element {i}");
    }
}

#[test]
fn q3_k_decodes_6bit_scales_and_hmask() {
    // Signed 6-bit scales -32..=31, biased by 32: low 4 bits in bytes 0..8 (j < 8 low nibble,
    // j >= 8 high nibble of byte j - 8), high 2 bits in byte 8 + j % 4 at bit 2 * (j / 4).
    let signed: [i8; 16] = [
        -32, 31, 0, -1, 15, -16, 7, 1, 16, -17, 30, -31, 2, -2, 11, -5,
    ];
    let mut packed = [0u8; 12];
    for (j, s) in signed.iter().enumerate() {
        let l = (*s as i32 + 32) as u8;
        packed[j % 8] |= (l & 0xF) << if j < 8 { 0 } else { 4 };
        packed[8 + j % 4] |= (l >> 4) << (2 * (j / 4));
    }
    let hmask: [u8; 32] = bytes(31, 32).try_into().unwrap();
    let qs: [u8; 64] = bytes(37, 64).try_into().unwrap();
    let b = BlockQ3K {
        hmask,
        qs,
        scales: packed,
        d: F16Le::from_f32(0.5),
    };
    let got = decode(GgmlType::Q3_K, bytemuck::bytes_of(&b));
    for i in 0..256 {
        let (n, k, l) = (i / 128, (i % 128) / 32, i % 32);
        let low = ((qs[32 * n + l] >> (2 * k)) & 3) as i32;
        let high = ((hmask[i % 32] >> (i / 32)) & 1) as i32;
        let q = low + 4 * high - 4;
        assert_eq!(
            got[i],
            0.5 * signed[i / 16] as f32 * q as f32,
            "element {i}"
        );
    }
}

#[test]
fn blocks_decode_from_unaligned_offsets() {
    let qs: [u8; 128] = bytes(41, 128).try_into().unwrap();
    let b = BlockQ4K {
        d: F16Le::from_f32(1.0),
        dmin: F16Le::from_f32(0.5),
        scales: pack_k4_by_hand(&K4_SCALES, &K4_MINS),
        qs,
    };
    let aligned = decode(GgmlType::Q4_K, bytemuck::bytes_of(&b));
    let mut shifted = vec![0u8; 1];
    shifted.extend_from_slice(bytemuck::bytes_of(&b));
    assert_eq!(decode(GgmlType::Q4_K, &shifted[1..]), aligned);
    // F16 takes a fast path for 2-byte-aligned data; both paths must agree.
    let halves: Vec<u8> = (0..600u16).flat_map(|i| (i * 101).to_le_bytes()).collect();
    let mut shifted = vec![0u8; 1];
    shifted.extend_from_slice(&halves);
    let aligned = dequantize_to_vec(GgmlType::F16, &halves, 600).unwrap();
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    // Bit patterns 0, 101, 202, ... cover subnormals, normals, inf, NaN and negatives.
    let unaligned = dequantize_to_vec(GgmlType::F16, &shifted[1..], 600).unwrap();
    assert_eq!(bits(&unaligned), bits(&aligned));
    assert_eq!(aligned[1], half::f16::from_bits(101).to_f32()); // a subnormal
}
