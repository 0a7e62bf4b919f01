//! Counters, gauges and histograms of the KV cache and of requests; Prometheus text for
//! `/metrics`; the [`MetricsSnapshot`] the desktop app's cache panel shows.
//!
//! A leaf module: it imports nothing else from this crate. The KV cache, the chat engine and
//! the server record into one shared [`Metrics`] (a `Clone` handle over an `Arc`, safe to use
//! from any thread); readers call [`Metrics::encode_prometheus`] or [`Metrics::snapshot`].
//!
//! Token counters follow vLLM's `prefix_cache_queries`/`prefix_cache_hits`: both count tokens,
//! so the hit rate over a period is a ratio of counter rates. Every metric is listed, with its
//! unit and labels, in `docs/metrics.md`.
//!
//! Bad inputs never panic: NaN, infinite or negative durations and speeds are dropped (nothing
//! is counted for them), and a request claiming more cached than prompt tokens is refused whole.

mod families;
mod labels;
mod record;
mod snapshot;
mod window;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prometheus_client::registry::Registry;

pub use families::{
    DECODE_TOK_S_BUCKETS, METRIC_PREFIX, PREFILL_BUCKETS, PROMPT_TOKEN_BUCKETS, TTFT_BUCKETS,
};
pub use labels::{LowerTier, OwnerKind, RecomputeReason, Tier, VerifyFailure};
pub use record::{PerLowerTier, PerTier, RequestRecord, TierTokens};
pub use snapshot::{
    HitRatePoint, MetricsSnapshot, OwnerBytes, Percentiles, RecomputeCounts, TierUsage,
    VerifyFailureCounts,
};

use families::Families;
use record::Recent;

/// The `Content-Type` to serve [`Metrics::encode_prometheus`] with: the Prometheus text
/// exposition format, version 0.0.4 (what Prometheus scrapes when it negotiates plain text).
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `Content-Type` to serve [`Metrics::encode_openmetrics`] with.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How many recent samples the TTFT and decode-speed percentiles of the snapshot cover.
pub const SAMPLE_WINDOW: usize = 1000;

/// How many points of hit-rate history the snapshot keeps (one per recorded request).
pub const HIT_RATE_HISTORY: usize = 200;

/// What the metrics refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    #[error("a request cannot have more cached tokens ({cached}) than prompt tokens ({prompt})")]
    CachedExceedsPrompt { cached: u64, prompt: u64 },
    #[error(
        "tier `{0}` is not a lower tier: only ram, disk and redis take spills and give restores"
    )]
    NotALowerTier(Tier),
}

/// The shared metrics of one Hearth process. Cloning is cheap and shares the same values.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    families: Families,
    /// The sliding windows and running measurements behind the snapshot; `record_request`
    /// also updates its counters under this lock, so each history point is consistent.
    recent: Mutex<Recent>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix(METRIC_PREFIX);
        let families = Families::register(&mut registry);
        Metrics {
            inner: Arc::new(Inner {
                registry,
                families,
                recent: Mutex::new(Recent::new()),
            }),
        }
    }

    /// Every metric in the Prometheus text exposition format 0.0.4 (serve it with
    /// [`PROMETHEUS_CONTENT_TYPE`]): `# HELP` and `# TYPE` before each metric, counters
    /// suffixed `_total`, histograms as cumulative `_bucket{le=..}` lines (ending with
    /// `le="+Inf"`), `_sum` and `_count`. No `# EOF` line: that marker belongs to OpenMetrics
    /// (see [`Metrics::encode_openmetrics`]); Prometheus and plain-text parsers read this
    /// format as it is.
    pub fn encode_prometheus(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail, and our label values are plain strings.
        if prometheus_client::encoding::prometheus_text::encode(&mut text, &self.inner.registry)
            .is_err()
        {
            text.clear();
        }
        text
    }

    /// Every metric in the OpenMetrics 1.0 text format (serve it with
    /// [`OPENMETRICS_CONTENT_TYPE`]). It differs from [`Metrics::encode_prometheus`] in that
    /// counters are declared without their `_total` suffix and the text ends with `# EOF`.
    pub fn encode_openmetrics(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.inner.registry).is_err() {
            text.clear();
        }
        text
    }

    fn families(&self) -> &Families {
        &self.inner.families
    }

    /// The recent-samples state; a panic elsewhere while it was held leaves plain numbers
    /// behind, still usable, so a poisoned lock is taken over rather than propagated.
    fn recent(&self) -> MutexGuard<'_, Recent> {
        self.inner
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}
