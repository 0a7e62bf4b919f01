// xgroup.wgsl — included before dot32.wgsl: the activations of one 32-element group held in
// registers, `XG[i]` = X[xo + i] for i < 8 after `load_xg(xo)` (xo in vec4 units), and their
// sum `XS`.
//
// Why: dot32 needs each activation of the group once for the quants and once more for the
// group sum that the block's offset (Q4_0/Q4_1/Q5_0/K-quant mins) multiplies, and a kernel that
// takes several rows per invocation (matvec.wgsl's ROWS) uses the same group for every row.
// Loaded once, the group costs 8 vec4 loads however many rows and sums use it; on CPU adapters
// (lavapipe) loads, not arithmetic, bound a matvec.
// The including shader declares `X` (vec4s: storage or workgroup).

var<private> XG: array<vec4<f32>, 8>;
// The sum of the group's 32 activations (set with XG, once for every row that uses it).
var<private> XS: f32;

fn set_xsum() {
    let s = (XG[0] + XG[1] + XG[2] + XG[3]) + (XG[4] + XG[5] + XG[6] + XG[7]);
    XS = s.x + s.y + s.z + s.w;
}

fn load_xg(xo: u32) {
    for (var i = 0u; i < 8u; i++) {
        XG[i] = X[xo + i];
    }
    set_xsum();
}

//#if XBCAST
// The group's activations shared by a subgroup that works on one group at a time (every lane
// the same `xo`, subgroups of at least 8): lane i loads vec4 i and the others take it by
// broadcast — one load per lane instead of eight (llvmpipe loads storage lane by lane).
// The including shader sets XB_LANE = its subgroup_invocation_id first.
var<private> XB_LANE: u32;

fn load_xg_bcast(xo: u32) {
    let mine = X[xo + (XB_LANE & 7u)];
    XG[0] = subgroupBroadcast(mine, 0u);
    XG[1] = subgroupBroadcast(mine, 1u);
    XG[2] = subgroupBroadcast(mine, 2u);
    XG[3] = subgroupBroadcast(mine, 3u);
    XG[4] = subgroupBroadcast(mine, 4u);
    XG[5] = subgroupBroadcast(mine, 5u);
    XG[6] = subgroupBroadcast(mine, 6u);
    XG[7] = subgroupBroadcast(mine, 7u);
    set_xsum();
}
//#endif
