// group32.wgsl — included by matvec.wgsl's multi-token path for the block formats:
// `dequant32(rb, g)`, elements 32*g .. 32*g+31 of the row whose data starts at byte `rb` of `W`,
// as eight vec4s. Every format here keeps one scale (and offset) per 32 elements at least, so
// a group reads its scale once and its quants as whole words: Q4_1 5 aligned loads, Q4_0 and
// Q8_0 6 and 10 (their 18- and 34-byte blocks put the quants 0 or 2 bytes into a word, so
// one word more is loaded and neighbours are shifted together); the other formats take
// dequant4 eight times. Requires bytes.wgsl and dequant.wgsl; layouts as in dequant.wgsl.

// Word `i` of the quants that start `odd` (2 bytes into word q) or aligned (at word q).
fn quant_word(q: u32, i: u32, odd: bool) -> u32 {
    let lo = W[q + i];
    return select(lo, (lo >> 16u) | (W[q + i + 1u] << 16u), odd);
}

// Low (shift 0) or high (shift 4) nibbles of a word as four values.
fn nibbles(w: u32, shift: u32) -> vec4<f32> {
    return vec4<f32>((bytes4(w) >> vec4<u32>(shift)) & vec4<u32>(15u));
}

//#if TYPE_Q4_1
fn dequant32(rb: u32, g: u32) -> array<vec4<f32>, 8> {
    // 20-byte blocks: every block starts on a word (rows start at a block).
    let q = (rb + g * 20u) >> 2u;
    let dm = unpack2x16float(W[q]);
    var out: array<vec4<f32>, 8>;
    for (var i = 0u; i < 4u; i++) {
        let w = W[q + 1u + i];
        out[i] = dm.x * nibbles(w, 0u) + dm.y;
        out[4u + i] = dm.x * nibbles(w, 4u) + dm.y;
    }
    return out;
}
//#else
//#if TYPE_Q4_0
fn dequant32(rb: u32, g: u32) -> array<vec4<f32>, 8> {
    let base = rb + g * 18u;
    let d = f16_at(base);
    let q = (base + 2u) >> 2u;
    let odd = ((base + 2u) & 3u) != 0u;
    var out: array<vec4<f32>, 8>;
    for (var i = 0u; i < 4u; i++) {
        let w = quant_word(q, i, odd);
        out[i] = d * (nibbles(w, 0u) - 8.0);
        out[4u + i] = d * (nibbles(w, 4u) - 8.0);
    }
    return out;
}
//#else
//#if TYPE_Q8_0
fn dequant32(rb: u32, g: u32) -> array<vec4<f32>, 8> {
    let base = rb + g * 34u;
    let d = f16_at(base);
    let q = (base + 2u) >> 2u;
    let odd = ((base + 2u) & 3u) != 0u;
    var out: array<vec4<f32>, 8>;
    for (var i = 0u; i < 8u; i++) {
        out[i] = d * i8x4(quant_word(q, i, odd));
    }
    return out;
}
//#else
fn dequant32(rb: u32, g: u32) -> array<vec4<f32>, 8> {
    var out: array<vec4<f32>, 8>;
    for (var i = 0u; i < 8u; i++) {
        out[i] = dequant4(rb, g * 8u + i);
    }
    return out;
}
//#endif
//#endif
//#endif
