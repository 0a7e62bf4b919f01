// dequant.wgsl — included: `dequant4(row_byte, k4)`, the f32 values of elements
// 4*k4 .. 4*k4+3 of the row whose data starts at byte `row_byte` of `W`.
//
// Exactly one TYPE_* define selects the format (ggml block layouts, all little-endian):
//   F32  : f32 per element.                       F16 : f16 per element.
//   Q8_0 : 34 B / 32 elems: d f16, qs[32] int8;  x = d*q.
//   Q4_0 : 18 B / 32 elems: d f16, qs[16]; elem j<16 is qs[j]&15, j>=16 is qs[j-16]>>4;
//          x = d*(q-8).
//   Q4_1 : 20 B / 32 elems: d f16, m f16, qs[16] nibbles as Q4_0; x = d*q + m.
//   Q5_0 : 22 B / 32 elems: d f16, qh[4] (bit j = 5th bit of elem j), qs[16] nibbles as
//          Q4_0; x = d*(q-16).
//   Q4_K : 144 B / 256 elems: d f16, dmin f16, scales[12] (8 six-bit scale/min pairs),
//          qs[128]; 64-elem chunk c uses qs[32c..32c+32], low nibbles with pair 2c, high
//          nibbles with pair 2c+1; x = d*sc*q - dmin*m.
//   Q5_K : 176 B / 256 elems: d f16, dmin f16, scales[12] as Q4_K, qh[32], qs[128] as Q4_K's;
//          elem e's 5th bit is bit 2c+hi of qh[e & 31] (c, hi as in Q4_K); x = d*sc*q - dmin*m.
//   Q6_K : 210 B / 256 elems: ql[128], qh[64], scales[16] int8, d f16;
//          x = d*sc*(q-32) with q = 4 low bits from ql | 2 high bits from qh << 4.
// Four consecutive elements always share one scale, which is why the unit is a vec4.
// Requires bytes.wgsl.

//#if TYPE_F32
fn dequant4(rb: u32, k4: u32) -> vec4<f32> {
    let a = rb + k4 * 16u;
    return vec4<f32>(bitcast<f32>(ld32(a)), bitcast<f32>(ld32(a + 4u)),
                     bitcast<f32>(ld32(a + 8u)), bitcast<f32>(ld32(a + 12u)));
}
//#endif

//#if TYPE_F16
fn dequant4(rb: u32, k4: u32) -> vec4<f32> {
    let a = rb + k4 * 8u;
    return vec4<f32>(unpack2x16float(ld32(a)), unpack2x16float(ld32(a + 4u)));
}
//#endif

//#if TYPE_Q8_0
fn dequant4(rb: u32, k4: u32) -> vec4<f32> {
    let base = rb + (k4 >> 3u) * 34u;
    return f16_at(base) * i8x4(ld32(base + 2u + (k4 & 7u) * 4u));
}
//#endif

//#if TYPE_Q4_0
fn dequant4(rb: u32, k4: u32) -> vec4<f32> {
    let base = rb + (k4 >> 3u) * 18u;
    let e = (k4 & 7u) * 4u;
    let shift = select(0u, 4u, e >= 16u);
    let q = nibbles4(ld32(base + 2u + (e & 15u)), shift);
    return f16_at(base) * (vec4<f32>(q) - 8.0);
}
//#endif

//#if TYPE_Q4_1
fn dequant4(rb: u32, k4: u32) -> vec4<f32> {
    // Word aligned: blocks are 20 B and every row (and chunk) starts at a block; d and m
    // share the block's first word.
    let base = (rb >> 2u) + (k4 >> 3u) * 5u;
    let e = (k4 & 7u) * 4u;
    let shift = select(0u, 4u, e >= 16u);
    let q = nibbles4(W[base + 1u + ((e & 15u) >> 2u)], shift);
    let dm = unpack2x16float(W[base]);
    return dm.x * vec4<f32>(q) + dm.y;
}
//#endif

//#if TYPE_Q5_0
fn dequant4(rb: u32, k4: u32) -> vec4<f32> {
    let base = rb + (k4 >> 3u) * 22u;
    let e = (k4 & 7u) * 4u;
    let shift = select(0u, 4u, e >= 16u);
    let lo = nibbles4(ld32(base + 6u + (e & 15u)), shift);
    let hb = (vec4<u32>(ld32(base + 2u) >> e) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u);
    return f16_at(base) * (vec4<f32>(lo | (hb << vec4<u32>(4u))) - 16.0);
}
//#endif

// Scale and min of K-quant group j (ggml's get_scale_min_k4) from the 12 bytes at `a`.
fn scale_min_k4(a: u32, j: u32) -> vec2<f32> {
    if (j < 4u) {
        return vec2<f32>(f32(ld8(a + j) & 63u), f32(ld8(a + 4u + j) & 63u));
    }
    let sc = (ld8(a + 4u + j) & 15u) | ((ld8(a + j - 4u) >> 6u) << 4u);
    let m = (ld8(a + 4u + j) >> 4u) | ((ld8(a + j) >> 6u) << 4u);
    return vec2<f32>(f32(sc), f32(m));
}

//#if TYPE_Q5_K
fn dequant4(rb: u32, k4: u32) -> vec4<f32> {
    let base = rb + (k4 >> 6u) * 176u;
    let e = (k4 & 63u) * 4u;
    let c = e >> 6u;
    let hi = (e >> 5u) & 1u;
    let l = e & 31u;
    let j = 2u * c + hi;
    let lo = nibbles4(ld32(base + 48u + 32u * c + l), hi * 4u);
    let hb = (bytes4(ld32(base + 16u + l)) >> vec4<u32>(j)) & vec4<u32>(1u);
    let sm = scale_min_k4(base + 4u, j);
    return f16_at(base) * sm.x * vec4<f32>(lo | (hb << vec4<u32>(4u))) - f16_at(base + 2u) * sm.y;
}
//#endif

//#if TYPE_Q4_K
fn dequant4(rb: u32, k4: u32) -> vec4<f32> {
    let base = rb + (k4 >> 6u) * 144u;
    let e = (k4 & 63u) * 4u;
    let c = e >> 6u;
    let hi = (e >> 5u) & 1u;
    let l = e & 31u;
    let q = nibbles4(ld32(base + 16u + 32u * c + l), hi * 4u);
    let sm = scale_min_k4(base + 4u, 2u * c + hi);
    return f16_at(base) * sm.x * vec4<f32>(q) - f16_at(base + 2u) * sm.y;
}
//#endif

//#if TYPE_Q6_K
fn dequant4(rb: u32, k4: u32) -> vec4<f32> {
    let base = rb + (k4 >> 6u) * 210u;
    let e = (k4 & 63u) * 4u;
    let n = e >> 7u;
    let g = (e >> 5u) & 3u;
    let l = e & 31u;
    let ql = nibbles4(ld32(base + 64u * n + l + (g & 1u) * 32u), (g >> 1u) * 4u);
    let qh = (bytes4(ld32(base + 128u + 32u * n + l)) >> vec4<u32>(2u * g)) & vec4<u32>(3u);
    let q = vec4<f32>(ql | (qh << vec4<u32>(4u))) - 32.0;
    let sc = i8_at(base + 192u + 8u * n + (l >> 4u) + 2u * g);
    return f16_at(base + 208u) * sc * q;
}
//#endif
