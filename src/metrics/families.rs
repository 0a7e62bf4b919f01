//! The metric families, their buckets, and the registry they are exported from.
//!
//! Names are registered without the `hearth_` prefix (the registry adds it) and counters without
//! `_total` (the encoder adds it); units are part of the names. `docs/metrics.md` lists them all.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::labels::{
    FromLabel, LowerTier, OwnerKind, OwnerLabel, RecomputeLabel, RecomputeReason, Tier, TierLabel,
    ToLabel, VerifyFailure, VerifyLabel,
};

/// The prefix of every exported metric name.
pub const METRIC_PREFIX: &str = "hearth";

/// Time to first token, seconds: 5 ms to 60 s.
pub const TTFT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 7.5, 10.0,
    15.0, 20.0, 30.0, 45.0, 60.0,
];

/// Prefill time, seconds: as TTFT, then up to 10 minutes for 100k-token documents.
pub const PREFILL_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 7.5, 10.0,
    15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0,
];

/// Decode speed, tokens per second: 0.5 (CPU fallback) to 2000.
pub const DECODE_TOK_S_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0, 200.0, 300.0,
    500.0, 1000.0, 2000.0,
];

/// Prompt length, tokens: powers of two from 16 to 262,144.
pub const PROMPT_TOKEN_BUCKETS: &[f64] = &[
    16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0,
    65536.0, 131072.0, 262144.0,
];

/// Handles to every metric; each is a cheap clone sharing its atomics with the registry's copy.
#[derive(Debug)]
pub(super) struct Families {
    pub prefix_cache_queries: Counter,
    pub prefix_cache_hits: Family<TierLabel, Counter>,
    pub requests: Counter,
    pub prompt_tokens: Counter,
    pub generation_tokens: Counter,
    pub prefill_tokens: Counter,
    pub kv_blocks: Family<TierLabel, Gauge>,
    pub kv_bytes: Family<TierLabel, Gauge>,
    pub kv_budget_bytes: Family<TierLabel, Gauge>,
    pub kv_bytes_by_owner: Family<OwnerLabel, Gauge>,
    pub kv_pinned_blocks: Gauge,
    pub kv_evictions: Family<TierLabel, Counter>,
    pub kv_expirations: Family<FromLabel, Counter>,
    pub kv_spills: Family<ToLabel, Counter>,
    pub kv_spill_drops: Family<ToLabel, Counter>,
    pub kv_tier_errors: Family<TierLabel, Counter>,
    pub kv_restores: Family<FromLabel, Counter>,
    pub kv_restored_bytes: Family<FromLabel, Counter>,
    pub kv_verification_failures: Family<VerifyLabel, Counter>,
    pub kv_recomputes: Family<RecomputeLabel, Counter>,
    pub time_to_first_token_seconds: Histogram,
    pub prefill_seconds: Histogram,
    pub decode_tokens_per_second: Histogram,
    pub request_prompt_tokens: Histogram,
    pub requests_running: Gauge,
    pub requests_waiting: Gauge,
}

impl Families {
    /// Creates every metric, with every label combination at zero, and registers it.
    pub fn register(registry: &mut Registry) -> Families {
        let f = Families {
            prefix_cache_queries: Counter::default(),
            prefix_cache_hits: Family::default(),
            requests: Counter::default(),
            prompt_tokens: Counter::default(),
            generation_tokens: Counter::default(),
            prefill_tokens: Counter::default(),
            kv_blocks: Family::default(),
            kv_bytes: Family::default(),
            kv_budget_bytes: Family::default(),
            kv_bytes_by_owner: Family::default(),
            kv_pinned_blocks: Gauge::default(),
            kv_evictions: Family::default(),
            kv_expirations: Family::default(),
            kv_spills: Family::default(),
            kv_spill_drops: Family::default(),
            kv_tier_errors: Family::default(),
            kv_restores: Family::default(),
            kv_restored_bytes: Family::default(),
            kv_verification_failures: Family::default(),
            kv_recomputes: Family::default(),
            time_to_first_token_seconds: Histogram::new(TTFT_BUCKETS.iter().copied()),
            prefill_seconds: Histogram::new(PREFILL_BUCKETS.iter().copied()),
            decode_tokens_per_second: Histogram::new(DECODE_TOK_S_BUCKETS.iter().copied()),
            request_prompt_tokens: Histogram::new(PROMPT_TOKEN_BUCKETS.iter().copied()),
            requests_running: Gauge::default(),
            requests_waiting: Gauge::default(),
        };
        f.touch_every_series();
        f.register_all(registry);
        f
    }

    fn touch_every_series(&self) {
        for &tier in Tier::ALL {
            let label = TierLabel { tier };
            touch(&self.prefix_cache_hits, &label);
            touch(&self.kv_blocks, &label);
            touch(&self.kv_bytes, &label);
            touch(&self.kv_budget_bytes, &label);
            touch(&self.kv_evictions, &label);
            // Only the tiers skipped on failure (Redis) count any; the others fail the request.
            touch(&self.kv_tier_errors, &label);
        }
        for &tier in LowerTier::ALL {
            touch(&self.kv_spills, &ToLabel { to: tier });
            touch(&self.kv_spill_drops, &ToLabel { to: tier });
            touch(&self.kv_restores, &FromLabel { from: tier });
            touch(&self.kv_restored_bytes, &FromLabel { from: tier });
            touch(&self.kv_expirations, &FromLabel { from: tier });
        }
        for &owner_kind in OwnerKind::ALL {
            touch(&self.kv_bytes_by_owner, &OwnerLabel { owner_kind });
        }
        for &reason in VerifyFailure::ALL {
            touch(&self.kv_verification_failures, &VerifyLabel { reason });
        }
        for &reason in RecomputeReason::ALL {
            touch(&self.kv_recomputes, &RecomputeLabel { reason });
        }
    }

    fn register_all(&self, r: &mut Registry) {
        r.register(
            "prefix_cache_queries",
            "Prompt tokens looked up in the prefix cache",
            self.prefix_cache_queries.clone(),
        );
        r.register(
            "prefix_cache_hits",
            "Prompt tokens found in the prefix cache, by the tier they were found in",
            self.prefix_cache_hits.clone(),
        );
        r.register(
            "requests",
            "Requests (chat turns) finished",
            self.requests.clone(),
        );
        r.register(
            "prompt_tokens",
            "Prompt tokens of finished requests, cached or computed",
            self.prompt_tokens.clone(),
        );
        r.register(
            "generation_tokens",
            "Tokens generated",
            self.generation_tokens.clone(),
        );
        r.register(
            "prefill_tokens",
            "Prompt tokens computed by prefill (not reused from the cache)",
            self.prefill_tokens.clone(),
        );
        r.register(
            "kv_blocks",
            "KV blocks held, by tier",
            self.kv_blocks.clone(),
        );
        r.register(
            "kv_bytes",
            "Bytes of KV blocks held, by tier",
            self.kv_bytes.clone(),
        );
        r.register(
            "kv_budget_bytes",
            "Bytes the KV cache may use, by tier",
            self.kv_budget_bytes.clone(),
        );
        r.register(
            "kv_bytes_by_owner",
            "Bytes of KV blocks held, by kind of owner",
            self.kv_bytes_by_owner.clone(),
        );
        r.register(
            "kv_pinned_blocks",
            "KV blocks pinned (never evicted while pinned)",
            self.kv_pinned_blocks.clone(),
        );
        r.register(
            "kv_evictions",
            "KV blocks dropped from a tier",
            self.kv_evictions.clone(),
        );
        r.register(
            "kv_expirations",
            "KV blocks deleted from a lower tier for not being used within the TTL",
            self.kv_expirations.clone(),
        );
        r.register(
            "kv_spills",
            "KV blocks copied down to a lower tier",
            self.kv_spills.clone(),
        );
        r.register(
            "kv_spill_drops",
            "KV blocks not copied down to a lower tier (its write queue was full, or it was unreachable)",
            self.kv_spill_drops.clone(),
        );
        r.register(
            "kv_tier_errors",
            "Failed operations on a lower tier that is skipped when it fails (Redis)",
            self.kv_tier_errors.clone(),
        );
        r.register(
            "kv_restores",
            "KV blocks brought back up from a lower tier",
            self.kv_restores.clone(),
        );
        r.register(
            "kv_restored_bytes",
            "Bytes of KV blocks brought back up from a lower tier",
            self.kv_restored_bytes.clone(),
        );
        r.register(
            "kv_verification_failures",
            "KV blocks read back from RAM, disk or Redis and rejected, by reason",
            self.kv_verification_failures.clone(),
        );
        r.register(
            "kv_recomputes",
            "Requests that recomputed tokens they could not reuse, by reason",
            self.kv_recomputes.clone(),
        );
        r.register(
            "time_to_first_token_seconds",
            "Time from request start to the first generated token",
            self.time_to_first_token_seconds.clone(),
        );
        r.register(
            "prefill_seconds",
            "Time spent computing the prompt tokens not found in the cache",
            self.prefill_seconds.clone(),
        );
        r.register(
            "decode_tokens_per_second",
            "Decode speed of a request, generated tokens per second",
            self.decode_tokens_per_second.clone(),
        );
        r.register(
            "request_prompt_tokens",
            "Prompt length of a request, tokens",
            self.request_prompt_tokens.clone(),
        );
        r.register(
            "requests_running",
            "Requests being decoded now",
            self.requests_running.clone(),
        );
        r.register(
            "requests_waiting",
            "Requests queued, not yet started",
            self.requests_waiting.clone(),
        );
    }
}

/// Creates the series of `label` (at zero) if it does not exist yet.
fn touch<S, M>(family: &Family<S, M>, label: &S)
where
    S: Clone + std::hash::Hash + Eq,
    M: Default,
{
    let _series = family.get_or_create(label);
}
