// xgroup.wgsl — included before dot32.wgsl: the activations of one 32-element group held in
// registers, `XG[i]` = X[xo + i] for i < 8 after `load_xg(xo)` (xo in vec4 units).
//
// Why: dot32 needs each activation of the group once for the quants and once more for the
// group sum that the block's offset (Q4_0/Q4_1/Q5_0/K-quant mins) multiplies, and a kernel that
// takes several rows per invocation (matvec.wgsl's ROWS) uses the same group for every row.
// Loaded once, the group costs 8 vec4 loads however many rows and sums use it; on CPU adapters
// (lavapipe) loads, not arithmetic, bound a matvec.
// The including shader declares `X` (vec4s: storage or workgroup).

var<private> XG: array<vec4<f32>, 8>;

fn load_xg(xo: u32) {
    for (var i = 0u; i < 8u; i++) {
        XG[i] = X[xo + i];
    }
}
