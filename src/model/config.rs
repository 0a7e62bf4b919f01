//! `ModelConfig`: the hyperparameters of a llama or qwen2 model, read from GGUF metadata and
//! checked against the tensors, with every number bounded so a hostile file cannot drive huge
//! allocations later.

use crate::gguf::{GgufFile, MetadataValue};
use crate::quant::GgmlType;

use super::error::ModelError;
use super::tensor_names::ROPE_FREQS;
use super::tensors;

/// Upper bounds on metadata numbers. Real models sit far below them (Llama 3.1 405B: 126
/// layers, 16384 wide, 128 heads, 128k context).
pub const MAX_LAYERS: u64 = 1024;
pub const MAX_EMBD: u64 = 65536;
pub const MAX_HEADS: u64 = 1024;
pub const MAX_HEAD_DIM: u64 = 4096;
pub const MAX_FF: u64 = 1 << 20;
pub const MAX_VOCAB: u64 = 1 << 24;
pub const MAX_CTX: u64 = 1 << 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// Llama 2, Llama 3/3.1, Mistral 7B.
    Llama,
    /// Qwen2 / Qwen2.5 (q/k/v biases, NeoX rope).
    Qwen2,
}

impl Arch {
    /// The `general.architecture` string, also the metadata key prefix.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
        }
    }

    pub fn from_name(name: &str) -> Option<Arch> {
        match name {
            "llama" => Some(Arch::Llama),
            "qwen2" => Some(Arch::Qwen2),
            _ => None,
        }
    }

    /// llama.cpp's rope type per architecture.
    pub fn rope_style(self) -> RopeStyle {
        match self {
            Arch::Llama => RopeStyle::Normal,
            Arch::Qwen2 => RopeStyle::Neox,
        }
    }
}

/// Which dimensions RoPE rotates together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs (2i, 2i+1); GGUF's llama q/k weights are permuted for this.
    Normal,
    /// Halves: pairs (i, i + n_dims/2).
    Neox,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RopeScaling {
    None,
    /// Positions are multiplied by `1/factor` (llama.cpp's `freq_scale`).
    Linear {
        factor: f32,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct RopeConfig {
    pub style: RopeStyle,
    /// Rotated dimensions per head (`rope.dimension_count`, ≤ head_dim, even).
    pub n_dims: usize,
    pub freq_base: f32,
    pub scaling: RopeScaling,
    /// `rope.scaling.original_context_length`, informational.
    pub original_ctx: Option<usize>,
    /// Llama 3.1's per-frequency divisors (`rope_freqs.weight`, n_dims/2 values): theta_i is
    /// divided by factor_i.
    pub freq_factors: Option<Vec<f32>>,
}

impl RopeConfig {
    /// llama.cpp's `freq_scale`: 1/factor for linear scaling, else 1.
    pub fn freq_scale(&self) -> f32 {
        match self.scaling {
            RopeScaling::None => 1.0,
            RopeScaling::Linear { factor } => 1.0 / factor,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub arch: Arch,
    pub n_vocab: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub n_ctx_train: usize,
    pub rms_eps: f32,
    pub rope: RopeConfig,
    /// No `output.weight`: the output head reuses `token_embd.weight`.
    pub tied_output: bool,
    pub qkv_bias: bool,
}

impl ModelConfig {
    /// Reads and bounds the hyperparameters, then validates every tensor's presence, type and
    /// shape against them.
    pub fn from_gguf(file: &GgufFile) -> Result<ModelConfig, ModelError> {
        let arch_name = file.get_str("general.architecture")?;
        let arch = Arch::from_name(arch_name)
            .ok_or_else(|| ModelError::UnsupportedArch(arch_name.to_string()))?;
        let meta = Meta {
            file,
            prefix: arch.name(),
        };

        let n_embd = meta.bounded("embedding_length", None, 1, MAX_EMBD)?;
        let n_layer = meta.bounded("block_count", None, 1, MAX_LAYERS)?;
        let n_head = meta.bounded("attention.head_count", None, 1, MAX_HEADS)?;
        let n_head_kv = meta.bounded("attention.head_count_kv", Some(n_head), 1, n_head)?;
        if !n_head.is_multiple_of(n_head_kv) {
            return Err(meta.bad(
                "attention.head_count_kv",
                n_head_kv,
                "must divide head_count",
            ));
        }
        let head_dim = match meta.opt_bounded("attention.key_length", 1, MAX_HEAD_DIM)? {
            Some(k) => k,
            None => {
                if !n_embd.is_multiple_of(n_head) {
                    return Err(meta.bad(
                        "attention.head_count",
                        n_head,
                        "must divide embedding_length",
                    ));
                }
                n_embd / n_head
            }
        };
        let value_len = meta.bounded("attention.value_length", Some(head_dim), 1, MAX_HEAD_DIM)?;
        if value_len != head_dim {
            return Err(meta.bad(
                "attention.value_length",
                value_len,
                "must equal the key length",
            ));
        }
        let n_ff = meta.bounded("feed_forward_length", None, 1, MAX_FF)?;
        let n_ctx_train = meta.bounded("context_length", None, 1, MAX_CTX)?;
        let n_vocab = read_vocab_size(file, &meta)?;

        let rms_eps = meta.f32("attention.layer_norm_rms_epsilon", None)?;
        if !(rms_eps > 0.0 && rms_eps < 1.0) {
            return Err(meta.bad(
                "attention.layer_norm_rms_epsilon",
                rms_eps,
                "must be in (0, 1)",
            ));
        }
        let rope = read_rope(file, &meta, arch, head_dim)?;

        let mut cfg = ModelConfig {
            arch,
            n_vocab: n_vocab as usize,
            n_embd: n_embd as usize,
            n_layer: n_layer as usize,
            n_head: n_head as usize,
            n_head_kv: n_head_kv as usize,
            head_dim: head_dim as usize,
            n_ff: n_ff as usize,
            n_ctx_train: n_ctx_train as usize,
            rms_eps,
            rope,
            tied_output: false,
            qkv_bias: false,
        };
        let layout = tensors::validate(file, &cfg)?;
        cfg.tied_output = layout.tied_output;
        cfg.qkv_bias = layout.qkv_bias;
        Ok(cfg)
    }

    /// Width of the query projection (n_head × head_dim).
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    /// Width of the key and value projections (n_head_kv × head_dim).
    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }

    /// Bytes of K and V cache one token takes over all layers with `kv_type` elements
    /// (F32 4, F16 2, Q8_0 34/32 bytes each; a partial block counts whole).
    pub fn kv_bytes_per_token(&self, kv_type: GgmlType) -> u64 {
        let row = self.kv_dim() as u64;
        let be = kv_type.block_elems() as u64;
        let row_bytes = row.div_ceil(be) * kv_type.block_bytes() as u64;
        2 * self.n_layer as u64 * row_bytes
    }
}

/// Metadata reader for one architecture's `{arch}.` keys.
struct Meta<'a> {
    file: &'a GgufFile,
    prefix: &'static str,
}

impl Meta<'_> {
    fn key(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.prefix)
    }

    fn bad(&self, suffix: &str, value: impl ToString, reason: &str) -> ModelError {
        ModelError::bad_value(&self.key(suffix), value, reason)
    }

    fn opt_bounded(&self, suffix: &str, min: u64, max: u64) -> Result<Option<u64>, ModelError> {
        let key = self.key(suffix);
        match self.file.opt_u64(&key)? {
            None => Ok(None),
            Some(v) if v < min || v > max => Err(ModelError::bad_value(
                &key,
                v,
                format!("must be in {min}..={max}"),
            )),
            Some(v) => Ok(Some(v)),
        }
    }

    /// A required integer (or `default` when absent) within `min..=max`.
    fn bounded(
        &self,
        suffix: &str,
        default: Option<u64>,
        min: u64,
        max: u64,
    ) -> Result<u64, ModelError> {
        match (self.opt_bounded(suffix, min, max)?, default) {
            (Some(v), _) => Ok(v),
            (None, Some(d)) => Ok(d),
            (None, None) => Ok(self.file.get_u64(&self.key(suffix))?),
        }
    }

    fn f32(&self, suffix: &str, default: Option<f32>) -> Result<f32, ModelError> {
        let key = self.key(suffix);
        match (self.file.opt_f32(&key)?, default) {
            (Some(v), _) => Ok(v),
            (None, Some(d)) => Ok(d),
            (None, None) => Ok(self.file.get_f32(&key)?),
        }
    }
}

fn read_vocab_size(file: &GgufFile, meta: &Meta) -> Result<u64, ModelError> {
    if let Some(n) = meta.opt_bounded("vocab_size", 1, MAX_VOCAB)? {
        return Ok(n);
    }
    match file.get("tokenizer.ggml.tokens") {
        Some(MetadataValue::Array(tokens)) => {
            let n = tokens.len() as u64;
            if n == 0 || n > MAX_VOCAB {
                return Err(ModelError::bad_value(
                    "tokenizer.ggml.tokens",
                    format!("{n} tokens"),
                    format!("vocabulary size must be in 1..={MAX_VOCAB}"),
                ));
            }
            Ok(n)
        }
        Some(other) => Err(ModelError::bad_value(
            "tokenizer.ggml.tokens",
            other.type_name(),
            "must be an array of strings",
        )),
        None => Err(ModelError::bad_value(
            &meta.key("vocab_size"),
            "absent",
            "neither it nor tokenizer.ggml.tokens gives the vocabulary size",
        )),
    }
}

fn read_rope(
    file: &GgufFile,
    meta: &Meta,
    arch: Arch,
    head_dim: u64,
) -> Result<RopeConfig, ModelError> {
    let n_dims = meta.bounded("rope.dimension_count", Some(head_dim), 2, head_dim)?;
    if !n_dims.is_multiple_of(2) {
        return Err(meta.bad("rope.dimension_count", n_dims, "must be even"));
    }
    let freq_base = meta.f32("rope.freq_base", Some(10000.0))?;
    if !(freq_base.is_finite() && freq_base > 1.0) {
        return Err(meta.bad("rope.freq_base", freq_base, "must be finite and > 1"));
    }
    let scaling = read_rope_scaling(file, meta)?;
    let original_ctx = meta
        .opt_bounded("rope.scaling.original_context_length", 1, MAX_CTX)?
        .map(|v| v as usize);
    let freq_factors = read_freq_factors(file, n_dims as usize)?;
    Ok(RopeConfig {
        style: arch.rope_style(),
        n_dims: n_dims as usize,
        freq_base,
        scaling,
        original_ctx,
        freq_factors,
    })
}

fn read_rope_scaling(file: &GgufFile, meta: &Meta) -> Result<RopeScaling, ModelError> {
    let type_key = meta.key("rope.scaling.type");
    let kind = file.opt_str(&type_key)?;
    // Older files carry only `rope.scale_linear`.
    let factor = match file.opt_f32(&meta.key("rope.scaling.factor"))? {
        Some(f) => Some(f),
        None => file.opt_f32(&meta.key("rope.scale_linear"))?,
    };
    let linear = |factor: Option<f32>| -> Result<RopeScaling, ModelError> {
        match factor {
            None => Ok(RopeScaling::None),
            Some(f) if f == 0.0 || f == 1.0 => Ok(RopeScaling::None),
            Some(f) if f.is_finite() && f > 0.0 && f <= 1024.0 => {
                Ok(RopeScaling::Linear { factor: f })
            }
            Some(f) => Err(meta.bad("rope.scaling.factor", f, "must be in (0, 1024]")),
        }
    };
    match kind {
        None | Some("linear") => linear(factor),
        Some("none") => Ok(RopeScaling::None),
        Some(other) => Err(ModelError::bad_value(
            &type_key,
            other,
            "only linear rope scaling is supported",
        )),
    }
}

/// Llama 3.1's `rope_freqs.weight`: n_dims/2 finite positive F32 divisors.
fn read_freq_factors(file: &GgufFile, n_dims: usize) -> Result<Option<Vec<f32>>, ModelError> {
    let Some(t) = file.tensor(ROPE_FREQS) else {
        return Ok(None);
    };
    let bad = |reason: String| ModelError::BadTensor {
        name: ROPE_FREQS.to_string(),
        reason,
    };
    if t.ggml_type != GgmlType::F32 {
        return Err(bad(format!("type {} (expected F32)", t.ggml_type)));
    }
    let expected = [(n_dims / 2) as u64];
    if tensors::trimmed(&t.dims) != expected {
        return Err(ModelError::TensorShape {
            name: ROPE_FREQS.to_string(),
            expected: expected.to_vec(),
            found: t.dims.clone(),
        });
    }
    let data = file.tensor_data(t);
    let factors: Vec<f32> = data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if factors.len() != n_dims / 2 {
        return Err(bad(format!(
            "{} bytes of data for {} values",
            data.len(),
            n_dims / 2
        )));
    }
    if let Some(f) = factors.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
        return Err(bad(format!("factor {f} is not finite and positive")));
    }
    Ok(Some(factors))
}
