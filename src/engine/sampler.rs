//! Token sampling: greedy, temperature, top-k, top-p, min-p, repetition penalty, seed.
//!
//! Order of operations (as llama.cpp's default chain): repetition penalty over the last
//! `repeat_last_n` tokens, then — unless greedy — top-k, top-p, min-p over the softmax of the
//! penalised logits, then temperature, then a draw from the seeded RNG. Greedy
//! (`temperature <= 0`) takes the highest logit, ties to the lowest id, so runs are reproducible.

use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    /// 0 or less: greedy.
    pub temperature: f32,
    /// 0: off.
    pub top_k: usize,
    /// 1.0: off.
    pub top_p: f32,
    /// 0.0: off. Drops tokens whose probability is below `min_p` × the top probability.
    pub min_p: f32,
    /// 1.0: off. Logits of recent tokens are divided (positive) or multiplied (negative) by it.
    pub repeat_penalty: f32,
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0,
        }
    }
}

impl SamplerConfig {
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }

    // Written so that a NaN temperature counts as greedy.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn is_greedy(&self) -> bool {
        !(self.temperature > 0.0)
    }
}

pub struct Sampler {
    config: SamplerConfig,
    rng: ChaCha8Rng,
    recent: VecDeque<u32>,
    candidates: Vec<(u32, f32)>,
    /// Scratch for the distinct recent tokens, reused every step (no per-token allocation).
    seen: Vec<u32>,
}

impl Sampler {
    pub fn new(config: SamplerConfig) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        Self {
            config,
            rng,
            recent: VecDeque::new(),
            candidates: Vec::new(),
            seen: Vec::new(),
        }
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Records a token the model saw (prompt or generated) for the repetition penalty.
    pub fn accept(&mut self, token: u32) {
        if self.config.repeat_last_n == 0 {
            return;
        }
        if self.recent.len() == self.config.repeat_last_n {
            self.recent.pop_front();
        }
        self.recent.push_back(token);
    }

    /// Picks the next token from one position's logits. `logits` must not be empty.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        self.candidates.clear();
        self.candidates.extend(
            logits
                .iter()
                .enumerate()
                .map(|(i, &l)| (i as u32, sanitize(l))),
        );
        self.apply_repeat_penalty();
        if self.config.is_greedy() {
            return argmax(&self.candidates);
        }
        self.sample_stochastic()
    }

    // A NaN penalty counts as off.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    fn apply_repeat_penalty(&mut self) {
        let penalty = self.config.repeat_penalty;
        if penalty == 1.0 || !(penalty > 0.0) {
            return;
        }
        self.seen.clear();
        self.seen.extend(self.recent.iter().copied());
        self.seen.sort_unstable();
        self.seen.dedup();
        for &id in &self.seen {
            if let Some(c) = self.candidates.get_mut(id as usize) {
                c.1 = if c.1 > 0.0 {
                    c.1 / penalty
                } else {
                    c.1 * penalty
                };
            }
        }
    }

    fn sample_stochastic(&mut self) -> u32 {
        let cands = &mut self.candidates;
        cands.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if self.config.top_k > 0 && self.config.top_k < cands.len() {
            cands.truncate(self.config.top_k);
        }
        // Probabilities of the penalised logits (before temperature), for top-p and min-p.
        let probs = softmax(cands.iter().map(|c| c.1), 1.0);
        let mut keep = cands.len();
        if self.config.top_p < 1.0 {
            let mut cum = 0.0;
            for (i, p) in probs.iter().enumerate() {
                cum += p;
                if cum >= self.config.top_p {
                    keep = keep.min(i + 1);
                    break;
                }
            }
        }
        if self.config.min_p > 0.0 {
            let floor = probs[0] * self.config.min_p;
            let above = probs.iter().take_while(|&&p| p >= floor).count();
            keep = keep.min(above.max(1));
        }
        cands.truncate(keep.max(1));
        let probs = softmax(cands.iter().map(|c| c.1), self.config.temperature);
        let r: f32 = self.rng.random();
        let mut cum = 0.0;
        for (c, p) in cands.iter().zip(&probs) {
            cum += p;
            if r < cum {
                return c.0;
            }
        }
        cands[cands.len() - 1].0
    }
}

/// NaN logits never win; infinities are clamped so softmax stays finite.
fn sanitize(l: f32) -> f32 {
    if l.is_nan() {
        f32::MIN
    } else {
        l.clamp(f32::MIN, f32::MAX)
    }
}

fn argmax(cands: &[(u32, f32)]) -> u32 {
    let mut best = (0u32, f32::NEG_INFINITY);
    for &(id, l) in cands {
        if l > best.1 {
            best = (id, l);
        }
    }
    best.0
}

/// Softmax of `logits / temperature`, computed in f64 for a stable sum.
fn softmax(logits: impl Iterator<Item = f32> + Clone, temperature: f32) -> Vec<f32> {
    let t = f64::from(temperature.max(1e-6));
    let max = logits.clone().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exps: Vec<f64> = logits.map(|l| ((f64::from(l) - max) / t).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_highest_logit_ties_to_lowest_id() {
        let mut s = Sampler::new(SamplerConfig::greedy());
        assert_eq!(s.sample(&[0.1, 3.0, 3.0, -1.0]), 1);
        assert_eq!(s.sample(&[f32::NAN, 0.5, 0.2]), 1);
    }

    #[test]
    fn repetition_penalty_can_change_the_greedy_choice() {
        let cfg = SamplerConfig {
            repeat_penalty: 2.0,
            ..SamplerConfig::greedy()
        };
        let mut s = Sampler::new(cfg);
        s.accept(0);
        // 3.0 / 2 = 1.5 < 2.0
        assert_eq!(s.sample(&[3.0, 2.0, 0.0]), 1);
    }

    #[test]
    fn same_seed_same_draws_and_top_k_one_is_greedy() {
        let logits: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32 * 0.3).collect();
        let cfg = SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed: 7,
            ..Default::default()
        };
        let a: Vec<u32> = {
            let mut s = Sampler::new(cfg.clone());
            (0..20).map(|_| s.sample(&logits)).collect()
        };
        let b: Vec<u32> = {
            let mut s = Sampler::new(cfg.clone());
            (0..20).map(|_| s.sample(&logits)).collect()
        };
        assert_eq!(a, b);
        assert!(
            a.iter().collect::<std::collections::HashSet<_>>().len() > 1,
            "temperature 1 should vary"
        );
        let mut s = Sampler::new(SamplerConfig { top_k: 1, ..cfg });
        let greedy = Sampler::new(SamplerConfig::greedy()).sample(&logits);
        assert!((0..10).all(|_| s.sample(&logits) == greedy));
    }

    #[test]
    fn top_p_and_min_p_cut_the_tail() {
        // One dominant token: top_p 0.5 and min_p 0.5 both leave only it.
        let logits = [10.0, 0.0, 0.0, 0.0];
        for cfg in [
            SamplerConfig {
                temperature: 1.0,
                top_k: 0,
                top_p: 0.5,
                min_p: 0.0,
                ..Default::default()
            },
            SamplerConfig {
                temperature: 1.0,
                top_k: 0,
                top_p: 1.0,
                min_p: 0.5,
                ..Default::default()
            },
        ] {
            let mut s = Sampler::new(cfg);
            assert!((0..50).all(|_| s.sample(&logits) == 0));
        }
    }
}
