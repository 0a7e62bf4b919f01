//! A 152k-token vocabulary (Qwen2's, on the `rand-qwen2-f16` fixture) at lengths whose logits
//! would not fit one storage binding (128 MiB on lavapipe holds ~220 rows of them): prefill
//! computes the output head for the last position only, and `score` splits its steps so each
//! step's logits fit, matching the CPU reference at every position.

mod common;

use std::sync::Arc;

use common::cli::{gpu_available, hearth_json, path_str};
use hearth::engine::gpu_forward::{GpuForward, GpuForwardError, GpuForwardOptions};
use hearth::gguf::GgufFile;

const MODEL: &str = "rand-qwen2-f16.gguf";

#[test]
fn bench_prefills_512_tokens_with_a_152k_vocabulary() {
    let Some(model) = common::fixture_model(MODEL) else {
        return;
    };
    if !gpu_available() {
        return;
    }
    // Default --batch (512): one step of 512 tokens.
    let bench = hearth_json(&[
        "bench",
        "--model",
        path_str(&model),
        "--prompt-tokens",
        "512",
        "--gen-tokens",
        "2",
        "--reps",
        "1",
        "--json",
    ]);
    assert!(
        bench["pp_tok_s"].as_f64().is_some_and(|v| v > 0.0),
        "{bench}"
    );
    assert_eq!(bench["kv_type"], "f16", "{bench}");
}

#[test]
fn score_of_600_tokens_on_gpu_matches_the_cpu_reference() {
    let Some(model) = common::fixture_model(MODEL) else {
        return;
    };
    if !gpu_available() {
        return;
    }
    // Token ids spread over the whole vocabulary, deterministic.
    let tokens: Vec<String> = (0..600u64)
        .map(|i| ((i * 7919 + 13) % 151_000).to_string())
        .collect();
    let run = |device: &str| {
        hearth_json(&[
            "score",
            "--model",
            path_str(&model),
            "--tokens",
            &tokens.join(","),
            "--top-k",
            "5",
            "--every",
            "50",
            "--device",
            device,
            "--json",
        ])
    };
    let (gpu, cpu) = (run("gpu"), run("cpu"));
    let (gpu, cpu) = (
        gpu["positions"].as_array().unwrap(),
        cpu["positions"].as_array().unwrap(),
    );
    assert_eq!(gpu.len(), 13, "positions 0, 50, ..., 550 and 599");
    assert_eq!(gpu.len(), cpu.len());
    let mut worst = 0.0f64;
    for (g, c) in gpu.iter().zip(cpu) {
        assert_eq!(g["pos"], c["pos"]);
        let (gt, ct) = (g["top"].as_array().unwrap(), c["top"].as_array().unwrap());
        // F16 weights, f32 activations on both sides: the top ids agree, logits within 1e-3.
        assert_eq!(gt[0][0], ct[0][0], "top-1 at pos {}", g["pos"]);
        for (ge, ce) in gt.iter().zip(ct) {
            let d = (ge[1].as_f64().unwrap() - ce[1].as_f64().unwrap()).abs();
            worst = worst.max(d);
        }
    }
    eprintln!("600-token score, 152k vocabulary: max |gpu - cpu| over the top-5 = {worst:.2e}");
    assert!(worst <= 1e-3, "gpu vs cpu differ by {worst}");
}

/// The logits buffer holds at most what one binding can; a step asking for more rows of
/// logits than that is a typed error, and last-token steps of any length work.
#[test]
fn logit_rows_are_capped_by_one_binding() {
    let Some(path) = common::fixture_model(MODEL) else {
        return;
    };
    let Some(ctx) = common::gpu() else { return };
    let file = GgufFile::open(&path).unwrap();
    let opts = GpuForwardOptions {
        max_ctx: 1024,
        max_batch: 512,
        ..GpuForwardOptions::default()
    };
    let plan = GpuForward::plan(&ctx, &file, &opts).unwrap();
    assert!(plan.fits, "{plan:?}");
    let mut gpu = GpuForward::load(Arc::clone(&ctx), &file, opts).unwrap();
    let rows = gpu.max_logit_rows();
    let per_row = 151_936u64 * 4;
    assert!(rows >= 1 && rows as u64 * per_row <= ctx.max_binding_bytes());
    assert!(
        rows < 512,
        "{rows} rows of a 152k vocabulary fit one binding?"
    );
    let tokens: Vec<u32> = (0..512).map(|i| i * 3 + 1).collect();
    match gpu.step(&tokens, true) {
        Err(GpuForwardError::TooManyLogitRows { n: 512, max }) => assert_eq!(max, rows),
        other => panic!(
            "expected TooManyLogitRows, got {:?}",
            other.map(|v| v.len())
        ),
    }
    assert_eq!(gpu.len(), 0, "a refused step leaves the cache as it was");
    let last = gpu.step(&tokens, false).unwrap();
    assert_eq!(last.len(), 151_936);
    assert_eq!(gpu.len(), 512);
    // One row is enough for generation.
    let one = GpuForward::load(
        ctx,
        &file,
        GpuForwardOptions {
            max_logit_rows: Some(1),
            ..opts
        },
    )
    .unwrap();
    assert_eq!(one.max_logit_rows(), 1);
}
