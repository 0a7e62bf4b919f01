// rope.wgsl — rotary position embedding, in place, on X = n_tokens × n_heads × head_dim.
// The rotation (angle and pairs) is rope_math.wgsl's. (x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 cos). Dims ≥ n_rot are left as they are.
// FF holds per-pair frequency factors (llama3 scaling's rope_freqs); bind ones when absent.
//
// Bindings (group 0):
//   0  X    storage rw     array<f32>
//   1  POS  storage read   array<u32>   one position per token
//   2  FF   storage read   array<f32>   n_rot/2 frequency factors
//   3  P    uniform        Params
// Dispatch: (grid_x, ceil(n_tokens * n_heads * n_rot/2 / (64 * grid_x)), 1), 64 per workgroup.

struct Params {
    n_tokens: u32,
    n_heads: u32,
    head_dim: u32,
    n_rot: u32,
    neox: u32,
    freq_base: f32,
    freq_scale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read_write> X: array<f32>;
@group(0) @binding(1) var<storage, read> POS: array<u32>;
@group(0) @binding(2) var<storage, read> FF: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;

//#include rope_math

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let half = P.n_rot / 2u;
    let idx = gid.x + gid.y * nwg.x * 64u;
    if (idx >= P.n_tokens * P.n_heads * half) {
        return;
    }
    let i = idx % half;
    let head = (idx / half) % P.n_heads;
    let t = idx / (half * P.n_heads);
    let cs = rope_cos_sin(i, POS[t]);
    let base = (t * P.n_heads + head) * P.head_dim;
    let a = base + rope_pair(i).x;
    let b = base + rope_pair(i).y;
    let x0 = X[a];
    let x1 = X[b];
    X[a] = x0 * cs.x - x1 * cs.y;
    X[b] = x0 * cs.y + x1 * cs.x;
}
