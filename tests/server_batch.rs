//! `hearth serve` with several requests at once (`--parallel`): concurrent greedy requests with
//! different prompts — two sharing a long prefix — each get exactly the text `hearth generate
//! --temperature 0` gives for their prompt alone, streamed or not, while their decodes share
//! batched steps (on a fixture model and on SmolLM2); the server is idle and reusable
//! afterwards. In process, through the server's engine handle and scheduler: a long prefill
//! does not starve a running stream, and requests admitted together share their common prefix.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use common::cli::{gpu_available, hearth_json, path_str};
use common::http::{get, post_json, request};
use common::serve::ServeProc;
use hearth::engine::SamplerConfig;
use hearth::engine::gpu_forward::{GpuForward, GpuForwardOptions};
use hearth::gguf::GgufFile;
use hearth::kv::Tiers;
use hearth::metrics::Metrics;
use hearth::server::worker::{self, EngineHandle, EngineParts, Event, Finished, Job};
use hearth::tokenizer::Tokenizer;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

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

/// The same on a real trained model (SmolLM2-135M), three requests at once.
#[test]
fn concurrent_greedy_requests_on_smollm2_each_equal_hearth_generate() {
    let Some(model) = common::real_model("SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    if !gpu_available() {
        return;
    }
    let prompts = [
        "The capital of France is",
        "def fibonacci(n):",
        "Once upon a time, in a small village by the sea, there lived an old fisherman who",
    ];
    let max_tokens = 12;
    let want: Vec<String> = prompts
        .iter()
        .map(|p| cli_text(&model, p, max_tokens))
        .collect();
    let s = ServeProc::start(&model, &["--parallel", "3", "--ctx", "512"]);
    let id = s.model_id.clone();
    let got: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = prompts
            .iter()
            .map(|p| {
                let body =
                    json!({"model": id, "prompt": p, "max_tokens": max_tokens, "temperature": 0});
                let addr = s.addr.clone();
                scope.spawn(move || streamed_text(&addr, &body))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "prompt {i}: {:?}", prompts[i]);
    }
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

/// The server's engine thread in process on a fixture model (random weights, 2,048 context),
/// `parallel` requests at once, loaded as `hearth serve` loads it.
fn engine(parallel: usize) -> Option<(EngineHandle, worker::EngineThread, usize)> {
    let path = common::fixture_model("rand-llama-spm-q8_0.gguf")?;
    let gpu = common::gpu()?;
    let file = GgufFile::open(&path).unwrap();
    let tokenizer = Arc::new(Tokenizer::from_gguf(&file).unwrap());
    let (opts, plan) = hearth::chat::planned_options(gpu.info(), &file, 1024, None).unwrap();
    assert!(plan.fits);
    let opts = GpuForwardOptions {
        max_step_sequences: parallel,
        ..opts
    };
    let chunk = opts.max_batch;
    let metrics = Metrics::new();
    let m = metrics.clone();
    let (handle, thread) = worker::start(4, parallel, metrics, move || {
        Ok(EngineParts {
            forward: GpuForward::load(gpu, &file, opts).map_err(|e| e.to_string())?,
            tiers: Tiers::new(1 << 20, None, m),
            tokenizer,
        })
    })
    .unwrap();
    Some((handle, thread, chunk))
}

fn job(prompt: Vec<u32>, max_tokens: usize) -> (Job, UnboundedReceiver<Event>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let job = Job {
        prompt,
        max_tokens,
        sampler: SamplerConfig::greedy(),
        stop: Vec::new(),
        events: tx,
        queued_at: Instant::now(),
    };
    (job, rx)
}

/// Reads a job's events to its summary.
fn done(rx: &mut UnboundedReceiver<Event>) -> Finished {
    loop {
        match rx.blocking_recv() {
            Some(Event::Done(f)) => return *f,
            Some(Event::Text(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}

/// A long prompt arriving while a stream decodes is prefilled in chunks between that stream's
/// decode steps: the running stream keeps producing tokens during the new request's prefill
/// (in the engine's own event order, so no timing is involved). In process, through the
/// server's `EngineHandle` and scheduler.
#[test]
fn a_long_prefill_does_not_starve_a_running_stream() {
    let Some((handle, thread, chunk)) = engine(2) else {
        return;
    };
    let (a, mut a_rx) = job((1..9).collect(), 400);
    handle.submit(a).unwrap();
    // A is decoding once its first text arrives.
    assert!(matches!(a_rx.blocking_recv(), Some(Event::Text(_))));
    let chunks = 6;
    let (b, mut b_rx) = job((100..100 + (chunks * chunk) as u32).collect(), 1);
    handle.submit(b).unwrap();
    assert_eq!(done(&mut b_rx).prompt_tokens, chunks * chunk);
    // Everything A's stream got before B's summary was sent is in A's channel now.
    let mut a_tokens = 0;
    while let Ok(e) = a_rx.try_recv() {
        match e {
            Event::Text(_) => a_tokens += 1,
            Event::Done(f) => panic!("A ended during B's prefill: {f:?}"),
            Event::Failed(e) => panic!("A failed: {e:?}"),
        }
    }
    assert!(
        a_tokens >= chunks - 2,
        "A streamed {a_tokens} pieces during B's {chunks}-chunk prefill"
    );
    drop(a_rx);
    drop(handle);
    thread.join().unwrap();
}

/// Two requests submitted together whose prompts share 96 tokens: the second takes its
/// sequence when its prefill is due, after the first's prefill registered the shared blocks,
/// so it reuses all six of them instead of computing them again.
#[test]
fn requests_admitted_together_share_their_common_prefix() {
    let Some((handle, thread, _)) = engine(2) else {
        return;
    };
    let prefix: Vec<u32> = (200..296).collect();
    let (a, mut a_rx) = job([prefix.clone(), vec![5, 6, 7]].concat(), 8);
    let (b, mut b_rx) = job([prefix, vec![8, 9]].concat(), 8);
    handle.submit(a).unwrap();
    handle.submit(b).unwrap();
    let (fa, fb) = (done(&mut a_rx), done(&mut b_rx));
    assert_eq!(fa.reused.total(), 0, "{fa:?}");
    assert_eq!(fb.reused.total(), 96, "{fb:?}");
    assert_eq!(fb.reused.gpu, 96, "{fb:?}");
    drop(handle);
    thread.join().unwrap();
}
