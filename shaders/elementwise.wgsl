// elementwise.wgsl — in-place element-wise kernels over n floats.
//   add_inplace:    A[a_offset + i] += B[b_offset + i % b_period]  (residual add; with
//                   b_period = the row length it adds a bias to every row; 0 = no wrap)
//   swiglu_inplace: A[a_offset + i] = silu(A[..]) * B[b_offset + i], silu(x) = x / (1 + e^-x)
//                   (A holds the gate projection, B the up projection)
//
// Bindings (group 0):
//   0  A  storage rw     array<f32>
//   1  B  storage read   array<f32>
//   2  P  uniform        Params
// Dispatch: (grid_x, ceil(n / (256 * grid_x)), 1), 256 per workgroup.

struct Params {
    n: u32,
    a_offset: u32,
    b_offset: u32,
    b_period: u32,
}

@group(0) @binding(0) var<storage, read_write> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;

@compute @workgroup_size(256)
fn add_inplace(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i < P.n) {
        A[P.a_offset + i] += B[P.b_offset + select(i, i % P.b_period, P.b_period != 0u)];
    }
}

@compute @workgroup_size(256)
fn swiglu_inplace(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i < P.n) {
        let g = A[P.a_offset + i];
        A[P.a_offset + i] = g / (1.0 + exp(-g)) * B[P.b_offset + i];
    }
}
