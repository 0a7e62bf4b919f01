//! Encoding with a GGUF vocabulary: special-token partitioning, then SPM or BPE on each text
//! fragment, with BOS/EOS and the SPM space prefix as llama.cpp's `llama_vocab::impl::tokenize`.

use super::vocab::{Kind, Vocab, attr};
use super::{TokenizerError, bpe, spm};

/// A piece of the input: raw text (a byte range) or an already recognised special token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fragment {
    Text { start: usize, end: usize },
    Token(u32),
}

/// llama.cpp's `tokenizer_st_partition`: for each special token (longest first), split every
/// text fragment around its occurrences. Control and unknown tokens take part only with
/// `parse_special`; user-defined tokens always do. LSTRIP/RSTRIP tokens eat adjacent ASCII
/// whitespace.
fn partition(vocab: &Vocab, text: &str, parse_special: bool) -> Vec<Fragment> {
    let mut fragments = vec![Fragment::Text {
        start: 0,
        end: text.len(),
    }];
    let bytes = text.as_bytes();
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r');
    for &id in &vocab.special_by_len {
        let a = vocab.attr(id);
        if !parse_special && a & (attr::CONTROL | attr::UNKNOWN) != 0 {
            continue;
        }
        let Some(needle) = vocab.tokens.get(id as usize).map(String::as_str) else {
            continue;
        };
        let mut next = Vec::with_capacity(fragments.len());
        for frag in fragments {
            let Fragment::Text { mut start, end } = frag else {
                next.push(frag);
                continue;
            };
            while let Some(found) = text.get(start..end).and_then(|t| t.find(needle)) {
                let m = start + found;
                let mut left_end = m;
                if a & attr::LSTRIP != 0 {
                    while left_end > start && is_space(bytes[left_end - 1]) {
                        left_end -= 1;
                    }
                }
                if left_end > start {
                    next.push(Fragment::Text {
                        start,
                        end: left_end,
                    });
                }
                next.push(Fragment::Token(id));
                start = m + needle.len();
                if a & attr::RSTRIP != 0 {
                    while start < end && is_space(bytes[start]) {
                        start += 1;
                    }
                }
            }
            if start < end {
                next.push(Fragment::Text { start, end });
            }
        }
        fragments = next;
    }
    fragments
}

pub(crate) fn encode(
    vocab: &Vocab,
    text: &str,
    add_special: bool,
    parse_special: bool,
) -> Result<Vec<u32>, TokenizerError> {
    let fragments = if text.is_empty() {
        Vec::new()
    } else {
        partition(vocab, text, parse_special)
    };
    let mut out = Vec::new();
    if add_special && vocab.add_bos {
        out.push(
            vocab
                .bos
                .ok_or(TokenizerError::MissingSpecialToken("BOS"))?,
        );
    }
    match (vocab.kind, &vocab.bpe) {
        (Kind::Spm, _) => {
            // The space prefix goes before the first fragment and after each special token.
            let mut prev_special = true;
            for frag in fragments {
                match frag {
                    Fragment::Text { start, end } => {
                        let mut piece = String::with_capacity(end - start + 1);
                        if vocab.add_space_prefix && prev_special {
                            piece.push(' ');
                        }
                        piece.push_str(&text[start..end]);
                        spm::tokenize(vocab, &piece.replace(' ', "\u{2581}"), &mut out)?;
                        prev_special = false;
                    }
                    Fragment::Token(id) => {
                        out.push(id);
                        prev_special = true;
                    }
                }
            }
        }
        (Kind::Bpe, Some(state)) => {
            for frag in fragments {
                match frag {
                    Fragment::Text { start, end } => {
                        let raw = &text[start..end];
                        let escaped;
                        let piece = if state.escape_whitespaces {
                            escaped = raw.replace(' ', "\u{2581}");
                            escaped.as_str()
                        } else {
                            raw
                        };
                        for word in state.pre.split(piece) {
                            // Gemma 4: a run of newlines that is a token stays whole.
                            let newline_run =
                                !state.pre.byte_encode && word.bytes().all(|b| b == b'\n');
                            let whole = state.ignore_merges || newline_run;
                            bpe::tokenize_word(
                                vocab,
                                &state.merges,
                                whole,
                                state.pre.byte_encode,
                                &word,
                                &mut out,
                            );
                        }
                    }
                    Fragment::Token(id) => out.push(id),
                }
            }
        }
        (Kind::Bpe, None) => {
            return Err(TokenizerError::UnsupportedModel(
                "bpe without merges".into(),
            ));
        }
    }
    if add_special && vocab.add_eos {
        out.push(
            vocab
                .eos
                .ok_or(TokenizerError::MissingSpecialToken("EOS"))?,
        );
    }
    Ok(out)
}
