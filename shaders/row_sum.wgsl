// row_sum.wgsl — included: `row_sum(v, lid, lane)`, the sum of `v` over the TPR invocations
// that share a row (TPR < WG; invocations lid - lane .. lid - lane + TPR), returned to all of
// them, through a segmented shared-memory tree over reduce.wgsl's `red_sum`. Call it from
// uniform control flow (it has barriers). The including shader declares `override TPR: u32`
// and includes reduce.wgsl first.

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
