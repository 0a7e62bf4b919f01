// attention_lanes.wgsl — attention.wgsl's `partial` (decode: one query per sequence) for CPU
// adapters: a workgroup is one subgroup (WG lanes, at least 8) and takes the SPLIT = 64 keys
// of one split for one (query, head), with no workgroup memory and no barrier — llvmpipe
// reads workgroup memory lane by lane and runs each barrier as a switch between coroutines.
//   scores: lane i scores keys t0 + 8·jb + i (jb < 8) against the whole query, which each
//           lane holds (loaded a vec4 per lane and shared by broadcast);
//   softmax: the split's max m and sum l by subgroup operations;
//   values:  lane i sums word column i (and i+8, …) of the V rows, each key's weight taken by
//            broadcast from the lane that scored it.
// Output: attention.wgsl's partial layout (acc[0..hd], m, l per (query, head, split); splits
// past the query's length m = -inf, l = 0), merged by its `combine`.
//
// Bindings (group 0): as attention.wgsl's `partial` with VEC: 0 Q (f32), 1 K and 2 V (pools as
// vec4<u32> words), 3 BT, 4 QPOS, 5 PART, 6 P (its Params).
// Defines: KV_F16 (8 halves a word, else 4 floats). Overrides: WG (the subgroup size, ≥ 8),
// KW8 (words per key row / 8), NQ4 (head_dim / 4, ≤ 64).
// Dispatch: (n_splits, n_head, n_q).

override WG: u32 = 8u;
override KW8: u32 = 1u;
override NQ4: u32 = 16u;

const SPLIT: u32 = 64u;
const NEG_BIG: f32 = -1.0e30;

struct Params {
    n_q: u32,
    n_head: u32,
    n_kv_head: u32,
    head_dim: u32,
    block_size: u32,
    n_splits: u32,
    scale: f32,
    bt_stride: u32,
}

@group(0) @binding(0) var<storage, read> Q: array<f32>;
@group(0) @binding(1) var<storage, read> K: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> V: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> BT: array<u32>;
@group(0) @binding(4) var<storage, read> QPOS: array<u32>;
@group(0) @binding(5) var<storage, read_write> PART: array<f32>;
@group(0) @binding(6) var<uniform> P: Params;

//#include paged_kv

// The query (scaled), NQ4 vec4s; this lane's V sums, two vec4s (f16) or one per word column.
var<private> q_r: array<vec4<f32>, 64>;
var<private> acc: array<vec4<f32>, 16>;

//#include kv_words

// Word index of (position t, this kv head, word 0) in the pool.
fn row_word(t: u32, kvh: u32) -> u32 {
    return kv_row_base(t, kvh, P.n_kv_head, P.head_dim, P.block_size) / EPV;
}

// Weight p against this lane's word columns of the V row at word vw.
fn add_value(vw: u32, sl: u32, p: f32) {
    for (var cc = 0u; cc < KW8; cc++) {
        word_mac(V[vw + cc * 8u + sl], cc, p);
    }
}

@compute @workgroup_size(WG)
fn partial(@builtin(workgroup_id) wid: vec3<u32>,
           @builtin(subgroup_invocation_id) sg_lane: u32) {
    let split = wid.x;
    let h = wid.y;
    let qi = wid.z;
    let hd = P.head_dim;
    let kvh = h / (P.n_head / P.n_kv_head);
    bt_row = qi * P.bt_stride;
    let len = QPOS[qi] + 1u;
    let t0 = split * SPLIT;
    let out = ((qi * P.n_head + h) * P.n_splits + split) * (hd + 2u);
    let sl = sg_lane & 7u;
    if (t0 >= len) {
        for (var d = sl; d < hd; d += 8u) {
            PART[out + d] = 0.0;
        }
        if (sl == 0u) {
            PART[out + hd] = bitcast<f32>(0xff800000u);
            PART[out + hd + 1u] = 0.0;
        }
        return;
    }
    let qb = (qi * P.n_head + h) * hd;
    for (var c = 0u; c < NQ4 / 8u; c++) {
        let e = qb + (c * 8u + sl) * 4u;
        let mine = vec4<f32>(Q[e], Q[e + 1u], Q[e + 2u], Q[e + 3u]) * P.scale;
        q_r[c * 8u] = subgroupBroadcast(mine, 0u);
        q_r[c * 8u + 1u] = subgroupBroadcast(mine, 1u);
        q_r[c * 8u + 2u] = subgroupBroadcast(mine, 2u);
        q_r[c * 8u + 3u] = subgroupBroadcast(mine, 3u);
        q_r[c * 8u + 4u] = subgroupBroadcast(mine, 4u);
        q_r[c * 8u + 5u] = subgroupBroadcast(mine, 5u);
        q_r[c * 8u + 6u] = subgroupBroadcast(mine, 6u);
        q_r[c * 8u + 7u] = subgroupBroadcast(mine, 7u);
    }
    // Scores of keys t0 + 8·jb + sl (past the length: a copy of the last key, weight 0).
    // kw8[jb]: the row's word in the pool, the same for K and V (shared with the other lanes
    // for the values, so no lane looks a key's block up twice).
    var w8: array<f32, 8>;
    var kw8: array<u32, 8>;
    var mx = NEG_BIG;
    for (var jb = 0u; jb < 8u; jb++) {
        let t = t0 + jb * 8u + sl;
        let kw = row_word(min(t, len - 1u), kvh);
        kw8[jb] = kw;
        var s = 0.0;
        for (var c = 0u; c < KW8 * 8u; c++) {
            s += word_dot(K[kw + c], c);
        }
        w8[jb] = select(NEG_BIG, s, t < len);
        mx = max(mx, w8[jb]);
    }
    let m = subgroupMax(mx);
    var lsum = 0.0;
    for (var jb = 0u; jb < 8u; jb++) {
        let p = select(0.0, exp(w8[jb] - m), t0 + jb * 8u + sl < len);
        w8[jb] = p;
        lsum += p;
    }
    let l = subgroupAdd(lsum);
    for (var cc = 0u; cc < 2u * KW8; cc++) {
        acc[cc] = vec4<f32>(0.0);
    }
    for (var jb = 0u; jb < 8u; jb++) {
        // Key t0 + 8·jb + i was scored by lane i: its weight and row word come from there.
        let p = w8[jb];
        let kw = kw8[jb];
        add_value(subgroupBroadcast(kw, 0u), sl, subgroupBroadcast(p, 0u));
        add_value(subgroupBroadcast(kw, 1u), sl, subgroupBroadcast(p, 1u));
        add_value(subgroupBroadcast(kw, 2u), sl, subgroupBroadcast(p, 2u));
        add_value(subgroupBroadcast(kw, 3u), sl, subgroupBroadcast(p, 3u));
        add_value(subgroupBroadcast(kw, 4u), sl, subgroupBroadcast(p, 4u));
        add_value(subgroupBroadcast(kw, 5u), sl, subgroupBroadcast(p, 5u));
        add_value(subgroupBroadcast(kw, 6u), sl, subgroupBroadcast(p, 6u));
        add_value(subgroupBroadcast(kw, 7u), sl, subgroupBroadcast(p, 7u));
    }
    // This lane's word columns cc·8 + sl: elements EPV·(cc·8 + sl) ...
    for (var cc = 0u; cc < KW8; cc++) {
        let e = out + (cc * 8u + sl) * EPV;
//#if KV_F16
        let lo = acc[2u * cc];
        let hi = acc[2u * cc + 1u];
        PART[e] = lo.x;
        PART[e + 1u] = lo.y;
        PART[e + 2u] = lo.z;
        PART[e + 3u] = lo.w;
        PART[e + 4u] = hi.x;
        PART[e + 5u] = hi.y;
        PART[e + 6u] = hi.z;
        PART[e + 7u] = hi.w;
//#else
        let v = acc[cc];
        PART[e] = v.x;
        PART[e + 1u] = v.y;
        PART[e + 2u] = v.z;
        PART[e + 3u] = v.w;
//#endif
    }
    if (sl == 0u) {
        PART[out + hd] = m;
        PART[out + hd + 1u] = l;
    }
}
