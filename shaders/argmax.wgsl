// argmax.wgsl — greedy sampling: OUT[out_index] = the index of the largest of X[offset ..
// offset + n] (the lowest such index on ties; NaNs never win; u32::MAX when all are NaN).
// One workgroup of 256.
//
// Bindings (group 0):
//   0  X    storage read   array<f32>
//   1  OUT  storage rw     array<u32>
//   2  P    uniform        Params
// Dispatch: (1, 1, 1).

struct Params {
    n: u32,
    offset: u32,
    out_index: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> OUT: array<u32>;
@group(0) @binding(2) var<uniform> P: Params;

var<workgroup> best_v: array<f32, 256>;
var<workgroup> best_i: array<u32, 256>;

// Is (v, i) better than (bv, bi)?
fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
    return v > bv || (v == bv && i < bi);
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    var bv = bitcast<f32>(0xff800000u); // -inf
    var bi = 0xffffffffu;
    for (var i = lid; i < P.n; i += 256u) {
        let v = X[P.offset + i];
        if (better(v, i, bv, bi)) {
            bv = v;
            bi = i;
        }
    }
    best_v[lid] = bv;
    best_i[lid] = bi;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s && better(best_v[lid + s], best_i[lid + s], best_v[lid], best_i[lid])) {
            best_v[lid] = best_v[lid + s];
            best_i[lid] = best_i[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        OUT[P.out_index] = best_i[0];
    }
}
