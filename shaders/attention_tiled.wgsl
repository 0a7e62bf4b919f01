// attention_tiled.wgsl — causal attention for prefill over a paged KV pool (layout in
// kv_write.wgsl): flash-attention style, no scratch. A workgroup takes a tile of BQ = 16
// queries of one head and walks the keys in tiles staged through workgroup memory, keeping
// an online softmax (running max m, sum l, accumulator acc) per query.
//
// Query qi sits at position QPOS[qi] and sees keys 0 ..= QPOS[qi]; head h reads kv head
// h / (n_head / n_kv_head). The key loop of a workgroup runs to the largest length of its
// queries; each query masks the keys past its own.
//
// Threads: 64 = 16 query rows × 4 lanes. Lane `ln` of row r owns dims
// [ln·hd/4, (ln+1)·hd/4) of q and of the output (hd % 4 == 0, hd ≤ 256: 64 private floats).
// Per key tile of BK = min(16, 2048 / hd) keys:
//   1. stage K rows in TILE; each thread writes its partial dot products to PARTS;
//   2. stage V rows in TILE (same memory); each row sums its 4 lanes' partials into scores,
//      rescales acc by e^(m_old - m_new) once per tile and adds Σ p_j v_j for its dims.
// Workgroup memory: TILE 2048 f32 + PARTS 16 × 64 f32 + 17 u32 = 12 KiB.
// Scores are q·k · scale in f32; KV_F16 reads f16 pairs from u32 words.
//
// Bindings (group 0):
//   0  Q    storage read   array<f32>   n_q × n_head × head_dim
//   1  K    storage read   array<u32>   K pool of this layer
//   2  V    storage read   array<u32>   V pool of this layer
//   3  BT   storage read   array<u32>   block table of the sequence
//   4  QPOS storage read   array<u32>   n_q positions
//   5  O    storage rw     array<f32>   n_q × n_head × head_dim
//   6  P    uniform        Params
// Dispatch: (ceil(n_q / 16), n_head, 1).

const WG: u32 = 64u;
const BQ: u32 = 16u;
const LANES: u32 = 4u;
const TILE_FLOATS: u32 = 2048u;
const BK_MAX: u32 = 16u;
// A finite "minus infinity": keeps e^(m - m_new) free of inf - inf.
const NEG_BIG: f32 = -1.0e30;

struct Params {
    n_q: u32,
    n_head: u32,
    n_kv_head: u32,
    head_dim: u32,
    block_size: u32,
    bk: u32,
    scale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> Q: array<f32>;
@group(0) @binding(1) var<storage, read> K: array<u32>;
@group(0) @binding(2) var<storage, read> V: array<u32>;
@group(0) @binding(3) var<storage, read> BT: array<u32>;
@group(0) @binding(4) var<storage, read> QPOS: array<u32>;
@group(0) @binding(5) var<storage, read_write> O: array<f32>;
@group(0) @binding(6) var<uniform> P: Params;

var<workgroup> TILE: array<f32, TILE_FLOATS>;
var<workgroup> PARTS: array<f32, 1024>; // BK_MAX × WG
var<workgroup> lens_s: array<u32, BQ>;
var<workgroup> kmax_s: u32;

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

// Stages rows t0 .. t0+n_t of K (or V) for kv head kvh into TILE.
fn stage(pool_is_v: bool, t0: u32, n_t: u32, kvh: u32, lid: u32) {
    let hd = P.head_dim;
    for (var e = lid; e < n_t * hd; e += WG) {
        let j = e / hd;
        TILE[e] = kv_at(pool_is_v, row_base(t0 + j, kvh) + e % hd);
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wid.y;
    let hd = P.head_dim;
    let hq = hd / LANES;
    let kvh = h / (P.n_head / P.n_kv_head);
    let r = lid / LANES;
    let ln = lid % LANES;
    let qi = wid.x * BQ + r;
    let valid = qi < P.n_q;
    var my_len = 0u;
    if (valid) {
        my_len = QPOS[qi] + 1u;
    }
    if (ln == 0u) {
        lens_s[r] = my_len;
    }
    workgroupBarrier();
    if (lid == 0u) {
        var mx = 0u;
        for (var i = 0u; i < BQ; i++) {
            mx = max(mx, lens_s[i]);
        }
        kmax_s = mx;
    }
    let n_keys = workgroupUniformLoad(&kmax_s);

    let qbase = (qi * P.n_head + h) * hd + ln * hq;
    var q_r: array<f32, 64>;
    var acc: array<f32, 64>;
    for (var i = 0u; i < hq; i++) {
        acc[i] = 0.0;
        q_r[i] = 0.0;
        if (valid) {
            q_r[i] = Q[qbase + i] * P.scale;
        }
    }
    var m = NEG_BIG;
    var l = 0.0;
    var s_loc: array<f32, BK_MAX>;
    let bk = P.bk;
    for (var t0 = 0u; t0 < n_keys; t0 += bk) {
        let n_t = min(bk, n_keys - t0);
        stage(false, t0, n_t, kvh, lid);
        workgroupBarrier();
        for (var j = 0u; j < n_t; j++) {
            let kb = j * hd + ln * hq;
            var s = 0.0;
            for (var i = 0u; i < hq; i++) {
                s += q_r[i] * TILE[kb + i];
            }
            PARTS[j * WG + lid] = s;
        }
        workgroupBarrier();
        stage(true, t0, n_t, kvh, lid);
        workgroupBarrier();
        if (t0 < my_len) {
            let n_mine = min(n_t, my_len - t0);
            var tile_max = NEG_BIG;
            for (var j = 0u; j < n_mine; j++) {
                let pb = j * WG + r * LANES;
                let s = PARTS[pb] + PARTS[pb + 1u] + PARTS[pb + 2u] + PARTS[pb + 3u];
                s_loc[j] = s;
                tile_max = max(tile_max, s);
            }
            let m_new = max(m, tile_max);
            let corr = exp(m - m_new);
            l *= corr;
            for (var i = 0u; i < hq; i++) {
                acc[i] *= corr;
            }
            for (var j = 0u; j < n_mine; j++) {
                let p = exp(s_loc[j] - m_new);
                l += p;
                let vb = j * hd + ln * hq;
                for (var i = 0u; i < hq; i++) {
                    acc[i] += p * TILE[vb + i];
                }
            }
            m = m_new;
        }
        workgroupBarrier();
    }
    if (valid) {
        for (var i = 0u; i < hq; i++) {
            O[qbase + i] = acc[i] / l;
        }
    }
}
