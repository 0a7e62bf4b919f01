// row_sum.wgsl — included: the rows of a matvec workgroup, TPR invocations ("lanes") each.
// `row_slot(ids)`: this invocation's place 0..WG-1 among the row lanes (row = slot / TPR,
// lane = slot % TPR). `row_sum(v, lid, lane)`: the sum of `v` over the row's TPR lanes
// (TPR < WG), returned to all of them. Call it from uniform control flow.
// SUBGROUP_ROWS defined (the host checks TPR ≤ the smallest subgroup size and WG a multiple
// of the largest): slots run along subgroups (subgroup id × size + lane), so a row's lanes are
// TPR consecutive lanes of one subgroup, and the sum is a subgroupShuffleXor butterfly — no
// barrier, no workgroup memory. Otherwise slot = local index and a segmented shared-memory
// tree over reduce.wgsl's `red_sum` (log2(TPR) + 2 barriers). `reduce_row(v, ids, lane)`: the
// row's sum whatever TPR is (the whole workgroup's through `wg_sum` when TPR = WG). The including
// shader declares `override TPR: u32` and `WG`, and includes reduce.wgsl first (with SUBGROUP
// for SUBGROUP_ROWS).

fn row_slot(ids: RedIds) -> u32 {
//#if SUBGROUP_ROWS
    return ids.sgid * ids.sg_size + ids.sg_lane;
//#else
    return ids.lid;
//#endif
}

//#if SUBGROUP_ROWS
fn row_sum(v: f32, lid: u32, lane: u32) -> f32 {
    var s = v;
    for (var o = TPR / 2u; o > 0u; o >>= 1u) {
        s += subgroupShuffleXor(s, o);
    }
    return s;
}
//#else
fn row_sum(v: f32, lid: u32, lane: u32) -> f32 {
    red_sum[lid] = v;
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            red_sum[lid] += red_sum[lid + s];
        }
        workgroupBarrier();
    }
    let t = red_sum[lid - lane];
    workgroupBarrier();
    return t;
}
//#endif

fn reduce_row(v: f32, ids: RedIds, lane: u32) -> f32 {
    if (TPR == WG) {
        return wg_sum(v, ids);
    }
    return row_sum(v, ids.lid, lane);
}
