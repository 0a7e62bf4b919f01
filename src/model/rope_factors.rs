//! Llama 3.1's RoPE frequency factors, as Meta's reference code and llama.cpp's converter
//! compute them (the converter stores them as the `rope_freqs.weight` tensor).

/// Parameters of Llama 3.1's `rope_scaling` block (`rope_type: "llama3"`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Llama3RopeScaling {
    pub factor: f32,
    pub low_freq_factor: f32,
    pub high_freq_factor: f32,
    pub original_context: f32,
}

impl Default for Llama3RopeScaling {
    /// Llama 3.1 8B/70B/405B's values.
    fn default() -> Self {
        Llama3RopeScaling {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_context: 8192.0,
        }
    }
}

/// The `n_dims/2` divisors of theta_i = base^(-2i/n_dims): 1 for short wavelengths, `factor`
/// for long ones, smoothly interpolated in between.
pub fn llama3_rope_factors(s: &Llama3RopeScaling, freq_base: f32, n_dims: usize) -> Vec<f32> {
    let low_freq_wavelen = s.original_context as f64 / s.low_freq_factor as f64;
    let high_freq_wavelen = s.original_context as f64 / s.high_freq_factor as f64;
    (0..n_dims / 2)
        .map(|i| {
            let freq = 1.0 / (freq_base as f64).powf((2 * i) as f64 / n_dims as f64);
            let wavelen = 2.0 * std::f64::consts::PI / freq;
            let factor = if wavelen < high_freq_wavelen {
                1.0
            } else if wavelen > low_freq_wavelen {
                s.factor as f64
            } else {
                let smooth = (s.original_context as f64 / wavelen - s.low_freq_factor as f64)
                    / (s.high_freq_factor - s.low_freq_factor) as f64;
                1.0 / ((1.0 - smooth) / s.factor as f64 + smooth)
            };
            factor as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama31_factors_match_the_published_shape() {
        let f = llama3_rope_factors(&Llama3RopeScaling::default(), 500000.0, 128);
        assert_eq!(f.len(), 64);
        // High frequencies untouched, low ones divided by 8, monotone in between.
        assert_eq!(f[0], 1.0);
        assert_eq!(f[63], 8.0);
        assert!(f.windows(2).all(|w| w[0] <= w[1]));
        // Values from the Python formula in Meta's llama3 reference code (float64).
        assert_eq!(f[28], 1.0);
        assert!((f[29] - 1.2074839).abs() < 1e-5, "{}", f[29]);
        assert!((f[30] - 1.5534146).abs() < 1e-5, "{}", f[30]);
        assert!((f[34] - 5.2573266).abs() < 1e-5, "{}", f[34]);
        assert_eq!(f[35], 8.0);
    }
}
