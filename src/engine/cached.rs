//! One generation over the tiered KV cache, without a conversation: the CLI's `generate
//! --data-dir`, benchmarks and the fidelity tests. The prompt's longest cached prefix comes
//! from any tier (GPU, RAM, disk, Redis), only the rest is prefilled, and the blocks it computes are
//! written behind to the lower tiers afterwards.

use std::sync::atomic::AtomicBool;

use crate::kv::{Found, Owner, SeqId, Tiers};
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
    let admitted = admit(forward, tiers, prompt, cache, owner)?;
    let (seq, keep, reused) = (admitted.seq, admitted.keep, admitted.reused);
    forward
        .select_sequence(seq)
        .map_err(GenerateError::Forward)?;
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
    release(forward, tiers, seq, cache, owner)?;
    Ok(CachedRun {
        stats,
        reused,
        lookup_ms,
    })
}

/// A request's sequence, ready for its prefill: see [`admit`].
#[derive(Debug, Clone, Copy)]
pub struct Admitted {
    pub seq: SeqId,
    /// Prompt tokens already in the sequence (the prefill runs the rest; at least the last
    /// prompt token always runs, for its logits).
    pub keep: usize,
    /// The reused tokens by tier, cut to `keep`.
    pub reused: Found,
}

/// A new sequence for `prompt` in `forward`'s pool, owned by `owner`: with
/// [`CacheUse::ReadWrite`], holding the longest prefix any tier has (restored from RAM or
/// disk as needed); with [`CacheUse::Off`], empty. The current sequence is left as it was.
pub fn admit(
    forward: &mut GpuForward,
    tiers: &mut Tiers,
    prompt: &[u32],
    cache: CacheUse,
    owner: Owner,
) -> Result<Admitted, GenerateError<GpuForwardError>> {
    if prompt.is_empty() {
        return Err(GenerateError::EmptyPrompt);
    }
    let fwd = GenerateError::Forward;
    let (seq, found) = match cache {
        CacheUse::ReadWrite => tiers
            .acquire(forward.kv_mut(), prompt)
            .map_err(|e| fwd(e.into()))?,
        CacheUse::Off => (forward.new_sequence().map_err(fwd)?, Found::default()),
    };
    let kv = forward.kv_mut();
    let _ = kv.set_owner(seq, owner);
    let keep = found.total().min(prompt.len() - 1);
    if let Err(e) = kv.truncate(seq, keep) {
        let _ = kv.free_sequence(seq);
        return Err(fwd(e.into()));
    }
    Ok(Admitted {
        seq,
        keep,
        reused: found.cut(keep),
    })
}

/// Ends a request's sequence: with [`CacheUse::ReadWrite`] the blocks computed since the last
/// spill go behind to RAM and disk; the sequence is freed (its registered blocks stay cached,
/// except a cold run's, which must not serve later runs).
pub fn release(
    forward: &mut GpuForward,
    tiers: &mut Tiers,
    seq: SeqId,
    cache: CacheUse,
    owner: Owner,
) -> Result<(), GenerateError<GpuForwardError>> {
    if cache == CacheUse::ReadWrite {
        tiers
            .spill(forward.kv_mut())
            .map_err(|e| GenerateError::Forward(e.into()))?;
        tiers.publish(forward.kv());
    }
    let _ = forward.free_sequence(seq);
    if cache == CacheUse::Off {
        forward.kv_mut().take_fresh();
        forward.kv_mut().remove_owner(owner);
    }
    Ok(())
}
