// matvec_fused.wgsl — decode (one token) projections that share their input, in one dispatch:
//   QKV: Y0[r] = W0[r]·x (+ B[r]),  Y1[r] = W1[r]·x (+ B[rows0 + r]),
//        Y2[r] = W2[r]·x (+ B[rows0 + rows1 + r])         (q, k, v; qwen2's biases with BIAS)
//   GLU: Y0[r] = silu(W0[r]·x) * (W1[r]·x)                (gate, up and SwiGLU; rows0 = rows1)
// with x = X[0 .. k], or with NORM x = rmsnorm(XIN[0 .. k]) * G: every workgroup takes the
// mean of squares of XIN itself (f32, as rmsnorm.wgsl) and keeps the normed x in workgroup
// memory (k ≤ 4 * XCAP), so the norm costs no dispatch of its own.
//
// The weights keep their GGUF block layouts and may differ in type (Q4_K_M's q and k are Q4_K,
// v Q6_K): each slot's row dot product comes from row_dot.wgsl, included once per slot with
// that slot's TYPE_* (defines S0_TYPE_*, S1_TYPE_*, S2_TYPE_*; S<n>_DOT32 for dot32 formats).
// Rows r of the launch run 0 .. rows0 + rows1 + rows2 (QKV) or 0 .. rows0 (GLU); TPR
// invocations per row (WG/TPR rows per workgroup), reduced as in matvec.wgsl.
//
// Bindings (group 0; numbers fixed, the unused ones absent):
//   0  W0   storage read   array<u32>        weight 0 (q or gate), raw GGUF bytes, one chunk
//   1  W1   storage read   array<u32>        weight 1 (k or up)
//   2  W2   storage read   array<u32>        weight 2 (v)                         QKV only
//   3  X    storage read   array<vec4<f32>>  input (the normed activations)       without NORM
//   3  XIN  storage read   array<vec4<f32>>  input before the norm (residual x)   NORM
//   4  G    storage read   array<vec4<f32>>  the norm weight (k floats)           NORM
//   5  Y0   storage rw     array<f32>        output 0 (q, or the SwiGLU product)
//   6  Y1   storage rw     array<f32>        output 1 (k)                         QKV only
//   7  Y2   storage rw     array<f32>        output 2 (v)                         QKV only
//   8  B    storage read   array<f32>        the three biases, concatenated       BIAS
//   9  P    uniform        Params
// Defines: QKV or GLU; NORM; BIAS (QKV only); SUBGROUP (whole-workgroup reductions) and
// SUBGROUP_ROWS (row sums by subgroup shuffles, see row_sum.wgsl).
// Overrides: WG (power of 2, ≤ 256), TPR (power of 2, ≤ WG), ROWS (1–8, dividing each slot's
// row count).
// Dispatch: (grid_x, ceil(groups / grid_x), 1) for groups = ceil(rows / (ROWS·WG/TPR)).
// Loops per invocation: NORM 2·k/(4·WG) + the row dots (row_dot.wgsl) — a few hundred at 7B.

override WG: u32 = 64u;
override TPR: u32 = WG;
// Rows per invocation (1–8; each activation group loaded once for all of them).
override ROWS: u32 = 1u;

// vec4s of normed input a workgroup holds (16 KiB: k ≤ 4096).
const XCAP: u32 = 1024u;

struct Params {
    rows0: u32,
    rows1: u32,
    rows2: u32,
    k: u32,
    row_bytes0: u32,
    row_bytes1: u32,
    row_bytes2: u32,
    eps: f32,
}

@group(0) @binding(0) var<storage, read> W0: array<u32>;
@group(0) @binding(1) var<storage, read> W1: array<u32>;
//#if QKV
@group(0) @binding(2) var<storage, read> W2: array<u32>;
//#endif
//#if NORM
@group(0) @binding(3) var<storage, read> XIN: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> G: array<vec4<f32>>;
var<workgroup> X: array<vec4<f32>, XCAP>;
//#else
@group(0) @binding(3) var<storage, read> X: array<vec4<f32>>;
//#endif
@group(0) @binding(5) var<storage, read_write> Y0: array<f32>;
//#if QKV
@group(0) @binding(6) var<storage, read_write> Y1: array<f32>;
@group(0) @binding(7) var<storage, read_write> Y2: array<f32>;
//#endif
//#if BIAS
@group(0) @binding(8) var<storage, read> B: array<f32>;
//#endif
@group(0) @binding(9) var<uniform> P: Params;

//#include reduce
//#include row_sum
//#include xgroup
//#slot row_dot 0
//#slot row_dot 1
//#if QKV
//#slot row_dot 2
//#endif

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, ids: RedIds) {
    let rows_per_wg = (WG / TPR) * ROWS;
    let first = (wid.x + wid.y * nwg.x) * rows_per_wg;
//#if QKV
    let n_rows = P.rows0 + P.rows1 + P.rows2;
//#else
    let n_rows = P.rows0;
//#endif
    if (first >= n_rows) {
        return;
    }
//#if NORM
    let n4 = P.k / 4u;
    var ss = 0.0;
    for (var i = ids.lid; i < n4; i += WG) {
        let v = XIN[i];
        ss += dot(v, v);
    }
    let scale = 1.0 / sqrt(wg_sum(ss, ids) / f32(P.k) + P.eps);
    for (var i = ids.lid; i < n4; i += WG) {
        X[i] = XIN[i] * scale * G[i];
    }
    workgroupBarrier();
//#endif
//#if XBCAST
    XB_LANE = ids.sg_lane;
//#endif
    let slot = row_slot(ids);
    let lane = slot % TPR;
    let row0 = first + (slot / TPR) * ROWS;
    // Which weight the invocation's rows belong to, and their bytes there. The host picks
    // ROWS dividing every slot's row count, so the ROWS rows never straddle two weights; rows
    // past the end compute a copy of the last row and are never stored.
    var rbs: array<u32, 8>;
    var acc: array<f32, 8>;
//#if QKV
    if (row0 < P.rows0) {
        for (var r = 0u; r < ROWS; r++) {
            rbs[r] = (row0 + r) * P.row_bytes0;
        }
        acc = row_dots_0(rbs, lane);
    } else if (row0 < P.rows0 + P.rows1) {
        for (var r = 0u; r < ROWS; r++) {
            rbs[r] = (row0 + r - P.rows0) * P.row_bytes1;
        }
        acc = row_dots_1(rbs, lane);
    } else {
        for (var r = 0u; r < ROWS; r++) {
            rbs[r] = (min(row0 + r, n_rows - 1u) - P.rows0 - P.rows1) * P.row_bytes2;
        }
        acc = row_dots_2(rbs, lane);
    }
    for (var r = 0u; r < ROWS; r++) {
        let row = row0 + r;
        var total = reduce_row(acc[r], ids, lane);
        if (lane == 0u && row < n_rows) {
//#if BIAS
            total += B[row];
//#endif
            if (row < P.rows0) {
                Y0[row] = total;
            } else if (row < P.rows0 + P.rows1) {
                Y1[row - P.rows0] = total;
            } else {
                Y2[row - P.rows0 - P.rows1] = total;
            }
        }
    }
//#else
    for (var r = 0u; r < ROWS; r++) {
        rbs[r] = min(row0 + r, n_rows - 1u) * P.row_bytes0;
    }
    let a0 = row_dots_0(rbs, lane);
    for (var r = 0u; r < ROWS; r++) {
        rbs[r] = min(row0 + r, n_rows - 1u) * P.row_bytes1;
    }
    let a1 = row_dots_1(rbs, lane);
    for (var r = 0u; r < ROWS; r++) {
        let g = reduce_row(a0[r], ids, lane);
        let u = reduce_row(a1[r], ids, lane);
        if (lane == 0u && row0 + r < n_rows) {
            Y0[row0 + r] = g / (1.0 + exp(-g)) * u;
        }
    }
//#endif
}
