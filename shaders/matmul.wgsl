// matmul.wgsl — prefill matrix × matrix: Y[t, out_offset + r] = dot(X[t, :], row r of W) for
// tokens t < m and the rows r of one weight chunk. Tiled: a 16×16 workgroup computes a
// 16 tokens × 16 rows block; per 32-wide k step, 128 invocations dequantize a 16 × 32 weight
// tile into workgroup memory (dequant.wgsl, vec4 at a time) while the other 128 load the
// 16 × 32 activation tile; then each invocation does 32 multiply-adds from workgroup memory.
//
// REG defined (register tiling, for m ≥ 64): a 16×16 workgroup computes a 64 tokens × 64 rows
// block, each invocation 4 tokens × 4 rows (t0 + ty + 16i, r0 + tx + 16j), so each vec4 it
// reads from workgroup memory serves four outputs instead of one; per 32-wide k step every
// invocation dequantizes two weight vec4s and loads two activation vec4s into 64 × 8-vec4
// tiles (16 KiB of workgroup memory in all).
//
// Bindings (group 0):
//   0  W  storage read   array<u32>        raw GGUF bytes of the chunk (rows × row_bytes)
//   1  X  storage read   array<vec4<f32>>  activations, m rows of x_stride4 vec4s
//   2  Y  storage rw     array<f32>        output, m rows of y_stride floats
//   3  P  uniform        Params
// Defines: one TYPE_*.
// Dispatch: (ceil(rows / 16), ceil(m / 16), 1); REG: (ceil(rows / 64), ceil(m / 64), 1). k must
// be a multiple of 4.

struct Params {
    m: u32,
    rows: u32,
    k: u32,
    row_bytes: u32,
    out_offset: u32,
    y_stride: u32,
    x_stride4: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;

//#include bytes
//#include dequant

//#if REG
// 64 rows (tokens) × 8 vec4 (32 k) each.
var<workgroup> w_tile: array<vec4<f32>, 512>;
var<workgroup> x_tile: array<vec4<f32>, 512>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let r0 = wid.x * 64u;
    let t0 = wid.y * 64u;
    let n4 = P.k / 4u;
    // acc[4i + j]: token t0 + ty + 16i, row r0 + tx + 16j.
    var acc: array<f32, 16>;
    for (var kt = 0u; kt < n4; kt += 8u) {
        for (var h = 0u; h < 2u; h++) {
            let i = li + h * 256u;
            let r = i >> 3u;
            let k4 = kt + (i & 7u);
            var wv = vec4<f32>(0.0);
            if (r0 + r < P.rows && k4 < n4) {
                wv = dequant4((r0 + r) * P.row_bytes, k4);
            }
            w_tile[i] = wv;
            var xv = vec4<f32>(0.0);
            if (t0 + r < P.m && k4 < n4) {
                xv = X[(t0 + r) * P.x_stride4 + k4];
            }
            x_tile[i] = xv;
        }
        workgroupBarrier();
        for (var c = 0u; c < 8u; c++) {
            let x0 = x_tile[lid.y * 8u + c];
            let x1 = x_tile[(lid.y + 16u) * 8u + c];
            let x2 = x_tile[(lid.y + 32u) * 8u + c];
            let x3 = x_tile[(lid.y + 48u) * 8u + c];
            for (var j = 0u; j < 4u; j++) {
                let w = w_tile[(lid.x + 16u * j) * 8u + c];
                acc[j] += dot(x0, w);
                acc[4u + j] += dot(x1, w);
                acc[8u + j] += dot(x2, w);
                acc[12u + j] += dot(x3, w);
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let t = t0 + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let row = r0 + lid.x + 16u * j;
            if (row < P.rows && t < P.m) {
                Y[t * P.y_stride + P.out_offset + row] = acc[4u * i + j];
            }
        }
    }
}
//#else
// 16 rows (tokens) × 8 vec4 (32 k) each.
var<workgroup> w_tile: array<vec4<f32>, 128>;
var<workgroup> x_tile: array<vec4<f32>, 128>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let r0 = wid.x * 16u;
    let t0 = wid.y * 16u;
    let n4 = P.k / 4u;
    var acc = 0.0;
    for (var kt = 0u; kt < n4; kt += 8u) {
        let i = li & 127u;
        let r = i >> 3u;
        let k4 = kt + (i & 7u);
        var v = vec4<f32>(0.0);
        if (li < 128u) {
            if (r0 + r < P.rows && k4 < n4) {
                v = dequant4((r0 + r) * P.row_bytes, k4);
            }
            w_tile[i] = v;
        } else {
            if (t0 + r < P.m && k4 < n4) {
                v = X[(t0 + r) * P.x_stride4 + k4];
            }
            x_tile[i] = v;
        }
        workgroupBarrier();
        for (var c = 0u; c < 8u; c++) {
            acc += dot(x_tile[lid.y * 8u + c], w_tile[lid.x * 8u + c]);
        }
        workgroupBarrier();
    }
    let row = r0 + lid.x;
    let t = t0 + lid.y;
    if (row < P.rows && t < P.m) {
        Y[t * P.y_stride + P.out_offset + row] = acc;
    }
}
//#endif
