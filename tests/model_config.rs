//! `ModelConfig::from_gguf` on the fixture models (values from their GGUF headers, as the
//! fixtures README lists them) and on damaged copies: each error names the key or tensor.

mod common;

use hearth::gguf::{GgufFile, GgufWriter, MetadataValue, TensorInfo};
use hearth::model::{Arch, ModelConfig, ModelError, RopeScaling, RopeStyle, estimate_memory};
use hearth::quant::GgmlType;

fn fixture(name: &str) -> Option<GgufFile> {
    let path = common::fixture_model(name)?;
    Some(GgufFile::open(&path).unwrap_or_else(|e| panic!("{name}: {e}")))
}

/// A copy of `file` with metadata and tensors passed through the edit functions (`None` drops).
fn rebuild(
    file: &GgufFile,
    meta: impl Fn(&str, &MetadataValue) -> Option<MetadataValue>,
    tensor: impl Fn(&TensorInfo, &[u8]) -> Option<(String, Vec<u64>, GgmlType, Vec<u8>)>,
) -> GgufFile {
    let mut w = GgufWriter::new();
    for (k, v) in file.metadata() {
        if let Some(v) = meta(k, v) {
            w.add_metadata(k.clone(), v);
        }
    }
    for t in file.tensors() {
        if let Some((name, dims, ty, data)) = tensor(t, file.tensor_data(t)) {
            w.add_tensor(name, &dims, ty, data).unwrap();
        }
    }
    GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap()
}

fn keep_tensor(t: &TensorInfo, data: &[u8]) -> Option<(String, Vec<u64>, GgmlType, Vec<u8>)> {
    Some((t.name.clone(), t.dims.clone(), t.ggml_type, data.to_vec()))
}

fn with_meta(file: &GgufFile, key: &str, value: Option<MetadataValue>) -> GgufFile {
    let mut w = GgufWriter::new();
    let mut added = false;
    for (k, v) in file.metadata() {
        if k == key {
            added = true;
            if let Some(v) = &value {
                w.add_metadata(k.clone(), v.clone());
            }
        } else {
            w.add_metadata(k.clone(), v.clone());
        }
    }
    if !added && let Some(v) = value {
        w.add_metadata(key, v);
    }
    for t in file.tensors() {
        w.add_tensor(
            t.name.clone(),
            &t.dims,
            t.ggml_type,
            file.tensor_data(t).to_vec(),
        )
        .unwrap();
    }
    GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap()
}

#[test]
fn stories260k_config() {
    let Some(file) = fixture("stories260K-f32.gguf") else {
        return;
    };
    let cfg = ModelConfig::from_gguf(&file).unwrap();
    assert_eq!(cfg.arch, Arch::Llama);
    assert_eq!(
        (
            cfg.n_vocab,
            cfg.n_embd,
            cfg.n_layer,
            cfg.n_head,
            cfg.n_head_kv,
            cfg.head_dim,
            cfg.n_ff,
            cfg.n_ctx_train
        ),
        (512, 64, 5, 8, 4, 8, 172, 512)
    );
    assert_eq!(cfg.rms_eps, 1e-5);
    assert_eq!(cfg.rope.style, RopeStyle::Normal);
    assert_eq!(
        (cfg.rope.n_dims, cfg.rope.freq_base, cfg.rope.scaling),
        (8, 10000.0, RopeScaling::None)
    );
    assert!(cfg.rope.freq_factors.is_none());
    assert!(cfg.tied_output && !cfg.qkv_bias);
}

#[test]
fn qwen2_and_untied_llama_configs() {
    if let Some(file) = fixture("rand-qwen2-f16.gguf") {
        let cfg = ModelConfig::from_gguf(&file).unwrap();
        assert_eq!(cfg.arch, Arch::Qwen2);
        assert_eq!(cfg.rope.style, RopeStyle::Neox);
        assert_eq!(
            (
                cfg.n_embd,
                cfg.n_head,
                cfg.n_head_kv,
                cfg.head_dim,
                cfg.n_vocab
            ),
            (16, 2, 1, 8, 151936)
        );
        assert_eq!((cfg.rope.freq_base, cfg.rms_eps), (1e6, 1e-6));
        assert!(cfg.qkv_bias && cfg.tied_output);
    }
    if let Some(file) = fixture("rand-llama-spm-q8_0.gguf") {
        let cfg = ModelConfig::from_gguf(&file).unwrap();
        assert!(!cfg.tied_output && !cfg.qkv_bias);
        assert_eq!(
            (cfg.n_head, cfg.n_head_kv, cfg.head_dim, cfg.n_ff),
            (4, 2, 16, 192)
        );
    }
}

#[test]
fn missing_and_mistyped_keys_are_named() {
    let Some(file) = fixture("stories260K-f32.gguf") else {
        return;
    };
    let err = ModelConfig::from_gguf(&with_meta(&file, "llama.block_count", None)).unwrap_err();
    assert!(err.to_string().contains("llama.block_count"), "{err}");

    let bad = with_meta(
        &file,
        "llama.block_count",
        Some(MetadataValue::String("five".into())),
    );
    let err = ModelConfig::from_gguf(&bad).unwrap_err();
    assert!(err.to_string().contains("llama.block_count"), "{err}");

    let err = ModelConfig::from_gguf(&with_meta(
        &file,
        "general.architecture",
        Some(MetadataValue::String("gpt2".into())),
    ))
    .unwrap_err();
    assert!(
        matches!(err, ModelError::UnsupportedArch(ref a) if a == "gpt2"),
        "{err}"
    );
}

#[test]
fn absurd_numbers_are_refused_before_any_allocation() {
    let Some(file) = fixture("stories260K-f32.gguf") else {
        return;
    };
    for (key, value) in [
        ("llama.block_count", MetadataValue::U32(1_000_000)),
        ("llama.embedding_length", MetadataValue::U64(1 << 40)),
        ("llama.vocab_size", MetadataValue::U32(1 << 30)),
        ("llama.attention.head_count", MetadataValue::U32(0)),
        ("llama.context_length", MetadataValue::U64(u64::MAX)),
        (
            "llama.attention.layer_norm_rms_epsilon",
            MetadataValue::F32(f32::NAN),
        ),
        ("llama.rope.freq_base", MetadataValue::F32(-1.0)),
        ("llama.rope.dimension_count", MetadataValue::U32(9)),
    ] {
        let err = ModelConfig::from_gguf(&with_meta(&file, key, Some(value))).unwrap_err();
        assert!(matches!(err, ModelError::BadValue { .. }), "{key}: {err}");
        assert!(err.to_string().contains(key), "{key}: {err}");
    }
    // 8 heads, 3 kv heads: not a whole group size.
    let err = ModelConfig::from_gguf(&with_meta(
        &file,
        "llama.attention.head_count_kv",
        Some(MetadataValue::U32(3)),
    ))
    .unwrap_err();
    assert!(err.to_string().contains("head_count_kv"), "{err}");
    // Unsupported rope scaling kinds are refused, linear is read.
    let yarn = with_meta(
        &file,
        "llama.rope.scaling.type",
        Some(MetadataValue::String("yarn".into())),
    );
    assert!(ModelConfig::from_gguf(&yarn).is_err());
    let linear = with_meta(
        &file,
        "llama.rope.scaling.type",
        Some(MetadataValue::String("linear".into())),
    );
    let linear = with_meta(
        &linear,
        "llama.rope.scaling.factor",
        Some(MetadataValue::F32(4.0)),
    );
    let cfg = ModelConfig::from_gguf(&linear).unwrap();
    assert_eq!(cfg.rope.scaling, RopeScaling::Linear { factor: 4.0 });
    assert_eq!(cfg.rope.freq_scale(), 0.25);
}

#[test]
fn wrong_shape_tensor_is_named_with_both_shapes() {
    let Some(file) = fixture("stories260K-f32.gguf") else {
        return;
    };
    let swapped = rebuild(
        &file,
        |_, v| Some(v.clone()),
        |t, data| {
            let mut dims = t.dims.clone();
            if t.name == "blk.1.attn_k.weight" {
                dims.swap(0, 1);
            }
            Some((t.name.clone(), dims, t.ggml_type, data.to_vec()))
        },
    );
    match ModelConfig::from_gguf(&swapped).unwrap_err() {
        ModelError::TensorShape {
            name,
            expected,
            found,
        } => {
            assert_eq!(name, "blk.1.attn_k.weight");
            assert_eq!((expected, found), (vec![64, 32], vec![32, 64]));
        }
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn missing_tensor_and_bad_rope_factors_are_named() {
    let Some(file) = fixture("stories260K-f32.gguf") else {
        return;
    };
    let dropped = rebuild(
        &file,
        |_, v| Some(v.clone()),
        |t, d| {
            if t.name == "blk.4.ffn_up.weight" {
                None
            } else {
                keep_tensor(t, d)
            }
        },
    );
    let err = ModelConfig::from_gguf(&dropped).unwrap_err();
    assert!(
        matches!(err, ModelError::MissingTensor { ref name } if name == "blk.4.ffn_up.weight"),
        "{err}"
    );

    // rope_freqs.weight must hold n_dims/2 = 4 positive F32 values.
    let with_factors = |values: &[f32]| {
        let mut w2 = GgufWriter::new();
        for (k, v) in file.metadata() {
            w2.add_metadata(k.clone(), v.clone());
        }
        for t in file.tensors() {
            w2.add_tensor(
                t.name.clone(),
                &t.dims,
                t.ggml_type,
                file.tensor_data(t).to_vec(),
            )
            .unwrap();
        }
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        w2.add_tensor(
            "rope_freqs.weight",
            &[values.len() as u64],
            GgmlType::F32,
            bytes,
        )
        .unwrap();
        ModelConfig::from_gguf(&GgufFile::from_bytes(w2.to_bytes().unwrap()).unwrap())
    };
    let cfg = with_factors(&[1.0, 2.0, 4.0, 8.0]).unwrap();
    assert_eq!(
        cfg.rope.freq_factors.as_deref(),
        Some(&[1.0, 2.0, 4.0, 8.0][..])
    );
    let err = with_factors(&[1.0, 2.0]).unwrap_err();
    assert!(err.to_string().contains("rope_freqs.weight"), "{err}");
    let err = with_factors(&[1.0, 0.0, 1.0, 1.0]).unwrap_err();
    assert!(err.to_string().contains("rope_freqs.weight"), "{err}");
}

#[test]
fn memory_estimate_of_stories260k() {
    let Some(file) = fixture("stories260K-f32.gguf") else {
        return;
    };
    let cfg = ModelConfig::from_gguf(&file).unwrap();
    let est = estimate_memory(&file, &cfg, 512, GgmlType::F32);
    // All tensors are F32: 4 bytes per element.
    let elements: u64 = file.tensors().iter().map(|t| t.n_elements).sum();
    assert_eq!(est.weights_bytes, 4 * elements);
    // 2 (K and V) × 5 layers × 4 kv heads × head_dim 8 × 4 bytes × 512 tokens.
    assert_eq!(est.kv_bytes, 2 * 5 * 4 * 8 * 4 * 512);
    assert_eq!(cfg.kv_bytes_per_token(GgmlType::F16), 2 * 5 * 32 * 2);
    // Q8_0: a 32-wide kv row is one 34-byte block.
    assert_eq!(cfg.kv_bytes_per_token(GgmlType::Q8_0), 2 * 5 * 34);
    assert!(est.scratch_bytes > 0);
    assert_eq!(
        est.total_bytes,
        est.weights_bytes + est.kv_bytes + est.scratch_bytes
    );
}
