//! Reads every fixture model (written by llama.cpp's gguf-py) and llama.cpp's vocab-only
//! GGUFs, checks facts from fixtures/README.md, and rewrites each fixture with `GgufWriter`,
//! expecting the original file byte for byte.

mod common;

use hearth::gguf::{GgufFile, GgufWriter, MetadataValue};
use hearth::quant::GgmlType;

struct Expect {
    file: &'static str,
    arch: &'static str,
    embd: u32,
    layers: u32,
    heads: u32,
    heads_kv: u32,
    ff: u32,
    vocab: usize,
    tied: bool,
    qkv_bias: bool,
    token_embd: GgmlType,
    attn_q: GgmlType,
    ffn_down: GgmlType,
}

use GgmlType::*;

/// The table in fixtures/README.md.
#[rustfmt::skip]
const MODELS: &[Expect] = &[
    Expect { file: "stories260K-f32.gguf", arch: "llama", embd: 64, layers: 5, heads: 8, heads_kv: 4, ff: 172, vocab: 512, tied: true, qkv_bias: false, token_embd: F32, attn_q: F32, ffn_down: F32 },
    Expect { file: "stories260K-q8_0.gguf", arch: "llama", embd: 64, layers: 5, heads: 8, heads_kv: 4, ff: 172, vocab: 512, tied: true, qkv_bias: false, token_embd: Q8_0, attn_q: Q8_0, ffn_down: F16 },
    Expect { file: "rand-llama-spm-q8_0.gguf", arch: "llama", embd: 64, layers: 2, heads: 4, heads_kv: 2, ff: 192, vocab: 32000, tied: false, qkv_bias: false, token_embd: Q8_0, attn_q: Q8_0, ffn_down: Q8_0 },
    Expect { file: "rand-llama-spm-q4_0.gguf", arch: "llama", embd: 64, layers: 2, heads: 8, heads_kv: 8, ff: 128, vocab: 32000, tied: true, qkv_bias: false, token_embd: Q4_0, attn_q: Q4_0, ffn_down: Q4_0 },
    Expect { file: "rand-llama-spm-q4_k.gguf", arch: "llama", embd: 256, layers: 2, heads: 4, heads_kv: 2, ff: 512, vocab: 32000, tied: true, qkv_bias: false, token_embd: Q6_K, attn_q: Q4_K, ffn_down: Q4_K },
    Expect { file: "rand-llama-bpe-q4_k.gguf", arch: "llama", embd: 32, layers: 2, heads: 2, heads_kv: 1, ff: 256, vocab: 128256, tied: true, qkv_bias: false, token_embd: Q4_0, attn_q: Q4_0, ffn_down: Q4_K },
    Expect { file: "rand-qwen2-f16.gguf", arch: "qwen2", embd: 16, layers: 2, heads: 2, heads_kv: 1, ff: 64, vocab: 151936, tied: true, qkv_bias: true, token_embd: F16, attn_q: F16, ffn_down: F16 },
];

#[test]
fn fixture_models_match_the_readme_table() {
    for e in MODELS {
        let Some(path) = common::fixture_model(e.file) else {
            return;
        };
        let f = GgufFile::open(&path).unwrap_or_else(|err| panic!("{}: {err}", e.file));
        assert_eq!(f.version(), 3, "{}", e.file);
        assert_eq!(f.alignment(), 32, "{}", e.file);
        assert_eq!(
            f.get_str("general.architecture").unwrap(),
            e.arch,
            "{}",
            e.file
        );
        let key = |k: &str| format!("{}.{k}", e.arch);
        assert_eq!(
            f.get_u32(&key("embedding_length")).unwrap(),
            e.embd,
            "{}",
            e.file
        );
        assert_eq!(
            f.get_u32(&key("block_count")).unwrap(),
            e.layers,
            "{}",
            e.file
        );
        assert_eq!(
            f.get_u32(&key("attention.head_count")).unwrap(),
            e.heads,
            "{}",
            e.file
        );
        assert_eq!(
            f.get_u32(&key("attention.head_count_kv")).unwrap(),
            e.heads_kv,
            "{}",
            e.file
        );
        assert_eq!(
            f.get_u32(&key("feed_forward_length")).unwrap(),
            e.ff,
            "{}",
            e.file
        );
        assert_eq!(
            f.get_str_array("tokenizer.ggml.tokens").unwrap().len(),
            e.vocab,
            "{}",
            e.file
        );

        // token_embd + output_norm + 9 per layer (+ 3 biases per layer) (+ output if untied).
        let per_layer = 9 + if e.qkv_bias { 3 } else { 0 };
        let expected_count = 2 + per_layer * e.layers as usize + usize::from(!e.tied);
        assert_eq!(f.tensors().len(), expected_count, "{}", e.file);
        assert_eq!(f.tensor("output.weight").is_some(), !e.tied, "{}", e.file);
        assert_eq!(
            f.tensor("blk.0.attn_q.bias").is_some(),
            e.qkv_bias,
            "{}",
            e.file
        );

        let embd = f.tensor("token_embd.weight").expect("token_embd.weight");
        assert_eq!(embd.dims, [u64::from(e.embd), e.vocab as u64], "{}", e.file);
        assert_eq!(embd.ggml_type, e.token_embd, "{}", e.file);
        assert_eq!(
            f.tensor("blk.0.attn_q.weight").unwrap().ggml_type,
            e.attn_q,
            "{}",
            e.file
        );
        assert_eq!(
            f.tensor("blk.1.ffn_down.weight").unwrap().ggml_type,
            e.ffn_down,
            "{}",
            e.file
        );
        assert_eq!(
            f.tensor("blk.1.attn_norm.weight").unwrap().ggml_type,
            F32,
            "{}",
            e.file
        );
        assert_eq!(
            f.tensor("output_norm.weight").unwrap().dims,
            [u64::from(e.embd)],
            "{}",
            e.file
        );

        // Every tensor's bytes lie aligned in the data section, in file order, and the last
        // one (padded) ends the file, as gguf-py writes them.
        let mut end = 0;
        for t in f.tensors() {
            assert_eq!(t.offset % 32, 0, "{} {}", e.file, t.name);
            assert!(t.offset >= end, "{} {}", e.file, t.name);
            assert_eq!(
                f.tensor_data(t).len() as u64,
                t.n_bytes,
                "{} {}",
                e.file,
                t.name
            );
            assert_eq!(
                t.ggml_type.bytes_for(t.dims.iter().product()),
                Some(t.n_bytes)
            );
            end = t.offset + t.n_bytes;
        }
        assert_eq!(
            f.data_offset() + end.div_ceil(32) * 32,
            f.file_size(),
            "{}",
            e.file
        );
    }
}

#[test]
fn first_f32_weights_are_the_values_in_the_file() {
    // Independent of the reader: the first 4 bytes of the data section are token_embd[0][0].
    let Some(path) = common::fixture_model("stories260K-f32.gguf") else {
        return;
    };
    let f = GgufFile::open(&path).unwrap();
    let raw = std::fs::read(&path).unwrap();
    let t = f.tensor("token_embd.weight").unwrap();
    assert_eq!(t.offset, 0);
    let start = f.data_offset() as usize;
    assert_eq!(&f.tensor_data(t)[..8], &raw[start..start + 8]);
    let first = f32::from_le_bytes(raw[start..start + 4].try_into().unwrap());
    assert!(first.is_finite() && first != 0.0);
}

fn rewrite(f: &GgufFile) -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.set_version(f.version());
    for (k, v) in f.metadata() {
        w.add_metadata(k.clone(), v.clone());
    }
    for t in f.tensors() {
        w.add_tensor(
            t.name.clone(),
            &t.dims,
            t.ggml_type,
            f.tensor_data(t).to_vec(),
        )
        .unwrap();
    }
    w.to_bytes().unwrap()
}

#[test]
fn rewriting_each_fixture_reproduces_it_byte_for_byte() {
    for e in MODELS {
        let Some(path) = common::fixture_model(e.file) else {
            return;
        };
        let original = std::fs::read(&path).unwrap();
        let f = GgufFile::from_bytes(original.clone()).unwrap();
        let written = rewrite(&f);
        let again = GgufFile::from_bytes(written.clone()).unwrap();
        assert_eq!(f.metadata(), again.metadata(), "{}", e.file);
        for (a, b) in f.tensors().iter().zip(again.tensors()) {
            assert_eq!(a, b, "{}", e.file);
            assert_eq!(
                f.tensor_data(a),
                again.tensor_data(b),
                "{} {}",
                e.file,
                a.name
            );
        }
        let first_diff = written.iter().zip(&original).position(|(a, b)| a != b);
        assert_eq!(first_diff, None, "{}: first differing byte", e.file);
        assert_eq!(written.len(), original.len(), "{}", e.file);
    }
}

#[test]
fn llama_cpp_vocab_files_read_and_rewrite_identically() {
    let Some(dir) = common::llama_vendor_models() else {
        return;
    };
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "gguf") {
            continue;
        }
        let original = std::fs::read(&path).unwrap();
        let f = GgufFile::from_bytes(original.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let tokens = f.get_str_array("tokenizer.ggml.tokens").unwrap();
        assert!(!tokens.is_empty(), "{}", path.display());
        assert!(matches!(
            f.get("tokenizer.ggml.model"),
            Some(MetadataValue::String(_))
        ));
        assert!(
            rewrite(&f) == original,
            "{}: rewrite differs",
            path.display()
        );
        n += 1;
    }
    assert!(n >= 10, "only {n} vocab GGUFs in {}", dir.display());
}
