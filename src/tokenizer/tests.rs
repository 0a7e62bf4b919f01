//! Unit tests on small hand-made vocabularies: SPM merging and byte fallback, special tokens,
//! and malformed metadata. (Real vocabularies are tested against llama.cpp in
//! tests/tokenizer_*.rs.)

use super::vocab::{SpecialIds, VocabInput};
use super::{Tokenizer, TokenizerError};

/// A tiny SPM vocab: `<unk> <s> </s>`, 256 byte tokens, then `pieces` with descending scores.
fn spm_input(pieces: &[&str]) -> VocabInput {
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut types = vec![2, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    let n_fixed = tokens.len();
    tokens.extend(pieces.iter().map(|s| s.to_string()));
    types.extend(std::iter::repeat_n(1, pieces.len()));
    let scores = (0..tokens.len())
        .map(|i| if i < n_fixed { 0.0 } else { -(i as f32) })
        .collect();
    VocabInput {
        model: "llama".into(),
        tokens,
        scores: Some(scores),
        token_types: Some(types),
        ..Default::default()
    }
}

fn id(t: &Tokenizer, text: &str) -> u32 {
    (0..t.vocab_size() as u32)
        .find(|&i| t.token_text(i) == Some(text))
        .unwrap()
}

#[test]
fn spm_merges_by_score_and_falls_back_to_bytes() {
    let t = Tokenizer::from_input(spm_input(&["▁", "h", "i", "hi", "▁hi", "▁h"])).unwrap();
    // "▁hi" beats "▁h"+"i" because merges go by the score of the merged token.
    assert_eq!(t.encode("hi", false, false).unwrap(), vec![id(&t, "▁hi")]);
    // "é" is no token: its two UTF-8 bytes become <0xC3> <0xA9>.
    let ids = t.encode("hié", true, false).unwrap();
    assert_eq!(
        ids,
        vec![1, id(&t, "▁hi"), id(&t, "<0xC3>"), id(&t, "<0xA9>")]
    );
    assert_eq!(t.decode(&ids).unwrap(), " hié"); // starts with BOS: the space stays (llama.cpp)
    assert_eq!(t.decode(&ids[1..]).unwrap(), "hié");
}

#[test]
fn stream_decoder_holds_back_split_characters() {
    let t = Tokenizer::from_input(spm_input(&["▁", "a"])).unwrap();
    let ids = t.encode("a😀", false, false).unwrap(); // ▁ a + four byte tokens
    assert_eq!(ids.len(), 6);
    let mut s = t.stream_decoder();
    let pieces: Vec<String> = ids.iter().map(|&i| s.push(i).unwrap()).collect();
    assert_eq!(pieces, [" ", "a", "", "", "", "😀"]);
    assert_eq!(s.push(id(&t, "<0xF0>")).unwrap(), "");
    assert_eq!(s.finish(), "\u{FFFD}");
    assert!(matches!(
        s.push(9999),
        Err(TokenizerError::IdOutOfRange { .. })
    ));
}

#[test]
fn control_tokens_need_parse_special_but_user_defined_do_not() {
    let mut input = spm_input(&["▁", "x", "<ctl>", "<usr>"]);
    let n = input.tokens.len();
    input.token_types.as_mut().unwrap()[n - 2] = 3;
    input.token_types.as_mut().unwrap()[n - 1] = 4;
    let t = Tokenizer::from_input(input).unwrap();
    let ctl = id(&t, "<ctl>");
    let usr = id(&t, "<usr>");
    assert!(t.encode("x<ctl>x", false, true).unwrap().contains(&ctl));
    assert!(!t.encode("x<ctl>x", false, false).unwrap().contains(&ctl));
    assert!(t.encode("x<usr>x", false, false).unwrap().contains(&usr));
    // Control tokens decode to nothing, user-defined ones to their text.
    assert_eq!(t.decode(&[ctl, usr]).unwrap(), "<usr>");
}

fn err(input: VocabInput) -> TokenizerError {
    Tokenizer::from_input(input).unwrap_err()
}

#[test]
fn malformed_metadata_gives_typed_errors() {
    assert!(matches!(
        err(VocabInput {
            model: "llama".into(),
            ..Default::default()
        }),
        TokenizerError::EmptyVocab
    ));
    assert!(matches!(
        err(VocabInput {
            model: "bert".into(),
            ..spm_input(&[])
        }),
        TokenizerError::UnsupportedModel(_)
    ));

    let mut short_scores = spm_input(&["a"]);
    short_scores.scores.as_mut().unwrap().pop();
    assert!(matches!(
        err(short_scores),
        TokenizerError::LengthMismatch { key: "scores", .. }
    ));

    let mut short_types = spm_input(&["a"]);
    short_types.token_types.as_mut().unwrap().truncate(3);
    assert!(matches!(
        err(short_types),
        TokenizerError::LengthMismatch {
            key: "token_type",
            ..
        }
    ));

    let dup = spm_input(&["a", "a"]);
    assert!(matches!(err(dup), TokenizerError::DuplicateToken { .. }));

    let bad_bos = VocabInput {
        ids: SpecialIds {
            bos: Some(1 << 40),
            ..Default::default()
        },
        ..spm_input(&[])
    };
    assert!(matches!(
        err(bad_bos),
        TokenizerError::SpecialIdOutOfRange { .. }
    ));

    let gpt2 = |tokens: &[&str], merges: &[&str], pre: &str| VocabInput {
        model: "gpt2".into(),
        pre: Some(pre.into()),
        tokens: tokens.iter().map(|s| s.to_string()).collect(),
        merges: Some(merges.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    assert!(matches!(
        err(gpt2(&["a", "b", "ab"], &["a z"], "gpt-2")),
        TokenizerError::MergeUnknownToken { .. }
    ));
    assert!(matches!(
        err(gpt2(&["a", "b"], &["a b"], "gpt-2")),
        TokenizerError::MergeUnknownToken { .. }
    ));
    assert!(matches!(
        err(gpt2(&["a", "b", "ab"], &["ab"], "gpt-2")),
        TokenizerError::MalformedMerge { .. }
    ));
    assert!(matches!(
        err(gpt2(&["a"], &[], "no-such-pre")),
        TokenizerError::UnsupportedPreTokenizer(_)
    ));
    let ok = Tokenizer::from_input(gpt2(&["a", "b", "ab", "Ġ"], &["a b"], "gpt-2")).unwrap();
    assert_eq!(ok.encode("ab", false, false).unwrap(), vec![2]);
    assert!(matches!(
        ok.decode(&[4]),
        Err(TokenizerError::IdOutOfRange { .. })
    ));
}

#[test]
fn missing_bos_is_an_error_only_when_it_must_be_added() {
    // gpt2 default BOS is id 11, out of this vocab's range: disabled, as in llama.cpp.
    let input = VocabInput {
        model: "gpt2".into(),
        pre: Some("gpt-2".into()),
        tokens: vec!["a".into()],
        merges: Some(vec![]),
        add_bos: Some(true),
        ..Default::default()
    };
    let t = Tokenizer::from_input(input).unwrap();
    assert_eq!(t.bos_id(), None);
    assert!(matches!(
        t.encode("a", true, false),
        Err(TokenizerError::MissingSpecialToken("BOS"))
    ));
    assert_eq!(t.encode("a", false, false).unwrap(), vec![0]);
}

#[test]
fn tokenizer_json_goes_through_tokenizers() {
    let json = r#"{
      "version": "1.0",
      "added_tokens": [
        {"id": 5, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
        {"id": 6, "content": "<|im_end|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
      ],
      "normalizer": null,
      "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
      "post_processor": {"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [5], "tokens": ["<s>"]}}},
      "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
      "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
        "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
        "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4},
        "merges": ["a b", "Ġ ab"]}
    }"#;
    let t = Tokenizer::from_tokenizer_json(json.as_bytes()).unwrap();
    assert_eq!(t.bos_id(), Some(5));
    assert!(t.add_bos());
    assert!(t.is_end_of_generation(6));
    assert_eq!(t.encode("ab ab", true, false).unwrap(), vec![5, 2, 4]);
    assert_eq!(t.encode("ab<|im_end|>", false, true).unwrap(), vec![2, 6]);
    assert_ne!(t.encode("ab<|im_end|>", false, false).unwrap(), vec![2, 6]);
    assert_eq!(t.decode(&[5, 2, 4, 6]).unwrap(), "ab ab");
    let mut s = t.stream_decoder();
    let streamed: String = [2, 4]
        .iter()
        .map(|&i| s.push(i).unwrap())
        .collect::<String>()
        + &s.finish();
    assert_eq!(streamed, "ab ab");
}
