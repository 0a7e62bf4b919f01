// dot32.wgsl — included by matvec.wgsl when DOT32 is defined: `dot32(rb, g)`, the dot
// product of elements 32*g .. 32*g+31 of the row whose data starts at byte `rb` of `W` with
// the group's activations XG[0 .. 8] (vec4s, loaded by xgroup.wgsl's `load_xg`).
//
// Why: dequant4 re-reads a block's scale (and for K-quants decodes the 6-bit scale/min pair)
// for every four elements. Thirty-two elements share one scale in every format here but Q6_K
// (two, one per 16), so reading them once per group cuts the loads per weight byte severalfold
// and lets the integer part of the dot product be summed before the scale is applied.
//
// Layouts are those listed in dequant.wgsl. Defined for TYPE_Q8_0, TYPE_Q4_0, TYPE_Q4_1,
// TYPE_Q5_0, TYPE_Q4_K, TYPE_Q5_K and TYPE_Q6_K (the host defines DOT32 only for these). Requires bytes.wgsl and
// dequant.wgsl (scale_min_k4), and xgroup.wgsl (included once by the including shader).

// Sum of q[i] * XG[xo + i] over four vec4 groups of nibbles taken from four words (byte b of
// word i holds element 4*i + b), after shifting each byte right by `shift`.
fn nib_dot16(w0: u32, w1: u32, w2: u32, w3: u32, shift: u32, xo: u32) -> f32 {
    return dot(vec4<f32>(nibbles4(w0, shift)), XG[xo])
         + dot(vec4<f32>(nibbles4(w1, shift)), XG[xo + 1u])
         + dot(vec4<f32>(nibbles4(w2, shift)), XG[xo + 2u])
         + dot(vec4<f32>(nibbles4(w3, shift)), XG[xo + 3u]);
}

//#if TYPE_Q8_0
fn dot32(rb: u32, g: u32) -> f32 {
    let base = rb + g * 34u;
    // Blocks are 34 B, so the quants start 0 or 2 bytes into a word (rows start at an even
    // byte): nine aligned word loads, shifted together when needed, instead of eight
    // unaligned ones (two loads and a branch each).
    let q = (base + 2u) >> 2u;
    let odd = ((base + 2u) & 3u) != 0u;
    var lo = W[q];
    var s = 0.0;
    for (var i = 0u; i < 8u; i++) {
        let hi = W[q + i + 1u];
        s += dot(i8x4(select(lo, (lo >> 16u) | (hi << 16u), odd)), XG[i]);
        lo = hi;
    }
    return f16_at(base) * s;
}
//#endif

//#if TYPE_Q4_0
fn dot32(rb: u32, g: u32) -> f32 {
    let base = rb + g * 18u;
    let w0 = ld32(base + 2u);
    let w1 = ld32(base + 6u);
    let w2 = ld32(base + 10u);
    let w3 = ld32(base + 14u);
    // Elements 0..15 are the low nibbles, 16..31 the high ones; x = d * (q - 8).
    let s = nib_dot16(w0, w1, w2, w3, 0u, 0u) + nib_dot16(w0, w1, w2, w3, 4u, 4u);
    return f16_at(base) * (s - 8.0 * XS);
}
//#endif

//#if TYPE_Q4_1
fn dot32(rb: u32, g: u32) -> f32 {
    // Word aligned: blocks are 20 B and every row (and chunk) starts at a block.
    let b = (rb >> 2u) + g * 5u;
    let w0 = W[b + 1u];
    let w1 = W[b + 2u];
    let w2 = W[b + 3u];
    let w3 = W[b + 4u];
    // Nibbles as Q4_0; x = d * q + m, d and m one word (one load, not two).
    let s = nib_dot16(w0, w1, w2, w3, 0u, 0u) + nib_dot16(w0, w1, w2, w3, 4u, 4u);
    let dm = unpack2x16float(W[b]);
    return dm.x * s + dm.y * XS;
}
//#endif

//#if TYPE_Q5_0
// Four elements of a Q5_0 block: low bits from the bytes of w (shifted right by `shift`), the
// fifth bits from hbits (bit i for element i), against x.
fn q5_dot4(w: u32, shift: u32, hbits: u32, x: vec4<f32>) -> f32 {
    let lo = nibbles4(w, shift);
    let hb = (vec4<u32>(hbits) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u);
    return dot(vec4<f32>(lo | (hb << vec4<u32>(4u))), x);
}

fn dot32(rb: u32, g: u32) -> f32 {
    let base = rb + g * 22u;
    let qh = ld32(base + 2u);
    var s = 0.0;
    for (var i = 0u; i < 4u; i++) {
        let w = ld32(base + 6u + 4u * i);
        s += q5_dot4(w, 0u, qh >> (4u * i), XG[i])
           + q5_dot4(w, 4u, qh >> (16u + 4u * i), XG[4u + i]);
    }
    // x = d * (q - 16).
    return f16_at(base) * (s - 16.0 * XS);
}
//#endif

//#if TYPE_Q4_K
fn dot32(rb: u32, g: u32) -> f32 {
    let base = rb + (g >> 3u) * 144u;
    let j = g & 7u;          // sub-block: its scale/min pair, and 32 nibbles of chunk j/2
    let c = j >> 1u;
    let hi = j & 1u;
    // Word aligned: blocks are 144 B and every row (and chunk) starts at a block.
    let q = (base + 16u + 32u * c) >> 2u;
    let sm = scale_min_k4(base + 4u, j);
    let s = nib_dot16(W[q], W[q + 1u], W[q + 2u], W[q + 3u], hi * 4u, 0u)
          + nib_dot16(W[q + 4u], W[q + 5u], W[q + 6u], W[q + 7u], hi * 4u, 4u);
    return f16_at(base) * sm.x * s - f16_at(base + 2u) * sm.y * XS;
}
//#endif

//#if TYPE_Q5_K
fn dot32(rb: u32, g: u32) -> f32 {
    let base = rb + (g >> 3u) * 176u;
    let j = g & 7u;
    let c = j >> 1u;
    let hi = j & 1u;
    let sm = scale_min_k4(base + 4u, j);
    // Word aligned: blocks are 176 B and every row (and chunk) starts at a block.
    let qs = (base + 48u + 32u * c) >> 2u;
    let qh = (base + 16u) >> 2u;
    var s = 0.0;
    for (var i = 0u; i < 8u; i++) {
        let lo = nibbles4(W[qs + i], hi * 4u);
        let hb = (bytes4(W[qh + i]) >> vec4<u32>(j)) & vec4<u32>(1u);
        s += dot(vec4<f32>(lo | (hb << vec4<u32>(4u))), XG[i]);
    }
    return f16_at(base) * sm.x * s - f16_at(base + 2u) * sm.y * XS;
}
//#endif

//#if TYPE_Q6_K
fn dot32(rb: u32, g: u32) -> f32 {
    let base = rb + (g >> 3u) * 210u;
    let e = (g & 7u) * 32u;
    let n = e >> 7u;
    let gs = (e >> 5u) & 3u;
    let ql = base + 64u * n + (gs & 1u) * 32u;
    let qh = base + 128u + 32u * n;
    let sc = base + 192u + 8u * n + 2u * gs;
    var half_sums = vec2<f32>(0.0);
    for (var i = 0u; i < 8u; i++) {
        let lo = nibbles4(ld32(ql + 4u * i), (gs >> 1u) * 4u);
        let hb = (bytes4(ld32(qh + 4u * i)) >> vec4<u32>(2u * gs)) & vec4<u32>(3u);
        let v = dot(vec4<f32>(lo | (hb << vec4<u32>(4u))) - 32.0, XG[i]);
        // Elements 0..15 use the first scale, 16..31 the second.
        if (i < 4u) {
            half_sums.x += v;
        } else {
            half_sums.y += v;
        }
    }
    return f16_at(base + 208u) * (i8_at(sc) * half_sums.x + i8_at(sc + 1u) * half_sums.y);
}
//#endif
