//! `chunk`: a document's text cut into overlapping pieces of about the same length, at the most
//! natural boundary available, for BM25 routing (`Store::replace_chunks` / `search_chunks`).
//!
//! Lengths count chars (Unicode scalar values), as the store's chunk ranges do. With
//! `target = max(target_chars, 1)`:
//! - every chunk is at most `target` chars long and never empty; every chunk but the last is at
//!   least `ceil(target / 2)` chars long;
//! - a chunk ends at the last boundary in its allowed range `[ceil(target/2), target]`, taking
//!   the best kind available: a paragraph break (after a blank line), then a sentence end (after
//!   `.`, `!`, `?` or `…`, possibly closed by a quote or bracket, and the space after it; or after
//!   `。！？`), then a line end, then any whitespace; with none, it is cut at `target` chars (on
//!   a char boundary, as every cut is);
//! - the next chunk starts `overlap` chars before the previous one ended, where
//!   `overlap = min(overlap_chars, ceil(target/2) - 1)`, moved forward to the next word start
//!   inside the overlap when there is one: consecutive chunks overlap by at most `overlap` chars
//!   and never leave a gap, so every char of the text is in at least one chunk;
//! - both ends of a chunk only move forward, so it terminates in O(text length) whatever the
//!   input (one 1 MB line without spaces is cut every `target` chars).

use crate::store::ChunkSpec;

/// About 350–400 tokens of English prose: small enough for BM25 to point at one passage.
pub const DEFAULT_TARGET_CHARS: usize = 1500;
/// One or two sentences shared by neighbouring chunks, so a fact on a boundary is whole in one.
pub const DEFAULT_OVERLAP_CHARS: usize = 150;

/// How good a place to end a chunk is; higher is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Boundary {
    Whitespace,
    Line,
    Sentence,
    Paragraph,
}

const SENTENCE_ENDS: [char; 4] = ['.', '!', '?', '…'];
const CLOSERS: [char; 7] = ['"', '\'', ')', ']', '”', '’', '»'];
const CJK_SENTENCE_ENDS: [char; 3] = ['。', '！', '？'];

/// Cuts `text` into overlapping chunks (see the module documentation for the exact rules).
/// Empty text gives no chunks.
pub fn chunk(text: &str, target_chars: usize, overlap_chars: usize) -> Vec<ChunkSpec> {
    let target = target_chars.max(1);
    let min_len = target - target / 2;
    let overlap = overlap_chars.min(min_len - 1);
    let total_chars = text.chars().count();
    let mut chunks = Vec::new();
    let (mut start_byte, mut start_char) = (0, 0);
    while start_char < total_chars {
        if total_chars - start_char <= target {
            chunks.push(spec(text, start_byte..text.len(), start_char, total_chars));
            break;
        }
        let lo = advance(text, start_byte, min_len);
        let hi = advance(text, start_byte, target);
        let end_byte = best_break(text, lo, hi);
        let end_char = start_char + text[start_byte..end_byte].chars().count();
        chunks.push(spec(text, start_byte..end_byte, start_char, end_char));
        let back = retreat(text, end_byte, overlap);
        let next = word_start_within(text, back, end_byte);
        start_char = end_char - overlap + text[back..next].chars().count();
        start_byte = next;
    }
    chunks
}

fn spec(
    text: &str,
    bytes: std::ops::Range<usize>,
    char_start: usize,
    char_end: usize,
) -> ChunkSpec {
    ChunkSpec {
        char_start,
        char_end,
        text: text[bytes].to_string(),
    }
}

/// The byte offset `n` chars after byte offset `from` (or the end of the text).
fn advance(text: &str, from: usize, n: usize) -> usize {
    text[from..]
        .char_indices()
        .nth(n)
        .map_or(text.len(), |(i, _)| from + i)
}

/// The byte offset `n` chars before byte offset `from` (or 0).
fn retreat(text: &str, from: usize, n: usize) -> usize {
    if n == 0 {
        return from;
    }
    text[..from]
        .char_indices()
        .rev()
        .nth(n - 1)
        .map_or(0, |(i, _)| i)
}

/// The first word start (a non-whitespace char after whitespace) in `[from, before)`, or `from`
/// when there is none (the overlap then starts mid-word rather than shrinking to nothing).
fn word_start_within(text: &str, from: usize, before: usize) -> usize {
    let mut prev_is_space = text[..from]
        .chars()
        .next_back()
        .is_none_or(char::is_whitespace);
    for (i, c) in text[from..before].char_indices() {
        if prev_is_space && !c.is_whitespace() {
            return from + i;
        }
        prev_is_space = c.is_whitespace();
    }
    from
}

/// The end of a chunk in `(lo, hi]` at the best boundary, the latest of that kind; `hi` when
/// the window has none.
fn best_break(text: &str, lo: usize, hi: usize) -> usize {
    let mut best: Option<(Boundary, usize)> = None;
    for (i, c) in text[lo..hi].char_indices().rev() {
        let at = lo + i;
        let Some(kind) = boundary_after(text, at, c) else {
            continue;
        };
        if best.is_none_or(|(b, _)| kind > b) {
            best = Some((kind, at + c.len_utf8()));
            if kind == Boundary::Paragraph {
                break;
            }
        }
    }
    best.map_or(hi, |(_, end)| end)
}

/// What kind of boundary lies just after char `c` at byte `at`, if any.
fn boundary_after(text: &str, at: usize, c: char) -> Option<Boundary> {
    if CJK_SENTENCE_ENDS.contains(&c) {
        return Some(Boundary::Sentence);
    }
    if !c.is_whitespace() {
        return None;
    }
    let mut before = text[..at].chars().rev();
    let prev = before.next();
    if c == '\n' && prev == Some('\n') {
        return Some(Boundary::Paragraph);
    }
    let ends_sentence = match prev {
        Some(p) if SENTENCE_ENDS.contains(&p) => true,
        Some(p) if CLOSERS.contains(&p) => {
            before.next().is_some_and(|q| SENTENCE_ENDS.contains(&q))
        }
        _ => false,
    };
    Some(if ends_sentence {
        Boundary::Sentence
    } else if c == '\n' {
        Boundary::Line
    } else {
        Boundary::Whitespace
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(chunks: &[ChunkSpec]) -> Vec<&str> {
        chunks.iter().map(|c| c.text.as_str()).collect()
    }

    #[test]
    fn short_text_is_one_chunk_and_empty_text_none() {
        assert!(chunk("", 10, 2).is_empty());
        let c = chunk("héllo", 10, 2);
        assert_eq!(
            (c[0].char_start, c[0].char_end, c[0].text.as_str()),
            (0, 5, "héllo")
        );
    }

    #[test]
    fn prefers_paragraphs_then_sentences_then_whitespace() {
        let text = "aaaa bbbb.\n\ncccc dddd. eeee ffff gggg";
        let c = chunk(text, 16, 0);
        assert_eq!(texts(&c)[0], "aaaa bbbb.\n\n");
        let text = "aaaa bbbb. cccc dddd eeee ffff";
        assert_eq!(texts(&chunk(text, 18, 0))[0], "aaaa bbbb. ");
        let text = "aaaa bbbb cccc dddd eeee";
        assert_eq!(texts(&chunk(text, 12, 0))[0], "aaaa bbbb ");
        let text = "「文一。」文二。文三文四文五";
        assert_eq!(texts(&chunk(text, 10, 0))[0], "「文一。」文二。");
        let text = "He said \"stop.\" Then more words here";
        assert_eq!(texts(&chunk(text, 20, 0))[0], "He said \"stop.\" ");
    }

    #[test]
    fn overlap_starts_at_a_word() {
        let text = "one two three four five six seven eight nine ten";
        let c = chunk(text, 20, 8);
        assert_eq!(texts(&c)[0], "one two three four ");
        assert!(c[1].text.starts_with("four"), "{:?}", texts(&c));
        assert!(c[1].char_start < c[0].char_end);
    }

    #[test]
    fn no_spaces_means_hard_cuts() {
        let text = "x".repeat(25);
        let c = chunk(&text, 10, 3);
        let ranges: Vec<_> = c.iter().map(|c| (c.char_start, c.char_end)).collect();
        assert_eq!(ranges, [(0, 10), (7, 17), (14, 24), (21, 25)]);
    }
}
