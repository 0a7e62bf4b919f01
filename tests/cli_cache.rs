//! The KV cache across processes through the CLI: a second `hearth generate --data-dir`
//! restores the prompt's blocks from the disk tier (`cached_by_tier.disk`) and generates the
//! same tokens as `--no-cache`; `hearth cache stats|verify|clear` read and clear that tier.

mod common;

use std::path::Path;

use common::cli::{gpu_available, hearth_json, path_str};
use serde_json::Value;

fn generate(model: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "generate",
        "--model",
        path_str(model),
        "--max-tokens",
        "8",
        "--temperature",
        "0",
        "--json",
    ];
    args.extend_from_slice(extra);
    hearth_json(&args)
}

/// Cold (writes the disk tier), warm in a new process, and --no-cache: same tokens; the warm
/// run's cached tokens came from disk.
fn restores_across_processes(model: &Path, prompt_args: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = path_str(dir.path()).to_string();
    let with_dir = |extra: &[&str]| {
        let mut a = prompt_args.to_vec();
        a.extend_from_slice(&["--data-dir", &d]);
        a.extend_from_slice(extra);
        generate(model, &a)
    };
    let first = with_dir(&[]);
    assert_eq!(first["cached_tokens"], 0, "{first}");
    let warm = with_dir(&[]);
    let mut cold_args = prompt_args.to_vec();
    cold_args.push("--no-cache");
    let cold = generate(model, &cold_args);
    let prompt = warm["prompt_tokens"].as_u64().unwrap();
    let disk = warm["cached_by_tier"]["disk"].as_u64().unwrap();
    assert!(
        disk > 0 && disk == warm["cached_tokens"].as_u64().unwrap(),
        "restored from disk: {warm}"
    );
    assert!(
        disk + 16 >= prompt,
        "every whole block of the prompt: {warm}"
    );
    assert_eq!(cold["cached_tokens"], 0);
    assert_eq!(warm["tokens"], cold["tokens"], "warm {warm}\ncold {cold}");
    assert_eq!(first["tokens"], cold["tokens"]);
    dir
}

#[test]
fn a_new_process_restores_the_prompt_from_disk_and_generates_the_same_tokens() {
    let Some(model) = common::fixture_model("stories260K-f32.gguf") else {
        return;
    };
    if !gpu_available() {
        return;
    }
    let prompt = [
        "--prompt",
        "Once upon a time there was a little cat who lived in a big house with a dog and a red ball",
    ];
    let dir = restores_across_processes(&model, &prompt);
    let d = path_str(dir.path());

    let stats = hearth_json(&["cache", "stats", "--data-dir", d, "--json"]);
    assert!(stats["blocks"].as_u64().unwrap() >= 2, "{stats}");
    assert_eq!(stats["models"].as_array().unwrap().len(), 1, "{stats}");
    assert!(
        stats["owners"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["owner"].as_str().unwrap().starts_with("request:"))
    );
    let verify = hearth_json(&["cache", "verify", "--data-dir", d, "--json"]);
    assert_eq!(verify["invalid"], 0, "{verify}");
    assert_eq!(verify["checked"], stats["blocks"]);
    let cleared = hearth_json(&["cache", "clear", "--data-dir", d, "--json"]);
    assert_eq!(cleared["deleted"], stats["blocks"]);
    let mut args = prompt.to_vec();
    args.extend_from_slice(&["--data-dir", d]);
    let after = generate(&model, &args);
    assert_eq!(after["cached_tokens"], 0, "cleared: {after}");
}

#[test]
fn smollm2_chat_prompt_is_restored_from_disk_in_a_new_process() {
    let Some(model) = common::real_model("SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    if !gpu_available() {
        return;
    }
    restores_across_processes(
        &model,
        &[
            "--chat",
            "--system",
            "You are a concise assistant. Answer in one short sentence, and always name the \
             programming language you mean.",
            "--prompt",
            "Write a Rust function that adds two integers.",
        ],
    );
}

/// Scenario 1's report: turn N reuses every token of turn N−1's prompt and reply, and the
/// KV memory measured from the pool equals the formula.
fn conversation_report(model: Option<&Path>) {
    let mut args = vec![
        "bench",
        "conversation",
        "--turns",
        "3",
        "--reply-tokens",
        "8",
        "--context",
        "1024",
        "--json",
    ];
    if let Some(m) = model {
        args.extend_from_slice(&["--model", path_str(m)]);
    }
    let r = hearth_json(&args);
    let turns = r["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 3, "{r}");
    for pair in turns.windows(2) {
        let (prev, next) = (&pair[0], &pair[1]);
        let held = prev["prompt_tokens"].as_u64().unwrap() + prev["reply_tokens"].as_u64().unwrap();
        assert!(
            next["reused_tokens"].as_u64().unwrap() >= held,
            "turn {} reuses all of turn {}: {r}",
            next["turn"],
            prev["turn"]
        );
    }
    for t in turns {
        assert_eq!(t["kv_bytes"], t["kv_bytes_formula"], "{t}");
        assert!(t["kv_bytes"].as_u64().unwrap() > 0);
        assert!(t["ttft_ms_cached"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn bench_conversation_reuses_every_previous_token_without_and_with_a_template() {
    if !gpu_available() {
        return;
    }
    // The generated default model and stories260K have no chat template (Llama 2 fallback).
    conversation_report(None);
    if let Some(m) = common::fixture_model("stories260K-f32.gguf") {
        conversation_report(Some(&m));
    }
    // SmolLM2: ChatML from its own template.
    if let Some(m) = common::real_model("SmolLM2-135M-Instruct.Q4_1.gguf") {
        conversation_report(Some(&m));
    }
}

#[test]
fn bench_shared_prefix_reports_hits_and_a_faster_warm_ttft() {
    if !gpu_available() {
        return;
    }
    let r = hearth_json(&[
        "bench",
        "shared-prefix",
        "--prefix-tokens",
        "256",
        "--requests",
        "3",
        "--question-tokens",
        "16",
        "--gen-tokens",
        "2",
        "--json",
    ]);
    let hit = r["hit_rate"].as_f64().unwrap();
    // Requests 2 and 3 reuse the 256-token prefix: (2 · 256) / (3 · 272) ≈ 0.63.
    assert!(hit > 0.5, "{r}");
    assert!(
        r["warm_ttft_ms_p50"].as_f64().unwrap() < r["cold_ttft_ms_p50"].as_f64().unwrap(),
        "{r}"
    );
}

/// Runs `hearth chat ARGS` with `input` on stdin; returns stderr (the per-turn stats lines).
fn chat(args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("chat")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "hearth chat failed: {err}");
    err
}

#[test]
fn terminal_chat_resumes_a_conversation_from_disk_in_a_new_process() {
    let Some(model) = common::fixture_model("stories260K-f32.gguf") else {
        return;
    };
    if !gpu_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = path_str(dir.path());
    let base = [
        "--model",
        path_str(&model),
        "--data-dir",
        d,
        "--max-tokens",
        "8",
        "--temperature",
        "0",
    ];
    let first = chat(
        &base,
        "Once upon a time there was a cat in a big house.\n/quit\n",
    );
    assert!(first.contains("recomputed: first turn"), "{first}");
    let mut resume = base.to_vec();
    resume.extend_from_slice(&["--conversation", "1"]);
    let second = chat(&resume, "What did the cat do?\n/quit\n");
    let line = second
        .lines()
        .find(|l| l.contains("prompt tokens"))
        .unwrap_or_else(|| panic!("{second}"));
    let disk: u64 = line
        .split("disk ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(disk >= 16, "restored from disk in a new process: {line}");
    assert!(!line.contains("recomputed"), "{line}");
}
