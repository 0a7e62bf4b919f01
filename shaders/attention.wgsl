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
@group(0) @binding(1) var<storage, read> K: array<u32>;
@group(0) @binding(2) var<storage, read> V: array<u32>;
@group(0) @binding(3) var<storage, read> BT: array<u32>;
@group(0) @binding(4) var<storage, read> QPOS: array<u32>;
@group(0) @binding(5) var<storage, read_write> PART: array<f32>;
@group(0) @binding(6) var<uniform> P: Params;

var<workgroup> q_s: array<f32, 256>;
var<workgroup> p_s: array<f32, 64>;
var<workgroup> red: array<f32, 64>;

//#include paged_kv

fn kv_at(pool_is_v: bool, e: u32) -> f32 {
    var w: u32;
    if (pool_is_v) { w = V[kv_word(e)]; } else { w = K[kv_word(e)]; }
    return kv_unpack(w, e);
}

// Element index of (token t, kv head, dim 0) in the pool.
fn row_base(t: u32, kvh: u32) -> u32 {
    return kv_row_base(t, kvh, P.n_kv_head, P.head_dim, P.block_size);
}

fn wg_reduce(v: f32, lid: u32, is_max: bool) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            if (is_max) {
                red[lid] = max(red[lid], red[lid + s]);
            } else {
                red[lid] += red[lid + s];
            }
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(64)
fn partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
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
    let m = wg_reduce(s, lid, true);
    var p = 0.0;
    if (t < len) {
        p = exp(s - m);
    }
    p_s[lid] = p;
    let l = wg_reduce(p, lid, false);
    let n = min(SPLIT, len - t0);
    for (var d = lid; d < hd; d += WG) {
        var acc = 0.0;
        for (var j = 0u; j < n; j++) {
            acc += p_s[j] * kv_at(true, row_base(t0 + j, kvh) + d);
        }
        PART[out + d] = acc;
    }
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
