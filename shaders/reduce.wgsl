// reduce.wgsl — included: `wg_sum(v, ids)` and `wg_max(v, ids)`, the sum and the maximum of
// `v` over the whole workgroup, returned to every invocation. Call it from uniform control flow (it has barriers).
// SUBGROUP defined: subgroupAdd inside each subgroup, then one partial per subgroup in
// workgroup memory (indexed by the subgroup_id builtin, so no assumption about how
// invocations map to subgroups). Otherwise a shared-memory tree; WG must then be a power of 2.
// The including shader declares `override WG: u32` (≤ 256) and takes `ids: RedIds` in main.

var<workgroup> red_sum: array<f32, 256>;

//#if SUBGROUP
struct RedIds {
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_id) sgid: u32,
    @builtin(num_subgroups) nsg: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_size) sg_size: u32,
}

fn wg_sum(v: f32, ids: RedIds) -> f32 {
    let s = subgroupAdd(v);
    if (ids.sg_lane == 0u) { // naga 30 has no subgroupElect
        red_sum[ids.sgid] = s;
    }
    workgroupBarrier();
    var t = 0.0;
    for (var i = 0u; i < ids.nsg; i++) {
        t += red_sum[i];
    }
    workgroupBarrier();
    return t;
}

fn wg_max(v: f32, ids: RedIds) -> f32 {
    let s = subgroupMax(v);
    if (ids.sg_lane == 0u) {
        red_sum[ids.sgid] = s;
    }
    workgroupBarrier();
    var t = red_sum[0];
    for (var i = 1u; i < ids.nsg; i++) {
        t = max(t, red_sum[i]);
    }
    workgroupBarrier();
    return t;
}
//#else
struct RedIds {
    @builtin(local_invocation_index) lid: u32,
}

fn wg_sum(v: f32, ids: RedIds) -> f32 {
    red_sum[ids.lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (ids.lid < s) {
            red_sum[ids.lid] += red_sum[ids.lid + s];
        }
        workgroupBarrier();
    }
    let t = red_sum[0];
    workgroupBarrier();
    return t;
}

fn wg_max(v: f32, ids: RedIds) -> f32 {
    red_sum[ids.lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (ids.lid < s) {
            red_sum[ids.lid] = max(red_sum[ids.lid], red_sum[ids.lid + s]);
        }
        workgroupBarrier();
    }
    let t = red_sum[0];
    workgroupBarrier();
    return t;
}
//#endif
