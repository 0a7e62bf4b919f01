//! Comparing logits: the tests' one tolerance rule and greedy pick.

/// `got` within `tol` × max(1, max |want|) of `want`, element by element.
pub fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        diff <= tol * scale,
        "{what}: max diff {diff} (scale {scale}, tolerance {tol} × scale)"
    );
}

/// The index of the largest logit: the lowest index among equals, as llama.cpp's recorded
/// greedy runs break ties.
pub fn argmax(xs: &[f32]) -> u32 {
    let mut best = 0;
    for (i, x) in xs.iter().enumerate() {
        if *x > xs[best] {
            best = i;
        }
    }
    best as u32
}
