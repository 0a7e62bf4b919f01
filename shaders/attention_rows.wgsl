// attention_rows.wgsl — causal attention for prefill on CPU adapters: one query per
// invocation, a workgroup of one subgroup (WG lanes, at least 8) taking WG consecutive
// queries of one head over one split of the keys. Each key's K and V rows are read once per
// subgroup — lane i loads vec4 words i, i+8, … of the row and the subgroup shares them by
// broadcast — so no key is staged through workgroup memory and no barrier is needed
// (attention_tiled.wgsl stages keys and sums lane partials there; llvmpipe reads workgroup
// memory lane by lane and runs barriers as coroutine switches).
//
// Query qi sits at position QPOS[qi] and sees keys 0 ..= QPOS[qi]; head h reads kv head
// h / (n_head / n_kv_head). Keys go in chunks of 8: the chunk's scores, one rescale of the
// running (max m, sum l, accumulator acc) per chunk, then Σ p_j v_j. Lanes keep working on
// keys they do not see (their p is 0) so that the subgroup stays whole for the broadcasts;
// lanes past n_q compute a copy of the last query and store nothing.
// Splits and outputs are attention_tiled.wgsl's (split z covers keys [z·split_keys,
// (z+1)·split_keys), split_keys a multiple of 8; one split: O normalised; several: partials
// (acc, m, l) for attention.wgsl's `combine`). Its loops run fewer iterations per key than
// the tiled kernel's, so the tiled kernel's split size keeps it inside llvmpipe's loop budget.
//
// Bindings (group 0):
//   0  Q    storage read   array<f32>        n_q × n_head × head_dim
//   1  K    storage read   array<vec4<u32>>  K pool of this layer (rows of whole vec4 words)
//   2  V    storage read   array<vec4<u32>>  V pool of this layer
//   3  BT   storage read   array<u32>        block table of the sequence
//   4  QPOS storage read   array<u32>        n_q positions
//   5  O    storage rw     array<f32>        as attention_tiled.wgsl
//   6  P    uniform        Params            (attention_tiled.wgsl's; bk unused)
// Defines: KV_F16 (8 halves a word, else 4 floats). Overrides: WG (the subgroup size, ≥ 8),
// KW8 (words per key row / 8), NQ4 (head_dim / 4, ≤ 64).
// Dispatch: (ceil(n_q / WG), n_head, n_splits).

override WG: u32 = 8u;
override KW8: u32 = 1u;
override NQ4: u32 = 16u;

const NEG_BIG: f32 = -1.0e30;

struct Params {
    n_q: u32,
    n_head: u32,
    n_kv_head: u32,
    head_dim: u32,
    block_size: u32,
    bk: u32,
    scale: f32,
    split_keys: u32,
}

@group(0) @binding(0) var<storage, read> Q: array<f32>;
@group(0) @binding(1) var<storage, read> K: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> V: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> BT: array<u32>;
@group(0) @binding(4) var<storage, read> QPOS: array<u32>;
@group(0) @binding(5) var<storage, read_write> O: array<f32>;
@group(0) @binding(6) var<uniform> P: Params;

//#include paged_kv

// The query (scaled) and the accumulator, NQ4 vec4s each; indices are constants once the
// constant-trip loops unroll.
var<private> q_r: array<vec4<f32>, 64>;
var<private> acc: array<vec4<f32>, 64>;

//#include kv_words

// q · k for the key whose row starts at word kw.
fn score(kw: u32, sl: u32) -> f32 {
    var s = 0.0;
    for (var c = 0u; c < KW8; c++) {
        let mine = K[kw + c * 8u + sl];
        let b = c * 8u;
        s += word_dot(subgroupBroadcast(mine, 0u), b) + word_dot(subgroupBroadcast(mine, 1u), b + 1u)
           + word_dot(subgroupBroadcast(mine, 2u), b + 2u) + word_dot(subgroupBroadcast(mine, 3u), b + 3u)
           + word_dot(subgroupBroadcast(mine, 4u), b + 4u) + word_dot(subgroupBroadcast(mine, 5u), b + 5u)
           + word_dot(subgroupBroadcast(mine, 6u), b + 6u) + word_dot(subgroupBroadcast(mine, 7u), b + 7u);
    }
    return s;
}

// acc += p · v for the key whose row starts at word vw.
fn add_value(vw: u32, sl: u32, p: f32) {
    for (var c = 0u; c < KW8; c++) {
        let mine = V[vw + c * 8u + sl];
        let b = c * 8u;
        word_mac(subgroupBroadcast(mine, 0u), b, p);
        word_mac(subgroupBroadcast(mine, 1u), b + 1u, p);
        word_mac(subgroupBroadcast(mine, 2u), b + 2u, p);
        word_mac(subgroupBroadcast(mine, 3u), b + 3u, p);
        word_mac(subgroupBroadcast(mine, 4u), b + 4u, p);
        word_mac(subgroupBroadcast(mine, 5u), b + 5u, p);
        word_mac(subgroupBroadcast(mine, 6u), b + 6u, p);
        word_mac(subgroupBroadcast(mine, 7u), b + 7u, p);
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sg_lane: u32) {
    let h = wid.y;
    let split = wid.z;
    let n_splits = nwg.z;
    let hd = P.head_dim;
    let kvh = h / (P.n_head / P.n_kv_head);
    let qi = wid.x * WG + lid;
    let valid = qi < P.n_q;
    let qc = min(qi, P.n_q - 1u);
    let my_len = QPOS[qc] + 1u;
    let k_begin = split * P.split_keys;
    let k_end = min(subgroupMax(my_len), k_begin + P.split_keys);
    let sees = min(my_len, k_end);
    let sl = sg_lane & 7u;

    let qbase = (qc * P.n_head + h) * hd;
    for (var i = 0u; i < NQ4; i++) {
        let e = qbase + i * 4u;
        q_r[i] = vec4<f32>(Q[e], Q[e + 1u], Q[e + 2u], Q[e + 3u]) * P.scale;
        acc[i] = vec4<f32>(0.0);
    }
    var m = NEG_BIG;
    var l = 0.0;
    var sc: array<f32, 8>;
    for (var t0 = k_begin; t0 < k_end; t0 += 8u) {
        var cmax = NEG_BIG;
        for (var j = 0u; j < 8u; j++) {
            let t = min(t0 + j, k_end - 1u);
            let s = score(kv_row_base(t, kvh, P.n_kv_head, hd, P.block_size) / EPV, sl);
            sc[j] = select(NEG_BIG, s, t0 + j < sees);
            cmax = max(cmax, sc[j]);
        }
        let m_new = max(m, cmax);
        let corr = exp(m - m_new);
        l *= corr;
        for (var i = 0u; i < NQ4; i++) {
            acc[i] *= corr;
        }
        for (var j = 0u; j < 8u; j++) {
            let t = min(t0 + j, k_end - 1u);
            let p = select(0.0, exp(sc[j] - m_new), t0 + j < sees);
            l += p;
            add_value(kv_row_base(t, kvh, P.n_kv_head, hd, P.block_size) / EPV, sl, p);
        }
        m = m_new;
    }
    if (!valid) {
        return;
    }
    if (n_splits == 1u) {
        for (var i = 0u; i < NQ4; i++) {
            let e = qbase + i * 4u;
            let o = acc[i] / l;
            O[e] = o.x;
            O[e + 1u] = o.y;
            O[e + 2u] = o.z;
            O[e + 3u] = o.w;
        }
        return;
    }
    let out = ((qi * P.n_head + h) * n_splits + split) * (hd + 2u);
    for (var i = 0u; i < NQ4; i++) {
        let e = out + i * 4u;
        O[e] = acc[i].x;
        O[e + 1u] = acc[i].y;
        O[e + 2u] = acc[i].z;
        O[e + 3u] = acc[i].w;
    }
    // No key of this split is visible to the query: an empty split for `combine`.
    if (my_len <= k_begin) {
        O[out + hd] = bitcast<f32>(0xff800000u);
        O[out + hd + 1u] = 0.0;
    } else {
        O[out + hd] = m;
        O[out + hd + 1u] = l;
    }
}
