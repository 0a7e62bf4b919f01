// row_dot.wgsl — included once per weight slot by matvec_fused.wgsl (`//#slot row_dot N`):
// `row_dot(rb, lane)`, this invocation's share of the dot product of the row whose data starts
// at byte `rb` of `W` with X[0 .. k] — 32-element groups g = lane, lane+TPR, ... (DOT32, the
// block formats of dot32.wgsl) or vec4s k4 = lane, lane+TPR, ... (the others). The slot's
// TYPE_* (and DOT32) come from the `SN_` defines; `W` and the function names get the slot's
// suffix. The including shader declares `X` (vec4s, from element 0), `P.k` and `TPR`.
// Loop trips per invocation: k / (32·TPR) or k / (4·TPR) (e.g. 128 at k = 4096, TPR = 8).

//#include bytes
//#include dequant
//#if DOT32
//#include dot32
//#endif

fn row_dot(rb: u32, lane: u32) -> f32 {
    var acc = 0.0;
//#if DOT32
    let n32 = P.k / 32u;
    for (var g = lane; g < n32; g += TPR) {
        acc += dot32(rb, g, g * 8u);
    }
//#else
    let n4 = P.k / 4u;
    for (var k4 = lane; k4 < n4; k4 += TPR) {
        acc += dot(dequant4(rb, k4), X[k4]);
    }
//#endif
    return acc;
}
