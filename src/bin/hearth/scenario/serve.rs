//! `hearth bench serve`: decode throughput of the server's engine with 1, 2, 4, 8 … requests
//! at once. In process, without HTTP: the model is loaded as `hearth serve` loads it (same
//! planned options, `--parallel` = the stream count), requests go through the same
//! `EngineHandle` and scheduler (batched decode steps, chunked prefills), and their events are
//! read as the HTTP handlers read them. Each stream count runs a warm-up round first (plans and
//! pipelines for every batch size), then the measured round.
//!
//! Reported per stream count: aggregate decode tok/s (the sum of the streams' own decode
//! rates — they decode side by side), end-to-end tok/s (all generated tokens over the round's
//! wall time, prefills included), mean per-stream decode tok/s, and TTFT (mean and max).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use hearth::chat::planned_options;
use hearth::engine::SamplerConfig;
use hearth::engine::gpu_forward::{GpuForward, GpuForwardOptions};
use hearth::gguf::GgufFile;
use hearth::gpu::GpuContext;
use hearth::kv::{DEFAULT_RAM_BUDGET_BYTES, Tiers};
use hearth::metrics::Metrics;
use hearth::model::ModelConfig;
use hearth::server::worker::{self, EngineHandle, EngineParts, Event, Job};
use hearth::tokenizer::Tokenizer;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::model;
use crate::util::print_json;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: Option<PathBuf>,
    /// Concurrent streams to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    streams: Vec<usize>,
    /// Prompt tokens per request (pseudo-random ids, a different prompt per stream).
    #[arg(long, default_value_t = 32)]
    prompt_tokens: usize,
    /// Tokens generated per request (fewer when the model ends its reply).
    #[arg(long, default_value_t = 64)]
    gen_tokens: usize,
    #[arg(long)]
    json: bool,
}

/// One stream's figures.
struct StreamResult {
    tokens: usize,
    decode_tok_s: f64,
    ttft_ms: f64,
}

pub fn run(args: Args) -> Result<()> {
    if args.streams.is_empty() || args.streams.iter().any(|&n| n == 0 || n > 16) {
        bail!("--streams takes counts from 1 to 16");
    }
    if args.prompt_tokens == 0 || args.gen_tokens < 2 {
        bail!("--prompt-tokens must be ≥ 1 and --gen-tokens ≥ 2");
    }
    let path = model::model_path(args.model.as_deref())?;
    let n_vocab = {
        let file =
            GgufFile::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        ModelConfig::from_gguf(&file)?.n_vocab as u32
    };
    if n_vocab < 4 {
        bail!("the model's vocabulary is too small");
    }
    let gpu = Arc::new(GpuContext::new().context("no usable GPU adapter")?);
    let mut rows = Vec::new();
    for &n in &args.streams {
        let (handle, thread) = start_engine(&path, &gpu, n, args.prompt_tokens + args.gen_tokens)?;
        round(&handle, n, &args, n_vocab, 1)?; // warm-up
        let start = Instant::now();
        let results = round(&handle, n, &args, n_vocab, 2)?;
        let wall_s = start.elapsed().as_secs_f64();
        drop(handle);
        thread.join().map_err(|e| anyhow!(e))?;
        let tokens: usize = results.iter().map(|r| r.tokens).sum();
        let per_stream: Vec<f64> = results.iter().map(|r| r.decode_tok_s).collect();
        let ttft: Vec<f64> = results.iter().map(|r| r.ttft_ms).collect();
        rows.push(json!({
            "streams": n,
            "aggregate_decode_tok_s": per_stream.iter().sum::<f64>(),
            "end_to_end_tok_s": tokens as f64 / wall_s,
            "per_stream_decode_tok_s_mean": per_stream.iter().sum::<f64>() / n as f64,
            "per_stream_decode_tok_s": per_stream,
            "ttft_ms_mean": ttft.iter().sum::<f64>() / n as f64,
            "ttft_ms_max": ttft.iter().copied().fold(0.0, f64::max),
            "generated_tokens": tokens,
            "wall_s": wall_s,
        }));
    }
    let report = json!({
        "model": path.display().to_string(),
        "adapter": gpu.info().name,
        "prompt_tokens": args.prompt_tokens,
        "gen_tokens": args.gen_tokens,
        "in_process": true,
        "rows": rows,
    });
    if args.json {
        return print_json(&report);
    }
    print_table(&report);
    Ok(())
}

fn print_table(report: &Value) {
    println!(
        "serve: {} ({} prompt + {} generated tokens per stream, in process)",
        report["model"].as_str().unwrap_or(""),
        report["prompt_tokens"],
        report["gen_tokens"]
    );
    println!(
        "{:>7} {:>14} {:>14} {:>16} {:>12} {:>12}",
        "streams", "agg decode t/s", "end-to-end t/s", "per-stream t/s", "TTFT ms", "TTFT max ms"
    );
    for r in report["rows"].as_array().into_iter().flatten() {
        let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
        println!(
            "{:>7} {:>14.1} {:>14.1} {:>16.1} {:>12.1} {:>12.1}",
            r["streams"],
            f("aggregate_decode_tok_s"),
            f("end_to_end_tok_s"),
            f("per_stream_decode_tok_s_mean"),
            f("ttft_ms_mean"),
            f("ttft_ms_max"),
        );
    }
}

/// The server's engine thread on `path`, `parallel` requests at once, loaded as `hearth
/// serve` loads it.
fn start_engine(
    path: &std::path::Path,
    gpu: &Arc<GpuContext>,
    parallel: usize,
    tokens: usize,
) -> Result<(EngineHandle, worker::EngineThread)> {
    let file = GgufFile::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let tokenizer = Arc::new(Tokenizer::from_gguf(&file)?);
    let context = tokens.next_multiple_of(16) as u32;
    let (opts, plan) = planned_options(gpu.info(), &file, context, None)?;
    if !plan.fits {
        bail!(
            "the model does not fit: {}",
            plan.problem.unwrap_or_default()
        );
    }
    let opts = GpuForwardOptions {
        max_step_sequences: parallel,
        max_sequences: opts.max_sequences.max(parallel),
        ..opts
    };
    let metrics = Metrics::new();
    let gpu = gpu.clone();
    let engine_metrics = metrics.clone();
    worker::start(parallel, parallel, metrics, move || {
        let forward = GpuForward::load(gpu, &file, opts).map_err(|e| e.to_string())?;
        Ok(EngineParts {
            forward,
            tiers: Tiers::new(DEFAULT_RAM_BUDGET_BYTES, None, engine_metrics),
            tokenizer,
        })
    })
    .map_err(|e| anyhow!(e))
}

/// `n` requests submitted at once, read to the end; their figures. Prompts are pseudo-random
/// ids below 259 (or the vocabulary's size), past the usual special tokens.
fn round(
    handle: &EngineHandle,
    n: usize,
    args: &Args,
    n_vocab: u32,
    seed: u64,
) -> Result<Vec<StreamResult>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed * 1000 + n as u64);
    let mut receivers = Vec::new();
    for _ in 0..n {
        let prompt: Vec<u32> = (0..args.prompt_tokens)
            .map(|_| rng.random_range(3..n_vocab.min(259)))
            .collect();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let job = Job {
            prompt,
            max_tokens: args.gen_tokens,
            sampler: SamplerConfig::greedy(),
            stop: Vec::new(),
            events: tx,
            queued_at: Instant::now(),
        };
        handle
            .submit(job)
            .map_err(|e| anyhow!("the engine refused a request: {e:?}"))?;
        receivers.push(rx);
    }
    let threads: Vec<_> = receivers
        .into_iter()
        .map(|mut rx| {
            std::thread::spawn(move || -> Result<StreamResult> {
                while let Some(event) = rx.blocking_recv() {
                    match event {
                        Event::Text(_) => {}
                        Event::Done(f) => {
                            return Ok(StreamResult {
                                tokens: f.completion_tokens,
                                decode_tok_s: f.decode_tok_s,
                                ttft_ms: f.ttft_ms,
                            });
                        }
                        Event::Failed(e) => bail!("a request failed: {}", e.message),
                    }
                }
                bail!("the engine ended a request without a summary")
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().map_err(|_| anyhow!("a reader panicked"))?)
        .collect()
}
