//! The sentence-embedding model (all-MiniLM-L6-v2, fetched by scripts/fetch-real-models.sh):
//! burn's GPU forward pass agrees with the plain-Rust reference, the reference reproduces
//! sentence-transformers' published similarities, and damaged model files are clear errors.

mod common;

use std::path::Path;
use std::sync::Arc;

use hearth::embed::{Backend, EmbedError, EmbedModel, Embedder, MAX_TOKENS, Prefer, cosine};

const SENTENCES: &[&str] = &[
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome.",
    "The keeper's daughter carried a pot of tea up the 112 steps.",
    "who brought a hot drink up the tower?",
    "",
    "Ünïcödé, émojis 🙂 and punctuation!!! — all in one line.",
];

fn model() -> Option<Arc<EmbedModel>> {
    let dir = common::embed_model_dir()?;
    Some(Arc::new(
        EmbedModel::load(&dir).expect("load all-MiniLM-L6-v2"),
    ))
}

#[test]
fn sentence_transformers_example_similarities() {
    let Some(m) = model() else { return };
    let e = |s: &str| m.embed_reference(s).unwrap().vector;
    let (food, bread, movie) = (
        e("A man is eating food."),
        e("A man is eating a piece of bread."),
        e("The new movie is awesome."),
    );
    assert_eq!(food.len(), 384);
    let norm: f32 = food.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "normalized: {norm}");
    let c = cosine(&food, &bread);
    eprintln!("food/bread {c:.5}, food/movie {:.5}", cosine(&food, &movie));
    assert!((c - 0.755).abs() <= 0.002, "food vs bread: {c}");
    assert!(cosine(&food, &movie) < 0.1, "food vs movie");
}

#[test]
fn burn_forward_matches_the_reference() {
    let Some(m) = model() else { return };
    let gpu = Embedder::new(Arc::clone(&m), Prefer::Gpu);
    if gpu.backend() != Backend::Gpu {
        let why = gpu.gpu_problem.clone().unwrap_or_default();
        assert!(
            std::env::var_os("CI").is_none(),
            "no burn GPU backend and CI is set: {why}"
        );
        eprintln!("SKIP: no burn GPU backend: {why}");
        return;
    }
    let long = "The tide came in over the mudflats. ".repeat(60);
    for s in SENTENCES.iter().copied().chain([long.as_str()]) {
        let r = m.embed_reference(s).unwrap();
        let g = gpu.embed(s).unwrap();
        assert_eq!(r.tokens, g.tokens);
        let c = cosine(&r.vector, &g.vector);
        eprintln!("{:>3} tokens: cosine {c:.7}", r.tokens);
        assert!(c >= 0.9999, "{s:?}: cosine {c}");
    }
    assert_eq!(
        m.tokenize(&long).unwrap().len(),
        MAX_TOKENS,
        "truncated at 256"
    );
    // All of them in one padded pass: each as it is alone.
    let texts: Vec<&str> = SENTENCES.iter().copied().chain([long.as_str()]).collect();
    let batch = gpu.embed_batch(&texts).unwrap();
    assert_eq!(batch.len(), texts.len());
    for (s, g) in texts.iter().zip(&batch) {
        let r = m.embed_reference(s).unwrap();
        assert_eq!(r.tokens, g.tokens);
        let c = cosine(&r.vector, &g.vector);
        assert!(c >= 0.9999, "batched {s:?}: cosine {c}");
    }
}

/// A copy of the model folder with one file replaced.
fn damaged(src: &Path, file: &str, bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json", "modules.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
    std::fs::copy(
        src.join("1_Pooling/config.json"),
        dir.path().join("1_Pooling/config.json"),
    )
    .unwrap();
    let weights = dir.path().join("model.safetensors");
    #[cfg(unix)]
    std::os::unix::fs::symlink(src.join("model.safetensors"), &weights).unwrap();
    let target = dir.path().join(file);
    std::fs::remove_file(&target).ok();
    std::fs::write(&target, bytes).unwrap();
    dir
}

/// A safetensors file holding one tensor.
fn one_tensor(name: &str, shape: &[usize]) -> Vec<u8> {
    let n: usize = shape.iter().product();
    let header = format!(
        r#"{{"{name}":{{"dtype":"F32","shape":{shape:?},"data_offsets":[0,{}]}}}}"#,
        n * 4
    );
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(std::iter::repeat_n(0u8, n * 4));
    out
}

#[test]
fn damaged_model_files_are_clear_errors() {
    let Some(src) = common::embed_model_dir() else {
        return;
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("model.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":".to_vec(), "weights"),
        ("model.safetensors", vec![0xff; 8], "weights"),
        (
            "model.safetensors",
            one_tensor("embeddings.word_embeddings.weight", &[3, 4]),
            "missing",
        ),
        (
            "model.safetensors",
            one_tensor("encoder.layer.0.attention.self.query.weight", &[384, 383]),
            "shape",
        ),
        ("config.json", br#"{"vocab_size": 1}"#.to_vec(), "config.json"),
        (
            "config.json",
            br#"{"vocab_size":30522,"hidden_size":384,"num_hidden_layers":6,"num_attention_heads":7,"intermediate_size":1536,"max_position_embeddings":512}"#.to_vec(),
            "multiple",
        ),
        ("tokenizer.json", b"not json".to_vec(), "tokenizer"),
        ("1_Pooling/config.json", br#"{"pooling_mode_cls_token": true}"#.to_vec(), "mean pooling"),
    ];
    for (file, bytes, needle) in cases {
        let dir = damaged(&src, file, &bytes);
        let err = EmbedModel::load(dir.path()).expect_err(file);
        let text = err.to_string();
        assert!(text.contains(needle), "{file}: {text}");
    }
    let missing = tempfile::tempdir().unwrap();
    assert!(matches!(
        EmbedModel::load(missing.path()),
        Err(EmbedError::Io { .. })
    ));
}
