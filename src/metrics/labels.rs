//! Label values (the enums callers pass) and the label sets of the metric families.
//!
//! Each enum's `as_str()` is the exact label value exported to Prometheus; `ALL` lists every
//! variant so the families can be filled with zeros up front (a scrape shows every series from
//! the start, and `rate()` has a baseline).

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use serde::Serialize;
use std::fmt::Write;

use super::MetricsError;

/// Declares a label-value enum with its `as_str()`, `ALL` and Prometheus encoding.
macro_rules! label_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The label value exported to Prometheus.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                encoder.write_str(self.as_str())
            }
        }
    };
}

label_enum! {
    /// Where KV blocks live: GPU memory, host RAM, the on-disk store, or a shared Redis.
    Tier {
        Gpu => "gpu",
        Ram => "ram",
        Disk => "disk",
        Redis => "redis",
    }
}

label_enum! {
    /// A tier blocks can be copied down to (spilled) or brought back up from (restored):
    /// every tier but the GPU.
    LowerTier {
        Ram => "ram",
        Disk => "disk",
        Redis => "redis",
    }
}

label_enum! {
    /// Who holds KV bytes.
    OwnerKind {
        /// A conversation's own turns.
        Conversation => "conversation",
        /// An attached document's `[system][document]` prefix.
        Document => "document",
        /// Prefix blocks referenced by several owners (e.g. a shared system prompt).
        Shared => "shared",
        /// An anonymous request (server mode).
        Request => "request",
    }
}

label_enum! {
    /// Why a turn had to prefill tokens it could otherwise have reused.
    RecomputeReason {
        /// Nothing to reuse yet: the conversation's first turn.
        FirstTurn => "first_turn",
        /// The chat template rewrote earlier history, so the old tokens no longer prefix the new prompt.
        Template => "template",
        /// The context window was full and turns were dropped.
        ContextFull => "context_full",
        /// The cached blocks had been evicted.
        Evicted => "evicted",
        /// The model (or a setting in its fingerprint) changed.
        ModelChanged => "model_changed",
        /// Caching is off for this request.
        NoCache => "no_cache",
        /// Any other reason.
        Other => "other",
    }
}

label_enum! {
    /// Why a block read back from RAM, disk or Redis was rejected.
    VerifyFailure {
        /// Its content checksum did not match.
        Checksum => "checksum",
        /// It was shorter than its header says.
        Truncated => "truncated",
        /// It was written for another model fingerprint.
        Fingerprint => "fingerprint",
        /// It could not be decoded.
        Decode => "decode",
    }
}

impl From<LowerTier> for Tier {
    fn from(tier: LowerTier) -> Tier {
        match tier {
            LowerTier::Ram => Tier::Ram,
            LowerTier::Disk => Tier::Disk,
            LowerTier::Redis => Tier::Redis,
        }
    }
}

impl TryFrom<Tier> for LowerTier {
    type Error = MetricsError;

    fn try_from(tier: Tier) -> Result<LowerTier, MetricsError> {
        match tier {
            Tier::Gpu => Err(MetricsError::NotALowerTier(tier)),
            Tier::Ram => Ok(LowerTier::Ram),
            Tier::Disk => Ok(LowerTier::Disk),
            Tier::Redis => Ok(LowerTier::Redis),
        }
    }
}

/// `{tier="gpu|ram|disk|redis"}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct TierLabel {
    pub tier: Tier,
}

/// `{to="ram|disk|redis"}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct ToLabel {
    pub to: LowerTier,
}

/// `{from="ram|disk|redis"}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct FromLabel {
    pub from: LowerTier,
}

/// `{owner_kind="conversation|document|shared|request"}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct OwnerLabel {
    pub owner_kind: OwnerKind,
}

/// `{reason="first_turn|..."}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct RecomputeLabel {
    pub reason: RecomputeReason,
}

/// `{reason="checksum|..."}`
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct VerifyLabel {
    pub reason: VerifyFailure,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_the_documented_strings() {
        let tiers: Vec<_> = Tier::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(tiers, ["gpu", "ram", "disk", "redis"]);
        let reasons: Vec<_> = RecomputeReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "first_turn",
                "template",
                "context_full",
                "evicted",
                "model_changed",
                "no_cache",
                "other"
            ]
        );
        assert_eq!(OwnerKind::Shared.to_string(), "shared");
        assert_eq!(VerifyFailure::Fingerprint.as_str(), "fingerprint");
    }

    #[test]
    fn every_tier_but_the_gpu_is_a_lower_tier() {
        assert_eq!(LowerTier::try_from(Tier::Disk).ok(), Some(LowerTier::Disk));
        assert_eq!(LowerTier::try_from(Tier::Ram).ok(), Some(LowerTier::Ram));
        assert_eq!(
            LowerTier::try_from(Tier::Redis).ok(),
            Some(LowerTier::Redis)
        );
        assert!(matches!(
            LowerTier::try_from(Tier::Gpu),
            Err(MetricsError::NotALowerTier(Tier::Gpu))
        ));
        assert_eq!(Tier::from(LowerTier::Ram), Tier::Ram);
    }
}
