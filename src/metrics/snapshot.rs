//! [`MetricsSnapshot`]: every metric as plain numbers, plus what the UI derives from them.

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use serde::Serialize;

use super::Metrics;
use super::labels::{
    FromLabel, LowerTier, OwnerKind, OwnerLabel, RecomputeLabel, RecomputeReason, Tier, TierLabel,
    ToLabel, VerifyFailure, VerifyLabel,
};
use super::record::{PerLowerTier, PerTier, TierTokens};

/// Everything the cache panel shows, read at one moment (serialized in camelCase).
///
/// Counters are totals since the process started. Percentiles are exact (nearest rank) over
/// the last [`SAMPLE_WINDOW`](super::SAMPLE_WINDOW) samples; the hit-rate history holds the last
/// [`HIT_RATE_HISTORY`](super::HIT_RATE_HISTORY) requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSnapshot {
    /// Prompt tokens looked up in the prefix cache.
    pub prefix_cache_queries: u64,
    /// Prompt tokens found, by tier.
    pub prefix_cache_hits: TierTokens,
    /// Hits (all tiers) / queries; `None` before any query.
    pub hit_rate: Option<f64>,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub generation_tokens: u64,
    /// Prompt tokens computed (not reused).
    pub prefill_tokens: u64,
    /// Measured prefill cost: prefill milliseconds / computed tokens, over the requests that
    /// reported both; `None` before any such request.
    pub prefill_ms_per_token: Option<f64>,
    /// Estimated prefill time the cache saved: reused tokens × `prefill_ms_per_token`.
    pub time_saved_ms: Option<f64>,
    /// Blocks, bytes and budget per tier.
    pub tiers: PerTier<TierUsage>,
    pub owner_bytes: OwnerBytes,
    pub pinned_blocks: u64,
    /// Blocks dropped, per tier.
    pub evictions: PerTier<u64>,
    /// Blocks deleted by the TTL, per tier.
    pub expirations: PerLowerTier<u64>,
    /// Blocks copied down, per destination.
    pub spills: PerLowerTier<u64>,
    /// Blocks not copied down (queue full, tier unreachable), per destination.
    pub spill_drops: PerLowerTier<u64>,
    /// Failed operations of the tiers skipped on failure (only Redis counts any).
    pub tier_errors: PerTier<u64>,
    /// Blocks brought back up, per source.
    pub restores: PerLowerTier<u64>,
    pub restored_bytes: PerLowerTier<u64>,
    pub verification_failures: VerifyFailureCounts,
    pub recomputes: RecomputeCounts,
    /// Time to first token, milliseconds.
    pub ttft_ms: Percentiles,
    /// Decode speed, tokens per second.
    pub decode_tok_s: Percentiles,
    pub requests_running: u64,
    pub requests_waiting: u64,
    /// Cumulative hit rate after each recent request, oldest first.
    pub hit_rate_history: Vec<HitRatePoint>,
}

/// What one tier holds and may hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TierUsage {
    pub blocks: u64,
    pub bytes: u64,
    pub budget_bytes: u64,
}

/// KV bytes per kind of owner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerBytes {
    pub conversation: u64,
    pub document: u64,
    pub shared: u64,
    pub request: u64,
}

/// Rejected block reads per reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyFailureCounts {
    pub checksum: u64,
    pub truncated: u64,
    pub fingerprint: u64,
    pub decode: u64,
}

/// Recomputes per reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecomputeCounts {
    pub first_turn: u64,
    pub template: u64,
    pub context_full: u64,
    pub evicted: u64,
    pub model_changed: u64,
    pub no_cache: u64,
    pub other: u64,
}

/// Exact percentiles over the recent samples; `None` when there are none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    /// How many samples they were computed from (at most [`SAMPLE_WINDOW`](super::SAMPLE_WINDOW)).
    pub samples: usize,
}

/// The cumulative hit rate right after a request was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HitRatePoint {
    pub unix_ms: u64,
    pub hit_rate: f64,
}

fn gauge_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Metrics {
    /// Cumulative hits (all tiers) / queries; `None` before any query.
    pub fn hit_rate(&self) -> Option<f64> {
        let queries = self.families().prefix_cache_queries.get();
        (queries > 0).then(|| self.hits().saturating_total() as f64 / queries as f64)
    }

    fn hits(&self) -> TierTokens {
        PerTier::from_fn(|tier| {
            self.families()
                .prefix_cache_hits
                .get_or_create(&TierLabel { tier })
                .get()
        })
    }

    /// Every metric now, with the derived figures the UI shows.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let f = self.families();
        let recent = self.recent();
        let hits = self.hits();
        let queries = f.prefix_cache_queries.get();
        let prefill_ms_per_token = (recent.prefill_tokens_measured > 0)
            .then(|| recent.prefill_ms_measured / recent.prefill_tokens_measured as f64)
            .filter(|v| v.is_finite());
        let [ttft_p50, ttft_p99] = recent.ttft_ms.percentiles([50.0, 99.0]);
        let [tok_s_p50, tok_s_p99] = recent.decode_tok_s.percentiles([50.0, 99.0]);
        let tier_gauge = |family: &Family<TierLabel, Gauge>, tier: Tier| {
            gauge_u64(family.get_or_create(&TierLabel { tier }).get())
        };
        let owner = |owner_kind: OwnerKind| {
            gauge_u64(
                f.kv_bytes_by_owner
                    .get_or_create(&OwnerLabel { owner_kind })
                    .get(),
            )
        };
        let verify = |reason: VerifyFailure| {
            f.kv_verification_failures
                .get_or_create(&VerifyLabel { reason })
                .get()
        };
        let recomputes = |reason: RecomputeReason| {
            f.kv_recomputes
                .get_or_create(&RecomputeLabel { reason })
                .get()
        };

        MetricsSnapshot {
            prefix_cache_queries: queries,
            prefix_cache_hits: hits,
            hit_rate: (queries > 0).then(|| hits.saturating_total() as f64 / queries as f64),
            requests: f.requests.get(),
            prompt_tokens: f.prompt_tokens.get(),
            generation_tokens: f.generation_tokens.get(),
            prefill_tokens: f.prefill_tokens.get(),
            prefill_ms_per_token,
            time_saved_ms: prefill_ms_per_token.map(|ms| hits.saturating_total() as f64 * ms),
            tiers: PerTier::from_fn(|tier| TierUsage {
                blocks: tier_gauge(&f.kv_blocks, tier),
                bytes: tier_gauge(&f.kv_bytes, tier),
                budget_bytes: tier_gauge(&f.kv_budget_bytes, tier),
            }),
            owner_bytes: OwnerBytes {
                conversation: owner(OwnerKind::Conversation),
                document: owner(OwnerKind::Document),
                shared: owner(OwnerKind::Shared),
                request: owner(OwnerKind::Request),
            },
            pinned_blocks: gauge_u64(f.kv_pinned_blocks.get()),
            evictions: PerTier::from_fn(|tier| {
                f.kv_evictions.get_or_create(&TierLabel { tier }).get()
            }),
            expirations: PerLowerTier::from_fn(|from: LowerTier| {
                f.kv_expirations.get_or_create(&FromLabel { from }).get()
            }),
            spills: PerLowerTier::from_fn(|to| f.kv_spills.get_or_create(&ToLabel { to }).get()),
            spill_drops: PerLowerTier::from_fn(|to| {
                f.kv_spill_drops.get_or_create(&ToLabel { to }).get()
            }),
            tier_errors: PerTier::from_fn(|tier| {
                f.kv_tier_errors.get_or_create(&TierLabel { tier }).get()
            }),
            restores: PerLowerTier::from_fn(|from: LowerTier| {
                f.kv_restores.get_or_create(&FromLabel { from }).get()
            }),
            restored_bytes: PerLowerTier::from_fn(|from| {
                f.kv_restored_bytes.get_or_create(&FromLabel { from }).get()
            }),
            verification_failures: VerifyFailureCounts {
                checksum: verify(VerifyFailure::Checksum),
                truncated: verify(VerifyFailure::Truncated),
                fingerprint: verify(VerifyFailure::Fingerprint),
                decode: verify(VerifyFailure::Decode),
            },
            recomputes: RecomputeCounts {
                first_turn: recomputes(RecomputeReason::FirstTurn),
                template: recomputes(RecomputeReason::Template),
                context_full: recomputes(RecomputeReason::ContextFull),
                evicted: recomputes(RecomputeReason::Evicted),
                model_changed: recomputes(RecomputeReason::ModelChanged),
                no_cache: recomputes(RecomputeReason::NoCache),
                other: recomputes(RecomputeReason::Other),
            },
            ttft_ms: Percentiles {
                p50: ttft_p50,
                p99: ttft_p99,
                samples: recent.ttft_ms.len(),
            },
            decode_tok_s: Percentiles {
                p50: tok_s_p50,
                p99: tok_s_p99,
                samples: recent.decode_tok_s.len(),
            },
            requests_running: gauge_u64(f.requests_running.get()),
            requests_waiting: gauge_u64(f.requests_waiting.get()),
            hit_rate_history: recent.hit_rate_history.iter().copied().collect(),
        }
    }
}
