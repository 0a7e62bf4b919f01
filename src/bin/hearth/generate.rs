//! `hearth generate`: prompt → text, streamed to stdout, or one JSON object with timings.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use hearth::engine::{GenerationStats, Generator, Sampler, SamplerConfig};
use hearth::kv::Found;
use hearth::model::ModelConfig;
use hearth::tokenizer::{ChatMessage, ChatTemplate, Tokenizer};
use serde_json::json;

use super::backend::{Backend, BackendOptions, gpu_for};
use super::cached_generate::CachedGenerate;
use super::util::{Device, KvType, open_model, print_json};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("shared_cache").multiple(true)))]
pub struct Args {
    #[arg(long)]
    pub(super) model: PathBuf,
    #[arg(long)]
    prompt: String,
    /// Wrap the prompt as a user message in the model's chat template.
    #[arg(long)]
    chat: bool,
    /// System prompt (with --chat).
    #[arg(long, requires = "chat")]
    system: Option<String>,
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    #[arg(long, default_value_t = 0.05)]
    min_p: f32,
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop when this text appears (repeatable); it is not printed.
    #[arg(long)]
    pub(super) stop: Vec<String>,
    #[arg(long, value_enum, default_value_t = Device::Gpu)]
    device: Device,
    /// The GPU's KV cache type.
    #[arg(long, value_enum, default_value_t = KvType::F16)]
    pub(super) kv_type: KvType,
    /// Look up and fill the KV cache's disk tier here (`kv.sqlite`; shared with the app and
    /// other processes), so later runs restore the prompt's cached prefix.
    #[arg(long, group = "shared_cache")]
    pub(super) data_dir: Option<PathBuf>,
    /// Look up and fill the KV cache's Redis tier too (`redis://127.0.0.1:6379`; as `hearth
    /// serve --redis`): asked after the disk, skipped when down or slow.
    #[arg(
        long,
        value_name = "URL",
        group = "shared_cache",
        conflicts_with = "doc"
    )]
    pub(super) redis: Option<String>,
    /// With --data-dir or --redis: blocks on disk or in Redis not used for this many seconds
    /// expire.
    #[arg(long, requires = "shared_cache")]
    pub(super) cache_ttl: Option<u64>,
    /// Compute every prompt token and leave the cache as it was (the cold baseline).
    #[arg(long)]
    pub(super) no_cache: bool,
    /// Ask about this document (`hearth doc add`; needs --data-dir): the question is a chat
    /// turn whose system message holds the document's window.
    #[arg(long, requires = "data_dir", conflicts_with = "no_cache")]
    doc: Option<i64>,
    /// Context length with --doc (windows take three quarters of it).
    #[arg(long, default_value_t = 4096)]
    context: u32,
    #[arg(long)]
    pub(super) json: bool,
}

pub fn run(args: Args) -> Result<()> {
    if let (Some(doc), Some(data_dir)) = (args.doc, &args.data_dir) {
        if args.device != Device::Gpu {
            bail!("--doc needs the GPU engine (--device gpu)");
        }
        let settings = hearth::store::Settings {
            temperature: f64::from(args.temperature),
            top_k: u32::try_from(args.top_k).unwrap_or(u32::MAX),
            top_p: f64::from(args.top_p),
            min_p: f64::from(args.min_p),
            repeat_penalty: f64::from(args.repeat_penalty),
            seed: args.seed,
            max_tokens: u32::try_from(args.max_tokens).unwrap_or(u32::MAX),
            ..hearth::store::Settings::default()
        };
        return super::doc_generate::run(super::doc_generate::DocQuestion {
            model: &args.model,
            data_dir,
            doc,
            question: &args.prompt,
            system: args.system.as_deref(),
            context: args.context,
            settings,
            json: args.json,
        });
    }
    let file = open_model(&args.model)?;
    let tokenizer = Tokenizer::from_gguf(&file).context("cannot build the tokenizer")?;
    let config = ModelConfig::from_gguf(&file).context("cannot load the model")?;
    let prompt_text = if args.chat {
        let template = ChatTemplate::from_gguf(&file)?;
        let mut messages = Vec::new();
        if let Some(system) = &args.system {
            messages.push(ChatMessage {
                role: "system".into(),
                content: system.clone(),
            });
        }
        messages.push(ChatMessage {
            role: "user".into(),
            content: args.prompt.clone(),
        });
        template.render_with_system_fallback(&messages, true)?
    } else {
        args.prompt.clone()
    };
    // A chat template writes BOS itself; a raw prompt gets it as the metadata says.
    let prompt = tokenizer.encode(&prompt_text, !args.chat, true)?;
    if prompt.is_empty() {
        bail!("the prompt tokenized to nothing");
    }
    let n_ctx = config.n_ctx_train.max(1);
    if prompt.len() >= n_ctx {
        bail!(
            "the prompt has {} tokens; the model's context holds {n_ctx}",
            prompt.len()
        );
    }
    let max_tokens = args.max_tokens.min(n_ctx - prompt.len());
    let sampler = Sampler::new(SamplerConfig {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        min_p: args.min_p,
        repeat_penalty: args.repeat_penalty,
        repeat_last_n: 64,
        seed: args.seed,
    });
    if args.device == Device::Gpu {
        let run = CachedGenerate {
            file: &file,
            tokenizer: &tokenizer,
            prompt: &prompt,
            max_tokens,
        };
        return run.run(&args, sampler);
    }
    if args.data_dir.is_some() || args.redis.is_some() {
        bail!(
            "--data-dir and --redis need the GPU engine (--device gpu): the KV cache tiers live there"
        );
    }
    let gpu = gpu_for(args.device)?;
    let options = BackendOptions {
        max_tokens: prompt.len() + max_tokens,
        max_batch: 512,
        kv: args.kv_type,
        all_logits: false,
    };
    let mut backend = Backend::load(args.device, &file, gpu.as_ref(), options)?;
    let mut generator = Generator {
        tokenizer: &tokenizer,
        sampler,
        max_tokens,
        stop_strings: args.stop.clone(),
        cancel: None,
    };
    let forward = |tokens: &[u32]| backend.forward_last(tokens).map_err(ForwardError);
    let stream = !args.json;
    let mut stdout = std::io::stdout().lock();
    let stats = generator.run(&prompt, 0, forward, |text| {
        if stream {
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        }
    })?;
    drop(stdout);
    let device = match args.device {
        Device::Cpu => "cpu",
        Device::Gpu => "gpu",
    };
    report(args.json, &stats, stats.ttft_ms, device, None)
}

/// Prints a generation's figures: a line on stderr after the streamed text, or one JSON
/// object. `by_tier`: where the cached prompt tokens came from (the GPU engine's runs).
pub(super) fn report(
    json: bool,
    stats: &GenerationStats,
    ttft_ms: f64,
    device: &str,
    by_tier: Option<Found>,
) -> Result<()> {
    if !json {
        println!();
        let tiers = by_tier
            .map(|f| {
                format!(
                    " (cached: gpu {}, ram {}, disk {}, redis {})",
                    f.gpu, f.ram, f.disk, f.redis
                )
            })
            .unwrap_or_default();
        eprintln!(
            "[{} prompt tokens{tiers}, {} generated, ttft {:.1} ms, prefill {:.1} tok/s, decode {:.1} tok/s, stop: {}]",
            stats.prompt_tokens,
            stats.generated.len(),
            ttft_ms,
            stats.prefill_tok_s(),
            stats.decode_tok_s(),
            stats.stop_reason.as_str()
        );
        return Ok(());
    }
    let mut out = json!({
        "text": stats.text,
        "tokens": stats.generated,
        "completion_tokens": stats.generated.len(),
        "prompt_tokens": stats.prompt_tokens,
        "cached_tokens": stats.cached_tokens,
        "ttft_ms": ttft_ms,
        "prefill_tok_s": stats.prefill_tok_s(),
        "decode_tok_s": stats.decode_tok_s(),
        "stop_reason": stats.stop_reason.as_str(),
        "device": device,
    });
    if let Some(f) = by_tier {
        out["cached_by_tier"] =
            json!({"gpu": f.gpu, "ram": f.ram, "disk": f.disk, "redis": f.redis});
    }
    print_json(&out)
}

/// `Generator::run` wants a `std::error::Error`; the backend reports `anyhow` chains.
#[derive(Debug)]
struct ForwardError(anyhow::Error);

impl std::fmt::Display for ForwardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for ForwardError {}
