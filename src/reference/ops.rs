//! Elementwise and reduction ops of the forward pass, written as ggml computes them (sums in
//! f64 where ggml uses `ggml_float`).

/// `out = x / sqrt(mean(x²) + eps) * weight`.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let sum_sq: f64 = x.iter().map(|v| (*v as f64) * (*v as f64)).sum();
    let mean = (sum_sq / x.len() as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for ((o, v), w) in out.iter_mut().zip(x).zip(weight) {
        *o = v * scale * w;
    }
}

/// Softmax in place, subtracting the max first so large scores cannot overflow.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f64;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v as f64;
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// x · sigmoid(x).
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// `gate = silu(gate) * up` (SwiGLU).
pub fn swiglu_in_place(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = silu(*g) * u;
    }
}

pub fn add_in_place(acc: &mut [f32], x: &[f32]) {
    for (a, b) in acc.iter_mut().zip(x) {
        *a += b;
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_small_case() {
        // mean(x²) = (9 + 16) / 2 = 12.5; 1/sqrt(12.5 + 0.5) = 1/sqrt(13) ≈ 0.2773501.
        let mut out = [0.0; 2];
        rms_norm(&[3.0, -4.0], &[1.0, 2.0], 0.5, &mut out);
        assert!((out[0] - 3.0 * 0.2773501).abs() < 1e-6, "{out:?}");
        assert!((out[1] + 8.0 * 0.2773501).abs() < 1e-6, "{out:?}");
    }

    #[test]
    fn softmax_small_case_and_large_inputs() {
        let mut x = [1.0, 2.0, 3.0];
        softmax(&mut x);
        // e^-2, e^-1, 1 over their sum 1.5032147.
        let expected = [0.09003057, 0.24472847, 0.66524096];
        for (a, b) in x.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{x:?}");
        }
        // Max subtraction keeps huge scores finite; a -inf (masked) entry gets 0.
        let mut y = [1000.0, 1000.0, f32::NEG_INFINITY];
        softmax(&mut y);
        assert_eq!(y, [0.5, 0.5, 0.0]);
    }

    #[test]
    fn silu_values() {
        assert_eq!(silu(0.0), 0.0);
        // 1 / (1 + e^-1) = 0.7310586.
        assert!((silu(1.0) - 0.7310586).abs() < 1e-6);
        assert!((silu(-20.0)).abs() < 1e-7);
    }
}
