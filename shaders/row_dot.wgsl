// row_dot.wgsl — included once per weight slot by matvec_fused.wgsl (`//#slot row_dot N`):
// `row_dots(rbs, lane)`, this invocation's share of the dot products of ROWS rows (the rows
// whose data start at bytes rbs[0..ROWS] of `W`) with X[0 .. k] — 32-element groups
// g = lane, lane+TPR, ... (DOT32, the block formats of dot32.wgsl; each group's activations
// loaded once for all the rows, xgroup.wgsl) or vec4s k4 = lane, lane+TPR, ... (the others).
// The slot's TYPE_* (and DOT32) come from the `SN_` defines; `W` and the function names get
// the slot's suffix. The including shader declares `X` (vec4s, from element 0), `P.k`, `TPR`,
// `ROWS` (1–8) and includes xgroup.wgsl once.
// Loop trips per invocation: k / (32·TPR) or k / (4·TPR) (e.g. 128 at k = 4096, TPR = 8).

//#include bytes
//#include dequant
//#if DOT32
//#include dot32
//#endif

fn row_dots(rbs: array<u32, 8>, lane: u32) -> array<f32, 8> {
    var acc: array<f32, 8>;
//#if DOT32
    let n32 = P.k / 32u;
    for (var g = lane; g < n32; g += TPR) {
//#if XBCAST
        load_xg_bcast(g * 8u);
//#else
        load_xg(g * 8u);
//#endif
        for (var r = 0u; r < ROWS; r++) {
            acc[r] += dot32(rbs[r], g);
        }
    }
//#else
    let n4 = P.k / 4u;
    for (var k4 = lane; k4 < n4; k4 += TPR) {
        let xv = X[k4];
        for (var r = 0u; r < ROWS; r++) {
            acc[r] += dot(dequant4(rbs[r], k4), xv);
        }
    }
//#endif
    return acc;
}
