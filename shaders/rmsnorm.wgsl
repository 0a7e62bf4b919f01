// rmsnorm.wgsl — Y[t, i] = X[t, i] / sqrt(mean_i(X[t, :]²) + eps) * G[i], one workgroup per
// row t (as llama.cpp: the mean of squares in f32, then the weight multiply).
//
// Bindings (group 0):
//   0  X  storage read   array<f32>   n_rows × n
//   1  G  storage read   array<f32>   n (the norm weight, dequantized to f32 at load)
//   2  Y  storage rw     array<f32>   n_rows × n (may not alias X: write to another buffer)
//   3  P  uniform        Params
// Defines: SUBGROUP for subgroup reductions. Override: WG (power of 2, ≤ 256; default 256).
// Dispatch: (grid_x, ceil(n_rows / grid_x), 1).

override WG: u32 = 256u;

struct Params {
    n_rows: u32,
    n: u32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;

//#include reduce

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, ids: RedIds) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= P.n_rows) {
        return;
    }
    let base = row * P.n;
    var ss = 0.0;
    for (var i = ids.lid; i < P.n; i += WG) {
        let v = X[base + i];
        ss += v * v;
    }
    let total = wg_sum(ss, ids);
    let scale = 1.0 / sqrt(total / f32(P.n) + P.eps);
    for (var i = ids.lid; i < P.n; i += WG) {
        Y[base + i] = X[base + i] * scale * G[i];
    }
}
