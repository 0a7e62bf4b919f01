//! `hearth generate` on the GPU engine over the tiered KV cache: the prompt's cached prefix
//! comes from GPU, RAM or (with `--data-dir`, `--redis`) the disk and Redis tiers; the JSON says
//! how much from where.

use std::io::Write;

use anyhow::{Context, Result};
use hearth::chat::file_content_hash;
use hearth::engine::gpu_forward::{GpuForward, GpuForwardOptions};
use hearth::engine::{CacheUse, CachedRequest, Sampler, generate_cached};
use hearth::gguf::GgufFile;
use hearth::kv::{DEFAULT_RAM_BUDGET_BYTES, Owner, Tiers};
use hearth::metrics::Metrics;
use hearth::store::kv_blocks::{KvBlockStore, KvStoreOptions};
use hearth::store::kv_redis::{RedisOptions, RedisTier};
use hearth::tokenizer::Tokenizer;

use super::backend::gpu_for;
use super::generate::{Args, report};
use super::util::{Device, KvType};

/// The KV cache's database file in a data dir (the app uses the same name).
pub const KV_DATABASE_FILE: &str = "kv.sqlite";

/// The disk tier's options: the defaults, and blocks unused for `ttl_secs` expire.
pub fn disk_options(ttl_secs: Option<u64>) -> KvStoreOptions {
    KvStoreOptions {
        ttl: ttl_secs.map(std::time::Duration::from_secs),
        ..KvStoreOptions::default()
    }
}

/// Opens the disk tier in `dir` (creating it).
pub fn open_disk(dir: &std::path::Path, ttl_secs: Option<u64>) -> Result<KvBlockStore> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(KV_DATABASE_FILE);
    KvBlockStore::open(&path, disk_options(ttl_secs))
        .with_context(|| format!("cannot open the KV cache at {}", path.display()))
}

pub struct CachedGenerate<'a> {
    pub file: &'a GgufFile,
    pub tokenizer: &'a Tokenizer,
    pub prompt: &'a [u32],
    pub max_tokens: usize,
}

impl CachedGenerate<'_> {
    pub fn run(&self, args: &Args, sampler: Sampler) -> Result<()> {
        let gpu = gpu_for(Device::Gpu)?.context("the GPU context was not opened")?;
        let disk = args
            .data_dir
            .as_deref()
            .map(|d| open_disk(d, args.cache_ttl))
            .transpose()?;
        let model_hash = match &disk {
            Some(d) => d.model_hash(&args.model)?,
            None => file_content_hash(&args.model)?,
        };
        let opts = GpuForwardOptions {
            max_ctx: self.prompt.len() + self.max_tokens,
            max_batch: 512.min(self.prompt.len() + self.max_tokens),
            kv_f16: args.kv_type == KvType::F16,
            max_logit_rows: Some(1),
            // Two sequences: the cold baseline never shares a slot with a warm run.
            max_sequences: 2,
            model_hash: Some(model_hash),
            ..GpuForwardOptions::default()
        };
        let mut forward =
            GpuForward::load(gpu, self.file, opts).context("cannot load the model on the GPU")?;
        let mut tiers = Tiers::new(DEFAULT_RAM_BUDGET_BYTES, disk, Metrics::new());
        if let Some(url) = &args.redis {
            let opts = RedisOptions {
                ttl: args.cache_ttl.map(std::time::Duration::from_secs),
                ..RedisOptions::new(url.as_str())
            };
            tiers = tiers.with_redis(RedisTier::open(opts).context("--redis")?);
        }
        let cache = if args.no_cache {
            CacheUse::Off
        } else {
            CacheUse::ReadWrite
        };
        let stream = !args.json;
        let mut stdout = std::io::stdout().lock();
        let mut on_text = |text: &str| {
            if stream {
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
        };
        let request = CachedRequest {
            prompt: self.prompt,
            max_tokens: self.max_tokens,
            cache,
            owner: Owner::Request(std::process::id() as u64),
            stop_strings: &args.stop,
            cancel: None,
        };
        let run = generate_cached(
            &mut forward,
            &mut tiers,
            self.tokenizer,
            sampler,
            request,
            &mut on_text,
        )?;
        drop(stdout);
        // Blocks written behind reach the disk before the process ends.
        tiers.flush()?;
        report(
            args.json,
            &run.stats,
            run.ttft_ms(),
            "gpu",
            Some(run.reused),
        )
    }
}
