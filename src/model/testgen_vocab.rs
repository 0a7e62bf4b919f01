//! Vocabularies for generated test models: copied from a real GGUF's `tokenizer.*` keys, or a
//! synthetic SentencePiece vocabulary that llama.cpp-style SPM tokenizers can encode any text
//! with (byte fallback covers what the pieces miss).

use crate::gguf::{GgufFile, MetadataValue};

use super::error::ModelError;

/// SPM token types (llama.cpp's `llama_token_type`).
const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;
const CONTROL: i32 = 3;
const BYTE: i32 = 6;

/// <unk>, <s>, </s> and the 256 byte tokens.
pub(crate) const SPM_FIXED_TOKENS: usize = 3 + 256;

/// Every `tokenizer.*` key of `file`, and its token count.
pub(crate) fn copy_vocab(
    file: &GgufFile,
) -> Result<(Vec<(String, MetadataValue)>, usize), ModelError> {
    let n_vocab = match file.get("tokenizer.ggml.tokens") {
        Some(MetadataValue::Array(tokens)) if !tokens.is_empty() => tokens.len(),
        _ => {
            return Err(ModelError::BadVocab(
                "tokenizer.ggml.tokens is missing or not a non-empty array".into(),
            ));
        }
    };
    let keys = file
        .metadata()
        .iter()
        .filter(|(k, _)| k.starts_with("tokenizer."))
        .cloned()
        .collect();
    Ok((keys, n_vocab))
}

/// A synthetic SPM vocabulary of exactly `n_vocab` tokens: <unk>, <s>, </s>, `<0x00>`..`<0xFF>`,
/// then printable pieces (single characters, "▁"-prefixed characters, then ever longer
/// lowercase strings), scored so that shorter pieces merge first.
pub(crate) fn synthetic_spm_vocab(
    n_vocab: usize,
) -> Result<Vec<(String, MetadataValue)>, ModelError> {
    if n_vocab <= SPM_FIXED_TOKENS {
        return Err(ModelError::BadSpec(format!(
            "a synthetic SPM vocabulary needs more than {SPM_FIXED_TOKENS} tokens, got n_vocab = {n_vocab}"
        )));
    }
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![UNKNOWN, CONTROL, CONTROL];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(BYTE);
    }
    let mut pieces = printable_pieces();
    while tokens.len() < n_vocab {
        tokens.push(pieces.next().expect("the piece sequence is unbounded"));
        types.push(NORMAL);
    }
    let scores: Vec<MetadataValue> = (0..n_vocab)
        .map(|i| {
            MetadataValue::F32(if i < SPM_FIXED_TOKENS {
                0.0
            } else {
                -((i - SPM_FIXED_TOKENS) as f32)
            })
        })
        .collect();
    let str_array =
        |v: Vec<String>| MetadataValue::Array(v.into_iter().map(MetadataValue::String).collect());
    Ok(vec![
        (
            "tokenizer.ggml.model".into(),
            MetadataValue::String("llama".into()),
        ),
        (
            "tokenizer.ggml.pre".into(),
            MetadataValue::String("default".into()),
        ),
        ("tokenizer.ggml.tokens".into(), str_array(tokens)),
        ("tokenizer.ggml.scores".into(), MetadataValue::Array(scores)),
        (
            "tokenizer.ggml.token_type".into(),
            MetadataValue::Array(types.into_iter().map(MetadataValue::I32).collect()),
        ),
        ("tokenizer.ggml.bos_token_id".into(), MetadataValue::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), MetadataValue::U32(2)),
        (
            "tokenizer.ggml.unknown_token_id".into(),
            MetadataValue::U32(0),
        ),
        (
            "tokenizer.ggml.add_bos_token".into(),
            MetadataValue::Bool(true),
        ),
        (
            "tokenizer.ggml.add_eos_token".into(),
            MetadataValue::Bool(false),
        ),
    ])
}

/// "▁", the printable ASCII characters bare and "▁"-prefixed, then all lowercase strings of
/// length 2, 3, ... each bare and "▁"-prefixed. Unbounded and free of duplicates.
fn printable_pieces() -> impl Iterator<Item = String> {
    let singles = std::iter::once("▁".to_string())
        .chain(('!'..='~').flat_map(|c| [c.to_string(), format!("▁{c}")]));
    let words = (2u32..).flat_map(|len| {
        (0..26u64.pow(len)).flat_map(move |mut n| {
            let mut s = String::with_capacity(len as usize);
            for _ in 0..len {
                s.insert(0, (b'a' + (n % 26) as u8) as char);
                n /= 26;
            }
            [s.clone(), format!("▁{s}")]
        })
    });
    singles.chain(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_vocab_has_exactly_n_unique_tokens() {
        let meta = synthetic_spm_vocab(2000).unwrap();
        let Some((_, MetadataValue::Array(tokens))) =
            meta.iter().find(|(k, _)| k == "tokenizer.ggml.tokens")
        else {
            panic!("no tokens")
        };
        assert_eq!(tokens.len(), 2000);
        let set: std::collections::HashSet<_> = tokens.iter().filter_map(|t| t.as_str()).collect();
        assert_eq!(set.len(), 2000);
        assert_eq!(tokens[3].as_str(), Some("<0x00>"));
        assert_eq!(tokens[258].as_str(), Some("<0xFF>"));
        assert_eq!(tokens[259].as_str(), Some("▁"));
    }

    #[test]
    fn too_small_a_synthetic_vocab_is_an_error() {
        assert!(matches!(
            synthetic_spm_vocab(259),
            Err(ModelError::BadSpec(_))
        ));
    }
}
