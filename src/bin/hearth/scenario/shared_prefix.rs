//! Scenario 2: N requests that share one long prefix (a system prompt and style guide) with
//! different questions. Cold: every request computes everything (`--no-cache` semantics).
//! Warm: the first request computes the prefix, every later one finds it by content hash.

use std::path::PathBuf;

use anyhow::{Result, bail};
use hearth::engine::{CacheUse, CachedRequest, Sampler, SamplerConfig, generate_cached};
use hearth::kv::{Owner, Tiers};
use hearth::metrics::Metrics;
use hearth::tokenizer::Tokenizer;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::{model, percentile, plot};
use crate::util::print_json;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long, default_value_t = 2000)]
    prefix_tokens: usize,
    #[arg(long, default_value_t = 20)]
    requests: usize,
    #[arg(long, default_value_t = 50)]
    question_tokens: usize,
    /// Tokens generated per request.
    #[arg(long, default_value_t = 4)]
    gen_tokens: usize,
    /// Write an SVG plot of each request's TTFT, cold and warm.
    #[arg(long)]
    plot: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    if args.requests < 2 || args.prefix_tokens == 0 || args.question_tokens == 0 {
        bail!("need at least 2 requests and a non-empty prefix and question");
    }
    let path = model::model_path(args.model.as_deref())?;
    let total = args.prefix_tokens + args.question_tokens + args.gen_tokens;
    let (mut forward, file) = model::load(&path, total, 4)?;
    let tokenizer = Tokenizer::from_gguf(&file)?;
    let n_vocab = forward.config().n_vocab as u32;
    let mut rng = ChaCha8Rng::seed_from_u64(2000);
    let mut ids = |n: usize| -> Vec<u32> { (0..n).map(|_| rng.random_range(3..n_vocab)).collect() };
    let prefix = ids(args.prefix_tokens);
    let prompts: Vec<Vec<u32>> = (0..args.requests)
        .map(|_| [prefix.clone(), ids(args.question_tokens)].concat())
        .collect();
    let metrics = Metrics::new();
    let mut tiers = Tiers::new(1 << 30, None, metrics.clone());
    let mut run = |prompt: &[u32], cache, i: usize| {
        let request = CachedRequest {
            prompt,
            max_tokens: args.gen_tokens,
            cache,
            owner: Owner::Request(i as u64),
            stop_strings: &[],
            cancel: None,
        };
        generate_cached(
            &mut forward,
            &mut tiers,
            &tokenizer,
            Sampler::new(SamplerConfig::greedy()),
            request,
            &mut |_| {},
        )
    };
    let mut cold = Vec::new();
    for (i, p) in prompts.iter().enumerate() {
        cold.push(run(p, CacheUse::Off, i)?.ttft_ms());
    }
    let mut warm = Vec::new();
    let (mut queried, mut hit) = (0usize, 0usize);
    for (i, p) in prompts.iter().enumerate() {
        let r = run(p, CacheUse::ReadWrite, i)?;
        if i > 0 {
            // The first request computes the prefix: warm figures are the ones after it.
            warm.push(r.ttft_ms());
        }
        queried += p.len();
        hit += r.stats.cached_tokens;
    }
    let hit_rate = hit as f64 / queried as f64;
    let (cold50, warm50, warm99) = (
        percentile(&cold, 0.5),
        percentile(&warm, 0.5),
        percentile(&warm, 0.99),
    );
    if let Some(p) = &args.plot {
        plot::lines(
            p,
            "TTFT per request: cold vs warm (shared prefix)",
            "request",
            "TTFT (ms)",
            &[("cold", &cold), ("warm", &warm)],
        )?;
    }
    let report = json!({
        "model": path.display().to_string(),
        "prefix_tokens": args.prefix_tokens,
        "question_tokens": args.question_tokens,
        "requests": args.requests,
        "cold_ttft_ms_p50": cold50,
        "cold_ttft_ms_p99": percentile(&cold, 0.99),
        "warm_ttft_ms_p50": warm50,
        "warm_ttft_ms_p99": warm99,
        "warm_over_cold_p50": warm50 / cold50,
        "hit_rate": hit_rate,
        "prefix_cache_hit_rate_metric": metrics.hit_rate(),
    });
    if args.json {
        return print_json(&report);
    }
    println!(
        "shared prefix: {} tokens, {} requests of {} question tokens",
        args.prefix_tokens, args.requests, args.question_tokens
    );
    println!("{:<8} {:>12} {:>12}", "", "TTFT P50 ms", "TTFT P99 ms");
    println!(
        "{:<8} {:>12.1} {:>12.1}",
        "cold",
        cold50,
        percentile(&cold, 0.99)
    );
    println!("{:<8} {:>12.1} {:>12.1}", "warm", warm50, warm99);
    println!(
        "warm/cold P50 = {:.3}, token hit rate = {:.3}",
        warm50 / cold50,
        hit_rate
    );
    Ok(())
}
