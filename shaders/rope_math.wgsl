// rope_math.wgsl — RoPE's rotation, included by rope.wgsl and rope_kv.wgsl so that the two
// cannot drift apart. For rotation pair i < n_rot/2 at position p:
//   theta = freq_scale * p * freq_base^(-2i/n_rot) / FF[i]
// NORMAL style (llama): the pair is (x[2i], x[2i+1]); NEOX style (qwen2): (x[i], x[i+n_rot/2]).
// The including shader declares `P` (n_rot, neox, freq_base, freq_scale) and `FF: array<f32>`
// (per-pair frequency factors, ones when the model has none).

// (cos, sin) of rotation pair i at position pos.
fn rope_cos_sin(i: u32, pos: u32) -> vec2<f32> {
    let inv_freq = exp2(-f32(2u * i) / f32(P.n_rot) * log2(P.freq_base));
    let theta = P.freq_scale * f32(pos) * inv_freq / FF[i];
    return vec2<f32>(cos(theta), sin(theta));
}

// Offsets within a head of the two elements of rotation pair i.
fn rope_pair(i: u32) -> vec2<u32> {
    if (P.neox != 0u) {
        return vec2<u32>(i, i + P.n_rot / 2u);
    }
    return vec2<u32>(2u * i, 2u * i + 1u);
}

// The rotation pair element e (< n_rot) of a head belongs to.
fn rope_pair_of(e: u32) -> u32 {
    if (P.neox != 0u) {
        return e % (P.n_rot / 2u);
    }
    return e / 2u;
}
