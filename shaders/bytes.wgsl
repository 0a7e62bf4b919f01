// bytes.wgsl — included helpers: byte-addressed reads of GGUF tensor data.
//
// The including shader declares `W: array<u32>` holding the raw little-endian bytes of a
// tensor chunk exactly as in the GGUF file (padded with zeros to a multiple of 4 bytes).
// Blocks such as Q4_0 (18 B) or Q6_K (210 B) are not word aligned, so these helpers assemble
// any 4/2/1 bytes from the two words that cover them. Reads past the end are clamped by
// wgpu's bounds checks and only feed bits that are then shifted away.

fn ld32(a: u32) -> u32 {
    let i = a >> 2u;
    let s = (a & 3u) * 8u;
    if (s == 0u) {
        return W[i];
    }
    return (W[i] >> s) | (W[i + 1u] << (32u - s));
}

// a must be even (every f16 in the GGUF block layouts is).
fn ld16(a: u32) -> u32 {
    return (W[a >> 2u] >> ((a & 2u) * 8u)) & 0xffffu;
}

fn ld8(a: u32) -> u32 {
    return (W[a >> 2u] >> ((a & 3u) * 8u)) & 0xffu;
}

fn f16_at(a: u32) -> f32 {
    return unpack2x16float(ld16(a)).x;
}

fn i8_at(a: u32) -> f32 {
    return f32(bitcast<i32>(ld8(a) << 24u) >> 24u);
}

// The four bytes of a word, lowest first.
fn bytes4(w: u32) -> vec4<u32> {
    return vec4<u32>(w & 0xffu, (w >> 8u) & 0xffu, (w >> 16u) & 0xffu, w >> 24u);
}

// Bits shift .. shift+3 of each byte of a word (a nibble of each), lowest byte first: one
// shift and one mask per element.
fn nibbles4(w: u32, shift: u32) -> vec4<u32> {
    return (vec4<u32>(w) >> vec4<u32>(shift, shift + 8u, shift + 16u, shift + 24u)) & vec4<u32>(15u);
}

// The four bytes of a word as signed int8 values, lowest first.
fn i8x4(w: u32) -> vec4<f32> {
    let b = vec4<i32>(bitcast<i32>(w << 24u), bitcast<i32>(w << 16u), bitcast<i32>(w << 8u), bitcast<i32>(w));
    return vec4<f32>(b >> vec4<u32>(24u));
}
