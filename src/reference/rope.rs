//! Rotary position embedding as llama.cpp's `ggml_rope_ext` computes it (no YaRN
//! extrapolation): theta_i = pos · base^(-2i/n_dims) / factor_i · freq_scale, with the powers
//! built by repeated multiplication as ggml does, so f32 rounding matches.

use crate::model::{RopeConfig, RopeStyle};

/// Per-position (cos, sin) of the `n_dims/2` rotation angles.
pub fn rope_angles(rope: &RopeConfig, pos: usize) -> Vec<(f32, f32)> {
    let theta_scale = rope.freq_base.powf(-2.0 / rope.n_dims as f32);
    let freq_scale = rope.freq_scale();
    let mut theta = pos as f32;
    (0..rope.n_dims / 2)
        .map(|i| {
            let factor = rope
                .freq_factors
                .as_ref()
                .and_then(|f| f.get(i))
                .copied()
                .unwrap_or(1.0);
            let angle = freq_scale * (theta / factor);
            theta *= theta_scale;
            (angle.cos(), angle.sin())
        })
        .collect()
}

/// Rotates every `head_dim`-wide head in `x` by `angles` (from [`rope_angles`]); dimensions past
/// `n_dims` are left as they are.
pub fn apply_rope(style: RopeStyle, x: &mut [f32], head_dim: usize, angles: &[(f32, f32)]) {
    let half = angles.len();
    for head in x.chunks_exact_mut(head_dim) {
        for (i, (cos, sin)) in angles.iter().enumerate() {
            let (a, b) = match style {
                RopeStyle::Normal => (2 * i, 2 * i + 1),
                RopeStyle::Neox => (i, i + half),
            };
            let (x0, x1) = (head[a], head[b]);
            head[a] = x0 * cos - x1 * sin;
            head[b] = x0 * sin + x1 * cos;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RopeScaling;

    fn rope(style: RopeStyle, n_dims: usize) -> RopeConfig {
        RopeConfig {
            style,
            n_dims,
            freq_base: 10000.0,
            scaling: RopeScaling::None,
            original_ctx: None,
            freq_factors: None,
        }
    }

    #[test]
    fn normal_rope_hand_computed() {
        // n_dims 4, pos 2: theta_0 = 2, theta_1 = 2 · 10000^(-1/2) = 0.02.
        let angles = rope_angles(&rope(RopeStyle::Normal, 4), 2);
        let mut x = [1.0, 0.0, 0.0, 1.0, 5.0, 6.0];
        apply_rope(RopeStyle::Normal, &mut x[..4], 4, &angles);
        let (c0, s0) = (2f32.cos(), 2f32.sin());
        let (c1, s1) = (0.02f32.cos(), 0.02f32.sin());
        let expected = [c0, s0, -s1, c1];
        for (a, b) in x[..4].iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{x:?} vs {expected:?}");
        }
        assert_eq!(&x[4..], &[5.0, 6.0]);
    }

    #[test]
    fn neox_rope_pairs_halves() {
        let angles = rope_angles(&rope(RopeStyle::Neox, 4), 2);
        // Pairs (0, 2) and (1, 3).
        let mut x = [1.0, 0.0, 0.0, 1.0];
        apply_rope(RopeStyle::Neox, &mut x, 4, &angles);
        let (c0, s0) = (2f32.cos(), 2f32.sin());
        let (c1, s1) = (0.02f32.cos(), 0.02f32.sin());
        let expected = [c0, -s1, s0, c1];
        for (a, b) in x.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{x:?} vs {expected:?}");
        }
    }

    #[test]
    fn partial_rotary_leaves_the_tail_alone() {
        let angles = rope_angles(&rope(RopeStyle::Normal, 2), 3);
        let mut x = [1.0, 0.0, 7.0, 8.0];
        apply_rope(RopeStyle::Normal, &mut x, 4, &angles);
        assert!((x[0] - 3f32.cos()).abs() < 1e-6 && (x[1] - 3f32.sin()).abs() < 1e-6);
        assert_eq!(&x[2..], &[7.0, 8.0]);
    }

    #[test]
    fn linear_scaling_and_freq_factors_divide_the_angle() {
        let mut r = rope(RopeStyle::Normal, 4);
        r.scaling = RopeScaling::Linear { factor: 4.0 };
        r.freq_factors = Some(vec![1.0, 2.0]);
        let angles = rope_angles(&r, 8);
        // theta_0 = 8 / 1 / 4 = 2; theta_1 = 8 · 0.01 / 2 / 4 = 0.01.
        assert!((angles[0].0 - 2f32.cos()).abs() < 1e-6);
        assert!((angles[1].1 - 0.01f32.sin()).abs() < 1e-6);
    }
}
