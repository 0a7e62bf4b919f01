// attention.wgsl — attention over a paged KV pool (layout in paged_kv.wgsl), split-K with an
// online softmax, for decode (one query) and prefill (many queries, causal) alike.
//
// Query qi (a row of Q) sits at position QPOS[qi] and sees keys 0 ..= QPOS[qi] (causal).
// Head h reads kv head h / (n_head / n_kv_head) (grouped-query attention).
// `partial`: workgroup (split, h, qi) scores the SPLIT keys of its split, takes their max m,
//   the sum l of exp(s - m) and acc[d] = Σ exp(s - m) v[d], and writes (acc[0..hd], m, l) to
//   PART. Splits past the query's length write m = -inf, l = 0.
// `combine`: workgroup (h, qi) merges the splits: M = max m_s,
//   O[d] = Σ_s e^(m_s - M) acc_s[d] / Σ_s e^(m_s - M) l_s.
// Scores are q·k * scale in f32; KV_F16 reads f16 pairs from u32 words.
//
// Bindings of `partial` (group 0):
//   0  Q    storage read   array<f32>   n_q × n_head × head_dim
//   1  K    storage read   array<u32>   K pool of this layer
//   2  V    storage read   array<u32>   V pool of this layer
//   3  BT   storage read   array<u32>   block tables: query qi reads row qi × bt_stride
//                                       (bt_stride 0: every query reads the one sequence's)
//   4  QPOS storage read   array<u32>   n_q positions
//   5  PART storage rw     array<f32>   n_q × n_head × n_splits × (head_dim + 2)
//   6  P    uniform        Params
// Bindings of `combine`: 0 PART (read), 1 O (rw, n_q × n_head × head_dim), 2 P.
// Defines: KV_F16; VEC (head_dim a multiple of 8 halves or 4 floats: K and V read a vec4<u32>
// at a time, the pool bound as vec4 words); SUBGROUP (reduce.wgsl's subgroup reductions).
// Dispatch: partial (n_splits, n_head, n_q); combine (n_head, n_q, 1). Workgroups of 64
// (SPLIT = 64 keys per split); head_dim ≤ 256.

const WG: u32 = 64u;
const SPLIT: u32 = 64u;

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

//#if PARTIAL
@group(0) @binding(0) var<storage, read> Q: array<f32>;
//#if VEC
@group(0) @binding(1) var<storage, read> K: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> V: array<vec4<u32>>;
//#else
@group(0) @binding(1) var<storage, read> K: array<u32>;
@group(0) @binding(2) var<storage, read> V: array<u32>;
//#endif
@group(0) @binding(3) var<storage, read> BT: array<u32>;
@group(0) @binding(4) var<storage, read> QPOS: array<u32>;
@group(0) @binding(5) var<storage, read_write> PART: array<f32>;
@group(0) @binding(6) var<uniform> P: Params;

var<workgroup> q_s: array<f32, 256>;
var<workgroup> p_s: array<f32, 64>;

//#include paged_kv
//#include reduce

//#if VEC
// Elements per vec4<u32> of the pool: eight halves or four floats. `unpack_lo`/`unpack_hi`
// give elements 0–3 and 4–7 of a word group (f32: the four elements, hi unused).
//#if KV_F16
const EPV: u32 = 8u;
fn unpack_lo(w: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}
fn unpack_hi(w: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w));
}
//#else
const EPV: u32 = 4u;
fn unpack_lo(w: vec4<u32>) -> vec4<f32> {
    return bitcast<vec4<f32>>(w);
}
//#endif
// Scores and V sums of the VEC path: the split's scores, and per key subset the partial
// V sums (KS subsets × head_dim).
var<workgroup> q4: array<vec4<f32>, 64>;
var<workgroup> v_part: array<vec4<f32>, 256>;
//#else
fn kv_at(pool_is_v: bool, e: u32) -> f32 {
    var w: u32;
    if (pool_is_v) { w = V[kv_word(e)]; } else { w = K[kv_word(e)]; }
    return kv_unpack(w, e);
}
//#endif

// Element index of (token t, kv head, dim 0) in the pool.
fn row_base(t: u32, kvh: u32) -> u32 {
    return kv_row_base(t, kvh, P.n_kv_head, P.head_dim, P.block_size);
}

// The split's softmax over the workgroup's scores (one per invocation; `live` false past the
// query's length): returns (max m, sum l of e^(s - m)) and leaves each weight in p_s[lid].
// Called from uniform control flow (it has barriers).
fn split_softmax(s: f32, live: bool, lid: u32, ids: RedIds) -> vec2<f32> {
    let m = wg_max(s, ids);
    var p = 0.0;
    if (live) {
        p = exp(s - m);
    }
    p_s[lid] = p;
    return vec2<f32>(m, wg_sum(p, ids));
}

@compute @workgroup_size(64)
fn partial(@builtin(workgroup_id) wid: vec3<u32>, ids: RedIds) {
    let lid = ids.lid;
    let split = wid.x;
    let h = wid.y;
    let qi = wid.z;
    let hd = P.head_dim;
    let kvh = h / (P.n_head / P.n_kv_head);
    bt_row = qi * P.bt_stride;
    let len = QPOS[qi] + 1u;
    let t0 = split * SPLIT;
    let out = ((qi * P.n_head + h) * P.n_splits + split) * (hd + 2u);
    let neg_inf = bitcast<f32>(0xff800000u);
    if (t0 >= len) {
        for (var d = lid; d < hd; d += WG) {
            PART[out + d] = 0.0;
        }
        if (lid == 0u) {
            PART[out + hd] = neg_inf;
            PART[out + hd + 1u] = 0.0;
        }
        return;
    }
//#if VEC
    // One key per invocation for the scores, read as vec4 words (EPV elements a load); then
    // the V sums by (key subset, word column): hd / EPV columns, WG / columns subsets.
    let qb = (qi * P.n_head + h) * hd;
    for (var d4 = lid; d4 < hd / 4u; d4 += WG) {
        q4[d4] = vec4<f32>(Q[qb + d4 * 4u], Q[qb + d4 * 4u + 1u], Q[qb + d4 * 4u + 2u],
                           Q[qb + d4 * 4u + 3u]) * P.scale;
    }
    workgroupBarrier();
    let t = t0 + lid;
    var s = neg_inf;
    if (t < len) {
        let kw = row_base(t, kvh) / EPV;
        var acc = 0.0;
        for (var c = 0u; c < hd / EPV; c++) {
            let w = K[kw + c];
//#if KV_F16
            acc += dot(unpack_lo(w), q4[2u * c]) + dot(unpack_hi(w), q4[2u * c + 1u]);
//#else
            acc += dot(unpack_lo(w), q4[c]);
//#endif
        }
        s = acc;
    }
    let ml = split_softmax(s, t < len, lid, ids);
    let m = ml.x;
    let l = ml.y;
    let n = min(SPLIT, len - t0);
    let cols = hd / EPV;
    let subsets = WG / cols;
    let col = lid % cols;
    let ks = lid / cols;
    var lo = vec4<f32>(0.0);
    var hi = vec4<f32>(0.0);
    if (ks < subsets) {
        for (var j = ks; j < n; j += subsets) {
            let w = V[row_base(t0 + j, kvh) / EPV + col];
            let pj = p_s[j];
            lo += pj * unpack_lo(w);
//#if KV_F16
            hi += pj * unpack_hi(w);
//#endif
        }
    }
    // v_part[subset * (hd / 4) + d4]: the subset's sums of elements 4·d4 .. 4·d4+3.
    if (ks < subsets) {
//#if KV_F16
        v_part[ks * (hd / 4u) + 2u * col] = lo;
        v_part[ks * (hd / 4u) + 2u * col + 1u] = hi;
//#else
        v_part[ks * (hd / 4u) + col] = lo;
//#endif
    }
    workgroupBarrier();
    for (var d4 = lid; d4 < hd / 4u; d4 += WG) {
        var sum = vec4<f32>(0.0);
        for (var k = 0u; k < subsets; k++) {
            sum += v_part[k * (hd / 4u) + d4];
        }
        PART[out + 4u * d4] = sum.x;
        PART[out + 4u * d4 + 1u] = sum.y;
        PART[out + 4u * d4 + 2u] = sum.z;
        PART[out + 4u * d4 + 3u] = sum.w;
    }
//#else
    for (var d = lid; d < hd; d += WG) {
        q_s[d] = Q[(qi * P.n_head + h) * hd + d] * P.scale;
    }
    workgroupBarrier();
    let t = t0 + lid;
    var s = neg_inf;
    if (t < len) {
        let kb = row_base(t, kvh);
        var acc = 0.0;
        for (var d = 0u; d < hd; d++) {
            acc += q_s[d] * kv_at(false, kb + d);
        }
        s = acc;
    }
    let ml = split_softmax(s, t < len, lid, ids);
    let m = ml.x;
    let l = ml.y;
    let n = min(SPLIT, len - t0);
    for (var d = lid; d < hd; d += WG) {
        var acc = 0.0;
        for (var j = 0u; j < n; j++) {
            acc += p_s[j] * kv_at(true, row_base(t0 + j, kvh) + d);
        }
        PART[out + d] = acc;
    }
//#endif
    if (lid == 0u) {
        PART[out + hd] = m;
        PART[out + hd + 1u] = l;
    }
}
//#endif

//#if COMBINE
@group(0) @binding(0) var<storage, read> PART: array<f32>;
@group(0) @binding(1) var<storage, read_write> O: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;

@compute @workgroup_size(64)
fn combine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wid.x;
    let qi = wid.y;
    let hd = P.head_dim;
    let stride = hd + 2u;
    let base = (qi * P.n_head + h) * P.n_splits * stride;
    var mx = bitcast<f32>(0xff800000u);
    for (var s = 0u; s < P.n_splits; s++) {
        mx = max(mx, PART[base + s * stride + hd]);
    }
    var l = 0.0;
    for (var s = 0u; s < P.n_splits; s++) {
        let ms = PART[base + s * stride + hd];
        if (ms > bitcast<f32>(0xff800000u)) {
            l += exp(ms - mx) * PART[base + s * stride + hd + 1u];
        }
    }
    for (var d = lid; d < hd; d += WG) {
        var acc = 0.0;
        for (var s = 0u; s < P.n_splits; s++) {
            let ms = PART[base + s * stride + hd];
            if (ms > bitcast<f32>(0xff800000u)) {
                acc += exp(ms - mx) * PART[base + s * stride + d];
            }
        }
        O[(qi * P.n_head + h) * hd + d] = acc / l;
    }
}
//#endif
