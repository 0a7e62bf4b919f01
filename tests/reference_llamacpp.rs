//! The CPU reference forward pass against llama.cpp's own outputs for every fixture model
//! (`../shared/fixtures/refs/*.json`, made with llama-cpp-python 0.3.36, F32 KV cache).
//!
//! Tolerances are the fixtures README's: max |logit difference| over the recorded top-20
//! entries ≤ tol, with tol = 1e-3 for F32 weights, 2e-2 for F16, 0.5 for quantized weights
//! (llama.cpp rounds activations to 8 bits before quantized dot products; we keep f32).
//! Top-1 must agree where llama.cpp's lead over its runner-up exceeds 2·tol; greedy
//! continuations must agree up to the first step whose recorded margin is below 2·tol.

mod common;

use common::logits::argmax;

use hearth::gguf::GgufFile;
use hearth::quant::GgmlType;
use hearth::reference::ReferenceModel;
use serde_json::Value;

/// Logits of a sequence fed in chunks must equal the one-shot logits to this (the pass is
/// token by token either way, so they are in fact identical).
const CHUNK_TOL: f32 = 1e-5;
const CHUNK: usize = 7;

struct Sequence {
    tokens: Vec<u32>,
    /// (position, [(token, llama.cpp logit)]) for the recorded positions.
    top20: Vec<(usize, Vec<(u32, f32)>)>,
    greedy: Vec<u32>,
    /// Per greedy step: llama.cpp's margin of the chosen token over the runner-up.
    greedy_margins: Vec<f32>,
}

fn parse_sequences(refs: &Value) -> Vec<Sequence> {
    let ids = |v: &Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as u32)
            .collect()
    };
    refs["sequences"]
        .as_array()
        .expect("sequences")
        .iter()
        .map(|s| {
            let mut top20: Vec<(usize, Vec<(u32, f32)>)> = s["top20"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(pos, entries)| {
                    let entries = entries
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| (e[0].as_u64().unwrap() as u32, e[1].as_f64().unwrap() as f32))
                        .collect();
                    (pos.parse().unwrap(), entries)
                })
                .collect();
            top20.sort_by_key(|(p, _)| *p);
            let greedy_margins = s["greedy_steps_tok_logit_margin"]
                .as_array()
                .unwrap()
                .iter()
                .map(|step| step[2].as_f64().unwrap() as f32)
                .collect();
            Sequence {
                tokens: ids(&s["tokens"]),
                top20,
                greedy: ids(&s["greedy"]),
                greedy_margins,
            }
        })
        .collect()
}

/// The README's tolerance for the model's weight types.
fn tolerance(file: &GgufFile) -> f32 {
    let types: Vec<GgmlType> = file.tensors().iter().map(|t| t.ggml_type).collect();
    if types
        .iter()
        .any(|t| !matches!(t, GgmlType::F32 | GgmlType::F16))
    {
        0.5
    } else if types.contains(&GgmlType::F16) {
        2e-2
    } else {
        1e-3
    }
}

/// `exact_greedy`: sequences whose 32 greedy tokens must all match, whatever the margins.
fn check_model(stem: &str, exact_greedy: &[usize]) {
    let (Some(path), Some(refs)) = (
        common::fixture_model(&format!("{stem}.gguf")),
        common::fixture_refs(stem),
    ) else {
        return;
    };
    let file = GgufFile::open(&path).unwrap_or_else(|e| panic!("{stem}: {e}"));
    let model = ReferenceModel::load(&file).unwrap_or_else(|e| panic!("{stem}: {e}"));
    let n_vocab = model.config().n_vocab;
    let tol = tolerance(&file);
    let mut max_diff = 0.0f32;
    let mut top1_checked = 0;
    let mut greedy_report = Vec::new();

    for (si, seq) in parse_sequences(&refs).iter().enumerate() {
        let n = seq.tokens.len();
        let mut cache = model.new_cache(n + seq.greedy.len());
        let logits = model.forward(&mut cache, &seq.tokens).unwrap();
        assert_eq!(logits.len(), n * n_vocab);
        assert!(
            logits.iter().all(|x| x.is_finite()),
            "{stem} seq {si}: non-finite logits"
        );

        // Recorded top-20 logits and top-1 agreement.
        for (pos, entries) in &seq.top20 {
            let row = &logits[pos * n_vocab..(pos + 1) * n_vocab];
            for &(id, expected) in entries {
                let diff = (row[id as usize] - expected).abs();
                max_diff = max_diff.max(diff);
                assert!(
                    diff <= tol,
                    "{stem} seq {si} pos {pos} token {id}: ours {} llama.cpp {expected} (tol {tol})",
                    row[id as usize]
                );
            }
            let margin = entries[0].1 - entries[1].1;
            if margin > 2.0 * tol {
                top1_checked += 1;
                assert_eq!(
                    argmax(row),
                    entries[0].0,
                    "{stem} seq {si} pos {pos}: top-1 differs (llama.cpp margin {margin})"
                );
            }
        }

        // The same sequence in chunks of CHUNK tokens through one cache (skipping the 200-token
        // sequence of the big-vocabulary models, whose output head makes it slow at opt-level 1).
        if n <= 64 || n_vocab <= 4096 {
            let mut chunked_cache = model.new_cache(n);
            let mut chunked = Vec::with_capacity(logits.len());
            for chunk in seq.tokens.chunks(CHUNK) {
                chunked.extend(model.forward(&mut chunked_cache, chunk).unwrap());
            }
            assert_eq!(chunked_cache.len(), n);
            let chunk_diff = logits
                .iter()
                .zip(&chunked)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(
                chunk_diff <= CHUNK_TOL,
                "{stem} seq {si}: chunked logits differ from one-shot by {chunk_diff}"
            );
        }

        // Greedy continuation, one token per forward call.
        let mut last = logits[(n - 1) * n_vocab..].to_vec();
        let mut agreed = 0;
        for (step, (&expected, &margin)) in seq.greedy.iter().zip(&seq.greedy_margins).enumerate() {
            if !exact_greedy.contains(&si) && margin < 2.0 * tol {
                break;
            }
            let ours = argmax(&last);
            assert_eq!(
                ours, expected,
                "{stem} seq {si} greedy step {step} (llama.cpp margin {margin})"
            );
            agreed += 1;
            last = model.forward(&mut cache, &[ours]).unwrap();
        }
        greedy_report.push(format!("{agreed}/{}", seq.greedy.len()));
    }
    println!(
        "{stem}: max |logit - llama.cpp| = {max_diff:.5} (tol {tol}); top-1 checked at {top1_checked} positions; greedy agreed {}",
        greedy_report.join(", ")
    );
}

#[test]
fn stories260k_f32_matches_llamacpp() {
    check_model("stories260K-f32", &[0, 1, 2]);
}

#[test]
fn stories260k_q8_0_matches_llamacpp() {
    // Sequence 0 is "Once upon a time" (the README's quoted story). Sequences 1 and 2 hit
    // near-ties (margins 0.03–0.05) that llama.cpp's 8-bit activation rounding decides, so
    // they follow the README's margin rule.
    check_model("stories260K-q8_0", &[0]);
}

#[test]
fn rand_llama_spm_q8_0_matches_llamacpp() {
    check_model("rand-llama-spm-q8_0", &[]);
}

#[test]
fn rand_llama_spm_q4_0_matches_llamacpp() {
    check_model("rand-llama-spm-q4_0", &[]);
}

#[test]
fn rand_llama_spm_q4_k_matches_llamacpp() {
    check_model("rand-llama-spm-q4_k", &[]);
}

#[test]
fn rand_llama_bpe_q4_k_matches_llamacpp() {
    check_model("rand-llama-bpe-q4_k", &[]);
}

#[test]
fn rand_qwen2_f16_matches_llamacpp() {
    check_model("rand-qwen2-f16", &[]);
}

/// Every fixture model has a test above.
#[test]
fn every_fixture_model_is_covered() {
    let Some(dir) = common::fixtures_dir() else {
        return;
    };
    let covered = [
        "stories260K-f32",
        "stories260K-q8_0",
        "rand-llama-spm-q8_0",
        "rand-llama-spm-q4_0",
        "rand-llama-spm-q4_k",
        "rand-llama-bpe-q4_k",
        "rand-qwen2-f16",
    ];
    for entry in std::fs::read_dir(dir.join("models")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = name.strip_suffix(".gguf") {
            assert!(
                covered.contains(&stem),
                "fixture model {name} has no llama.cpp comparison test"
            );
        }
    }
}
