//! BPE over merge ranks, as llama.cpp's `llm_tokenizer_bpe_session` does it: per pre-tokenized
//! word, repeatedly merge the adjacent pair with the lowest rank (leftmost on ties).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use super::TokenizerError;
use super::vocab::Vocab;

/// Merge ranks keyed by the token ids of the pair, with the id of the merged token.
#[derive(Debug, Default)]
pub(crate) struct Merges {
    by_pair: HashMap<(u32, u32), (u32, u32)>,
}

impl Merges {
    /// Parses `"left right"` merges. Each side and the merged text must be tokens (the
    /// `tokenizers` crate requires the same). The first merge of a pair gives its rank.
    pub fn build(
        merges: &[String],
        token_to_id: &HashMap<String, u32>,
    ) -> Result<Merges, TokenizerError> {
        let mut by_pair = HashMap::with_capacity(merges.len());
        for (index, merge) in merges.iter().enumerate() {
            let malformed = || TokenizerError::MalformedMerge {
                index,
                merge: merge.clone(),
            };
            // llama.cpp splits at the first space after the first byte (a side may start with ' ').
            let pos = merge
                .bytes()
                .skip(1)
                .position(|b| b == b' ')
                .map(|p| p + 1)
                .ok_or_else(malformed)?;
            let (left, right) = (&merge[..pos], &merge[pos + 1..]);
            let lookup = |part: &str| {
                token_to_id
                    .get(part)
                    .copied()
                    .ok_or_else(|| TokenizerError::MergeUnknownToken {
                        index,
                        merge: merge.clone(),
                        part: part.to_owned(),
                    })
            };
            let (l, r) = (lookup(left)?, lookup(right)?);
            let merged = lookup(&format!("{left}{right}"))?;
            let rank = u32::try_from(index).map_err(|_| malformed())?;
            by_pair.entry((l, r)).or_insert((rank, merged));
        }
        Ok(Merges { by_pair })
    }

    fn get(&self, left: u32, right: u32) -> Option<(u32, u32)> {
        self.by_pair.get(&(left, right)).copied()
    }
}

/// A symbol: a byte range of the word and its token, if it is one.
#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    end: usize,
    token: Option<u32>,
    prev: Option<usize>,
    next: Option<usize>,
}

#[derive(PartialEq, Eq)]
struct Bigram {
    rank: u32,
    left: usize,
    right: usize,
    left_token: u32,
    right_token: u32,
    merged: u32,
}

// Max-heap order: lowest rank first, then leftmost.
impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        other.rank.cmp(&self.rank).then(other.left.cmp(&self.left))
    }
}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Tokenizes one pre-tokenized word, appending ids to `out`. `whole_word_first`: emit the word
/// as one token when it is one (llama.cpp's `ignore_merges`).
pub(crate) fn tokenize_word(
    vocab: &Vocab,
    merges: &Merges,
    whole_word_first: bool,
    byte_encoded: bool,
    word: &str,
    out: &mut Vec<u32>,
) {
    if whole_word_first && let Some(id) = vocab.id_of(word) {
        out.push(id);
        return;
    }
    let mut symbols: Vec<Symbol> = Vec::new();
    for (start, c) in word.char_indices() {
        let end = start + c.len_utf8();
        let i = symbols.len();
        symbols.push(Symbol {
            start,
            end,
            token: vocab.id_of(&word[start..end]),
            prev: i.checked_sub(1),
            next: (end < word.len()).then_some(i + 1),
        });
    }
    let mut queue = BinaryHeap::new();
    let push = |queue: &mut BinaryHeap<Bigram>,
                symbols: &[Symbol],
                left: Option<usize>,
                right: Option<usize>| {
        let (Some(left), Some(right)) = (left, right) else {
            return;
        };
        let (Some(lt), Some(rt)) = (symbols[left].token, symbols[right].token) else {
            return;
        };
        if let Some((rank, merged)) = merges.get(lt, rt) {
            queue.push(Bigram {
                rank,
                left,
                right,
                left_token: lt,
                right_token: rt,
                merged,
            });
        }
    };
    for i in 1..symbols.len() {
        push(&mut queue, &symbols, Some(i - 1), Some(i));
    }
    while let Some(b) = queue.pop() {
        let (l, r) = (symbols[b.left], symbols[b.right]);
        // Skip outdated pairs: a side was merged away or has changed since it was queued.
        if l.start == l.end
            || r.start == r.end
            || l.token != Some(b.left_token)
            || r.token != Some(b.right_token)
        {
            continue;
        }
        symbols[b.left].end = r.end;
        symbols[b.left].token = Some(b.merged);
        symbols[b.left].next = r.next;
        symbols[b.right].end = symbols[b.right].start;
        if let Some(n) = r.next {
            symbols[n].prev = Some(b.left);
        }
        push(&mut queue, &symbols, l.prev, Some(b.left));
        push(&mut queue, &symbols, Some(b.left), r.next);
    }
    for s in symbols.iter().filter(|s| s.start < s.end) {
        match s.token {
            Some(id) => out.push(id),
            None => push_fallback_bytes(vocab, &word[s.start..s.end], byte_encoded, out),
        }
    }
}

/// A symbol that is no token: llama.cpp looks up each of its bytes as a one-byte token
/// (byte-level BPE) or as `<0xXX>` (SPM-style BPE) and drops bytes without one.
fn push_fallback_bytes(vocab: &Vocab, text: &str, byte_encoded: bool, out: &mut Vec<u32>) {
    for b in text.bytes() {
        let id = if byte_encoded {
            if b.is_ascii() {
                std::str::from_utf8(&[b]).ok().and_then(|s| vocab.id_of(s))
            } else {
                None
            }
        } else {
            vocab.id_of(&format!("<0x{b:02X}>"))
        };
        out.extend(id);
    }
}
