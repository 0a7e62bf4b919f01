//! llama.cpp's own tokenizer test vectors (`models/ggml-vocab-NAME.gguf.inp/.out`, run by its
//! tests/test-tokenizer-0.cpp with add_special = false, parse_special = false): every vector of
//! every supported vocabulary must give exactly llama.cpp's ids. Also: decode(encode(text)) ==
//! text for plain text, and special-token parsing on a real Llama 3 vocabulary.

mod common;

use std::path::Path;

use hearth::gguf::GgufFile;
use hearth::tokenizer::Tokenizer;

/// Vocabularies with test vectors that are tested (all must pass 100%).
const TESTED: &[&str] = &[
    "llama-spm",
    "phi-3",
    "llama-bpe",
    "qwen2",
    "qwen35",
    "gpt-2",
    "deepseek-llm",
    "deepseek-coder",
    "falcon",
    "mpt",
    "starcoder",
    "refact",
    "command-r",
    "gemma-4",
];

/// Vocabularies with test vectors that are not tested, and why.
const SKIPPED: &[(&str, &str)] = &[("bert-bge", "WPM (BERT) tokenizer: out of scope")];

fn load(dir: &Path, name: &str) -> Tokenizer {
    let path = dir.join(format!("ggml-vocab-{name}.gguf"));
    let file = GgufFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Tokenizer::from_gguf(&file).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// (input, expected ids) pairs, split as test-tokenizer-0.cpp does.
fn vectors(dir: &Path, name: &str) -> Vec<(String, Vec<u32>)> {
    let base = dir.join(format!("ggml-vocab-{name}.gguf"));
    let inp = std::fs::read_to_string(base.with_extension("gguf.inp")).expect("read .inp");
    let out = std::fs::read_to_string(base.with_extension("gguf.out")).expect("read .out");
    let sep = "\n__ggml_vocab_test__\n";
    let mut inputs = Vec::new();
    let mut pos = 0;
    while pos < inp.len() {
        match inp[pos..].find(sep) {
            Some(n) => {
                inputs.push(inp[pos..pos + n].to_owned());
                pos += n + sep.len();
            }
            None => {
                inputs.push(inp[pos..].to_owned());
                break;
            }
        }
    }
    let outputs: Vec<Vec<u32>> = out
        .lines()
        .map(|l| {
            l.split_whitespace()
                .map(|t| t.parse().expect("id"))
                .collect()
        })
        .collect();
    assert_eq!(
        inputs.len(),
        outputs.len(),
        "{name}: .inp and .out disagree on the number of tests"
    );
    inputs.into_iter().zip(outputs).collect()
}

#[test]
fn every_vocab_with_vectors_is_tested_or_skipped() {
    let Some(dir) = common::llama_vendor_models() else {
        return;
    };
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(vocab) = name
            .strip_prefix("ggml-vocab-")
            .and_then(|n| n.strip_suffix(".gguf.out"))
        {
            assert!(
                TESTED.contains(&vocab) || SKIPPED.iter().any(|(s, _)| *s == vocab),
                "{vocab} has test vectors but is neither tested nor listed in SKIPPED"
            );
        }
    }
}

#[test]
fn llama_cpp_vectors_match_exactly() {
    let Some(dir) = common::llama_vendor_models() else {
        return;
    };
    let mut report = Vec::new();
    for name in TESTED {
        let tok = load(&dir, name);
        let tests = vectors(&dir, name);
        let mut failed = 0;
        for (text, want) in &tests {
            let got = tok
                .encode(text, false, false)
                .unwrap_or_else(|e| panic!("{name}: {text:?}: {e}"));
            if &got != want {
                failed += 1;
                if failed <= 3 {
                    report.push(format!("{name}: {text:?}\n  want {want:?}\n  got  {got:?}"));
                }
            }
        }
        println!("{name}: {}/{} vectors", tests.len() - failed, tests.len());
        if failed > 0 {
            report.push(format!(
                "{name}: {failed} of {} vectors differ",
                tests.len()
            ));
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}

#[test]
fn plain_text_round_trips() {
    let Some(dir) = common::llama_vendor_models() else {
        return;
    };
    let texts = [
        "Hello world",
        "The quick brown fox jumps over the lazy dog.",
        "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich",
        "我想在苹果工作 🦙 emoji and CJK",
        "line one\nline two\n\n  indented",
    ];
    for name in TESTED {
        let tok = load(&dir, name);
        for text in texts {
            let ids = tok.encode(text, false, false).unwrap();
            assert_eq!(tok.decode(&ids).unwrap(), text, "{name}: {ids:?}");
            let with_bos = tok.encode(text, true, false).unwrap();
            let decoded = tok.decode(&with_bos).unwrap();
            assert_eq!(decoded.trim_start(), text, "{name} (add_special)");
            let mut stream = tok.stream_decoder();
            let mut streamed = String::new();
            for &id in &ids {
                streamed.push_str(&stream.push(id).unwrap());
            }
            streamed.push_str(&stream.finish());
            assert_eq!(streamed.trim_start(), text.trim_start(), "{name} (stream)");
        }
    }
}

#[test]
fn llama3_special_tokens_parse_only_when_asked() {
    let Some(dir) = common::llama_vendor_models() else {
        return;
    };
    let tok = load(&dir, "llama-bpe");
    let eot = 128009; // <|eot_id|>
    assert_eq!(tok.token_text(eot), Some("<|eot_id|>"));
    assert!(tok.is_end_of_generation(eot));
    assert!(tok.is_end_of_generation(128001)); // <|end_of_text|> (EOS)
    assert!(!tok.is_end_of_generation(128000));
    assert_eq!(tok.bos_id(), Some(128000));
    assert!(tok.add_bos());

    let parsed = tok.encode("Hi<|eot_id|>", true, true).unwrap();
    assert_eq!(parsed, vec![128000, 13347, eot]);
    let literal = tok.encode("Hi<|eot_id|>", true, false).unwrap();
    assert!(!literal.contains(&eot) && literal.len() > 3, "{literal:?}");
    assert_eq!(tok.decode(&literal).unwrap(), "Hi<|eot_id|>");
    assert_eq!(tok.decode(&parsed).unwrap(), "Hi");
}

#[test]
fn stream_decoder_reassembles_byte_tokens() {
    let Some(dir) = common::llama_vendor_models() else {
        return;
    };
    for name in ["llama-spm", "llama-bpe", "qwen2"] {
        let tok = load(&dir, name);
        // Rare CJK and emoji fall back to several byte tokens per character.
        let text = "𠜎𠜱 🦙😶‍🌫️ 鑫";
        let ids = tok.encode(text, false, false).unwrap();
        let mut stream = tok.stream_decoder();
        let mut pieces = Vec::new();
        for &id in &ids {
            let p = stream.push(id).unwrap();
            assert!(
                !p.contains('\u{FFFD}'),
                "{name}: partial character leaked: {p:?}"
            );
            pieces.push(p);
        }
        assert!(
            pieces.iter().any(|p| p.is_empty()),
            "{name}: expected a character split across tokens"
        );
        let joined: String = pieces.concat() + &stream.finish();
        assert_eq!(joined.trim_start(), text, "{name}");
    }
}
