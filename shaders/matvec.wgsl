// matvec.wgsl — decode matrix × vector: Y[out_offset + r] = dot(row r of W, X[x_offset..+k])
// for the rows r of one weight chunk. TPR invocations per row (WG/TPR rows per workgroup):
// each accumulates vec4 groups k4 = lane, lane+TPR, ... (or 32-element groups, see DOT32)
// and the row's invocations reduce —
// the whole workgroup through reduce.wgsl when TPR = WG (long rows), else a segmented
// shared-memory tree (short rows, where one workgroup per row would mostly idle).
//
// Bindings (group 0):
//   0  W  storage read   array<u32>        raw GGUF bytes of the chunk (rows × row_bytes)
//   1  X  storage read   array<vec4<f32>>  input activations
//   2  Y  storage rw     array<f32>        output
//   3  P  uniform        Params
// Defines: one TYPE_* (see dequant.wgsl); SUBGROUP for subgroup reductions (SUBGROUP_ROWS:
// a row's lanes within one subgroup, summed by shuffles — row_sum.wgsl); MULTI for
// NCOLS > 1 tokens (the vec4 path, each weight vec4 dequantized once); else DOT32 for the
// block formats with a `dot32` (dot32.wgsl): each invocation then takes 32-element groups
// g = lane, lane+TPR, ... instead of vec4s (k is then a multiple of 32).
// ADD: accumulate, Y[..] += the product (a residual add folded into the projection).
// Overrides: WG (workgroup size, power of 2, ≤ 256; default 64), TPR (threads per row,
// power of 2, ≤ WG; default WG).
// ROWS (1–8, rows per invocation).
// Dispatch: (grid_x, ceil(groups / grid_x), 1) for groups = ceil(rows / (ROWS·WG/TPR)); the
// group index is wid.x + wid.y * grid_x (rows may exceed the 65,535 workgroups one dimension
// allows, e.g. a 152k-token vocabulary).
// k must be a multiple of 4; x_offset is in vec4 units.

override WG: u32 = 64u;
override TPR: u32 = WG;
// Tokens per dispatch (1–16): each weight vec4 is dequantized once and used for every token,
// Y[t * y_stride + out_offset + r] for t < NCOLS (short prefills, where a tiled matmul would
// compute mostly empty tiles).
override NCOLS: u32 = 1u;
// Rows per invocation (1–8): each activation load serves ROWS rows (register tiling; on
// CPU adapters loads, not arithmetic, bound a matvec).
override ROWS: u32 = 1u;

struct Params {
    rows: u32,
    k: u32,
    row_bytes: u32,
    out_offset: u32,
    x_offset: u32,
    x_stride4: u32,  // NCOLS > 1: vec4s from one token's activations to the next
    y_stride: u32,   // NCOLS > 1: floats from one token's outputs to the next
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;

//#include bytes
//#include dequant
//#include reduce
//#include row_sum
//#include xgroup
//#if DOT32
//#include dot32
//#endif

//#if MULTI
// lo[t] / hi[t]: token t's sums for rows row0 .. row0+3 / row0+4 .. row0+7 (x .. w).
var<private> lo: array<vec4<f32>, 16>;
var<private> hi: array<vec4<f32>, 16>;
//#if XBCAST
// The current k4's dequantized weights of the invocation's rows.
var<private> WK: array<vec4<f32>, 8>;

// Token t's activations xv against the rows' weights (t a constant at every call).
fn mac_token(t: u32, xv: vec4<f32>) {
    if (t < NCOLS) {
        lo[t] += vec4<f32>(dot(WK[0], xv), dot(WK[1], xv), dot(WK[2], xv), dot(WK[3], xv));
        if (ROWS > 4u) {
            hi[t] += vec4<f32>(dot(WK[4], xv), dot(WK[5], xv), dot(WK[6], xv), dot(WK[7], xv));
        }
    }
}

// Tokens t0 .. t0+7 of this k4: lane i loads token t0 + i's vec4 (clamped to the last token)
// and the subgroup shares the eight by broadcast.
fn mac_tokens8(t0: u32, k4: u32) {
    let t = min(t0 + (XB_LANE & 7u), NCOLS - 1u);
    let mine = X[P.x_offset + t * P.x_stride4 + k4];
    mac_token(t0, subgroupBroadcast(mine, 0u));
    mac_token(t0 + 1u, subgroupBroadcast(mine, 1u));
    mac_token(t0 + 2u, subgroupBroadcast(mine, 2u));
    mac_token(t0 + 3u, subgroupBroadcast(mine, 3u));
    mac_token(t0 + 4u, subgroupBroadcast(mine, 4u));
    mac_token(t0 + 5u, subgroupBroadcast(mine, 5u));
    mac_token(t0 + 6u, subgroupBroadcast(mine, 6u));
    mac_token(t0 + 7u, subgroupBroadcast(mine, 7u));
}
//#endif
//#endif

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, ids: RedIds) {
    let rows_per_wg = (WG / TPR) * ROWS;
    let first = (wid.x + wid.y * nwg.x) * rows_per_wg;
    if (first >= P.rows) {
        return;
    }
//#if XBCAST
    XB_LANE = ids.sg_lane;
//#endif
    let slot = row_slot(ids);
    let lane = slot % TPR;
    let row0 = first + (slot / TPR) * ROWS;
    // Rows past the end compute a copy of the last row (no branch in the hot loop) and are
    // never stored.
    var rbs: array<u32, 8>;
    for (var r = 0u; r < ROWS; r++) {
        rbs[r] = min(row0 + r, P.rows - 1u) * P.row_bytes;
    }
//#if MULTI
    let n4 = P.k / 4u;
//#if XBCAST
    // The subgroup walks k4 together (TPR 1): each weight vec4 dequantized once for every
    // token, each token's activations loaded by one lane (mac_tokens8).
    for (var k4 = 0u; k4 < n4; k4++) {
        for (var r = 0u; r < ROWS; r++) {
            WK[r] = dequant4(rbs[r], k4);
        }
        mac_tokens8(0u, k4);
        if (NCOLS > 8u) {
            mac_tokens8(8u, k4);
        }
    }
//#else
    // The rows' weight vec4s are plain values, not an array: llvmpipe turns a run-time index
    // into a private array into a ladder of branches. Rows past ROWS are skipped by constant
    // tests.
    let z = vec4<f32>(0.0);
    for (var k4 = lane; k4 < n4; k4 += TPR) {
        let w0 = dequant4(rbs[0], k4);
        var w1 = z;
        var w2 = z;
        var w3 = z;
        var w4 = z;
        var w5 = z;
        var w6 = z;
        var w7 = z;
        if (ROWS > 1u) {
            w1 = dequant4(rbs[1], k4);
        }
        if (ROWS > 2u) {
            w2 = dequant4(rbs[2], k4);
            w3 = dequant4(rbs[3], k4);
        }
        if (ROWS > 4u) {
            w4 = dequant4(rbs[4], k4);
            w5 = dequant4(rbs[5], k4);
            w6 = dequant4(rbs[6], k4);
            w7 = dequant4(rbs[7], k4);
        }
        for (var t = 0u; t < NCOLS; t++) {
            let xv = X[P.x_offset + t * P.x_stride4 + k4];
            lo[t] += vec4<f32>(dot(w0, xv), dot(w1, xv), dot(w2, xv), dot(w3, xv));
            if (ROWS > 4u) {
                hi[t] += vec4<f32>(dot(w4, xv), dot(w5, xv), dot(w6, xv), dot(w7, xv));
            }
        }
    }
//#endif
    for (var t = 0u; t < NCOLS; t++) {
        for (var r = 0u; r < ROWS; r++) {
            let total = reduce_row(select(hi[t][r & 3u], lo[t][r & 3u], r < 4u), ids, lane);
            if (lane == 0u && row0 + r < P.rows) {
                let yi = t * P.y_stride + P.out_offset + row0 + r;
//#if ADD
                Y[yi] += total;
//#else
                Y[yi] = total;
//#endif
            }
        }
    }
//#else
    var acc: array<f32, 8>;
//#if DOT32
    let n32 = P.k / 32u;
    for (var g = lane; g < n32; g += TPR) {
//#if XBCAST
        load_xg_bcast(P.x_offset + g * 8u);
//#else
        load_xg(P.x_offset + g * 8u);
//#endif
        for (var r = 0u; r < ROWS; r++) {
            acc[r] += dot32(rbs[r], g);
        }
    }
//#else
    let n4 = P.k / 4u;
    for (var k4 = lane; k4 < n4; k4 += TPR) {
        let xv = X[P.x_offset + k4];
        for (var r = 0u; r < ROWS; r++) {
            acc[r] += dot(dequant4(rbs[r], k4), xv);
        }
    }
//#endif
    for (var r = 0u; r < ROWS; r++) {
        let total = reduce_row(acc[r], ids, lane);
        if (lane == 0u && row0 + r < P.rows) {
//#if ADD
            Y[P.out_offset + row0 + r] += total;
//#else
            Y[P.out_offset + row0 + r] = total;
//#endif
        }
    }
//#endif
}
