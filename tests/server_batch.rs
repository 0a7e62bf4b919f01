//! `hearth serve` with several requests at once (`--parallel`): concurrent greedy requests with
//! different prompts — two sharing a long prefix — each get exactly the text `hearth generate
//! --temperature 0` gives for their prompt alone, streamed or not, while their decodes share
//! batched steps; and the server is idle and reusable afterwards.

mod common;

use std::path::{Path, PathBuf};

use common::cli::{gpu_available, hearth_json, path_str};
use common::http::{get, post_json, request};
use common::serve::ServeProc;
use serde_json::{Value, json};

const MODEL: &str = "stories260K-q8_0.gguf";
const STORY: &str = "Once upon a time there was a little cat who lived in a big house with a dog";

fn model() -> Option<PathBuf> {
    let m = common::fixture_model(MODEL)?;
    gpu_available().then_some(m)
}

fn cli_text(model: &Path, prompt: &str, max_tokens: usize) -> String {
    let n = max_tokens.to_string();
    let v = hearth_json(&[
        "generate",
        "--model",
        path_str(model),
        "--temperature",
        "0",
        "--json",
        "--prompt",
        prompt,
        "--max-tokens",
        &n,
    ]);
    v["text"].as_str().unwrap().to_string()
}

/// The text of a streamed completion (its SSE chunks joined).
fn streamed_text(addr: &str, body: &Value) -> String {
    let mut body = body.clone();
    body["stream"] = json!(true);
    let r = request(
        addr,
        "POST",
        "/v1/completions",
        &[],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.sse_data()
        .iter()
        .filter(|d| d.as_str() != "[DONE]")
        .map(|d| {
            let v: Value = serde_json::from_str(d).unwrap();
            v["choices"][0]["text"].as_str().unwrap_or("").to_string()
        })
        .collect()
}

#[test]
fn concurrent_greedy_requests_each_equal_hearth_generate() {
    let Some(model) = model() else { return };
    let prompts: Vec<String> = vec![
        STORY.to_string(),
        format!("{STORY} and a bird"),
        "One day a boy".to_string(),
        "The sun was hot and the girl wanted to swim in the lake near her house".to_string(),
        "Tom had a red ball.".to_string(),
    ];
    let max_tokens = [40, 24, 32, 16, 28];
    let want: Vec<String> = prompts
        .iter()
        .zip(max_tokens)
        .map(|(p, n)| cli_text(&model, p, n))
        .collect();
    let s = ServeProc::start(&model, &["--parallel", "4"]);
    let id = s.model_id.clone();
    for round in 0..2 {
        let got: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = prompts
                .iter()
                .zip(max_tokens)
                .enumerate()
                .map(|(i, (p, n))| {
                    let body = json!({"model": id, "prompt": p, "max_tokens": n, "temperature": 0});
                    let addr = s.addr.clone();
                    scope.spawn(move || {
                        if i % 2 == 0 {
                            streamed_text(&addr, &body)
                        } else {
                            let v = post_json(&addr, "/v1/completions", &body).json();
                            v["choices"][0]["text"].as_str().unwrap().to_string()
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "round {round}, prompt {i}: {:?}", prompts[i]);
        }
    }
    let q = get(&s.addr, "/health").json()["queue"].clone();
    assert_eq!(q["running"], 0, "{q}");
    assert_eq!(q["waiting"], 0, "{q}");
}

#[test]
fn parallel_out_of_range_is_refused_before_loading() {
    let Some(model) = model() else { return };
    let (ok, _, stderr) = common::cli::hearth(&[
        "serve",
        "--model",
        path_str(&model),
        "--port",
        "0",
        "--parallel",
        "0",
    ]);
    assert!(!ok);
    assert!(stderr.contains("--parallel"), "{stderr}");
}
