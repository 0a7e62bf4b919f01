// kv_write.wgsl — append new K or V rows to a paged KV pool.
//
// The pool layout and addressing are in paged_kv.wgsl (included). KV_F16 defined: elements
// are f16 packed two per u32 (pack2x16float; no SHADER_F16 needed); otherwise f32 bit patterns.
// Token t of the batch goes to sequence position POS[t].
//
// Bindings (group 0):
//   0  SRC  storage read   array<f32>   n_tokens × n_kv_head × head_dim (K after RoPE, or V)
//   1  POOL storage rw     array<u32>
//   2  POS  storage read   array<u32>   n_tokens positions
//   3  BT   storage read   array<u32>   the sequence's block table
//   4  P    uniform        Params
// Dispatch: (ceil(n_tokens * n_kv_head * head_dim / 2 / 64), 1, 1) with a 2-D fallback grid.
// head_dim must be even.

struct Params {
    n_tokens: u32,
    n_kv_head: u32,
    head_dim: u32,
    block_size: u32,
}

@group(0) @binding(0) var<storage, read> SRC: array<f32>;
@group(0) @binding(1) var<storage, read_write> POOL: array<u32>;
@group(0) @binding(2) var<storage, read> POS: array<u32>;
@group(0) @binding(3) var<storage, read> BT: array<u32>;
@group(0) @binding(4) var<uniform> P: Params;

//#include paged_kv

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let pair = gid.x + gid.y * nwg.x * 64u;
    let row_pairs = P.n_kv_head * P.head_dim / 2u;
    if (pair >= P.n_tokens * row_pairs) {
        return;
    }
    let t = pair / row_pairs;
    let e = (pair % row_pairs) * 2u;
    let dst = kv_row_base(POS[t], 0u, P.n_kv_head, P.head_dim, P.block_size) + e;
    let src = t * P.n_kv_head * P.head_dim + e;
//#if KV_F16
    POOL[kv_word(dst)] = pack2x16float(vec2<f32>(SRC[src], SRC[src + 1u]));
//#else
    POOL[dst] = bitcast<u32>(SRC[src]);
    POOL[dst + 1u] = bitcast<u32>(SRC[src + 1u]);
//#endif
}
