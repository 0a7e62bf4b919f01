// matvec.wgsl — decode matrix × vector: Y[out_offset + r] = dot(row r of W, X[x_offset..+k])
// for the rows r of one weight chunk. One workgroup per row; each invocation accumulates
// vec4 groups k4 = lid, lid+WG, ... and the workgroup reduces (reduce.wgsl).
//
// Bindings (group 0):
//   0  W  storage read   array<u32>        raw GGUF bytes of the chunk (rows × row_bytes)
//   1  X  storage read   array<vec4<f32>>  input activations
//   2  Y  storage rw     array<f32>        output
//   3  P  uniform        Params
// Defines: one TYPE_* (see dequant.wgsl); SUBGROUP for subgroup reductions.
// Override: WG (workgroup size, power of 2, ≤ 256; default 64).
// Dispatch: (grid_x, ceil(rows / grid_x), 1); row = wid.x + wid.y * grid_x (rows may exceed
// the 65,535 workgroups one dimension allows, e.g. a 152k-token vocabulary).
// k must be a multiple of 4; x_offset is in vec4 units.

override WG: u32 = 64u;

struct Params {
    rows: u32,
    k: u32,
    row_bytes: u32,
    out_offset: u32,
    x_offset: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;

//#include bytes
//#include dequant
//#include reduce

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, ids: RedIds) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= P.rows) {
        return;
    }
    let rb = row * P.row_bytes;
    let n4 = P.k / 4u;
    var acc = 0.0;
    for (var k4 = ids.lid; k4 < n4; k4 += WG) {
        acc += dot(dequant4(rb, k4), X[P.x_offset + k4]);
    }
    let total = wg_sum(acc, ids);
    if (ids.lid == 0u) {
        Y[P.out_offset + row] = total;
    }
}
