// attention_tiled.wgsl — causal attention for prefill over a paged KV pool (layout in
// paged_kv.wgsl): flash-attention style. A workgroup takes a tile of BQ = 16 queries of one
// head and one split of the keys, and walks that split in tiles staged through workgroup
// memory, keeping an online softmax (running max m, sum l, accumulator acc) per query.
//
// Query qi sits at position QPOS[qi] and sees keys 0 ..= QPOS[qi]; head h reads kv head
// h / (n_head / n_kv_head). Split z covers keys [z·split_keys, (z+1)·split_keys); its key
// loop runs to the largest length of the tile's queries; each query masks the keys past its
// own.
//
// Why splits: llvmpipe (lavapipe) ends every loop of an invocation once all loops of that
// invocation together have run 65,535 iterations, silently. The host sizes split_keys so
// one split stays well inside that (`ops::attention::prefill_split_keys`); on other
// adapters one split covers the whole context.
// One split (num_workgroups.z == 1): O gets the normalised result. Several: PART gets, per
// (query, head, split), (acc[0..hd] unnormalised, m, l) — the layout of attention.wgsl's
// `partial`, whose `combine` entry merges them (an empty split writes m = -inf, l = 0).
//
// Threads: 64 = 16 query rows × 4 lanes. Lane `ln` of row r owns the vec4 slots v ≡ ln
// (mod 4) of q and of the output (hd % 4 == 0, hd ≤ 256: ≤ 16 private vec4s).
// Per key tile of BK = min(16, 2048 / hd) keys:
//   1. stage K rows in TILE; each thread writes its partial dot products to PARTS;
//   2. stage V rows in TILE (same memory); each row sums its 4 lanes' partials into scores,
//      rescales acc by e^(m_old - m_new) once per tile and adds Σ p_j v_j for its slots.
// Workgroup memory: TILE 512 vec4 + PARTS 16 × 64 f32 + 17 u32 = 12 KiB.
// Scores are q·k · scale in f32; KV_F16 reads f16 pairs from u32 words.
//
// Bindings (group 0):
//   0  Q    storage read   array<f32>   n_q × n_head × head_dim
//   1  K    storage read   array<u32>   K pool of this layer
//   2  V    storage read   array<u32>   V pool of this layer
//   3  BT   storage read   array<u32>   block table of the sequence
//   4  QPOS storage read   array<u32>   n_q positions
//   5  O    storage rw     array<f32>   n_q × n_head × head_dim (one split), else
//                                       n_q × n_head × n_splits × (head_dim + 2) partials
//   6  P    uniform        Params
// Dispatch: (ceil(n_q / 16), n_head, n_splits).

// The vec4 slots per lane when every lane has the same number (head_dim / 16; 0: computed
// per lane). A constant trip count lets the per-lane loops unroll, so q_r and acc stay in
// registers (llvmpipe turns run-time indices into private arrays into branch ladders).
override NM4: u32 = 0u;

const WG: u32 = 64u;
const BQ: u32 = 16u;
const LANES: u32 = 4u;
const TILE_VEC4: u32 = 512u;
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
    split_keys: u32,
}

@group(0) @binding(0) var<storage, read> Q: array<f32>;
@group(0) @binding(1) var<storage, read> K: array<u32>;
@group(0) @binding(2) var<storage, read> V: array<u32>;
@group(0) @binding(3) var<storage, read> BT: array<u32>;
@group(0) @binding(4) var<storage, read> QPOS: array<u32>;
@group(0) @binding(5) var<storage, read_write> O: array<f32>;
@group(0) @binding(6) var<uniform> P: Params;

var<workgroup> TILE: array<vec4<f32>, TILE_VEC4>;
var<workgroup> PARTS: array<f32, 1024>; // BK_MAX × WG
var<workgroup> lens_s: array<u32, BQ>;
var<workgroup> kmax_s: u32;

//#include paged_kv

// Elements e .. e+3 (e % 4 == 0, one row: rows are head_dim long, a multiple of 4).
//#if KV_F16
fn kv4_at(pool_is_v: bool, e: u32) -> vec4<f32> {
    var a: u32;
    var b: u32;
    if (pool_is_v) {
        a = V[e >> 1u];
        b = V[(e >> 1u) + 1u];
    } else {
        a = K[e >> 1u];
        b = K[(e >> 1u) + 1u];
    }
    return vec4<f32>(unpack2x16float(a), unpack2x16float(b));
}
//#else
fn kv4_at(pool_is_v: bool, e: u32) -> vec4<f32> {
    if (pool_is_v) {
        return bitcast<vec4<f32>>(vec4<u32>(V[e], V[e + 1u], V[e + 2u], V[e + 3u]));
    }
    return bitcast<vec4<f32>>(vec4<u32>(K[e], K[e + 1u], K[e + 2u], K[e + 3u]));
}
//#endif

// Stages rows t0 .. t0+n_t of K (or V) for kv head kvh into TILE, hd4 vec4s per row.
fn stage(pool_is_v: bool, t0: u32, n_t: u32, kvh: u32, lid: u32) {
    let hd4 = P.head_dim / 4u;
    for (var e = lid; e < n_t * hd4; e += WG) {
        let j = e / hd4;
        let base = kv_row_base(t0 + j, kvh, P.n_kv_head, P.head_dim, P.block_size);
        TILE[e] = kv4_at(pool_is_v, base + (e % hd4) * 4u);
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let h = wid.y;
    let split = wid.z;
    let n_splits = nwg.z;
    let hd = P.head_dim;
    let hd4 = hd / 4u;
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
    let k_begin = split * P.split_keys;
    let k_end = min(workgroupUniformLoad(&kmax_s), k_begin + P.split_keys);

    // This lane's vec4 slots: v = ln + 4·i for i < n_mine4.
    var n_mine4 = (hd4 + LANES - 1u - ln) / LANES;
    if (NM4 > 0u) {
        n_mine4 = NM4;
    }
    let qbase = (qi * P.n_head + h) * hd;
    var q_r: array<vec4<f32>, 16>;
    var acc: array<vec4<f32>, 16>;
    for (var i = 0u; i < n_mine4; i++) {
        acc[i] = vec4<f32>(0.0);
        q_r[i] = vec4<f32>(0.0);
        if (valid) {
            let e = qbase + (ln + i * LANES) * 4u;
            q_r[i] = vec4<f32>(Q[e], Q[e + 1u], Q[e + 2u], Q[e + 3u]) * P.scale;
        }
    }
    var m = NEG_BIG;
    var l = 0.0;
    var s_loc: array<f32, BK_MAX>;
    let bk = P.bk;
    for (var t0 = k_begin; t0 < k_end; t0 += bk) {
        let n_t = min(bk, k_end - t0);
        stage(false, t0, n_t, kvh, lid);
        workgroupBarrier();
        for (var j = 0u; j < n_t; j++) {
            let kb = j * hd4 + ln;
            var s = 0.0;
            for (var i = 0u; i < n_mine4; i++) {
                s += dot(q_r[i], TILE[kb + i * LANES]);
            }
            PARTS[j * WG + lid] = s;
        }
        workgroupBarrier();
        stage(true, t0, n_t, kvh, lid);
        workgroupBarrier();
        if (t0 < my_len) {
            let n_in = min(n_t, my_len - t0);
            var tile_max = NEG_BIG;
            for (var j = 0u; j < n_in; j++) {
                let pb = j * WG + r * LANES;
                let s = PARTS[pb] + PARTS[pb + 1u] + PARTS[pb + 2u] + PARTS[pb + 3u];
                s_loc[j] = s;
                tile_max = max(tile_max, s);
            }
            let m_new = max(m, tile_max);
            let corr = exp(m - m_new);
            l *= corr;
            for (var i = 0u; i < n_mine4; i++) {
                acc[i] *= corr;
            }
            for (var j = 0u; j < n_in; j++) {
                let p = exp(s_loc[j] - m_new);
                l += p;
                let vb = j * hd4 + ln;
                for (var i = 0u; i < n_mine4; i++) {
                    acc[i] += p * TILE[vb + i * LANES];
                }
            }
            m = m_new;
        }
        workgroupBarrier();
    }
    if (!valid) {
        return;
    }
    if (n_splits == 1u) {
        for (var i = 0u; i < n_mine4; i++) {
            let e = qbase + (ln + i * LANES) * 4u;
            let o = acc[i] / l;
            O[e] = o.x;
            O[e + 1u] = o.y;
            O[e + 2u] = o.z;
            O[e + 3u] = o.w;
        }
        return;
    }
    let out = ((qi * P.n_head + h) * n_splits + split) * (hd + 2u);
    for (var i = 0u; i < n_mine4; i++) {
        let e = out + (ln + i * LANES) * 4u;
        O[e] = acc[i].x;
        O[e + 1u] = acc[i].y;
        O[e + 2u] = acc[i].z;
        O[e + 3u] = acc[i].w;
    }
    if (ln == 0u) {
        // No key of this split is visible to the query: an empty split for `combine`.
        if (my_len <= k_begin) {
            O[out + hd] = bitcast<f32>(0xff800000u);
            O[out + hd + 1u] = 0.0;
        } else {
            O[out + hd] = m;
            O[out + hd + 1u] = l;
        }
    }
}
