//! Shared helpers for integration tests: where the fixtures and llama.cpp's vendored files are,
//! and the skip-or-fail rule (skip with a printed reason locally, fail when `CI` is set).
#![allow(dead_code)]

pub mod cli;
pub mod kernels;

use std::path::PathBuf;

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
