//! One generation over the tiered KV cache, without a conversation: the CLI's `generate
//! --data-dir`, benchmarks and the fidelity tests. The prompt's longest cached prefix comes
//! from any tier (GPU, RAM, disk, Redis), only the rest is prefilled, and the blocks it computes are
//! written behind to the lower tiers afterwards.

use std::sync::atomic::AtomicBool;

use crate::kv::{Found, Owner, Tiers};
use crate::tokenizer::Tokenizer;

use super::generate::{GenerateError, GenerationStats, Generator};
use super::gpu_forward::{GpuForward, GpuForwardError};
use super::sampler::Sampler;

/// What a cached generation did.
#[derive(Debug, Clone)]
pub struct CachedRun {
    pub stats: GenerationStats,
    /// Prompt tokens reused, by the tier they came from (sums to `stats.cached_tokens`).
    pub reused: Found,
    /// Time spent finding and restoring the cached prefix (uploads from RAM or disk
    /// included), before the prefill.
    pub lookup_ms: f64,
}

impl CachedRun {
    /// Time to first token as a user sees it: lookup and restore, prefill, first sample.
    pub fn ttft_ms(&self) -> f64 {
        self.lookup_ms + self.stats.ttft_ms
    }
}

/// How a [`generate_cached`] call uses the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheUse {
    /// Look up every tier, write new blocks behind.
    ReadWrite,
    /// Compute everything and leave the tiers as they were (the cold baseline).
    Off,
}

/// One request: the prompt, the reply's token budget, how to use the cache, whose it is.
#[derive(Clone, Debug)]
pub struct CachedRequest<'p> {
    pub prompt: &'p [u32],
    pub max_tokens: usize,
    pub cache: CacheUse,
    pub owner: Owner,
    /// Stop when one of these appears (not emitted).
    pub stop_strings: &'p [String],
    /// Set to end the generation before its next token (a client that went away, shutdown).
    pub cancel: Option<&'p AtomicBool>,
}

/// Generates after the request's prompt on a new sequence of `forward`'s pool.
pub fn generate_cached(
    forward: &mut GpuForward,
    tiers: &mut Tiers,
    tokenizer: &Tokenizer,
    sampler: Sampler,
    request: CachedRequest,
    on_text: &mut dyn FnMut(&str),
) -> Result<CachedRun, GenerateError<GpuForwardError>> {
    let CachedRequest {
        prompt,
        max_tokens,
        cache,
        owner,
        stop_strings,
        cancel,
    } = request;
    if prompt.is_empty() {
        return Err(GenerateError::EmptyPrompt);
    }
    let start = std::time::Instant::now();
    let found = match cache {
        CacheUse::ReadWrite => {
            let (s, found) = tiers
                .acquire(forward.kv_mut(), prompt)
                .map_err(|e| GenerateError::Forward(e.into()))?;
            forward.select_sequence(s).map_err(GenerateError::Forward)?;
            found
        }
        CacheUse::Off => {
            let s = forward.new_sequence().map_err(GenerateError::Forward)?;
            forward.select_sequence(s).map_err(GenerateError::Forward)?;
            Found::default()
        }
    };
    let seq = forward.sequence();
    let _ = forward.kv_mut().set_owner(seq, owner);
    // At least the last prompt token runs, for its logits.
    let keep = found.total().min(prompt.len() - 1);
    forward.truncate(keep);
    let reused = found.cut(keep);
    let lookup_ms = start.elapsed().as_secs_f64() * 1000.0;
    let max_batch = forward.max_batch();
    let mut generator = Generator {
        tokenizer,
        sampler,
        max_tokens,
        stop_strings: stop_strings.to_vec(),
        cancel,
    };
    let step = |tokens: &[u32]| -> Result<Vec<f32>, GpuForwardError> {
        let mut last = Vec::new();
        for chunk in tokens.chunks(max_batch) {
            last = forward.step(chunk, false)?;
        }
        Ok(last)
    };
    let stats = generator.run(prompt, keep, step, on_text)?;
    if cache == CacheUse::ReadWrite {
        tiers
            .spill(forward.kv_mut())
            .map_err(|e| GenerateError::Forward(e.into()))?;
        tiers.publish(forward.kv());
    }
    let _ = forward.free_sequence(seq);
    if cache == CacheUse::Off {
        // The cold run's blocks must not serve later runs.
        forward.kv_mut().take_fresh();
        forward.kv_mut().remove_owner(owner);
    }
    Ok(CachedRun {
        stats,
        reused,
        lookup_ms,
    })
}
