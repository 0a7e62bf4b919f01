//! The cache's correctness rule: a hit must give the same tokens as a cold run. For every
//! fixture model and the two real chat models (SmolLM2-135M, Qwen2.5-Coder-0.5B), greedy
//! output with the prompt's prefix restored from the GPU tier, from the RAM tier, and from
//! the SQLite tier into a freshly loaded model is token-identical to computing everything,
//! and each warm run reports where its cached tokens came from.

mod common;

use std::path::Path;
use std::sync::Arc;

use hearth::chat::file_content_hash;
use hearth::engine::gpu_forward::{GpuForward, GpuForwardOptions};
use hearth::engine::{CacheUse, CachedRequest, CachedRun, Sampler, SamplerConfig, generate_cached};
use hearth::gguf::GgufFile;
use hearth::gpu::GpuContext;
use hearth::kv::{Found, Owner, Tiers};
use hearth::metrics::Metrics;
use hearth::store::kv_blocks::{KvBlockStore, KvStoreOptions};
use hearth::tokenizer::Tokenizer;

const FIXTURES: [&str; 7] = [
    "stories260K-f32",
    "stories260K-q8_0",
    "rand-llama-spm-q8_0",
    "rand-llama-spm-q4_0",
    "rand-llama-spm-q4_k",
    "rand-llama-bpe-q4_k",
    "rand-qwen2-f16",
];

/// Generated tokens compared per run.
const GEN: usize = 6;

struct Model {
    ctx: Arc<GpuContext>,
    file: GgufFile,
    tokenizer: Tokenizer,
    opts: GpuForwardOptions,
}

impl Model {
    fn load(&self) -> GpuForward {
        GpuForward::load(Arc::clone(&self.ctx), &self.file, self.opts).unwrap()
    }

    fn run(
        &self,
        f: &mut GpuForward,
        tiers: &mut Tiers,
        prompt: &[u32],
        cache: CacheUse,
    ) -> CachedRun {
        let request = CachedRequest {
            prompt,
            max_tokens: GEN,
            cache,
            owner: Owner::Request(1),
            stop_strings: &[],
            cancel: None,
        };
        generate_cached(
            f,
            tiers,
            &self.tokenizer,
            Sampler::new(SamplerConfig::greedy()),
            request,
            &mut |_| {},
        )
        .unwrap()
    }
}

/// Cold, then warm from the GPU, from RAM (GPU cache dropped), and from disk into a newly
/// loaded model; every run's tokens equal the cold run's.
fn check(ctx: Arc<GpuContext>, path: &Path, prompt: &[u32]) {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let file = GgufFile::open(path).unwrap();
    let tokenizer = Tokenizer::from_gguf(&file).unwrap();
    let opts = GpuForwardOptions {
        max_ctx: prompt.len() + GEN + 16,
        max_batch: 64,
        kv_f16: true,
        max_logit_rows: Some(1),
        max_sequences: 2,
        model_hash: Some(file_content_hash(path).unwrap()),
        ..GpuForwardOptions::default()
    };
    let m = Model {
        ctx,
        file,
        tokenizer,
        opts,
    };
    let dir = tempfile::tempdir().unwrap();
    let kv = dir.path().join("kv.sqlite");
    let disk = || KvBlockStore::open(&kv, KvStoreOptions::default()).unwrap();
    let whole = prompt.len() / 16 * 16;
    let want = whole.min(prompt.len() - 1);

    let mut f = m.load();
    let mut tiers = Tiers::new(1 << 30, Some(disk()), Metrics::new());
    let cold = m.run(&mut f, &mut tiers, prompt, CacheUse::Off);
    assert_eq!(cold.reused, Found::default());
    let first = m.run(&mut f, &mut tiers, prompt, CacheUse::ReadWrite);
    assert_eq!(
        first.stats.generated, cold.stats.generated,
        "{name}: first run"
    );
    let gpu = m.run(&mut f, &mut tiers, prompt, CacheUse::ReadWrite);
    assert_eq!(gpu.reused.gpu, want, "{name}: {:?}", gpu.reused);
    f.kv_mut().drop_cached();
    let ram = m.run(&mut f, &mut tiers, prompt, CacheUse::ReadWrite);
    assert_eq!(
        (ram.reused.gpu, ram.reused.ram),
        (0, want),
        "{name}: {:?}",
        ram.reused
    );
    tiers.flush().unwrap();
    drop((f, tiers));

    let mut fresh = m.load();
    let mut tiers = Tiers::new(1 << 30, Some(disk()), Metrics::new());
    let from_disk = m.run(&mut fresh, &mut tiers, prompt, CacheUse::ReadWrite);
    assert_eq!(
        from_disk.reused.disk, want,
        "{name}: {:?}",
        from_disk.reused
    );
    for (tier, run) in [("gpu", &gpu), ("ram", &ram), ("disk", &from_disk)] {
        assert_eq!(
            run.stats.generated, cold.stats.generated,
            "{name}: warm from {tier} differs from the cold run"
        );
        assert_eq!(run.stats.cached_tokens, want, "{name}: {tier}");
    }
    eprintln!(
        "{name}: {} prompt tokens, {want} restored from each tier, {:?} generated alike",
        prompt.len(),
        cold.stats.generated
    );
}

#[test]
fn warm_runs_from_every_tier_match_a_cold_run_on_every_fixture_model() {
    let Some(ctx) = common::gpu() else { return };
    for stem in FIXTURES {
        let (Some(path), Some(refs)) = (
            common::fixture_model(&format!("{stem}.gguf")),
            common::fixture_refs(stem),
        ) else {
            return;
        };
        // llama.cpp's 40-token sequence: two whole blocks and an open one.
        check(
            Arc::clone(&ctx),
            &path,
            &common::ids(&refs["sequences"][1]["tokens"]),
        );
    }
}

#[test]
fn warm_runs_from_every_tier_match_a_cold_run_on_real_chat_models() {
    let Some(ctx) = common::gpu() else { return };
    for (file, stem) in [
        (
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "smollm2-135m-instruct-q4_1",
        ),
        (
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            "qwen2.5-coder-0.5b-instruct-q4_k_m",
        ),
    ] {
        let (Some(path), Some(chat)) = (common::real_model(file), common::real_chat_refs(stem))
        else {
            return;
        };
        // The longest real ChatML prompt (system + question) as llama.cpp tokenized it.
        let prompt = chat
            .as_array()
            .unwrap()
            .iter()
            .map(|q| common::ids(&q["tokens"]))
            .max_by_key(Vec::len)
            .unwrap();
        check(Arc::clone(&ctx), &path, &prompt);
    }
}
