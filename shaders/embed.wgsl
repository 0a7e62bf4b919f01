// embed.wgsl — embedding lookup: Y[t, :] = dequantized row TOK[t] of the token-embedding
// tensor, for the rows held by one chunk (rows row_start .. row_start + rows). One dispatch
// per chunk; a token whose row is in another chunk is left to that chunk's dispatch. Token
// ids are validated against the vocabulary on the CPU before they are written to TOK.
//
// Bindings (group 0):
//   0  W    storage read   array<u32>        raw GGUF bytes of the chunk
//   1  TOK  storage read   array<u32>        n_tokens token ids
//   2  Y    storage rw     array<vec4<f32>>  n_tokens × k/4
//   3  P    uniform        Params
// Defines: one TYPE_*. Dispatch: (ceil(k/4 / 64), n_tokens, 1), 64 per workgroup.

struct Params {
    n_tokens: u32,
    k: u32,
    row_bytes: u32,
    row_start: u32,
    rows: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> W: array<u32>;
@group(0) @binding(1) var<storage, read> TOK: array<u32>;
@group(0) @binding(2) var<storage, read_write> Y: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> P: Params;

//#include bytes
//#include dequant

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k4 = gid.x;
    let t = gid.y;
    let n4 = P.k / 4u;
    if (k4 >= n4 || t >= P.n_tokens) {
        return;
    }
    let tok = TOK[t];
    if (tok < P.row_start || tok - P.row_start >= P.rows) {
        return;
    }
    Y[t * n4 + k4] = dequant4((tok - P.row_start) * P.row_bytes, k4);
}
