//! Shared helpers for integration tests: where the fixtures and llama.cpp's vendored files are,
//! and the skip-or-fail rule (skip with a printed reason locally, fail when `CI` is set).
#![allow(dead_code)]

pub mod chat;
pub mod cli;
pub mod http;
pub mod kernels;
pub mod logits;
pub mod prometheus;
pub mod redis;
pub mod serve;

use std::path::PathBuf;
use std::sync::Arc;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Skips (returns `None` after printing why) or, when `CI` is set, fails the test.
fn missing(what: &str, hint: &str) -> Option<PathBuf> {
    if std::env::var_os("CI").is_some() {
        panic!("{what} is missing and CI is set: {hint}");
    }
    eprintln!("SKIP: {what} is missing ({hint})");
    None
}

/// `../shared/fixtures` (or `$HEARTH_FIXTURES`): GGUF models and llama.cpp's outputs.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("HEARTH_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/fixtures"));
    if dir.join("models").is_dir() {
        Some(dir)
    } else {
        missing(
            &format!("fixtures folder {}", dir.display()),
            "set HEARTH_FIXTURES",
        )
    }
}

/// A fixture model by file name, e.g. `stories260K-f32.gguf`.
pub fn fixture_model(name: &str) -> Option<PathBuf> {
    fixtures_dir().map(|d| d.join("models").join(name))
}

/// llama.cpp's reference outputs for a fixture model, parsed, e.g. `stories260K-f32`.
pub fn fixture_refs(stem: &str) -> Option<serde_json::Value> {
    let path = fixtures_dir()?.join("refs").join(format!("{stem}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// llama.cpp's `models/` folder from the llama-cpp-python 0.3.36 sdist (vocab GGUFs, tokenizer
/// vectors, `templates/`), fetched by `scripts/fetch-llama-vendor.sh` into `.cache/`.
pub fn llama_vendor_models() -> Option<PathBuf> {
    let dir = std::env::var_os("HEARTH_LLAMA_VENDOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/llama-cpp-python-0.3.36/models"));
    if dir.join(".complete").exists() || dir.join("ggml-vocab-llama-spm.gguf").exists() {
        Some(dir)
    } else {
        missing(
            &format!("llama.cpp vendor files {}", dir.display()),
            "run scripts/fetch-llama-vendor.sh",
        )
    }
}

/// Where `scripts/fetch-real-models.sh` caches the real trained models (outside the repo, so
/// CI runs on one machine share it): `$HEARTH_REAL_MODELS`, else `$HEARTH_MODEL_CACHE`, else
/// `${XDG_CACHE_HOME:-$HOME/.cache}/hearth/models`.
pub fn real_models_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("HEARTH_REAL_MODELS").or_else(|| var("HEARTH_MODEL_CACHE")) {
        return PathBuf::from(dir);
    }
    var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("hearth/models")
}

/// A real trained model fetched from PyPI by `scripts/fetch-real-models.sh`, by file name,
/// e.g. `SmolLM2-135M-Instruct.Q4_1.gguf`.
pub fn real_model(file_name: &str) -> Option<PathBuf> {
    let path = real_models_dir().join(file_name);
    if path.is_file() {
        Some(path)
    } else {
        missing(
            &format!("real model {}", path.display()),
            "run scripts/fetch-real-models.sh, or set HEARTH_REAL_MODELS",
        )
    }
}

fn read_real_json(file_name: &str) -> Option<serde_json::Value> {
    let path = fixtures_dir()?.join("refs/real").join(file_name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// llama.cpp's outputs for a real model (`refs/real/STEM.json`: sequences, top-20 logits,
/// greedy steps, tokenizations), e.g. `smollm2-135m-instruct-q4_1`.
pub fn real_refs(stem: &str) -> Option<serde_json::Value> {
    read_real_json(&format!("{stem}.json"))
}

/// llama.cpp's greedy chat answers for a real model (`refs/real/STEM.chat.json`).
pub fn real_chat_refs(stem: &str) -> Option<serde_json::Value> {
    read_real_json(&format!("{stem}.chat.json"))
}

/// The GPU context (lavapipe in CI), or `None` after printing why (a failure when `CI` is set).
pub fn gpu() -> Option<Arc<hearth::gpu::GpuContext>> {
    gpu_result(hearth::gpu::GpuContext::new())
}

/// Skip-or-fail on a context that could not be opened.
pub fn gpu_result(
    r: Result<hearth::gpu::GpuContext, hearth::gpu::GpuError>,
) -> Option<Arc<hearth::gpu::GpuContext>> {
    match r {
        Ok(c) => Some(Arc::new(c)),
        Err(e) if std::env::var_os("CI").is_some() => panic!("no GPU adapter and CI is set: {e}"),
        Err(e) => {
            eprintln!("SKIP: no GPU adapter ({e})");
            None
        }
    }
}

/// Token ids from a JSON array (the fixtures' refs).
pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("array of token ids")
        .iter()
        .map(|t| t.as_u64().expect("token id") as u32)
        .collect()
}

/// The sentence-embedding model (all-MiniLM-L6-v2) that `scripts/fetch-real-models.sh` unpacks
/// into the real-model cache, or `None` after printing why (a failure when `CI` is set).
pub fn embed_model_dir() -> Option<PathBuf> {
    let dir = real_models_dir().join("all-MiniLM-L6-v2");
    if dir.join("model.safetensors").is_file() {
        Some(dir)
    } else {
        missing(
            &format!("embedding model {}", dir.display()),
            "run scripts/fetch-real-models.sh minilm, or set HEARTH_REAL_MODELS",
        )
    }
}
