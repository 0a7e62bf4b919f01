//! The typed recording methods of [`Metrics`], and what a finished request reports.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::labels::{
    FromLabel, LowerTier, OwnerKind, OwnerLabel, RecomputeLabel, RecomputeReason, Tier, TierLabel,
    ToLabel, VerifyFailure, VerifyLabel,
};
use super::snapshot::HitRatePoint;
use super::window::Window;
use super::{HIT_RATE_HISTORY, Metrics, MetricsError, SAMPLE_WINDOW};

/// One value per tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PerTier<T> {
    pub gpu: T,
    pub ram: T,
    pub disk: T,
    pub redis: T,
}

impl<T: Copy> PerTier<T> {
    pub fn get(&self, tier: Tier) -> T {
        match tier {
            Tier::Gpu => self.gpu,
            Tier::Ram => self.ram,
            Tier::Disk => self.disk,
            Tier::Redis => self.redis,
        }
    }

    /// Builds one from a value per tier.
    pub fn from_fn(mut f: impl FnMut(Tier) -> T) -> PerTier<T> {
        PerTier {
            gpu: f(Tier::Gpu),
            ram: f(Tier::Ram),
            disk: f(Tier::Disk),
            redis: f(Tier::Redis),
        }
    }
}

/// Token counts per tier, e.g. a request's cached prompt tokens by the tier they came from.
pub type TierTokens = PerTier<u64>;

impl TierTokens {
    /// The sum over tiers, or `None` if it overflows `u64`.
    pub fn total(&self) -> Option<u64> {
        self.gpu
            .checked_add(self.ram)?
            .checked_add(self.disk)?
            .checked_add(self.redis)
    }

    /// The sum over tiers, saturating at `u64::MAX`.
    pub fn saturating_total(&self) -> u64 {
        self.gpu
            .saturating_add(self.ram)
            .saturating_add(self.disk)
            .saturating_add(self.redis)
    }
}

/// One value per lower tier (the tiers blocks spill to and are restored from).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PerLowerTier<T> {
    pub ram: T,
    pub disk: T,
    pub redis: T,
}

impl<T: Copy> PerLowerTier<T> {
    pub fn from_fn(mut f: impl FnMut(LowerTier) -> T) -> PerLowerTier<T> {
        PerLowerTier {
            ram: f(LowerTier::Ram),
            disk: f(LowerTier::Disk),
            redis: f(LowerTier::Redis),
        }
    }
}

/// What one finished request (a chat turn, or an API completion) reports.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestRecord {
    /// Every prompt token, cached or computed.
    pub prompt_tokens: u64,
    /// Prompt tokens reused from the cache, by the tier they were found in (their sum is at
    /// most `prompt_tokens`; the rest were computed by prefill).
    pub cached: TierTokens,
    /// Milliseconds spent computing the non-cached prompt tokens.
    pub prefill_ms: f64,
    /// Milliseconds from request start to the first generated token; `None` if none was.
    pub ttft_ms: Option<f64>,
    pub generated_tokens: u64,
    /// Decode speed, generated tokens per second; `None` if it was not measured.
    pub decode_tok_s: Option<f64>,
    /// Why tokens that could have been reused were computed, if that happened.
    pub recompute: Option<RecomputeReason>,
}

/// The state behind the snapshot that counters cannot hold: recent samples and a running
/// measurement of prefill cost.
#[derive(Debug)]
pub(super) struct Recent {
    pub ttft_ms: Window<f64>,
    pub decode_tok_s: Window<f64>,
    pub hit_rate_history: Window<HitRatePoint>,
    /// Prefill milliseconds and computed tokens of the requests that measured both.
    pub prefill_ms_measured: f64,
    pub prefill_tokens_measured: u64,
}

impl Recent {
    pub fn new() -> Recent {
        Recent {
            ttft_ms: Window::new(SAMPLE_WINDOW),
            decode_tok_s: Window::new(SAMPLE_WINDOW),
            hit_rate_history: Window::new(HIT_RATE_HISTORY),
            prefill_ms_measured: 0.0,
            prefill_tokens_measured: 0,
        }
    }
}

/// A duration or speed worth recording: finite and not negative.
fn measured(v: f64) -> Option<f64> {
    (v.is_finite() && v >= 0.0).then_some(v)
}

fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Metrics {
    /// Records a finished request: prefix-cache queries (its prompt tokens) and hits (its
    /// cached tokens, by tier), request and token counters, the prompt-length, prefill, TTFT
    /// and decode-speed histograms, the recompute reason if any, the samples behind the
    /// snapshot's percentiles, and a point of hit-rate history stamped now.
    ///
    /// A NaN, infinite or negative `prefill_ms`, `ttft_ms` or `decode_tok_s` is ignored (that
    /// one measurement is not recorded; the token counts still are). A record whose cached
    /// tokens exceed its prompt tokens is refused and nothing is recorded.
    pub fn record_request(&self, record: &RequestRecord) -> Result<(), MetricsError> {
        self.record_request_at(record, now_unix_ms())
    }

    /// [`Metrics::record_request`] with the hit-rate history point stamped `unix_ms`.
    pub fn record_request_at(
        &self,
        record: &RequestRecord,
        unix_ms: u64,
    ) -> Result<(), MetricsError> {
        let prompt = record.prompt_tokens;
        let cached = record
            .cached
            .total()
            .filter(|&cached| cached <= prompt)
            .ok_or(MetricsError::CachedExceedsPrompt {
                cached: record.cached.total().unwrap_or(u64::MAX),
                prompt,
            })?;
        let computed = prompt - cached;
        let f = self.families();
        let mut recent = self.recent();

        f.requests.inc();
        f.prompt_tokens.inc_by(prompt);
        f.prefix_cache_queries.inc_by(prompt);
        for &tier in Tier::ALL {
            f.prefix_cache_hits
                .get_or_create(&TierLabel { tier })
                .inc_by(record.cached.get(tier));
        }
        f.prefill_tokens.inc_by(computed);
        f.generation_tokens.inc_by(record.generated_tokens);
        f.request_prompt_tokens.observe(prompt as f64);

        if let Some(ms) = measured(record.prefill_ms) {
            f.prefill_seconds.observe(ms / 1000.0);
            if computed > 0 {
                recent.prefill_ms_measured += ms;
                recent.prefill_tokens_measured =
                    recent.prefill_tokens_measured.saturating_add(computed);
            }
        }
        if let Some(ms) = record.ttft_ms.and_then(measured) {
            f.time_to_first_token_seconds.observe(ms / 1000.0);
            recent.ttft_ms.push(ms);
        }
        if let Some(tok_s) = record.decode_tok_s.and_then(measured) {
            f.decode_tokens_per_second.observe(tok_s);
            recent.decode_tok_s.push(tok_s);
        }
        if let Some(reason) = record.recompute {
            f.kv_recomputes
                .get_or_create(&RecomputeLabel { reason })
                .inc();
        }
        if let Some(hit_rate) = self.hit_rate() {
            recent
                .hit_rate_history
                .push(HitRatePoint { unix_ms, hit_rate });
        }
        Ok(())
    }

    /// Counts a recompute that no [`RequestRecord`] reports (`record_request` already counts
    /// the record's own `recompute`).
    pub fn recompute(&self, reason: RecomputeReason) {
        self.families()
            .kv_recomputes
            .get_or_create(&RecomputeLabel { reason })
            .inc();
    }

    /// Sets what a tier holds now and what it may hold.
    pub fn set_tier(&self, tier: Tier, blocks: u64, bytes: u64, budget_bytes: u64) {
        let f = self.families();
        let label = TierLabel { tier };
        f.kv_blocks.get_or_create(&label).set(gauge_value(blocks));
        f.kv_bytes.get_or_create(&label).set(gauge_value(bytes));
        f.kv_budget_bytes
            .get_or_create(&label)
            .set(gauge_value(budget_bytes));
    }

    /// Sets the KV bytes held by one kind of owner.
    pub fn set_owner_bytes(&self, owner_kind: OwnerKind, bytes: u64) {
        self.families()
            .kv_bytes_by_owner
            .get_or_create(&OwnerLabel { owner_kind })
            .set(gauge_value(bytes));
    }

    pub fn set_pinned_blocks(&self, blocks: u64) {
        self.families().kv_pinned_blocks.set(gauge_value(blocks));
    }

    /// Counts `blocks` dropped from `tier`.
    pub fn eviction(&self, tier: Tier, blocks: u64) {
        self.families()
            .kv_evictions
            .get_or_create(&TierLabel { tier })
            .inc_by(blocks);
    }

    /// Counts `blocks` deleted from `from` by the TTL.
    pub fn expiration(&self, from: LowerTier, blocks: u64) {
        self.families()
            .kv_expirations
            .get_or_create(&FromLabel { from })
            .inc_by(blocks);
    }

    /// Counts `n` failed operations on a tier that is skipped when it fails (Redis).
    pub fn tier_error(&self, tier: Tier, n: u64) {
        self.families()
            .kv_tier_errors
            .get_or_create(&TierLabel { tier })
            .inc_by(n);
    }

    /// Counts `blocks` that were not copied down to `to` (its write queue was full, or the
    /// tier was unreachable).
    pub fn spill_drop(&self, to: LowerTier, blocks: u64) {
        self.families()
            .kv_spill_drops
            .get_or_create(&ToLabel { to })
            .inc_by(blocks);
    }

    /// Counts `blocks` copied down to `to`.
    pub fn spill(&self, to: LowerTier, blocks: u64) {
        self.families()
            .kv_spills
            .get_or_create(&ToLabel { to })
            .inc_by(blocks);
    }

    /// Counts `blocks` (`bytes` in all) brought back up from `from`.
    pub fn restore(&self, from: LowerTier, blocks: u64, bytes: u64) {
        let f = self.families();
        let label = FromLabel { from };
        f.kv_restores.get_or_create(&label).inc_by(blocks);
        f.kv_restored_bytes.get_or_create(&label).inc_by(bytes);
    }

    /// Counts one block rejected when read back.
    pub fn verification_failure(&self, reason: VerifyFailure) {
        self.families()
            .kv_verification_failures
            .get_or_create(&VerifyLabel { reason })
            .inc();
    }

    pub fn set_requests_running(&self, requests: u64) {
        self.families().requests_running.set(gauge_value(requests));
    }

    pub fn set_requests_waiting(&self, requests: u64) {
        self.families().requests_waiting.set(gauge_value(requests));
    }
}
