//! f16 KV on an adapter without `SHADER_F16`: the KV kernels pack two halves per u32 word, so
//! the feature is not needed. With the feature masked off, the app's memory plan still
//! chooses f16 KV (half the memory of f32) and the GPU output stays close to the CPU
//! reference (f32 KV).

mod common;

use std::sync::Arc;

use hearth::engine::gpu_forward::{GpuForward, GpuForwardOptions};
use hearth::gguf::GgufFile;
use hearth::gpu::{AdapterChoice, GpuContext, WANTED_FEATURES};
use hearth::model::ModelConfig;
use hearth::reference::ReferenceModel;

/// Bound on |GPU with f16 KV − CPU reference with f32 KV| over every logit (as in
/// tests/gpu_forward.rs for f16 KV on an adapter with the feature).
const F16_KV_TOL: f32 = 4e-2;

fn ctx_without_f16() -> Option<Arc<GpuContext>> {
    let allowed = WANTED_FEATURES.difference(wgpu::Features::SHADER_F16);
    common::gpu_result(GpuContext::with_features(&AdapterChoice::FromEnv, allowed))
}

#[test]
fn f16_kv_without_shader_f16_is_planned_and_matches_the_reference() {
    let Some(ctx) = ctx_without_f16() else { return };
    assert!(!ctx.has_f16(), "the feature was masked off");
    let Some(path) = common::fixture_model("stories260K-f32.gguf") else {
        return;
    };
    let Some(refs) = common::fixture_refs("stories260K-f32") else {
        return;
    };
    let file = GgufFile::open(&path).unwrap();
    let cfg = ModelConfig::from_gguf(&file).unwrap();

    // The app's plan chooses f16 KV on this adapter and sizes it as f16.
    let plan = hearth::chat::memory_plan(&file, &cfg, 256, Some(ctx.info()));
    assert!(plan.fits, "{plan:?}");
    assert_eq!(plan.kv_type, "f16");
    let per_token_f16 = 2 * cfg.n_layer as u64 * cfg.kv_dim() as u64 * 2;
    assert!(plan.kv_tokens >= 256, "{plan:?}");
    assert_eq!(plan.kv_bytes, plan.kv_tokens * per_token_f16, "{plan:?}");

    let tokens = common::ids(&refs["sequences"][1]["tokens"]);
    let reference = ReferenceModel::load(&file).unwrap();
    let mut cache = reference.new_cache(tokens.len());
    let want = reference.forward(&mut cache, &tokens).unwrap();
    let opts = GpuForwardOptions {
        max_ctx: 256,
        max_batch: 48,
        kv_f16: true,
        ..GpuForwardOptions::default()
    };
    let mut gpu = GpuForward::load(ctx, &file, opts).unwrap();
    // Prefill all but the last token (tiled attention over packed f16), then a decode step
    // (split-K attention over packed f16).
    let n = tokens.len();
    let mut got = gpu.step(&tokens[..n - 1], true).unwrap();
    got.extend(gpu.step(&tokens[n - 1..], true).unwrap());
    let worst = got
        .iter()
        .zip(&want)
        .fold(0.0f32, |a, (g, w)| a.max((g - w).abs()));
    eprintln!("f16 KV without SHADER_F16: max |gpu - cpu(f32 KV)| = {worst:.2e}");
    assert!(worst <= F16_KV_TOL, "f16 KV differs by {worst}");
}
