// paged_kv.wgsl — the paged KV pool's addressing, included by kv_write, attention and
// attention_tiled so that a layout change cannot leave one of them behind.
//
// Pool layout (one buffer per layer for K, one for V): physical block b, slot s < block_size,
// kv head h, dim d -> element ((b * block_size + s) * n_kv_head + h) * head_dim + d.
// KV_F16 defined: elements are f16 packed two per u32 word (element e in word e / 2, the low
// half for even e; pack2x16float / unpack2x16float need no SHADER_F16); otherwise one f32
// bit pattern per u32 word.
// Sequence position pos lives in logical block pos / block_size, i.e. physical block
// BT[bt_row + pos / block_size], slot pos % block_size. The including shader declares
// `BT: array<u32>` (block tables, one row per sequence of a batched step) and sets `bt_row`
// to the first entry of the row its token or query reads (row × the table stride; it stays 0
// for steps of one sequence, whose table is row 0).
// The host mirrors this layout in `gpu::ops::KvLayout` (block bytes for copies and tiers).

// First block-table entry of the sequence the invocation works for (see above).
var<private> bt_row: u32 = 0u;

// Pool slot (physical block × block_size + slot) of sequence position `pos`.
fn kv_slot(pos: u32, block_size: u32) -> u32 {
    return BT[bt_row + pos / block_size] * block_size + pos % block_size;
}

// Element index of (position pos, kv head kvh, dim 0).
fn kv_row_base(pos: u32, kvh: u32, n_kv_head: u32, head_dim: u32, block_size: u32) -> u32 {
    return (kv_slot(pos, block_size) * n_kv_head + kvh) * head_dim;
}

// The u32 word holding element e, and element e's value from that word.
//#if KV_F16
fn kv_word(e: u32) -> u32 {
    return e >> 1u;
}

fn kv_unpack(w: u32, e: u32) -> f32 {
    let h = unpack2x16float(w);
    return select(h.x, h.y, (e & 1u) == 1u);
}
//#else
fn kv_word(e: u32) -> u32 {
    return e;
}

fn kv_unpack(w: u32, e: u32) -> f32 {
    return bitcast<f32>(w);
}
//#endif
