//! Documents in a conversation's prompt. An attached document goes into the system message as
//! a `<document>` block, the same bytes for every conversation that uses it, so the rendered
//! prefix `[system][document]` has the same token ids everywhere and its KV blocks are found
//! by hash. A document too large for the context with room for the conversation is cut into
//! windows (overlapping, at paragraph or sentence boundaries — `documents::chunk`'s rules),
//! each an exact prefix of its own; a question goes to the window its BM25 hits point at.
//! Nothing is ever cut silently: the turn reports which window (and character range) it read.

use std::sync::Arc;

use crate::documents::chunk as chunk_text;
use crate::store::ChunkHit;

use super::retrieval::ChunkCosine;
use crate::tokenizer::Tokenizer;

use super::error::ChatError;

/// Share of the context one window (system prompt, template and document text) may take: the
/// rest holds the conversation's turns and the reply.
pub fn window_budget(context: usize) -> usize {
    context * 3 / 4
}

/// Tokens neighbouring windows share, so a passage on a cut is whole in one of them (at most a
/// quarter of a window).
pub const WINDOW_OVERLAP_TOKENS: usize = 200;

/// A document attached to the conversation of a turn, with what the turn needs of it.
#[derive(Debug, Clone)]
pub struct TurnDocument {
    pub id: i64,
    pub name: String,
    pub text: Arc<str>,
    /// Lowercase hex SHA-256 of the text (windows are planned once per text).
    pub sha256: String,
    /// The user's question.
    pub query: String,
    /// BM25 hits of the question over the document's chunks, best first
    /// (`Store::search_chunks`); empty when nothing matched.
    pub hits: Vec<ChunkHit>,
    /// Cosine of the question's embedding to each chunk's (`chat::semantic`); empty without an
    /// embedding model, and routing is then by words alone.
    pub chunk_cosines: Vec<ChunkCosine>,
}

/// One window: a char range of the document's text (Unicode scalar values, as chunk ranges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocWindow {
    pub char_start: usize,
    pub char_end: usize,
    pub text: String,
    /// Tokens of `text` alone.
    pub tokens: usize,
}

/// A document cut into the windows one context holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowPlan {
    /// Tokens of the whole text.
    pub doc_tokens: usize,
    pub windows: Vec<DocWindow>,
}

/// The block a document puts into the system message.
pub fn document_block(name: &str, text: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| if c == '"' || c.is_control() { '\'' } else { c })
        .collect();
    format!("<document name=\"{name}\">\n{text}\n</document>")
}

/// The system message of a turn with documents: the user's system prompt (if any), a line
/// saying what follows, then the blocks.
pub fn system_with_documents(system: &str, blocks: &[String]) -> String {
    let mut s = String::new();
    if !system.trim().is_empty() {
        s.push_str(system.trim_end());
        s.push_str("\n\n");
    }
    s.push_str("Answer the user's questions using the attached document");
    s.push_str(if blocks.len() == 1 { "." } else { "s." });
    for b in blocks {
        s.push_str("\n\n");
        s.push_str(b);
    }
    s
}

fn count(tokenizer: &Tokenizer, text: &str) -> Result<usize, ChatError> {
    Ok(tokenizer.encode(text, false, false)?.len())
}

/// Cuts `text` into windows of at most `budget` tokens each (one window when it fits),
/// overlapping by [`WINDOW_OVERLAP_TOKENS`] (at most a quarter of a window). Errors when even
/// a small window cannot be made to fit (a budget of a few tokens).
pub fn plan_windows(
    tokenizer: &Tokenizer,
    text: &str,
    budget: usize,
) -> Result<WindowPlan, ChatError> {
    let doc_tokens = count(tokenizer, text)?;
    let chars = text.chars().count();
    if doc_tokens <= budget {
        return Ok(WindowPlan {
            doc_tokens,
            windows: vec![DocWindow {
                char_start: 0,
                char_end: chars,
                text: text.to_string(),
                tokens: doc_tokens,
            }],
        });
    }
    let too_small = || ChatError::DocumentTooLarge { budget, doc_tokens };
    if budget < 32 {
        return Err(too_small());
    }
    let chars_per_token = chars as f64 / doc_tokens.max(1) as f64;
    let overlap_chars = ((WINDOW_OVERLAP_TOKENS.min(budget / 4)) as f64 * chars_per_token) as usize;
    let mut target = ((budget as f64 * chars_per_token * 0.95) as usize).max(1);
    for _ in 0..8 {
        let pieces = chunk_text(text, target, overlap_chars);
        let mut windows = Vec::with_capacity(pieces.len());
        let mut worst = 0;
        for p in pieces {
            let tokens = count(tokenizer, &p.text)?;
            worst = worst.max(tokens);
            windows.push(DocWindow {
                char_start: p.char_start,
                char_end: p.char_end,
                text: p.text,
                tokens,
            });
        }
        if worst <= budget {
            return Ok(WindowPlan {
                doc_tokens,
                windows,
            });
        }
        // Shrink by how far the worst window overshot, and a little more.
        let shrunk = (target as f64 * budget as f64 / worst as f64 * 0.95) as usize;
        target = shrunk.min(target - 1).max(1);
    }
    Err(too_small())
}

/// The window a question should read by its words: the windows that hold the best FTS5 hit
/// (the chunk BM25 ranked first over the whole document; all windows when there is none)
/// ranked by BM25 of the question over the windows' own texts — chunks can be larger than
/// windows, so the chunk alone cannot say which of two overlapping windows holds the passage —
/// then by the share of the hit inside. Returns the window and its BM25 score; None when no
/// window shares a word with the question and no hit landed (the caller keeps the previous
/// window, or takes the first). `retrieval::rank_windows` fuses this order with meaning.
pub fn route(windows: &[DocWindow], hits: &[ChunkHit], query: &str) -> Option<(usize, f64)> {
    let bm25 = window_bm25(windows, query);
    words_order(windows, hits, &bm25)
        .first()
        .map(|&best| (best, bm25[best]))
}

/// The windows in the words' order: first `route`'s choice — of the windows holding the top
/// hit, the best by (BM25, share of the hit) —, then every other window with a positive BM25, by
/// BM25. Without a hit, the windows with a positive BM25, by BM25.
pub(super) fn words_order(windows: &[DocWindow], hits: &[ChunkHit], bm25: &[f64]) -> Vec<usize> {
    let share = |w: &DocWindow, h: &ChunkHit| {
        let (s, e) = (h.char_start as usize, h.char_end as usize);
        e.min(w.char_end).saturating_sub(s.max(w.char_start)) as f64 / (e - s).max(1) as f64
    };
    let key = |i: usize| (bm25[i], hits.first().map_or(0.0, |h| share(&windows[i], h)));
    let by_key = |a: &usize, b: &usize| {
        let (ka, kb) = (key(*a), key(*b));
        kb.0.total_cmp(&ka.0)
            .then(kb.1.total_cmp(&ka.1))
            .then(a.cmp(b))
    };
    let first = hits.first().and_then(|top| {
        (0..windows.len())
            .filter(|&i| share(&windows[i], top) > 0.0)
            .min_by(by_key)
    });
    let mut order: Vec<usize> = first.into_iter().collect();
    let mut rest: Vec<usize> = (0..windows.len())
        .filter(|&i| Some(i) != first && bm25[i] > 0.0)
        .collect();
    rest.sort_by(by_key);
    order.extend(rest);
    order
}

/// Lowercase words of two or more letters or digits.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(str::to_lowercase)
}

/// Okapi BM25 (k1 = 1.2, b = 0.75) of `query` for each window, the windows being the corpus.
pub(super) fn window_bm25(windows: &[DocWindow], query: &str) -> Vec<f64> {
    let mut terms: Vec<String> = words(query).collect();
    terms.sort();
    terms.dedup();
    let n = windows.len() as f64;
    let mut tf = vec![vec![0usize; terms.len()]; windows.len()];
    let mut lens = vec![0usize; windows.len()];
    for (i, w) in windows.iter().enumerate() {
        for word in words(&w.text) {
            lens[i] += 1;
            if let Ok(t) = terms.binary_search(&word) {
                tf[i][t] += 1;
            }
        }
    }
    let avg = (lens.iter().sum::<usize>() as f64 / n.max(1.0)).max(1.0);
    let idf: Vec<f64> = (0..terms.len())
        .map(|t| {
            let df = tf.iter().filter(|row| row[t] > 0).count() as f64;
            (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
        })
        .collect();
    (0..windows.len())
        .map(|i| {
            (0..terms.len())
                .map(|t| {
                    let f = tf[i][t] as f64;
                    idf[t] * f * 2.2 / (f + 1.2 * (0.25 + 0.75 * lens[i] as f64 / avg))
                })
                .sum()
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A window of `text` at chars start..end (shared with the retrieval tests).
    pub(in crate::chat) fn window(start: usize, end: usize, text: &str) -> DocWindow {
        DocWindow {
            char_start: start,
            char_end: end,
            text: text.into(),
            tokens: 0,
        }
    }

    fn hit(start: u64, end: u64, score: f64) -> ChunkHit {
        ChunkHit {
            chunk_id: 0,
            ordinal: 0,
            char_start: start,
            char_end: end,
            score,
        }
    }

    #[test]
    fn routing_takes_the_hit_then_the_window_that_holds_the_words() {
        let ws = [
            window(0, 100, "boats in the harbour"),
            window(80, 200, "the heron of the quarry was called Ossian"),
            window(180, 300, "nets on the walls, a heron"),
        ];
        let at = |hits: &[ChunkHit], q: &str| route(&ws, hits, q).map(|(i, _)| i);
        assert_eq!(at(&[], "nothing matches"), None);
        assert_eq!(at(&[], "Who was the heron of the quarry?"), Some(1));
        // The top hit limits the candidates; within them, the words decide.
        assert_eq!(at(&[hit(150, 290, 2.0)], "heron quarry"), Some(1));
        assert_eq!(at(&[hit(210, 290, 2.0)], "heron quarry"), Some(2));
        // A hit with no shared words: the window holding most of it.
        assert_eq!(at(&[hit(85, 150, 1.0)], "zzz"), Some(1));
    }

    #[test]
    fn blocks_name_the_document_without_breaking_the_tag() {
        let b = document_block("a \"quoted\"\nname", "text");
        assert_eq!(b, "<document name=\"a 'quoted''name\">\ntext\n</document>");
        let s = system_with_documents("Be brief.", std::slice::from_ref(&b));
        assert!(s.starts_with(
            "Be brief.\n\nAnswer the user's questions using the attached document.\n\n<document"
        ));
        assert!(system_with_documents(" ", &[b.clone(), b]).starts_with("Answer"));
    }
}
