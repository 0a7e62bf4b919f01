// kv_words.wgsl — included by attention_rows.wgsl and attention_lanes.wgsl: one vec4<u32> word
// of a K or V row (8 halves with KV_F16, else 4 floats; EPV elements) against the query or into
// the accumulator. The including shader declares `q_r` (the scaled query, vec4s) and `acc`
// (vec4s) as private arrays; indices are constants once its constant-trip loops unroll.
//   word_dot(w, c): the dot of word w, the row's word c, with the query's elements there.
//   word_mac(w, c, p): acc slots of word c += p · the word's elements.

//#if KV_F16
const EPV: u32 = 8u;
fn word_dot(w: vec4<u32>, c: u32) -> f32 {
    return dot(vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)), q_r[2u * c])
         + dot(vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w)), q_r[2u * c + 1u]);
}
fn word_mac(w: vec4<u32>, c: u32, p: f32) {
    acc[2u * c] += p * vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
    acc[2u * c + 1u] += p * vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w));
}
//#else
const EPV: u32 = 4u;
fn word_dot(w: vec4<u32>, c: u32) -> f32 {
    return dot(bitcast<vec4<f32>>(w), q_r[c]);
}
fn word_mac(w: vec4<u32>, c: u32, p: f32) {
    acc[c] += p * bitcast<vec4<f32>>(w);
}
//#endif
