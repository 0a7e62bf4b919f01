//! Malformed tokenizer metadata in real GGUF bytes gives a typed error naming the problem, never
//! a panic; and arbitrary text and ids never panic a real vocabulary.

mod common;

use hearth::gguf::{GgufFile, GgufWriter, MetadataValue as V};
use hearth::tokenizer::{Tokenizer, TokenizerError};

fn strs(items: &[&str]) -> V {
    V::Array(items.iter().map(|s| V::String(s.to_string())).collect())
}

/// A valid little gpt2 vocabulary, minus the keys in `skip`, plus `extra` (which replace).
fn gguf(skip: &[&str], extra: Vec<(&str, V)>) -> GgufFile {
    let mut kv: Vec<(&str, V)> = vec![
        ("tokenizer.ggml.model", V::String("gpt2".into())),
        ("tokenizer.ggml.pre", V::String("gpt-2".into())),
        (
            "tokenizer.ggml.tokens",
            strs(&["a", "b", "ab", "Ġ", "<|endoftext|>"]),
        ),
        (
            "tokenizer.ggml.token_type",
            V::Array([1, 1, 1, 1, 3].iter().map(|&t| V::I32(t)).collect()),
        ),
        ("tokenizer.ggml.merges", strs(&["a b"])),
        ("tokenizer.ggml.bos_token_id", V::U32(4)),
        ("tokenizer.ggml.eos_token_id", V::U32(4)),
    ];
    kv.retain(|(k, _)| !skip.contains(k) && !extra.iter().any(|(e, _)| e == k));
    kv.extend(extra);
    let mut w = GgufWriter::new();
    for (k, v) in kv {
        w.add_metadata(k, v);
    }
    GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap()
}

fn err(file: GgufFile) -> TokenizerError {
    Tokenizer::from_gguf(&file).unwrap_err()
}

#[test]
fn the_valid_baseline_loads() {
    let t = Tokenizer::from_gguf(&gguf(&[], vec![])).unwrap();
    assert_eq!(
        t.encode("ab<|endoftext|>", false, true).unwrap(),
        vec![2, 4]
    );
    assert_eq!(t.eos_id(), Some(4));
    assert!(t.is_end_of_generation(4));
}

#[test]
fn malformed_metadata_is_a_typed_error() {
    let e = err(gguf(&["tokenizer.ggml.model"], vec![]));
    assert!(matches!(&e, TokenizerError::Metadata(_)), "{e}");
    assert!(e.to_string().contains("tokenizer.ggml.model"), "{e}");

    let e = err(gguf(
        &[],
        vec![(
            "tokenizer.ggml.tokens",
            V::Array(vec![V::U32(1), V::U32(2)]),
        )],
    ));
    assert!(matches!(e, TokenizerError::Metadata(_)), "{e}");

    let e = err(gguf(&[], vec![("tokenizer.ggml.tokens", V::Array(vec![]))]));
    assert!(
        matches!(e, TokenizerError::EmptyVocab | TokenizerError::Metadata(_)),
        "{e}"
    );

    let e = err(gguf(
        &[],
        vec![("tokenizer.ggml.token_type", V::Array(vec![V::I32(1)]))],
    ));
    assert!(
        matches!(
            e,
            TokenizerError::LengthMismatch {
                key: "token_type",
                expected: 5,
                found: 1
            }
        ),
        "{e}"
    );

    let e = err(gguf(
        &[],
        vec![("tokenizer.ggml.scores", V::Array(vec![V::F32(0.0)]))],
    ));
    assert!(
        matches!(e, TokenizerError::LengthMismatch { key: "scores", .. }),
        "{e}"
    );

    let e = err(gguf(&[], vec![("tokenizer.ggml.bos_token_id", V::U32(99))]));
    assert!(
        matches!(
            e,
            TokenizerError::SpecialIdOutOfRange {
                id: 99,
                vocab_size: 5,
                ..
            }
        ),
        "{e}"
    );

    let e = err(gguf(
        &[],
        vec![("tokenizer.ggml.eos_token_id", V::String("x".into()))],
    ));
    assert!(matches!(e, TokenizerError::Metadata(_)), "{e}");

    let e = err(gguf(&[], vec![("tokenizer.ggml.merges", strs(&["a zz"]))]));
    assert!(
        matches!(&e, TokenizerError::MergeUnknownToken { part, .. } if part == "zz"),
        "{e}"
    );

    let e = err(gguf(&[], vec![("tokenizer.ggml.merges", strs(&["ab"]))]));
    assert!(
        matches!(e, TokenizerError::MalformedMerge { index: 0, .. }),
        "{e}"
    );

    let e = err(gguf(
        &[],
        vec![("tokenizer.ggml.tokens", strs(&["a", "b", "ab", "a", "x"]))],
    ));
    assert!(
        matches!(
            e,
            TokenizerError::DuplicateToken {
                first: 0,
                second: 3,
                ..
            }
        ),
        "{e}"
    );

    let e = err(gguf(
        &[],
        vec![("tokenizer.ggml.model", V::String("rwkv".into()))],
    ));
    assert!(matches!(e, TokenizerError::UnsupportedModel(_)), "{e}");

    let e = err(gguf(
        &[],
        vec![("tokenizer.ggml.pre", V::String("tekken".into()))],
    ));
    assert!(
        matches!(e, TokenizerError::UnsupportedPreTokenizer(_)),
        "{e}"
    );
}

/// Deterministic pseudo-random text over a mix of scripts, control characters and markup.
fn random_texts() -> Vec<String> {
    let alphabet: Vec<char> =
        "aZ 9\n\t\r'’.,!<|>_-éß东京🦙\u{0301}\u{200d}\u{3000}\u{85}\0▁Ġ<0x0A>"
            .chars()
            .collect();
    let mut state = 0x2545F4914F6CDD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..200)
        .map(|_| {
            let len = (next() % 40) as usize;
            (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect()
        })
        .collect()
}

#[test]
fn arbitrary_text_and_ids_never_panic() {
    let Some(dir) = common::llama_vendor_models() else {
        return;
    };
    for name in ["llama-spm", "llama-bpe", "qwen2", "deepseek-llm", "falcon"] {
        let file = GgufFile::open(dir.join(format!("ggml-vocab-{name}.gguf"))).unwrap();
        let tok = Tokenizer::from_gguf(&file).unwrap();
        for text in random_texts() {
            for (add, parse) in [(false, false), (true, true)] {
                let ids = tok.encode(&text, add, parse).unwrap();
                assert!(ids.iter().all(|&i| (i as usize) < tok.vocab_size()));
                tok.decode(&ids).unwrap();
            }
        }
        let n = tok.vocab_size() as u32;
        let ids: Vec<u32> = (0..n).step_by(97).collect();
        tok.decode(&ids).unwrap();
        let mut s = tok.stream_decoder();
        for &i in &ids {
            s.push(i).unwrap();
        }
        s.finish();
        assert!(matches!(
            tok.decode(&[n]),
            Err(TokenizerError::IdOutOfRange { .. })
        ));
    }
}
