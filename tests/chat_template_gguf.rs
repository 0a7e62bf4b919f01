//! `ChatTemplate::from_gguf` on real GGUF metadata (fixtures and llama.cpp's vocab GGUFs) and
//! on crafted bad metadata.

mod common;

use std::path::PathBuf;

use hearth::gguf::{GgufError, GgufFile, GgufWriter, MetadataValue};
use hearth::tokenizer::chat_template::FallbackTemplate;
use hearth::tokenizer::{ChatMessage, ChatTemplate, ChatTemplateError};

fn vendor_gguf(name: &str) -> Option<PathBuf> {
    Some(common::llama_vendor_models()?.join(name))
}

fn hi() -> Vec<ChatMessage> {
    vec![ChatMessage::user("Hi")]
}

/// llama.cpp's Llama 2 SPM vocabulary: no template, `llama` arch, no ChatML tokens → the
/// Llama 2 `[INST]` fallback, with `<s>`/`</s>` (ids 1 and 2 in every Llama 2 vocabulary).
#[test]
fn llama_spm_vocab_falls_back_to_llama2() {
    let Some(path) = vendor_gguf("ggml-vocab-llama-spm.gguf") else {
        return;
    };
    let t = ChatTemplate::from_gguf(&GgufFile::open(path).unwrap()).unwrap();
    assert!(t.is_fallback());
    assert_eq!(t.fallback_kind(), Some(FallbackTemplate::Llama2));
    assert_eq!((t.bos_token(), t.eos_token()), ("<s>", "</s>"));
    assert_eq!(t.render(&hi(), true).unwrap(), "<s>[INST] Hi [/INST]");
}

/// llama.cpp's Llama 3 BPE vocabulary: no template → the Llama 3 header format.
#[test]
fn llama_bpe_vocab_falls_back_to_llama3() {
    let Some(path) = vendor_gguf("ggml-vocab-llama-bpe.gguf") else {
        return;
    };
    let t = ChatTemplate::from_gguf(&GgufFile::open(path).unwrap()).unwrap();
    assert_eq!(t.fallback_kind(), Some(FallbackTemplate::Llama3));
    assert_eq!(t.bos_token(), "<|begin_of_text|>");
    assert_eq!(
        t.render(&hi(), true).unwrap(),
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
}

/// Qwen2 GGUFs carry their template: it is used, and renders the ChatML-style Qwen prompt.
#[test]
fn qwen2_gguf_uses_its_template() {
    let Some(path) = common::fixture_model("rand-qwen2-f16.gguf") else {
        return;
    };
    let file = GgufFile::open(path).unwrap();
    let t = ChatTemplate::from_gguf(&file).unwrap();
    assert!(!t.is_fallback());
    assert_eq!(t.source(), file.get_str("tokenizer.chat_template").unwrap());
    let out = t
        .render(&[ChatMessage::system("S"), ChatMessage::user("Hi")], true)
        .unwrap();
    assert_eq!(
        out,
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    // Qwen2 vocabularies: bos_token_id = eos_token_id = 151643.
    assert_eq!(
        (t.bos_token(), t.eos_token()),
        ("<|endoftext|>", "<|endoftext|>")
    );
}

/// The trained stories260K model (llama arch, 512-token SentencePiece vocab, no template).
#[test]
fn stories260k_falls_back_to_llama2() {
    let Some(path) = common::fixture_model("stories260K-f32.gguf") else {
        return;
    };
    let t = ChatTemplate::from_gguf(&GgufFile::open(path).unwrap()).unwrap();
    assert_eq!(t.fallback_kind(), Some(FallbackTemplate::Llama2));
    assert_eq!((t.bos_token(), t.eos_token()), ("<s>", "</s>"));
}

fn gguf_with(metadata: Vec<(&str, MetadataValue)>) -> GgufFile {
    let mut w = GgufWriter::new();
    for (key, value) in metadata {
        w.add_metadata(key, value);
    }
    GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap()
}

fn tokens(pieces: &[&str]) -> MetadataValue {
    MetadataValue::Array(
        pieces
            .iter()
            .map(|p| MetadataValue::String(p.to_string()))
            .collect(),
    )
}

#[test]
fn template_and_tokens_from_metadata() {
    let file = gguf_with(vec![
        (
            "general.architecture",
            MetadataValue::String("llama".into()),
        ),
        (
            "tokenizer.chat_template",
            MetadataValue::String("{{ bos_token }}{{ messages[0].content }}{{ eos_token }}".into()),
        ),
        ("tokenizer.ggml.tokens", tokens(&["<unk>", "<B>", "<E>"])),
        ("tokenizer.ggml.bos_token_id", MetadataValue::U32(1)),
        ("tokenizer.ggml.eos_token_id", MetadataValue::I32(2)),
    ]);
    let t = ChatTemplate::from_gguf(&file).unwrap();
    assert_eq!(t.render(&hi(), true).unwrap(), "<B>Hi<E>");
}

#[test]
fn no_metadata_at_all_gives_chatml() {
    let t = ChatTemplate::from_gguf(&gguf_with(vec![])).unwrap();
    assert_eq!(t.fallback_kind(), Some(FallbackTemplate::ChatMl));
    assert_eq!((t.bos_token(), t.eos_token()), ("", ""));
}

#[test]
fn bos_id_outside_the_vocabulary() {
    let file = gguf_with(vec![
        ("tokenizer.ggml.tokens", tokens(&["a", "b"])),
        ("tokenizer.ggml.bos_token_id", MetadataValue::U32(7)),
    ]);
    let err = ChatTemplate::from_gguf(&file).unwrap_err();
    assert!(
        matches!(
            err,
            ChatTemplateError::TokenIdOutOfRange {
                key: "tokenizer.ggml.bos_token_id",
                id: 7,
                vocab_size: 2
            }
        ),
        "{err:?}"
    );
}

#[test]
fn template_of_the_wrong_type() {
    let file = gguf_with(vec![("tokenizer.chat_template", MetadataValue::U32(5))]);
    let err = ChatTemplate::from_gguf(&file).unwrap_err();
    assert!(
        matches!(err, ChatTemplateError::Gguf(GgufError::WrongType { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("tokenizer.chat_template"), "{err}");
}

#[test]
fn tokens_of_the_wrong_type() {
    let file = gguf_with(vec![(
        "tokenizer.ggml.tokens",
        MetadataValue::Array(vec![MetadataValue::U8(1)]),
    )]);
    let err = ChatTemplate::from_gguf(&file).unwrap_err();
    assert!(
        matches!(err, ChatTemplateError::Gguf(GgufError::WrongType { .. })),
        "{err:?}"
    );
}

#[test]
fn broken_template_in_the_file() {
    let file = gguf_with(vec![(
        "tokenizer.chat_template",
        MetadataValue::String("ok\n{% endfor %}".into()),
    )]);
    let err = ChatTemplate::from_gguf(&file).unwrap_err();
    assert!(
        matches!(err, ChatTemplateError::Syntax { line: Some(2), .. }),
        "{err:?}"
    );
}
