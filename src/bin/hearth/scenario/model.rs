//! The model a scenario runs on: `--model`, or a small random-weight model written once into
//! the system's temp folder (a synthetic vocabulary, Llama 2's prompt format).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use hearth::chat::file_content_hash;
use hearth::engine::gpu_forward::{GpuForward, GpuForwardOptions};
use hearth::gguf::GgufFile;
use hearth::gpu::GpuContext;
use hearth::model::{Arch, TestModelSpec, write_test_model};
use hearth::quant::GgmlType;

/// The generated model's shape: fixture-sized, with room for 8k tokens of context.
fn small_spec() -> TestModelSpec {
    TestModelSpec {
        name: "hearth-bench-small".into(),
        arch: Arch::Llama,
        n_embd: 128,
        n_layer: 4,
        n_head: 4,
        n_head_kv: 2,
        n_ff: 384,
        n_vocab: 2048,
        n_ctx: 8192,
        rope_theta: 10000.0,
        rms_eps: 1e-5,
        weight_type: GgmlType::Q8_0,
        tied_output: false,
        seed: 7,
        llama3_rope_scaling: false,
    }
}

/// `model`, or the generated small model (written on first use).
pub fn model_path(model: Option<&Path>) -> Result<PathBuf> {
    if let Some(m) = model {
        return Ok(m.to_path_buf());
    }
    let path = std::env::temp_dir().join("hearth-bench-small-v1.gguf");
    if !path.is_file() {
        let tmp = path.with_extension("part");
        write_test_model(&small_spec(), None, &tmp).context("cannot write the bench model")?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(path)
}

/// The GPU engine on `path` with room for `max_ctx` tokens and a pool of `pool_contexts`
/// contexts (several requests' blocks stay cached side by side).
pub fn load(path: &Path, max_ctx: usize, pool_contexts: u64) -> Result<(GpuForward, GgufFile)> {
    let ctx = Arc::new(GpuContext::new().context("no usable GPU adapter")?);
    let file = GgufFile::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let one = GpuForwardOptions {
        max_ctx,
        max_batch: 256,
        kv_f16: true,
        max_logit_rows: Some(1),
        max_sequences: 4,
        model_hash: Some(file_content_hash(path)?),
        ..GpuForwardOptions::default()
    };
    let plan = GpuForward::plan(&ctx, &file, &one)?;
    let opts = GpuForwardOptions {
        kv_budget_bytes: Some(plan.kv_bytes * pool_contexts),
        ..one
    };
    let forward = GpuForward::load(ctx, &file, opts).context("cannot load the model")?;
    Ok((forward, file))
}
