//! `ReferenceModel`: the llama/qwen2 forward pass, one token at a time through every layer
//! (equivalent to a causal batch), with K/V appended to a `KvCache`.

use crate::gguf::GgufFile;
use crate::model::tensor_names::*;
use crate::model::{ModelConfig, ModelError};
use crate::quant;

use super::error::ReferenceError;
use super::kv_cache::KvCache;
use super::matrix::Matrix;
use super::ops::{add_in_place, dot, rms_norm, softmax, swiglu_in_place};
use super::rope::{apply_rope, rope_angles};

struct Layer<'a> {
    attn_norm: Vec<f32>,
    wq: Matrix<'a>,
    wk: Matrix<'a>,
    wv: Matrix<'a>,
    /// q, k, v biases (qwen2).
    qkv_bias: Option<[Vec<f32>; 3]>,
    wo: Matrix<'a>,
    ffn_norm: Vec<f32>,
    gate: Matrix<'a>,
    up: Matrix<'a>,
    down: Matrix<'a>,
}

/// A model whose weights stay in the GGUF file's mapping (norms and biases are copied to f32).
pub struct ReferenceModel<'a> {
    cfg: ModelConfig,
    token_embd: Matrix<'a>,
    output_norm: Vec<f32>,
    output: Matrix<'a>,
    layers: Vec<Layer<'a>>,
}

impl<'a> ReferenceModel<'a> {
    pub fn load(file: &'a GgufFile) -> Result<Self, ReferenceError> {
        let cfg = ModelConfig::from_gguf(file)?;
        let tensor = |name: &str| {
            file.tensor(name).ok_or_else(|| {
                ReferenceError::Model(ModelError::MissingTensor {
                    name: name.to_string(),
                })
            })
        };
        let matrix = |name: &str| Matrix::new(file, tensor(name)?);
        let vector = |name: &str| -> Result<Vec<f32>, ReferenceError> {
            let t = tensor(name)?;
            Ok(quant::dequantize_to_vec(
                t.ggml_type,
                file.tensor_data(t),
                t.n_elements as usize,
            )?)
        };
        let layers = (0..cfg.n_layer)
            .map(|l| {
                let qkv_bias = if cfg.qkv_bias {
                    Some([
                        vector(&blk(l, ATTN_Q_BIAS))?,
                        vector(&blk(l, ATTN_K_BIAS))?,
                        vector(&blk(l, ATTN_V_BIAS))?,
                    ])
                } else {
                    None
                };
                Ok(Layer {
                    attn_norm: vector(&blk(l, ATTN_NORM))?,
                    wq: matrix(&blk(l, ATTN_Q))?,
                    wk: matrix(&blk(l, ATTN_K))?,
                    wv: matrix(&blk(l, ATTN_V))?,
                    qkv_bias,
                    wo: matrix(&blk(l, ATTN_OUTPUT))?,
                    ffn_norm: vector(&blk(l, FFN_NORM))?,
                    gate: matrix(&blk(l, FFN_GATE))?,
                    up: matrix(&blk(l, FFN_UP))?,
                    down: matrix(&blk(l, FFN_DOWN))?,
                })
            })
            .collect::<Result<Vec<_>, ReferenceError>>()?;
        Ok(ReferenceModel {
            token_embd: matrix(TOKEN_EMBD)?,
            output_norm: vector(OUTPUT_NORM)?,
            output: matrix(if cfg.tied_output { TOKEN_EMBD } else { OUTPUT })?,
            layers,
            cfg,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// An empty cache for up to `max_tokens` tokens.
    pub fn new_cache(&self, max_tokens: usize) -> KvCache {
        KvCache::new(self.cfg.n_layer, self.cfg.kv_dim(), max_tokens)
    }

    /// Runs `tokens` at positions `cache.len()..` and appends their K/V; returns the logits of
    /// each token in order (`tokens.len() × n_vocab`, row-major). On error the cache is left
    /// as it was.
    pub fn forward(&self, cache: &mut KvCache, tokens: &[u32]) -> Result<Vec<f32>, ReferenceError> {
        self.check_inputs(cache, tokens)?;
        let start = cache.len();
        let mut logits = vec![0.0f32; tokens.len() * self.cfg.n_vocab];
        let mut scratch = Scratch::new(&self.cfg, start + tokens.len());
        for (i, (&token, out)) in tokens
            .iter()
            .zip(logits.chunks_exact_mut(self.cfg.n_vocab))
            .enumerate()
        {
            if let Err(e) = self.forward_token(cache, token, start + i, &mut scratch, out) {
                cache.truncate(start);
                return Err(e);
            }
            cache.set_len(start + i + 1);
        }
        Ok(logits)
    }

    fn check_inputs(&self, cache: &KvCache, tokens: &[u32]) -> Result<(), ReferenceError> {
        if cache.n_layer() != self.cfg.n_layer || cache.kv_dim() != self.cfg.kv_dim() {
            return Err(ReferenceError::CacheMismatch {
                expected: format!("{} × {}", self.cfg.n_layer, self.cfg.kv_dim()),
                found: format!("{} × {}", cache.n_layer(), cache.kv_dim()),
            });
        }
        if tokens.len() > cache.capacity() - cache.len() {
            return Err(ReferenceError::CacheOverflow {
                len: cache.len(),
                adding: tokens.len(),
                capacity: cache.capacity(),
            });
        }
        if let Some((index, &token)) = tokens
            .iter()
            .enumerate()
            .find(|(_, t)| **t as usize >= self.cfg.n_vocab)
        {
            return Err(ReferenceError::TokenOutOfRange {
                token,
                index,
                n_vocab: self.cfg.n_vocab,
            });
        }
        Ok(())
    }

    /// One token at `pos` through every layer; writes its logits to `logits`.
    fn forward_token(
        &self,
        cache: &mut KvCache,
        token: u32,
        pos: usize,
        s: &mut Scratch,
        logits: &mut [f32],
    ) -> Result<(), ReferenceError> {
        let cfg = &self.cfg;
        self.token_embd.row_f32(token as usize, &mut s.x)?;
        let angles = rope_angles(&cfg.rope, pos);
        for (l, layer) in self.layers.iter().enumerate() {
            // Attention block.
            rms_norm(&s.x, &layer.attn_norm, cfg.rms_eps, &mut s.normed);
            layer.wq.matvec(&s.normed, &mut s.q)?;
            layer.wk.matvec(&s.normed, &mut s.k)?;
            layer.wv.matvec(&s.normed, &mut s.v)?;
            if let Some([bq, bk, bv]) = &layer.qkv_bias {
                add_in_place(&mut s.q, bq);
                add_in_place(&mut s.k, bk);
                add_in_place(&mut s.v, bv);
            }
            apply_rope(cfg.rope.style, &mut s.q, cfg.head_dim, &angles);
            apply_rope(cfg.rope.style, &mut s.k, cfg.head_dim, &angles);
            cache.store(l, pos, &s.k, &s.v);
            self.attention(cache, l, pos, s);
            layer.wo.matvec(&s.attn, &mut s.normed)?;
            add_in_place(&mut s.x, &s.normed);

            // Feed-forward block (SwiGLU).
            rms_norm(&s.x, &layer.ffn_norm, cfg.rms_eps, &mut s.normed);
            layer.gate.matvec(&s.normed, &mut s.gate)?;
            layer.up.matvec(&s.normed, &mut s.up)?;
            swiglu_in_place(&mut s.gate, &s.up);
            layer.down.matvec(&s.gate, &mut s.normed)?;
            add_in_place(&mut s.x, &s.normed);
        }
        rms_norm(&s.x, &self.output_norm, cfg.rms_eps, &mut s.normed);
        self.output.matvec(&s.normed, logits)
    }

    /// Grouped-query attention of `s.q` over cached positions `0..=pos` (causal) into `s.attn`.
    fn attention(&self, cache: &KvCache, layer: usize, pos: usize, s: &mut Scratch) {
        let cfg = &self.cfg;
        let hd = cfg.head_dim;
        let kv_dim = cfg.kv_dim();
        let group = cfg.n_head / cfg.n_head_kv;
        let scale = 1.0 / (hd as f32).sqrt();
        let (keys, values) = cache.layer_upto(layer, pos);
        let scores = &mut s.scores[..=pos];
        for h in 0..cfg.n_head {
            let q = &s.q[h * hd..(h + 1) * hd];
            let kv_off = (h / group) * hd;
            for (t, score) in scores.iter_mut().enumerate() {
                *score = dot(q, &keys[t * kv_dim + kv_off..][..hd]) * scale;
            }
            softmax(scores);
            let out = &mut s.attn[h * hd..(h + 1) * hd];
            out.fill(0.0);
            for (t, w) in scores.iter().enumerate() {
                for (o, v) in out.iter_mut().zip(&values[t * kv_dim + kv_off..][..hd]) {
                    *o += w * v;
                }
            }
        }
    }
}

/// Per-token activation buffers, reused across tokens.
struct Scratch {
    x: Vec<f32>,
    normed: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attn: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    scores: Vec<f32>,
}

impl Scratch {
    /// Buffers for positions up to `n_positions`.
    fn new(cfg: &ModelConfig, n_positions: usize) -> Scratch {
        Scratch {
            x: vec![0.0; cfg.n_embd],
            normed: vec![0.0; cfg.n_embd],
            q: vec![0.0; cfg.q_dim()],
            k: vec![0.0; cfg.kv_dim()],
            v: vec![0.0; cfg.kv_dim()],
            attn: vec![0.0; cfg.q_dim()],
            gate: vec![0.0; cfg.n_ff],
            up: vec![0.0; cfg.n_ff],
            scores: vec![0.0; n_positions],
        }
    }
}
