//! The plain-Rust forward pass of the encoder (f32, one text at a time): the oracle the burn
//! backend is tested against, and the CPU path (no `embed-burn` feature, no GPU adapter, or a
//! short question while the GPU is busy with the chat model).

use super::config::BertConfig;
use super::weights::{BertWeights, LayerNorm, Linear};

/// Token states `[tokens, hidden]` → `[tokens, out]` through `lin`, rows split over the
/// machine's cores (each output is computed the same way whatever the split).
fn linear(x: &[f32], lin: &Linear) -> Vec<f32> {
    let (inp, out) = (lin.weight.cols, lin.weight.rows);
    let tokens = x.len() / inp;
    let mut y = vec![0f32; tokens * out];
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let per = tokens.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for (xs, ys) in x.chunks(per * inp).zip(y.chunks_mut(per * out)) {
            s.spawn(move || {
                for (xr, yr) in xs.chunks_exact(inp).zip(ys.chunks_exact_mut(out)) {
                    for (o, yo) in yr.iter_mut().enumerate() {
                        *yo = dot(xr, lin.weight.row(o)) + lin.bias[o];
                    }
                }
            });
        }
    });
    y
}

/// Dot product in eight lanes (vectorizes; the order is fixed, so results are reproducible).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

fn layer_norm(x: &mut [f32], n: &LayerNorm, eps: f32) {
    let h = n.gamma.len();
    for row in x.chunks_exact_mut(h) {
        let mean = row.iter().sum::<f32>() / h as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for (i, v) in row.iter_mut().enumerate() {
            *v = (*v - mean) * inv * n.gamma[i] + n.beta[i];
        }
    }
}

/// erf, Abramowitz & Stegun 7.1.26 evaluated in f64 (|error| < 1.5e-7).
fn erf(x: f32) -> f32 {
    let x = x as f64;
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * (-x * x).exp();
    (if x < 0.0 { -y } else { y }) as f32
}

/// GELU as BERT defines it (erf, not the tanh approximation).
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x / std::f32::consts::SQRT_2))
}

/// Scaled dot-product self-attention over all tokens (one text, no padding, no mask).
fn attention(q: &[f32], k: &[f32], v: &[f32], tokens: usize, heads: usize, hd: usize) -> Vec<f32> {
    let h = heads * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut out = vec![0f32; tokens * h];
    let mut scores = vec![0f32; tokens];
    for head in 0..heads {
        let col = head * hd;
        for t in 0..tokens {
            let qt = &q[t * h + col..t * h + col + hd];
            for (s, score) in scores.iter_mut().enumerate() {
                *score = dot(qt, &k[s * h + col..s * h + col + hd]) * scale;
            }
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            let o = &mut out[t * h + col..t * h + col + hd];
            for (s, p) in scores.iter().enumerate() {
                let vs = &v[s * h + col..s * h + col + hd];
                for d in 0..hd {
                    o[d] += p / sum * vs[d];
                }
            }
        }
    }
    out
}

/// The embedding lookup: word + position + token type 0, normalized. `ids` must be in the
/// vocabulary and at most `max_position_embeddings` long (the caller checks).
pub fn embed_tokens(w: &BertWeights, c: &BertConfig, ids: &[u32]) -> Vec<f32> {
    let h = c.hidden_size;
    let mut x = Vec::with_capacity(ids.len() * h);
    for (t, &id) in ids.iter().enumerate() {
        let (word, pos, ty) = (
            w.word.row(id as usize),
            w.position.row(t),
            w.token_type.row(0),
        );
        x.extend((0..h).map(|i| word[i] + pos[i] + ty[i]));
    }
    layer_norm(&mut x, &w.embed_norm, c.layer_norm_eps as f32);
    x
}

/// Mean of the token states, `[hidden]`.
pub fn mean_pool(x: &[f32], hidden: usize) -> Vec<f32> {
    let tokens = (x.len() / hidden).max(1);
    let mut out = vec![0f32; hidden];
    for row in x.chunks_exact(hidden) {
        for (o, v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
    out.iter_mut().for_each(|o| *o /= tokens as f32);
    out
}

/// The encoder's last token states for `ids`, `[tokens, hidden]`.
pub fn encode(w: &BertWeights, c: &BertConfig, ids: &[u32]) -> Vec<f32> {
    let eps = c.layer_norm_eps as f32;
    let tokens = ids.len();
    let mut x = embed_tokens(w, c, ids);
    for l in &w.layers {
        let q = linear(&x, &l.query);
        let k = linear(&x, &l.key);
        let v = linear(&x, &l.value);
        let ctx = attention(&q, &k, &v, tokens, c.num_attention_heads, c.head_dim());
        let a = linear(&ctx, &l.attn_out);
        x.iter_mut().zip(&a).for_each(|(x, a)| *x += a);
        layer_norm(&mut x, &l.attn_norm, eps);
        let mut f = linear(&x, &l.ffn_in);
        f.iter_mut().for_each(|v| *v = gelu(*v));
        let f = linear(&f, &l.ffn_out);
        x.iter_mut().zip(&f).for_each(|(x, f)| *x += f);
        layer_norm(&mut x, &l.ffn_norm, eps);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_and_gelu_match_known_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (-2.0, -0.995_322_3),
        ] {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {}", erf(x));
        }
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu(-3.0) + 0.004_049_7).abs() < 1e-6);
    }

    #[test]
    fn dot_handles_tails() {
        let a: Vec<f32> = (0..11).map(|i| i as f32).collect();
        assert_eq!(dot(&a, &a), (0..11).map(|i| (i * i) as f32).sum::<f32>());
    }
}
