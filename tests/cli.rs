//! The CLI contract (`hearth tokenize|score|generate|inspect|make-test-model`), driven as
//! other tools drive it, checked against llama.cpp's recorded outputs in the fixtures.

mod common;

use common::cli::{hearth, hearth_json, path_str};

#[test]
fn tokenize_matches_llama_cpp_on_every_fixture_model() {
    let Some(dir) = common::fixtures_dir() else {
        return;
    };
    for stem in [
        "stories260K-f32",
        "rand-llama-spm-q8_0",
        "rand-llama-bpe-q4_k",
        "rand-qwen2-f16",
    ] {
        let model = dir.join("models").join(format!("{stem}.gguf"));
        let refs = common::fixture_refs(stem).expect("refs");
        for case in refs["tokenization"].as_array().expect("tokenization") {
            let text = case["text"].as_str().expect("text");
            let got = hearth_json(&[
                "tokenize",
                "--model",
                path_str(&model),
                "--text",
                text,
                "--json",
            ]);
            assert_eq!(got["ids"], case["ids"], "{stem}: {text:?}");
        }
    }
}

#[test]
fn score_on_cpu_matches_llama_cpp_top_logits() {
    let Some(dir) = common::fixtures_dir() else {
        return;
    };
    // F32 weights: llama.cpp and an f32 forward pass agree to 1e-3 (fixtures README).
    let tol = 1e-3;
    let model = dir.join("models/stories260K-f32.gguf");
    let refs = common::fixture_refs("stories260K-f32").expect("refs");
    let seq = &refs["sequences"][1];
    let tokens: Vec<String> = seq["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.to_string())
        .collect();
    let got = hearth_json(&[
        "score",
        "--model",
        path_str(&model),
        "--tokens",
        &tokens.join(","),
        "--top-k",
        "20",
        "--every",
        "8",
        "--device",
        "cpu",
        "--json",
    ]);
    let positions = got["positions"].as_array().expect("positions");
    let want_positions: Vec<u64> = seq["top20_positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    let got_positions: Vec<u64> = positions
        .iter()
        .map(|p| p["pos"].as_u64().unwrap())
        .collect();
    assert_eq!(got_positions, want_positions);
    for p in positions {
        let pos = p["pos"].as_u64().unwrap().to_string();
        let want = seq["top20"][&pos].as_array().expect("recorded position");
        let got_top = p["top"].as_array().unwrap();
        assert_eq!(got_top.len(), 20);
        for entry in want {
            let id = entry[0].as_u64().unwrap();
            let want_logit = entry[1].as_f64().unwrap();
            let got_logit = got_top
                .iter()
                .find(|e| e[0].as_u64() == Some(id))
                .map(|e| e[1].as_f64().unwrap());
            // A token just outside our top 20 is a disagreement too.
            let got_logit = got_logit.unwrap_or_else(|| panic!("pos {pos}: token {id} missing"));
            assert!(
                (got_logit - want_logit).abs() <= tol,
                "pos {pos} token {id}: {got_logit} vs {want_logit}"
            );
        }
    }
}

#[test]
fn greedy_generate_on_cpu_reproduces_llama_cpp_continuation() {
    let Some(dir) = common::fixtures_dir() else {
        return;
    };
    let model = dir.join("models/stories260K-f32.gguf");
    let refs = common::fixture_refs("stories260K-f32").expect("refs");
    // sequences[0] is [BOS] + "Once upon a time".
    let seq = &refs["sequences"][0];
    let got = hearth_json(&[
        "generate",
        "--model",
        path_str(&model),
        "--prompt",
        "Once upon a time",
        "--max-tokens",
        "32",
        "--temperature",
        "0",
        "--device",
        "cpu",
        "--json",
    ]);
    assert_eq!(got["prompt_tokens"], 5);
    assert_eq!(
        got["tokens"], seq["greedy"],
        "greedy tokens differ from llama.cpp"
    );
    assert_eq!(
        got["text"].as_str().unwrap().trim_end(),
        seq["greedy_text"].as_str().unwrap().trim_end()
    );
    for key in ["ttft_ms", "prefill_tok_s", "decode_tok_s", "cached_tokens"] {
        assert!(got[key].is_number(), "{key} missing: {got}");
    }
}

#[test]
fn inspect_reports_config_and_memory() {
    let Some(model) = common::fixture_model("stories260K-q8_0.gguf") else {
        return;
    };
    let got = hearth_json(&["inspect", path_str(&model), "--json", "--ctx", "256"]);
    assert_eq!(got["architecture"], "llama");
    assert_eq!(got["config"]["n_layer"], 5);
    assert_eq!(got["config"]["n_head_kv"], 4);
    // KV at f16: 2 (K,V) × 5 layers × 4 kv heads × 8 head dim × 2 bytes × 256 tokens.
    assert_eq!(got["memory"]["kv_bytes"], 2 * 5 * 4 * 8 * 2 * 256);
    let tensors = got["tensors"].as_array().unwrap();
    let down = tensors
        .iter()
        .find(|t| t["name"] == "blk.0.ffn_down.weight")
        .unwrap();
    assert_eq!(down["type"], "F16");
}

#[test]
fn broken_model_is_a_clear_error_not_a_panic() {
    let dir = std::env::temp_dir().join(format!("hearth-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.gguf");
    std::fs::write(&bad, b"GGUF\x03\x00\x00\x00garbage").unwrap();
    for args in [
        vec!["inspect", path_str(&bad)],
        vec!["generate", "--model", path_str(&bad), "--prompt", "hi"],
    ] {
        let (ok, _, stderr) = hearth(&args);
        assert!(!ok);
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let (ok, _, stderr) = hearth(&["inspect", "/nonexistent/model.gguf"]);
    assert!(
        !ok && stderr.contains("/nonexistent/model.gguf"),
        "{stderr}"
    );
}

#[test]
fn make_test_model_is_deterministic_and_runs() {
    let dir = std::env::temp_dir().join(format!("hearth-cli-mtm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let a = dir.join("a.gguf");
    let b = dir.join("b.gguf");
    for out in [&a, &b] {
        let (ok, _, stderr) = hearth(&[
            "make-test-model",
            "--out",
            path_str(out),
            "--arch",
            "qwen2",
            "--dim",
            "64",
            "--layers",
            "2",
            "--heads",
            "4",
            "--kv-heads",
            "2",
            "--ffn",
            "128",
            "--type",
            "q8_0",
            "--seed",
            "3",
        ]);
        assert!(ok, "{stderr}");
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let got = hearth_json(&[
        "generate",
        "--model",
        path_str(&a),
        "--prompt",
        "hello",
        "--max-tokens",
        "4",
        "--temperature",
        "0",
        "--json",
    ]);
    assert_eq!(
        got["completion_tokens"].as_u64().unwrap() as usize,
        got["tokens"].as_array().unwrap().len()
    );
    let info = hearth_json(&["inspect", path_str(&a), "--json"]);
    assert_eq!(info["config"]["arch"], "qwen2");
    assert_eq!(info["config"]["qkv_bias"], true);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn score_on_gpu_agrees_with_cpu_and_llama_cpp() {
    let Some(dir) = common::fixtures_dir() else {
        return;
    };
    // Q8_0 weights: the GPU and CPU paths share f32 activations, so they agree far inside
    // llama.cpp's quantized tolerance (0.5, fixtures README); we bound GPU vs CPU at 1e-3.
    let model = dir.join("models/stories260K-q8_0.gguf");
    let refs = common::fixture_refs("stories260K-q8_0").expect("refs");
    let seq = &refs["sequences"][1];
    let tokens: Vec<String> = seq["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.to_string())
        .collect();
    let run = |device: &str| {
        hearth_json(&[
            "score",
            "--model",
            path_str(&model),
            "--tokens",
            &tokens.join(","),
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
    assert_eq!(gpu.len(), cpu.len());
    for (g, c) in gpu.iter().zip(cpu) {
        let pos = g["pos"].to_string();
        for (ge, ce) in g["top"]
            .as_array()
            .unwrap()
            .iter()
            .zip(c["top"].as_array().unwrap())
        {
            let d = (ge[1].as_f64().unwrap() - ce[1].as_f64().unwrap()).abs();
            assert!(d <= 1e-3, "pos {pos}: gpu {ge} vs cpu {ce}");
        }
        for want in seq["top20"][&pos].as_array().unwrap() {
            let got = g["top"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e[0] == want[0]);
            if let Some(got) = got {
                let d = (got[1].as_f64().unwrap() - want[1].as_f64().unwrap()).abs();
                assert!(d <= 0.5, "pos {pos}: gpu {got} vs llama.cpp {want}");
            }
        }
    }
}

#[test]
fn inspect_gpu_and_bench_report_their_fields() {
    let Some(model) = common::fixture_model("stories260K-f32.gguf") else {
        return;
    };
    let gpu = hearth_json(&["inspect", "--gpu", "--json"]);
    if gpu.get("error").is_some() && std::env::var_os("CI").is_none() {
        eprintln!("SKIP: no GPU adapter here: {}", gpu["error"]);
        return;
    }
    assert!(
        gpu["name"].is_string() && gpu["max_storage_buffer_binding_size"].as_u64().unwrap() > 0,
        "{gpu}"
    );
    let bench = hearth_json(&[
        "bench",
        "--model",
        path_str(&model),
        "--prompt-tokens",
        "16",
        "--gen-tokens",
        "4",
        "--reps",
        "1",
        "--compare-cpu",
        "--json",
    ]);
    for key in [
        "pp_tok_s",
        "tg_tok_s",
        "ratio_pp_vs_cpu",
        "ratio_tg_vs_cpu",
        "peak_rss_bytes",
    ] {
        assert!(
            bench[key].as_f64().is_some_and(|v| v > 0.0),
            "{key}: {bench}"
        );
    }
    assert_eq!(bench["device"], "gpu");
    assert_eq!(bench["cpu"]["device"], "cpu");
}
