//! Decoding with a GGUF vocabulary: token → bytes (llama.cpp's `token_to_piece` with
//! `special = false`) and whole-sequence detokenization (`detokenize` with `remove_special`),
//! plus the UTF-8 hold-back used for streaming.

use super::unicode::char_to_byte;
use super::vocab::{Kind, Vocab, attr};

/// The bytes one token stands for. Control and unknown tokens give nothing.
pub(crate) fn piece(vocab: &Vocab, id: u32) -> Vec<u8> {
    let a = vocab.attr(id);
    let Some(text) = vocab.tokens.get(id as usize) else {
        return Vec::new();
    };
    if a & (attr::UNKNOWN | attr::CONTROL) != 0 {
        return Vec::new();
    }
    if a & attr::USER_DEFINED != 0 {
        return text.as_bytes().to_vec();
    }
    if a & attr::NORMAL != 0 {
        let spm_style =
            vocab.kind == Kind::Spm || vocab.bpe.as_ref().is_some_and(|b| b.escape_whitespaces);
        return if spm_style {
            text.replace('\u{2581}', " ").into_bytes()
        } else {
            byte_level_decode(text)
        };
    }
    if a & attr::BYTE != 0 {
        // `<0xXX>`; a byte token in any other form is rendered as its text.
        return match parse_byte_token(text) {
            Some(b) => vec![b],
            None => text.as_bytes().to_vec(),
        };
    }
    Vec::new()
}

fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// GPT-2 byte-level text back to bytes (llama.cpp's `llama_decode_text`, including its marker
/// for code points that are not byte-level characters).
fn byte_level_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match char_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                out.extend_from_slice(b"[UNK_BYTE_0x");
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text.as_bytes());
                out.push(b']');
            }
        }
    }
    out
}

/// llama.cpp's `detokenize(remove_special = true, unparse_special = false)`: drops a leading
/// BOS and trailing EOS when the model adds them, strips the SPM space prefix from the first
/// piece unless the sequence starts with BOS, and applies the model's space clean-up.
pub(crate) fn detokenize(vocab: &Vocab, ids: &[u32]) -> Vec<u8> {
    let mut ids = ids;
    let mut remove_space = vocab.add_space_prefix;
    if vocab.add_bos && !ids.is_empty() && ids.first().copied() == vocab.bos {
        remove_space = false;
        ids = &ids[1..];
    }
    if vocab.add_eos && !ids.is_empty() && ids.last().copied() == vocab.eos {
        ids = &ids[..ids.len() - 1];
    }
    let mut text = Vec::new();
    for &id in ids {
        let p = piece(vocab, id);
        let p = if remove_space {
            p.strip_prefix(b" ").unwrap_or(&p)
        } else {
            &p[..]
        };
        text.extend_from_slice(p);
        remove_space = false;
    }
    if vocab.clean_spaces {
        clean_up_spaces(&text)
    } else {
        text
    }
}

/// llama.cpp's three clean-up passes: " ?" " !" " ." " ," lose the space; a lone "'" between
/// spaces loses both; " 's" " 'm" " 're" " 've" lose the space.
fn clean_up_spaces(text: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    for (i, &x) in text.iter().enumerate() {
        if i > 0 && text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            out.pop();
        }
        out.push(x);
    }
    let t = std::mem::take(&mut out);
    let mut i = 0;
    // llama.cpp blanks the removed following space in place, so the next character never
    // sees a space before it.
    let mut prev_blanked = false;
    while i < t.len() {
        let x = t[i];
        let prev_space = i > 0 && !prev_blanked && t[i - 1] == b' ';
        prev_blanked = false;
        if x == b'\'' && i + 1 < t.len() && prev_space && t[i + 1] == b' ' {
            out.pop();
            out.push(x);
            i += 2; // the following space goes too
            prev_blanked = true;
            continue;
        }
        out.push(x);
        i += 1;
    }
    let t = std::mem::take(&mut out);
    for (i, &x) in t.iter().enumerate() {
        if i > 0 && t[i - 1] == b' ' && x == b'\'' && i + 1 < t.len() {
            let x1 = t[i + 1];
            let x2 = t.get(i + 2).copied();
            let drop = matches!(x1, b's' | b'm')
                || matches!((x1, x2), (b'r', Some(b'e')) | (b'v', Some(b'e')));
            if drop {
                out.pop();
            }
        }
        out.push(x);
    }
    out
}

/// Appends the complete UTF-8 characters at the front of `pending` to `out` and keeps an
/// unfinished sequence at its end. Invalid bytes become U+FFFD.
pub(crate) fn drain_utf8(pending: &mut Vec<u8>, out: &mut String) {
    let mut rest: &[u8] = pending;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                rest = &[];
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        out.push('\u{FFFD}');
                        rest = &after[n..];
                    }
                    None => {
                        rest = after; // incomplete: wait for more bytes
                        break;
                    }
                }
            }
        }
    }
    let keep = rest.len();
    let drop = pending.len() - keep;
    pending.drain(..drop);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_up_matches_llama_cpp_passes() {
        let c = |s: &str| String::from_utf8(clean_up_spaces(s.as_bytes())).unwrap();
        assert_eq!(c("Hello , world !"), "Hello, world!");
        assert_eq!(c("a ' b"), "a'b");
        assert_eq!(
            c("it 's I 'm we 're they 've don 't"),
            "it's I'm we're they've don 't"
        );
    }

    #[test]
    fn drain_holds_back_incomplete_sequences() {
        let mut pending = vec![b'a', 0xF0, 0x9F];
        let mut out = String::new();
        drain_utf8(&mut pending, &mut out);
        assert_eq!((out.as_str(), pending.len()), ("a", 2));
        pending.extend_from_slice(&[0x98, 0x80]);
        drain_utf8(&mut pending, &mut out);
        assert_eq!((out.as_str(), pending.len()), ("a😀", 0));
        pending.extend_from_slice(&[0xFF, b'b']);
        drain_utf8(&mut pending, &mut out);
        assert_eq!(out, "a😀\u{FFFD}b");
    }
}
