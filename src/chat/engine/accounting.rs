//! What a turn cost, for its stats and the metrics: reused tokens by tier, and the request
//! record (with its recompute reason by kind).

use crate::engine::StopReason;
use crate::kv::Found;
use crate::metrics::{Metrics, RecomputeReason, RequestRecord, TierTokens};
use crate::store::{self, ReplyStats, ReusedByTier};

use super::super::reuse::{
    REASON_CONTEXT_FULL, REASON_EVICTED, REASON_FIRST_TURN, REASON_MODEL_RELOADED, REASON_TEMPLATE,
};
use super::super::types::count_u32;

/// `found` (what the acquire brought, whole blocks, in chain order GPU → RAM → disk) cut to
/// the `reused` tokens the turn kept: the cut falls on the last tier found.
pub(super) fn reused_by_tier(found: Found, reused: usize) -> ReusedByTier {
    let mut excess = found.total().saturating_sub(reused);
    let mut take = |n: usize| {
        let cut = n.min(excess);
        excess -= cut;
        n - cut
    };
    let redis = take(found.redis);
    let disk = take(found.disk);
    let ram = take(found.ram);
    let gpu = take(found.gpu);
    ReusedByTier {
        gpu: count_u32(gpu),
        ram: count_u32(ram),
        disk: count_u32(disk),
        redis: count_u32(redis),
    }
}

/// One request into the metrics (its reason, if any, by kind).
pub(super) fn record_request(metrics: &Metrics, stats: &ReplyStats, prefill_ms: f64) {
    let by = stats.reused_by_tier.unwrap_or_default();
    let recompute = stats.recompute_reason.as_deref().map(|r| {
        if r.starts_with(REASON_FIRST_TURN) {
            RecomputeReason::FirstTurn
        } else if r.starts_with(REASON_TEMPLATE) {
            RecomputeReason::Template
        } else if r.starts_with(REASON_CONTEXT_FULL) {
            RecomputeReason::ContextFull
        } else if r.starts_with(REASON_EVICTED) {
            RecomputeReason::Evicted
        } else if r.starts_with(REASON_MODEL_RELOADED) {
            RecomputeReason::ModelChanged
        } else {
            RecomputeReason::Other
        }
    });
    let record = RequestRecord {
        prompt_tokens: u64::from(stats.prompt_tokens),
        cached: TierTokens {
            gpu: u64::from(by.gpu),
            ram: u64::from(by.ram),
            disk: u64::from(by.disk),
            redis: u64::from(by.redis),
        },
        prefill_ms,
        ttft_ms: (stats.generated_tokens > 0).then_some(stats.ttft_ms),
        generated_tokens: u64::from(stats.generated_tokens),
        decode_tok_s: (stats.generated_tokens > 1).then_some(stats.decode_tok_s),
        recompute,
    };
    // Only a record with more cached than prompt tokens is refused; ours never has.
    let _ = metrics.record_request(&record);
}

/// The store's name for why generation stopped.
pub(super) fn stop_reason(r: StopReason) -> store::StopReason {
    match r {
        StopReason::EndOfGeneration => store::StopReason::Eog,
        StopReason::MaxTokens => store::StopReason::Length,
        StopReason::StopString => store::StopReason::Stop,
        StopReason::Cancelled => store::StopReason::Cancelled,
    }
}

/// `x`, or 0 when it is not a finite non-negative number (stats must serialise).
pub(super) fn finite(x: f64) -> f64 {
    if x.is_finite() && x >= 0.0 { x } else { 0.0 }
}
