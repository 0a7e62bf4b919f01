//! The random-weight model generator: same seed → same bytes, and the models it writes load,
//! validate and run through the reference forward pass, for both architectures.

mod common;

use std::path::PathBuf;

use hearth::gguf::GgufFile;
use hearth::model::{
    Arch, Llama3RopeScaling, ModelConfig, RopeStyle, TestModelSpec, llama3_rope_factors, preset,
    write_test_model,
};
use hearth::quant::GgmlType;
use hearth::reference::{KvCache, ReferenceError, ReferenceModel};

/// A file in the temp folder, removed on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_path(name: &str) -> TempFile {
    let unique = format!("hearth-testgen-{}-{name}", std::process::id());
    TempFile(std::env::temp_dir().join(unique))
}

fn generate(spec: &TestModelSpec, name: &str) -> (TempFile, Vec<u8>) {
    let file = temp_path(name);
    write_test_model(spec, None, &file.0).unwrap();
    let bytes = std::fs::read(&file.0).unwrap();
    (file, bytes)
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    for name in ["tiny", "tiny-qwen2", "tiny-llama3"] {
        let spec = preset(name).unwrap();
        let (_, a) = generate(&spec, &format!("{name}-a.gguf"));
        let (_, b) = generate(&spec, &format!("{name}-b.gguf"));
        assert!(a == b, "{name}: two runs with seed {} differ", spec.seed);
        let other = TestModelSpec {
            seed: spec.seed + 1,
            ..spec.clone()
        };
        let (_, c) = generate(&other, &format!("{name}-c.gguf"));
        assert_eq!(a.len(), c.len());
        assert!(a != c, "{name}: seed change left the bytes unchanged");
    }
}

/// Loads a generated model, checks its config against the spec, runs a few tokens.
fn load_and_run(spec: &TestModelSpec, path: &TempFile) -> ModelConfig {
    let file = GgufFile::open(&path.0).unwrap();
    let cfg = ModelConfig::from_gguf(&file).unwrap();
    assert_eq!(cfg.arch, spec.arch);
    assert_eq!(
        (
            cfg.n_embd,
            cfg.n_layer,
            cfg.n_head,
            cfg.n_head_kv,
            cfg.n_ff,
            cfg.n_vocab,
            cfg.n_ctx_train
        ),
        (
            spec.n_embd,
            spec.n_layer,
            spec.n_head,
            spec.n_head_kv,
            spec.n_ff,
            spec.n_vocab,
            spec.n_ctx
        )
    );
    assert_eq!(cfg.tied_output, spec.tied_output);
    assert_eq!(cfg.qkv_bias, spec.arch == Arch::Qwen2);
    let model = ReferenceModel::load(&file).unwrap();
    let mut cache = model.new_cache(8);
    let tokens = [1, 300, 301, 302, 5];
    let logits = model.forward(&mut cache, &tokens).unwrap();
    assert_eq!(logits.len(), tokens.len() * cfg.n_vocab);
    assert!(logits.iter().all(|x| x.is_finite()));
    // Random weights of std 0.02 keep logits small but not degenerate.
    let max = logits.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(
        max > 1e-3 && max < 100.0,
        "{}: max |logit| {max}",
        spec.name
    );
    // Errors leave the cache as it was.
    let err = model
        .forward(&mut cache, &[cfg.n_vocab as u32])
        .unwrap_err();
    assert!(
        matches!(err, ReferenceError::TokenOutOfRange { .. }),
        "{err}"
    );
    let err = model.forward(&mut cache, &[1, 2, 3, 4]).unwrap_err();
    assert!(
        matches!(
            err,
            ReferenceError::CacheOverflow {
                len: 5,
                adding: 4,
                capacity: 8
            }
        ),
        "{err}"
    );
    assert_eq!(cache.len(), 5);
    let mut foreign = KvCache::new(cfg.n_layer + 1, cfg.kv_dim(), 8);
    let err = model.forward(&mut foreign, &[1]).unwrap_err();
    assert!(matches!(err, ReferenceError::CacheMismatch { .. }), "{err}");
    cfg
}

#[test]
fn tiny_llama_loads_and_runs() {
    let spec = preset("tiny").unwrap();
    let (path, _) = generate(&spec, "tiny-run.gguf");
    let cfg = load_and_run(&spec, &path);
    assert_eq!(cfg.rope.style, RopeStyle::Normal);
    let file = GgufFile::open(&path.0).unwrap();
    assert_eq!(
        file.tensor("blk.0.attn_q.weight").unwrap().ggml_type,
        GgmlType::Q8_0
    );
    assert_eq!(
        file.tensor("blk.0.attn_norm.weight").unwrap().ggml_type,
        GgmlType::F32
    );
}

#[test]
fn tiny_qwen2_loads_and_runs() {
    let spec = preset("tiny-qwen2").unwrap();
    let (path, _) = generate(&spec, "tiny-qwen2-run.gguf");
    let cfg = load_and_run(&spec, &path);
    assert_eq!(cfg.rope.style, RopeStyle::Neox);
    assert_eq!(cfg.rms_eps, 1e-6);
}

#[test]
fn tiny_llama3_carries_rope_factors() {
    let spec = preset("tiny-llama3").unwrap();
    let (path, _) = generate(&spec, "tiny-llama3-run.gguf");
    let cfg = load_and_run(&spec, &path);
    let head_dim = spec.n_embd / spec.n_head;
    let expected = llama3_rope_factors(&Llama3RopeScaling::default(), spec.rope_theta, head_dim);
    assert_eq!(cfg.rope.freq_factors.as_deref(), Some(&expected[..]));
    assert!(
        expected.iter().any(|f| *f > 1.0),
        "the preset's head size reaches scaled frequencies"
    );
}

#[test]
fn every_weight_type_and_block_fallback() {
    use GgmlType::*;
    // n_embd 256 fits Q4_K rows. ffn_down rows are n_ff long: 96 is not a Q4_K multiple (→ Q4_0,
    // as llama.cpp falls back to a 32-block type), 80 fits no block size (→ F16).
    for (ty, down_96, down_80) in [
        (F32, F32, F32),
        (F16, F16, F16),
        (Q8_0, Q8_0, F16),
        (Q4_0, Q4_0, F16),
        (Q4_K, Q4_0, F16),
    ] {
        for (n_ff, expected) in [(96, down_96), (80, down_80)] {
            let spec = TestModelSpec {
                weight_type: ty,
                n_embd: 256,
                n_ff,
                ..preset("tiny").unwrap()
            };
            let (path, _) = generate(&spec, &format!("types-{ty}-{n_ff}.gguf"));
            load_and_run(&spec, &path);
            let file = GgufFile::open(&path.0).unwrap();
            assert_eq!(file.tensor("blk.0.attn_q.weight").unwrap().ggml_type, ty);
            let down = file.tensor("blk.0.ffn_down.weight").unwrap().ggml_type;
            assert_eq!(down, expected, "{ty}: ffn_down rows of {n_ff}");
        }
    }
}

#[test]
fn bad_specs_are_refused() {
    let tiny = preset("tiny").unwrap();
    for spec in [
        TestModelSpec {
            n_head: 3,
            ..tiny.clone()
        },
        TestModelSpec {
            n_head_kv: 3,
            ..tiny.clone()
        },
        TestModelSpec {
            n_layer: 0,
            ..tiny.clone()
        },
        TestModelSpec {
            n_vocab: 100,
            ..tiny.clone()
        },
        TestModelSpec {
            weight_type: GgmlType::Q6_K,
            ..tiny.clone()
        },
        TestModelSpec {
            arch: Arch::Qwen2,
            llama3_rope_scaling: true,
            ..tiny.clone()
        },
    ] {
        assert!(
            write_test_model(&spec, None, &temp_path("bad.gguf").0).is_err(),
            "{spec:?}"
        );
    }
}

#[test]
fn vocabulary_copied_from_a_real_model() {
    let Some(path) = common::fixture_model("stories260K-f32.gguf") else {
        return;
    };
    let source = GgufFile::open(&path).unwrap();
    let spec = TestModelSpec {
        n_vocab: 0,
        ..preset("tiny").unwrap()
    };
    let out = temp_path("copied-vocab.gguf");
    write_test_model(&spec, Some(&source), &out.0).unwrap();
    let file = GgufFile::open(&out.0).unwrap();
    let cfg = ModelConfig::from_gguf(&file).unwrap();
    assert_eq!(cfg.n_vocab, 512);
    for (k, v) in source
        .metadata()
        .iter()
        .filter(|(k, _)| k.starts_with("tokenizer."))
    {
        assert_eq!(file.get(k), Some(v), "{k}");
    }
}

#[test]
fn presets_have_the_real_shapes() {
    let p = |n| preset(n).unwrap();
    let shape = |s: &TestModelSpec| {
        (
            s.n_embd,
            s.n_layer,
            s.n_head,
            s.n_head_kv,
            s.n_ff,
            s.n_vocab,
        )
    };
    assert_eq!(shape(&p("llama2-7b")), (4096, 32, 32, 32, 11008, 32000));
    assert_eq!(shape(&p("mistral-7b")), (4096, 32, 32, 8, 14336, 32000));
    assert_eq!(shape(&p("llama3-8b")), (4096, 32, 32, 8, 14336, 128256));
    assert_eq!(shape(&p("qwen2.5-7b")), (3584, 28, 28, 4, 18944, 152064));
    assert_eq!(p("mistral-7b").rope_theta, 1e6);
    assert!(p("llama3-8b").llama3_rope_scaling && p("llama3-8b").rope_theta == 500000.0);
    assert_eq!(
        (p("qwen2.5-7b").rms_eps, p("qwen2.5-7b").arch),
        (1e-6, Arch::Qwen2)
    );
    assert!(preset("llama-70b").is_none());
}
