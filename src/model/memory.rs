//! Memory planner input: how many bytes weights, KV cache and activation scratch need.

use crate::gguf::GgufFile;
use crate::quant::GgmlType;

use super::config::ModelConfig;

/// Tokens per prefill chunk the scratch estimate assumes (llama.cpp's default n_ubatch).
pub const PREFILL_CHUNK_TOKENS: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryEstimate {
    pub weights_bytes: u64,
    pub kv_bytes: u64,
    pub scratch_bytes: u64,
    pub total_bytes: u64,
}

/// Bytes needed to run `cfg` (loaded from `file`) with a context of `n_ctx` tokens and a
/// `kv_type` cache.
///
/// - weights: the sum of every tensor's bytes in the file (kept as stored);
/// - KV: `kv_bytes_per_token(kv_type) × n_ctx`;
/// - scratch: f32 activations for one prefill chunk of `b = min(n_ctx, 512)` tokens:
///   logits `b × n_vocab`, hidden states `b × (3·n_embd + q_dim + 2·kv_dim + 2·n_ff)`
///   (residual, normed input, attention output, q, k, v, gate and up), and attention scores
///   `b × n_head × n_ctx`.
pub fn estimate_memory(
    file: &GgufFile,
    cfg: &ModelConfig,
    n_ctx: usize,
    kv_type: GgmlType,
) -> MemoryEstimate {
    let weights_bytes = file
        .tensors()
        .iter()
        .map(|t| t.n_bytes)
        .fold(0u64, u64::saturating_add);
    let kv_bytes = cfg.kv_bytes_per_token(kv_type).saturating_mul(n_ctx as u64);
    let scratch_bytes = scratch_bytes(cfg, n_ctx);
    let total_bytes = weights_bytes
        .saturating_add(kv_bytes)
        .saturating_add(scratch_bytes);
    MemoryEstimate {
        weights_bytes,
        kv_bytes,
        scratch_bytes,
        total_bytes,
    }
}

fn scratch_bytes(cfg: &ModelConfig, n_ctx: usize) -> u64 {
    let b = n_ctx.min(PREFILL_CHUNK_TOKENS) as u64;
    let ctx = n_ctx as u64;
    let logits = b * cfg.n_vocab as u64;
    let hidden = b * (3 * cfg.n_embd + cfg.q_dim() + 2 * cfg.kv_dim() + 2 * cfg.n_ff) as u64;
    let scores = b.saturating_mul(cfg.n_head as u64).saturating_mul(ctx);
    logits
        .saturating_add(hidden)
        .saturating_add(scores)
        .saturating_mul(4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Arch, RopeConfig, RopeScaling, RopeStyle};

    fn llama2_7b() -> ModelConfig {
        ModelConfig {
            arch: Arch::Llama,
            n_vocab: 32000,
            n_embd: 4096,
            n_layer: 32,
            n_head: 32,
            n_head_kv: 32,
            head_dim: 128,
            n_ff: 11008,
            n_ctx_train: 4096,
            rms_eps: 1e-5,
            rope: RopeConfig {
                style: RopeStyle::Normal,
                n_dims: 128,
                freq_base: 10000.0,
                scaling: RopeScaling::None,
                original_ctx: None,
                freq_factors: None,
            },
            tied_output: false,
            qkv_bias: false,
        }
    }

    #[test]
    fn llama2_7b_kv_sizes() {
        let cfg = llama2_7b();
        // The well-known 0.5 MiB per token at F16 (2 × 32 layers × 4096 × 2 bytes).
        assert_eq!(cfg.kv_bytes_per_token(GgmlType::F16), 512 * 1024);
        assert_eq!(cfg.kv_bytes_per_token(GgmlType::F32), 1024 * 1024);
        // Q8_0: 4096 / 32 blocks of 34 bytes per row.
        assert_eq!(cfg.kv_bytes_per_token(GgmlType::Q8_0), 2 * 32 * 128 * 34);
        // Mistral's 8 KV heads: a quarter of that.
        let mistral = ModelConfig {
            n_head_kv: 8,
            ..cfg
        };
        assert_eq!(mistral.kv_bytes_per_token(GgmlType::F16), 128 * 1024);
    }

    #[test]
    fn scratch_covers_logits_hidden_and_scores_of_one_chunk() {
        let cfg = llama2_7b();
        let b = 512u64;
        let expected =
            4 * (b * 32000 + b * (3 * 4096 + 4096 + 2 * 4096 + 2 * 11008) + b * 32 * 4096);
        assert_eq!(scratch_bytes(&cfg, 4096), expected);
        // A context shorter than a chunk shrinks the chunk.
        assert_eq!(
            scratch_bytes(&cfg, 16),
            4 * (16 * 32000 + 16 * (6 * 4096 + 2 * 11008) + 16 * 32 * 16)
        );
    }
}
