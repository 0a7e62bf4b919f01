//! The metrics module as its readers see it: the snapshot's numbers, and the Prometheus text
//! read back by an independent parser (`prometheus-parse`, not prometheus-client).

use std::collections::{HashMap, HashSet};

use hearth::metrics::{
    LowerTier, Metrics, MetricsError, OwnerKind, RecomputeReason, RequestRecord, Tier, TierTokens,
    VerifyFailure,
};
use prometheus_parse::{LineInfo, Sample, SampleType, Scrape, Value};

/// Three requests whose figures are easy to check by hand:
/// queries 500, hits 300 (gpu 220, ram 30, disk 50), prefill 400 ms for 200 computed tokens.
fn three_requests() -> [RequestRecord; 3] {
    [
        RequestRecord {
            prompt_tokens: 100,
            cached: TierTokens::default(),
            prefill_ms: 200.0,
            ttft_ms: Some(250.0),
            generated_tokens: 10,
            decode_tok_s: Some(20.0),
            recompute: Some(RecomputeReason::FirstTurn),
        },
        RequestRecord {
            prompt_tokens: 150,
            cached: TierTokens {
                gpu: 100,
                ram: 0,
                disk: 0,
                redis: 0,
            },
            prefill_ms: 100.0,
            ttft_ms: Some(120.0),
            generated_tokens: 20,
            decode_tok_s: Some(40.0),
            recompute: None,
        },
        RequestRecord {
            prompt_tokens: 250,
            cached: TierTokens {
                gpu: 120,
                ram: 30,
                disk: 50,
                redis: 0,
            },
            prefill_ms: 100.0,
            ttft_ms: Some(110.0),
            generated_tokens: 30,
            decode_tok_s: Some(30.0),
            recompute: None,
        },
    ]
}

/// The three requests plus one of every KV event.
fn recorded() -> Metrics {
    let metrics = Metrics::new();
    for (i, record) in three_requests().iter().enumerate() {
        metrics
            .record_request_at(record, 1_000 + i as u64)
            .expect("a valid record");
    }
    metrics.set_tier(Tier::Gpu, 64, 64 << 20, 256 << 20);
    metrics.set_tier(Tier::Ram, 10, 10 << 20, 1 << 30);
    metrics.set_owner_bytes(OwnerKind::Document, 5_000);
    metrics.set_owner_bytes(OwnerKind::Shared, 7_000);
    metrics.set_pinned_blocks(12);
    metrics.eviction(Tier::Gpu, 4);
    metrics.eviction(Tier::Gpu, 3);
    metrics.spill(LowerTier::Disk, 9);
    metrics.restore(LowerTier::Ram, 2, 2_048);
    metrics.restore(LowerTier::Ram, 1, 1_024);
    metrics.verification_failure(VerifyFailure::Checksum);
    metrics.recompute(RecomputeReason::Template);
    metrics.set_requests_running(2);
    metrics.set_requests_waiting(5);
    metrics
}

#[test]
fn snapshot_numbers_are_exact() {
    let s = recorded().snapshot();
    assert_eq!(s.requests, 3);
    assert_eq!(s.prefix_cache_queries, 500);
    assert_eq!(
        (s.prefix_cache_hits.gpu, s.prefix_cache_hits.ram),
        (220, 30)
    );
    assert_eq!(s.prefix_cache_hits.disk, 50);
    assert_eq!(s.hit_rate, Some(0.6));
    assert_eq!(s.prompt_tokens, 500);
    assert_eq!(s.prefill_tokens, 200);
    assert_eq!(s.generation_tokens, 60);
    // 400 ms of prefill for 200 computed tokens: 2 ms per token, 300 reused tokens saved 600 ms.
    assert_eq!(s.prefill_ms_per_token, Some(2.0));
    assert_eq!(s.time_saved_ms, Some(600.0));
    // Nearest rank over [250, 120, 110] ms and [20, 40, 30] tok/s.
    assert_eq!((s.ttft_ms.p50, s.ttft_ms.p99), (Some(120.0), Some(250.0)));
    assert_eq!(s.ttft_ms.samples, 3);
    assert_eq!(
        (s.decode_tok_s.p50, s.decode_tok_s.p99),
        (Some(30.0), Some(40.0))
    );
    let history: Vec<_> = s
        .hit_rate_history
        .iter()
        .map(|p| (p.unix_ms, p.hit_rate))
        .collect();
    assert_eq!(history, [(1_000, 0.0), (1_001, 0.4), (1_002, 0.6)]);

    assert_eq!(s.tiers.gpu.blocks, 64);
    assert_eq!(s.tiers.gpu.budget_bytes, 256 << 20);
    assert_eq!(s.tiers.ram.bytes, 10 << 20);
    assert_eq!(s.tiers.disk.blocks, 0);
    assert_eq!(
        (s.owner_bytes.document, s.owner_bytes.shared),
        (5_000, 7_000)
    );
    assert_eq!(s.owner_bytes.conversation, 0);
    assert_eq!(s.pinned_blocks, 12);
    assert_eq!((s.evictions.gpu, s.evictions.ram), (7, 0));
    assert_eq!((s.spills.disk, s.spills.ram), (9, 0));
    assert_eq!((s.restores.ram, s.restored_bytes.ram), (3, 3_072));
    assert_eq!(s.verification_failures.checksum, 1);
    assert_eq!(s.verification_failures.decode, 0);
    assert_eq!((s.recomputes.first_turn, s.recomputes.template), (1, 1));
    assert_eq!(s.recomputes.evicted, 0);
    assert_eq!((s.requests_running, s.requests_waiting), (2, 5));
}

#[test]
fn snapshot_serializes_in_camel_case() {
    let json = serde_json::to_value(recorded().snapshot()).expect("serializable");
    assert_eq!(json["hitRate"], 0.6);
    assert_eq!(json["timeSavedMs"], 600.0);
    assert_eq!(json["prefixCacheHits"]["ram"], 30);
    assert_eq!(json["tiers"]["gpu"]["budgetBytes"], 256u64 << 20);
    assert_eq!(json["ttftMs"]["p99"], 250.0);
    assert_eq!(json["recomputes"]["firstTurn"], 1);
    assert_eq!(json["hitRateHistory"][2]["unixMs"], 1_002);
    assert_eq!(json["restoredBytes"]["ram"], 3_072);
}

#[test]
fn empty_metrics_have_no_rates_or_percentiles() {
    let s = Metrics::new().snapshot();
    assert_eq!(s.hit_rate, None);
    assert_eq!(s.time_saved_ms, None);
    assert_eq!((s.ttft_ms.p50, s.decode_tok_s.p99), (None, None));
    assert!(s.hit_rate_history.is_empty());
}

/// Scrapes the text with prometheus-parse and also keeps its line-level view of the
/// `# HELP` / `# TYPE` declarations.
struct Parsed {
    scrape: Scrape,
    types: HashMap<String, SampleType>,
}

fn parse(text: &str) -> Parsed {
    let lines = || text.lines().map(|l| Ok(l.to_owned()));
    let scrape = Scrape::parse(lines()).expect("prometheus-parse reads the text");
    let mut types = HashMap::new();
    for line in text.lines() {
        if let LineInfo::Type {
            metric_name,
            metric_alias,
            sample_type,
        } = LineInfo::parse(line)
        {
            // For histograms prometheus-parse reports `<name>_bucket` with `<name>` as alias.
            types.insert(metric_alias.unwrap_or(metric_name), sample_type);
        }
    }
    Parsed { scrape, types }
}

impl Parsed {
    fn samples<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.scrape.samples.iter().filter(move |s| s.metric == name)
    }

    /// The value of the one sample `name{label=value}` (no label: `label` empty).
    fn value(&self, name: &str, label: &str, value: &str) -> f64 {
        let found: Vec<_> = self
            .samples(name)
            .filter(|s| label.is_empty() || s.labels.get(label) == Some(value))
            .collect();
        assert_eq!(found.len(), 1, "{name}{{{label}={value}}}: {found:?}");
        match found[0].value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            ref other => panic!("{name} is not a plain sample: {other:?}"),
        }
    }
}

#[test]
fn prometheus_text_reads_back_with_an_independent_parser() {
    let text = recorded().encode_prometheus();
    let p = parse(&text);

    assert_eq!(p.value("hearth_prefix_cache_queries_total", "", ""), 500.0);
    let hits = "hearth_prefix_cache_hits_total";
    assert_eq!(p.value(hits, "tier", "gpu"), 220.0);
    assert_eq!(p.value(hits, "tier", "ram"), 30.0);
    assert_eq!(p.value(hits, "tier", "disk"), 50.0);
    assert_eq!(p.value("hearth_requests_total", "", ""), 3.0);
    assert_eq!(p.value("hearth_prefill_tokens_total", "", ""), 200.0);
    assert_eq!(p.value("hearth_generation_tokens_total", "", ""), 60.0);
    assert_eq!(p.value("hearth_kv_blocks", "tier", "gpu"), 64.0);
    assert_eq!(
        p.value("hearth_kv_budget_bytes", "tier", "ram"),
        (1u64 << 30) as f64
    );
    assert_eq!(
        p.value("hearth_kv_bytes_by_owner", "owner_kind", "document"),
        5_000.0
    );
    assert_eq!(p.value("hearth_kv_pinned_blocks", "", ""), 12.0);
    assert_eq!(p.value("hearth_kv_evictions_total", "tier", "gpu"), 7.0);
    assert_eq!(p.value("hearth_kv_spills_total", "to", "disk"), 9.0);
    assert_eq!(p.value("hearth_kv_restores_total", "from", "ram"), 3.0);
    assert_eq!(
        p.value("hearth_kv_restored_bytes_total", "from", "ram"),
        3_072.0
    );
    assert_eq!(
        p.value(
            "hearth_kv_verification_failures_total",
            "reason",
            "checksum"
        ),
        1.0
    );
    let recomputes = "hearth_kv_recomputes_total";
    assert_eq!(p.value(recomputes, "reason", "first_turn"), 1.0);
    assert_eq!(p.value(recomputes, "reason", "context_full"), 0.0);
    assert_eq!(p.value("hearth_requests_waiting", "", ""), 5.0);

    // Types as declared.
    assert_eq!(
        p.types["hearth_prefix_cache_hits_total"],
        SampleType::Counter
    );
    assert_eq!(p.types["hearth_kv_bytes"], SampleType::Gauge);
    assert_eq!(
        p.types["hearth_time_to_first_token_seconds"],
        SampleType::Histogram
    );
    // Plain Prometheus text, not OpenMetrics.
    assert!(!text.contains("# EOF"));
}

#[test]
fn histograms_are_consistent() {
    let p = parse(&recorded().encode_prometheus());
    // TTFT samples 0.25, 0.12 and 0.11 s.
    let name = "hearth_time_to_first_token_seconds";
    let buckets = match &p.samples(name).next().expect("a TTFT histogram").value {
        Value::Histogram(buckets) => buckets.clone(),
        other => panic!("{name} parsed as {other:?}"),
    };
    assert!(buckets.windows(2).all(|w| w[0].less_than < w[1].less_than));
    assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count));
    let at = |le: f64| buckets.iter().find(|b| b.less_than == le).map(|b| b.count);
    assert_eq!(at(0.1), Some(0.0));
    assert_eq!(at(0.15), Some(2.0));
    assert_eq!(at(0.25), Some(3.0));
    assert_eq!(at(f64::INFINITY), Some(3.0));
    assert_eq!(p.value(&format!("{name}_count"), "", ""), 3.0);
    let sum = p.value(&format!("{name}_sum"), "", "");
    assert!((sum - 0.48).abs() < 1e-9, "{sum}");

    // Every histogram: +Inf bucket == _count.
    for (family, ty) in &p.types {
        if *ty != SampleType::Histogram {
            continue;
        }
        let Some(Value::Histogram(buckets)) = p.samples(family).next().map(|s| &s.value) else {
            panic!("{family} has no buckets");
        };
        let inf = buckets.last().expect("buckets");
        assert_eq!(inf.less_than, f64::INFINITY, "{family}");
        assert_eq!(inf.count, p.value(&format!("{family}_count"), "", ""));
    }
    assert_eq!(p.value("hearth_request_prompt_tokens_sum", "", ""), 500.0);
    assert_eq!(p.value("hearth_prefill_seconds_count", "", ""), 3.0);
}

/// Every exported metric, as the docs list them.
const METRIC_FAMILIES: &[&str] = &[
    "hearth_prefix_cache_queries_total",
    "hearth_prefix_cache_hits_total",
    "hearth_requests_total",
    "hearth_prompt_tokens_total",
    "hearth_generation_tokens_total",
    "hearth_prefill_tokens_total",
    "hearth_kv_blocks",
    "hearth_kv_bytes",
    "hearth_kv_budget_bytes",
    "hearth_kv_bytes_by_owner",
    "hearth_kv_pinned_blocks",
    "hearth_kv_evictions_total",
    "hearth_kv_expirations_total",
    "hearth_kv_spills_total",
    "hearth_kv_spill_drops_total",
    "hearth_kv_tier_errors_total",
    "hearth_kv_restores_total",
    "hearth_kv_restored_bytes_total",
    "hearth_kv_verification_failures_total",
    "hearth_kv_recomputes_total",
    "hearth_time_to_first_token_seconds",
    "hearth_prefill_seconds",
    "hearth_decode_tokens_per_second",
    "hearth_request_prompt_tokens",
    "hearth_requests_running",
    "hearth_requests_waiting",
];

#[test]
fn every_metric_has_help_and_type_and_is_documented() {
    // Fresh metrics: every labelled series must already be there, at zero.
    let p = parse(&Metrics::new().encode_prometheus());
    let declared: HashSet<&str> = p.types.keys().map(String::as_str).collect();
    assert_eq!(declared, METRIC_FAMILIES.iter().copied().collect());
    let docs = include_str!("../docs/metrics.md");
    for family in METRIC_FAMILIES {
        assert!(p.scrape.docs.contains_key(*family), "{family} has no HELP");
        assert!(docs.contains(family), "{family} is not in docs/metrics.md");
    }
    for sample in &p.scrape.samples {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                let base = sample.metric.strip_suffix(suffix)?;
                (p.types.get(base) == Some(&SampleType::Histogram)).then_some(base)
            })
            .unwrap_or(&sample.metric);
        assert!(declared.contains(family), "{} is undeclared", sample.metric);
    }
    assert_eq!(p.samples("hearth_kv_recomputes_total").count(), 7);
    assert_eq!(p.samples("hearth_kv_bytes_by_owner").count(), 4);
    assert_eq!(p.samples("hearth_kv_spills_total").count(), 3);
    assert_eq!(p.samples("hearth_kv_tier_errors_total").count(), 4);
}

#[test]
fn openmetrics_text_ends_with_eof_and_still_parses() {
    let text = recorded().encode_openmetrics();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses");
    let ram_hits = scrape.samples.iter().find(|s| {
        s.metric == "hearth_prefix_cache_hits_total" && s.labels.get("tier") == Some("ram")
    });
    // OpenMetrics declares the counter as `hearth_prefix_cache_hits`, so the parser reports
    // its samples untyped; the value is the same.
    assert_eq!(ram_hits.map(|s| &s.value), Some(&Value::Untyped(30.0)));
}

#[test]
fn non_finite_and_negative_measurements_are_ignored() {
    let metrics = Metrics::new();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0] {
        let record = RequestRecord {
            prompt_tokens: 10,
            cached: TierTokens {
                gpu: 4,
                ram: 0,
                disk: 0,
                redis: 0,
            },
            prefill_ms: bad,
            ttft_ms: Some(bad),
            generated_tokens: 1,
            decode_tok_s: Some(bad),
            recompute: None,
        };
        metrics
            .record_request(&record)
            .expect("token counts are valid");
    }
    let s = metrics.snapshot();
    // The token counts are still counted ...
    assert_eq!(
        (s.requests, s.prefix_cache_queries, s.prefill_tokens),
        (4, 40, 24)
    );
    // ... the measurements are not.
    assert_eq!((s.ttft_ms.samples, s.decode_tok_s.samples), (0, 0));
    assert_eq!(s.prefill_ms_per_token, None);
    assert_eq!(s.time_saved_ms, None);
    let p = parse(&metrics.encode_prometheus());
    for family in [
        "hearth_time_to_first_token_seconds",
        "hearth_prefill_seconds",
        "hearth_decode_tokens_per_second",
    ] {
        assert_eq!(p.value(&format!("{family}_count"), "", ""), 0.0, "{family}");
        assert_eq!(p.value(&format!("{family}_sum"), "", ""), 0.0, "{family}");
    }
}

#[test]
fn more_cached_than_prompt_tokens_is_refused_whole() {
    let metrics = Metrics::new();
    let record = RequestRecord {
        prompt_tokens: 10,
        cached: TierTokens {
            gpu: 8,
            ram: 0,
            disk: 3,
            redis: 0,
        },
        ttft_ms: Some(5.0),
        ..RequestRecord::default()
    };
    assert_eq!(
        metrics.record_request(&record),
        Err(MetricsError::CachedExceedsPrompt {
            cached: 11,
            prompt: 10
        })
    );
    let overflowing = RequestRecord {
        prompt_tokens: u64::MAX,
        cached: TierTokens {
            gpu: u64::MAX,
            ram: 1,
            disk: 0,
            redis: 0,
        },
        ..RequestRecord::default()
    };
    assert!(metrics.record_request(&overflowing).is_err());
    let s = metrics.snapshot();
    assert_eq!(
        (s.requests, s.prefix_cache_queries, s.ttft_ms.samples),
        (0, 0, 0)
    );
    assert!(s.hit_rate_history.is_empty());
}

#[test]
fn windows_keep_the_most_recent_samples() {
    let metrics = Metrics::new();
    for i in 1..=1_005u64 {
        let record = RequestRecord {
            prompt_tokens: 2,
            cached: TierTokens {
                gpu: i % 2,
                ram: 0,
                disk: 0,
                redis: 0,
            },
            ttft_ms: Some(i as f64),
            ..RequestRecord::default()
        };
        metrics.record_request_at(&record, i).expect("valid");
    }
    let s = metrics.snapshot();
    // Samples 6..=1005 remain: nearest ranks 500 and 990.
    assert_eq!(s.ttft_ms.samples, 1_000);
    assert_eq!((s.ttft_ms.p50, s.ttft_ms.p99), (Some(505.0), Some(995.0)));
    assert_eq!(s.hit_rate_history.len(), 200);
    assert_eq!(s.hit_rate_history[0].unix_ms, 806);
    let last = s.hit_rate_history[199];
    assert_eq!(last.unix_ms, 1_005);
    // 503 odd requests hit one token each, out of 2,010 queried.
    assert_eq!(last.hit_rate, 503.0 / 2_010.0);
    assert_eq!(s.hit_rate, Some(last.hit_rate));
}

#[test]
fn concurrent_recording_sums_exactly() {
    let metrics = Metrics::new();
    let threads = 8u64;
    let per_thread = 500u64;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let metrics = metrics.clone();
            scope.spawn(move || {
                for _ in 0..per_thread {
                    let record = RequestRecord {
                        prompt_tokens: 10,
                        cached: TierTokens {
                            gpu: 3,
                            ram: 1,
                            disk: t % 2,
                            redis: 0,
                        },
                        prefill_ms: 1.0,
                        ttft_ms: Some(2.0),
                        generated_tokens: 5,
                        decode_tok_s: Some(50.0),
                        recompute: Some(RecomputeReason::Evicted),
                    };
                    metrics.record_request(&record).expect("valid");
                    metrics.eviction(Tier::Ram, 2);
                    metrics.restore(LowerTier::Disk, 1, 100);
                    metrics.verification_failure(VerifyFailure::Truncated);
                }
            });
        }
    });
    let n = threads * per_thread;
    let s = metrics.snapshot();
    assert_eq!(s.requests, n);
    assert_eq!(s.prefix_cache_queries, 10 * n);
    assert_eq!(s.prefix_cache_hits.gpu, 3 * n);
    assert_eq!(s.prefix_cache_hits.ram, n);
    assert_eq!(s.prefix_cache_hits.disk, n / 2);
    assert_eq!(s.generation_tokens, 5 * n);
    assert_eq!(s.prefill_tokens, 10 * n - 4 * n - n / 2);
    assert_eq!(s.evictions.ram, 2 * n);
    assert_eq!((s.restores.disk, s.restored_bytes.disk), (n, 100 * n));
    assert_eq!(s.verification_failures.truncated, n);
    assert_eq!(s.recomputes.evicted, n);
    assert_eq!(s.ttft_ms.samples, 1_000);
    assert_eq!(s.hit_rate_history.len(), 200);
    let p = parse(&metrics.encode_prometheus());
    assert_eq!(
        p.value("hearth_prefix_cache_hits_total", "tier", "gpu"),
        (3 * n) as f64
    );
    assert_eq!(
        p.value("hearth_time_to_first_token_seconds_count", "", ""),
        n as f64
    );
}

#[test]
fn clones_share_one_set_of_values() {
    let metrics = Metrics::new();
    let reader = metrics.clone();
    metrics.spill(LowerTier::Ram, 3);
    assert_eq!(reader.snapshot().spills.ram, 3);
    assert_eq!(
        LowerTier::try_from(Tier::Gpu),
        Err(MetricsError::NotALowerTier(Tier::Gpu))
    );
}
