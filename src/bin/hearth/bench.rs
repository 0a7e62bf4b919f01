//! `hearth bench`: prompt processing (pp) and token generation (tg) speed, in the spirit of
//! llama-bench. pp prefills N pseudo-random tokens into an empty cache; tg then decodes M tokens
//! greedily one step at a time after that prompt (as a chat reply would). With `--compare-cpu`
//! the CPU reference runs the same work in the same process, and the ratios are reported.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use hearth::gguf::GgufFile;
use hearth::gpu::GpuContext;
use hearth::model::ModelConfig;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::backend::{Backend, BackendOptions, gpu_for};
use super::scenario::Scenario;
use super::util::{Device, KvType, open_model, print_json};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// A cache scenario instead of the speed measurement.
    #[command(subcommand)]
    scenario: Option<Scenario>,
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long, default_value_t = 512)]
    prompt_tokens: usize,
    #[arg(long, default_value_t = 128)]
    gen_tokens: usize,
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// The GPU's KV cache type.
    #[arg(long, value_enum, default_value_t = KvType::F16)]
    kv_type: KvType,
    #[arg(long, value_enum, default_value_t = Device::Gpu)]
    device: Device,
    /// Also run the CPU reference and report GPU/CPU ratios measured in this run.
    #[arg(long)]
    compare_cpu: bool,
    /// Tokens per prefill step on the GPU.
    #[arg(long, default_value_t = 512)]
    batch: usize,
    #[arg(long)]
    json: bool,
    /// Also time every kernel with timestamp queries (GPU only) and report the time per
    /// kernel family per token, for the prefill and for decode steps (JSON: "profile").
    #[arg(long)]
    profile: bool,
}

/// Mean and standard deviation of one measure over the repetitions.
struct Stat {
    mean: f64,
    std: f64,
}

fn stat(xs: &[f64]) -> Stat {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    Stat {
        mean,
        std: var.sqrt(),
    }
}

pub fn run(args: Args) -> Result<()> {
    if let Some(scenario) = args.scenario {
        return scenario.run();
    }
    let Some(model) = &args.model else {
        bail!("--model is required (or name a scenario: conversation, shared-prefix)");
    };
    if args.prompt_tokens == 0 || args.reps == 0 {
        bail!("--prompt-tokens and --reps must be at least 1");
    }
    let file = open_model(model)?;
    let config = ModelConfig::from_gguf(&file)?;
    let gpu = gpu_for(args.device)?;
    let mut report = measure(&args, &file, &config, args.device, gpu.as_ref())?;
    if args.compare_cpu && args.device == Device::Gpu {
        let cpu = measure(&args, &file, &config, Device::Cpu, None)?;
        let ratio =
            |r: &Value, k: &str| r[k].as_f64().unwrap_or(0.0) / cpu[k].as_f64().unwrap_or(1.0);
        report["ratio_pp_vs_cpu"] = json!(ratio(&report, "pp_tok_s"));
        report["ratio_tg_vs_cpu"] = json!(ratio(&report, "tg_tok_s"));
        report["cpu"] = cpu;
    }
    report["peak_rss_bytes"] = json!(peak_rss_bytes());
    if args.json {
        return print_json(&report);
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    if let Some(profile) = report.get("profile").filter(|p| p.is_object()) {
        match profile.get("unavailable") {
            Some(why) => println!("\nno kernel profile: {}", why.as_str().unwrap_or("?")),
            None => super::bench_profile::print(profile),
        }
    }
    Ok(())
}

fn measure(
    args: &Args,
    file: &GgufFile,
    config: &ModelConfig,
    device: Device,
    gpu: Option<&std::sync::Arc<GpuContext>>,
) -> Result<Value> {
    let total = args.prompt_tokens + args.gen_tokens;
    let load_start = Instant::now();
    let options = BackendOptions {
        max_tokens: total,
        max_batch: args.batch,
        kv: args.kv_type,
        all_logits: false,
    };
    let mut backend = Backend::load(device, file, gpu, options)?;
    let load_s = load_start.elapsed().as_secs_f64();
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let low = 3.min(config.n_vocab as u32 - 1);
    let prompt: Vec<u32> = (0..args.prompt_tokens)
        .map(|_| rng.random_range(low..config.n_vocab as u32))
        .collect();
    let label = match device {
        Device::Gpu => "gpu",
        Device::Cpu => "cpu",
    };
    let bar = ProgressBar::new((args.reps * total) as u64).with_style(
        ProgressStyle::with_template(
            "{prefix} {bar:30} {pos}/{len} tokens, {elapsed} ({eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(format!("bench {label}"));
    let (mut pp, mut tg) = (Vec::new(), Vec::new());
    // Compute dispatches per decoded token (GPU only), from the GpuContext counters.
    let mut dispatches_per_token = None;
    for _ in 0..args.reps {
        backend.reset();
        let start = Instant::now();
        let mut next = backend.greedy_next(&prompt)?;
        pp.push(args.prompt_tokens as f64 / start.elapsed().as_secs_f64());
        bar.inc(args.prompt_tokens as u64);
        let counted = gpu.map(|g| g.counters().snapshot());
        let start = Instant::now();
        for _ in 0..args.gen_tokens {
            next = backend.greedy_next(&[next])?;
            bar.inc(1);
        }
        if args.gen_tokens > 0 {
            tg.push(args.gen_tokens as f64 / start.elapsed().as_secs_f64());
            if let (Some(g), Some(before)) = (gpu, counted) {
                let d = g.counters().snapshot() - before;
                dispatches_per_token = Some(d.dispatches as f64 / args.gen_tokens as f64);
            }
        }
    }
    bar.finish_and_clear();
    let (pp, tg) = (stat(&pp), stat(&tg));
    let profile = match backend.gpu_mut() {
        Some(forward) if args.profile => Some(
            super::bench_profile::profile(forward, &prompt, args.batch, args.gen_tokens)
                .unwrap_or_else(|e| json!({ "unavailable": format!("{e:#}") })),
        ),
        _ => None,
    };
    let weights_bytes: u64 = file.tensors().iter().map(|t| t.n_bytes).sum();
    let adapter = gpu
        .map(|g| g.info().name.clone())
        .unwrap_or_else(|| "cpu reference".into());
    Ok(json!({
        "model": args.model.as_ref().map(|m| m.display().to_string()),
        "device": label,
        "adapter": adapter,
        "kv_type": args.kv_type.name(),
        "weights_bytes": weights_bytes,
        "prompt_tokens": args.prompt_tokens,
        "gen_tokens": args.gen_tokens,
        "reps": args.reps,
        "load_s": load_s,
        "pp_tok_s": pp.mean,
        "pp_tok_s_std": pp.std,
        "tg_tok_s": tg.mean,
        "tg_tok_s_std": tg.std,
        "dispatches_per_token": dispatches_per_token,
        "tg_ms_per_token": if tg.mean > 0.0 { 1000.0 / tg.mean } else { 0.0 },
        // Every decode step reads all weights once: the bandwidth decode achieves.
        "tg_weight_read_gb_s": weights_bytes as f64 * tg.mean / 1e9,
        "profile": profile,
    }))
}

/// The process's peak resident set (VmHWM), where /proc offers it.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
