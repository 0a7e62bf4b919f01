// rope_kv.wgsl — what follows the q/k/v projections, in one dispatch: RoPE on Q in place, and
// K (after RoPE) and V appended to this layer's paged pools (layout in paged_kv.wgsl).
// Replaces rope.wgsl ×2 + kv_write.wgsl ×2 in the forward pass, with the same arithmetic:
//   theta = freq_scale * p * freq_base^(-2i/n_rot) / FF[i] for rotation pair i < n_rot/2,
//   NORMAL pairs (x[2i], x[2i+1]), NEOX pairs (x[i], x[i + n_rot/2]); dims ≥ n_rot unrotated.
// Token t of the batch sits at position POS[t].
//
// Work items (one per invocation), in this order:
//   n_tokens × n_head × n_rot/2        rotation pairs of Q (read both, write both, in place)
//   n_tokens × n_kv_head × head_dim/2  element pairs (e, e+1) of K: each element's rotated
//                                      value from K (read only), one pool word (f16) or two
//   n_tokens × n_kv_head × head_dim/2  element pairs of V, copied to the pool
//
// Bindings (group 0):
//   0  Q    storage rw     array<f32>   n_tokens × n_head × head_dim
//   1  K    storage read   array<f32>   n_tokens × n_kv_head × head_dim
//   2  V    storage read   array<f32>   n_tokens × n_kv_head × head_dim
//   3  KP   storage rw     array<u32>   K pool of this layer
//   4  VP   storage rw     array<u32>   V pool of this layer
//   5  POS  storage read   array<u32>   n_tokens positions
//   6  BT   storage read   array<u32>   block tables: token t writes through row t × bt_stride
//                                       (bt_stride 0: every token is the one sequence's)
//   7  FF   storage read   array<f32>   n_rot/2 frequency factors (ones when the model has none)
//   8  P    uniform        Params
// Defines: KV_F16 (pool elements f16, two per u32 word). head_dim and n_rot even.
// Dispatch: (grid_x, ceil(items / (64 * grid_x)), 1), 64 per workgroup. No loops.

struct Params {
    n_tokens: u32,
    n_head: u32,
    n_kv_head: u32,
    head_dim: u32,
    n_rot: u32,
    neox: u32,
    freq_base: f32,
    freq_scale: f32,
    block_size: u32,
    bt_stride: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> Q: array<f32>;
@group(0) @binding(1) var<storage, read> K: array<f32>;
@group(0) @binding(2) var<storage, read> V: array<f32>;
@group(0) @binding(3) var<storage, read_write> KP: array<u32>;
@group(0) @binding(4) var<storage, read_write> VP: array<u32>;
@group(0) @binding(5) var<storage, read> POS: array<u32>;
@group(0) @binding(6) var<storage, read> BT: array<u32>;
@group(0) @binding(7) var<storage, read> FF: array<f32>;
@group(0) @binding(8) var<uniform> P: Params;

//#include paged_kv
//#include rope_math

// Element e of the K row starting at `base`, after RoPE at `pos`.
fn k_roped(base: u32, e: u32, pos: u32) -> f32 {
    if (e >= P.n_rot) {
        return K[base + e];
    }
    let i = rope_pair_of(e);
    let ab = rope_pair(i);
    let cs = rope_cos_sin(i, pos);
    let x0 = K[base + ab.x];
    let x1 = K[base + ab.y];
    if (e == ab.x) {
        return x0 * cs.x - x1 * cs.y;
    }
    return x0 * cs.y + x1 * cs.x;
}

fn put_pair(is_v: bool, e: u32, lo: f32, hi: f32) {
//#if KV_F16
    let w = pack2x16float(vec2<f32>(lo, hi));
    if (is_v) {
        VP[kv_word(e)] = w;
    } else {
        KP[kv_word(e)] = w;
    }
//#else
    if (is_v) {
        VP[e] = bitcast<u32>(lo);
        VP[e + 1u] = bitcast<u32>(hi);
    } else {
        KP[e] = bitcast<u32>(lo);
        KP[e + 1u] = bitcast<u32>(hi);
    }
//#endif
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    let half = P.n_rot / 2u;
    let n_q = P.n_tokens * P.n_head * half;
    let row_pairs = P.n_kv_head * P.head_dim / 2u;
    let n_kv = P.n_tokens * row_pairs;
    if (idx < n_q) {
        let i = idx % half;
        let head = (idx / half) % P.n_head;
        let t = idx / (half * P.n_head);
        let cs = rope_cos_sin(i, POS[t]);
        let base = (t * P.n_head + head) * P.head_dim;
        let a = base + rope_pair(i).x;
        let b = base + rope_pair(i).y;
        let x0 = Q[a];
        let x1 = Q[b];
        Q[a] = x0 * cs.x - x1 * cs.y;
        Q[b] = x0 * cs.y + x1 * cs.x;
        return;
    }
    var j = idx - n_q;
    let is_v = j >= n_kv;
    if (is_v) {
        j -= n_kv;
    }
    if (j >= n_kv) {
        return;
    }
    let t = j / row_pairs;
    let e = (j % row_pairs) * 2u; // element within the token's n_kv_head × head_dim row
    let pos = POS[t];
    bt_row = t * P.bt_stride;
    let dst = kv_row_base(pos, 0u, P.n_kv_head, P.head_dim, P.block_size) + e;
    let src = t * P.n_kv_head * P.head_dim + e;
    if (is_v) {
        put_pair(true, dst, V[src], V[src + 1u]);
    } else {
        let d = e % P.head_dim;
        let base = src - d;
        put_pair(false, dst, k_roped(base, d, pos), k_roped(base, d + 1u, pos));
    }
}
