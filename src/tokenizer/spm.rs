//! SentencePiece-style BPE over token scores, as llama.cpp's `llm_tokenizer_spm_session` does
//! it: start from UTF-8 characters, repeatedly merge the adjacent pair whose concatenation is
//! the highest-scoring token (leftmost on ties), then emit each symbol's token or, for symbols
//! that are no token, their bytes as byte-fallback tokens.
//!
//! Hand-written rather than through the `tokenizers` crate: its BPE model merges by a rank list,
//! and ranks derived from scores do not reproduce llama.cpp's score-driven merge order.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::TokenizerError;
use super::vocab::Vocab;

#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    end: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

// Max-heap order: highest score first, then leftmost (llama.cpp's comparator).
impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(other.left.cmp(&self.left))
    }
}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}

/// Tokenizes `text` (spaces already replaced by "▁"), appending ids to `out`.
pub(crate) fn tokenize(
    vocab: &Vocab,
    text: &str,
    out: &mut Vec<u32>,
) -> Result<(), TokenizerError> {
    let mut symbols: Vec<Symbol> = Vec::new();
    for (start, c) in text.char_indices() {
        let end = start + c.len_utf8();
        let i = symbols.len();
        symbols.push(Symbol {
            start,
            end,
            prev: i.checked_sub(1),
            next: (end < text.len()).then_some(i + 1),
        });
    }
    let mut queue = BinaryHeap::new();
    let try_add = |queue: &mut BinaryHeap<Bigram>,
                   symbols: &[Symbol],
                   left: Option<usize>,
                   right: Option<usize>| {
        let (Some(left), Some(right)) = (left, right) else {
            return;
        };
        let (start, end) = (symbols[left].start, symbols[right].end);
        if let Some(id) = text.get(start..end).and_then(|t| vocab.id_of(t)) {
            let score = vocab.scores.get(id as usize).copied().unwrap_or(0.0);
            queue.push(Bigram {
                score,
                left,
                right,
                size: end - start,
            });
        }
    };
    for i in 1..symbols.len() {
        try_add(&mut queue, &symbols, Some(i - 1), Some(i));
    }
    while let Some(b) = queue.pop() {
        let (l, r) = (symbols[b.left], symbols[b.right]);
        let (l_len, r_len) = (l.end - l.start, r.end - r.start);
        // Skip pairs where a side was merged away or grew since it was queued.
        if l_len == 0 || r_len == 0 || l_len + r_len != b.size {
            continue;
        }
        symbols[b.left].end = r.end;
        symbols[b.left].next = r.next;
        symbols[b.right].end = symbols[b.right].start;
        if let Some(n) = r.next {
            symbols[n].prev = Some(b.left);
        }
        try_add(&mut queue, &symbols, l.prev, Some(b.left));
        try_add(&mut queue, &symbols, Some(b.left), r.next);
    }
    // Merged symbols are always tokens; single characters may not be: emit their bytes.
    // (llama.cpp's `resegment` also consults a reverse-merge map, but only for symbols that
    // are no token, which never were merged, so that lookup never succeeds.)
    let mut i = if symbols.is_empty() { None } else { Some(0) };
    while let Some(idx) = i {
        let s = symbols[idx];
        let piece = text.get(s.start..s.end).unwrap_or_default();
        match vocab.id_of(piece) {
            Some(id) => out.push(id),
            None => {
                for b in piece.bytes() {
                    out.push(vocab.byte_to_token(b)?);
                }
            }
        }
        i = s.next;
    }
    Ok(())
}
