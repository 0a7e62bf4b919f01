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
