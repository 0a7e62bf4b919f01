//! Hybrid routing of a question to a document window: BM25 ("words": FTS5's top chunk, then
//! BM25 over the windows' own texts, as `documents::route`) and the cosine of the question's
//! embedding to the chunks' ("meaning"), fused by reciprocal rank fusion. Without embeddings the
//! order is the words' alone.

use serde::{Deserialize, Serialize};

use crate::store::ChunkHit;

use super::documents::{DocWindow, window_bm25, words_order};

/// RRF's constant: a window ranked r by a ranker adds 1 / (K + r) (r from 1). 60 as in Cormack,
/// Clarke & Büttcher (2009); with a handful of windows the order, not the size, decides.
pub const RRF_K: f64 = 60.0;

/// The cosine of the question to one chunk (a char range of the document).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkCosine {
    pub char_start: u64,
    pub char_end: u64,
    pub cosine: f32,
}

/// Which ranker put the chosen window first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FoundBy {
    Words,
    Meaning,
    Both,
}

impl FoundBy {
    pub fn as_str(self) -> &'static str {
        match self {
            FoundBy::Words => "words",
            FoundBy::Meaning => "meaning",
            FoundBy::Both => "both",
        }
    }
}

/// One window's place in the fused ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowScore {
    /// 0-based.
    pub window: usize,
    pub bm25: f64,
    /// Best cosine of the chunks that lie mostly in this window (None without embeddings).
    pub cosine: Option<f32>,
    /// 1-based ranks in the words and meaning lists (None: not in that list).
    pub words_rank: Option<usize>,
    pub meaning_rank: Option<usize>,
    /// The RRF score.
    pub score: f64,
}

impl WindowScore {
    /// Which ranker this window owes its place to: the one(s) that ranked it higher.
    pub fn found_by(&self) -> FoundBy {
        match (self.words_rank, self.meaning_rank) {
            (Some(w), Some(m)) if w == m => FoundBy::Both,
            (Some(w), Some(m)) if w < m => FoundBy::Words,
            (Some(_), None) => FoundBy::Words,
            _ => FoundBy::Meaning,
        }
    }
}

/// The best cosine per window: of the chunks with at least half of their characters inside it,
/// or that cover at least half of it; else of any chunk overlapping it.
fn window_cosines(windows: &[DocWindow], cosines: &[ChunkCosine]) -> Vec<Option<f32>> {
    windows
        .iter()
        .map(|w| {
            let (ws, we) = (w.char_start as u64, w.char_end as u64);
            let mut mostly: Option<f32> = None;
            let mut any: Option<f32> = None;
            for c in cosines {
                let overlap = we.min(c.char_end).saturating_sub(ws.max(c.char_start));
                if overlap == 0 {
                    continue;
                }
                let best = |b: Option<f32>| Some(b.map_or(c.cosine, |b: f32| b.max(c.cosine)));
                any = best(any);
                let chunk_len = (c.char_end - c.char_start).max(1);
                let window_len = (we - ws).max(1);
                if overlap * 2 >= chunk_len || overlap * 2 >= window_len {
                    mostly = best(mostly);
                }
            }
            mostly.or(any)
        })
        .collect()
}

/// Every window that either ranker lists, best first (RRF; ties: the higher cosine, then the
/// earlier window). Empty when neither has anything to go on.
pub fn rank_windows(
    windows: &[DocWindow],
    hits: &[ChunkHit],
    query: &str,
    cosines: &[ChunkCosine],
) -> Vec<WindowScore> {
    let bm25 = window_bm25(windows, query);
    let words = words_order(windows, hits, &bm25);
    let cos = window_cosines(windows, cosines);
    let mut meaning: Vec<usize> = (0..windows.len()).filter(|&i| cos[i].is_some()).collect();
    meaning.sort_by(|&a, &b| {
        cos[b]
            .partial_cmp(&cos[a])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let rank_in = |list: &[usize], i: usize| list.iter().position(|&x| x == i).map(|p| p + 1);
    let mut out: Vec<WindowScore> = (0..windows.len())
        .filter_map(|i| {
            let (w, m) = (rank_in(&words, i), rank_in(&meaning, i));
            if w.is_none() && m.is_none() {
                return None;
            }
            let rrf = |r: Option<usize>| r.map_or(0.0, |r| 1.0 / (RRF_K + r as f64));
            Some(WindowScore {
                window: i,
                bm25: bm25[i],
                cosine: cos[i],
                words_rank: w,
                meaning_rank: m,
                score: rrf(w) + rrf(m),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(
                b.cosine
                    .unwrap_or(-2.0)
                    .total_cmp(&a.cosine.unwrap_or(-2.0)),
            )
            .then(a.window.cmp(&b.window))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::super::documents::tests::window;
    use super::*;

    fn cos(start: u64, end: u64, cosine: f32) -> ChunkCosine {
        ChunkCosine {
            char_start: start,
            char_end: end,
            cosine,
        }
    }

    #[test]
    fn words_alone_keep_the_bm25_order() {
        let ws = [window(0, 10, "boats"), window(10, 20, "heron quarry")];
        let r = rank_windows(&ws, &[], "heron", &[]);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].window, r[0].found_by()), (1, FoundBy::Words));
        assert!(rank_windows(&ws, &[], "nothing", &[]).is_empty());
    }

    #[test]
    fn fusion_weighs_both_rankers() {
        let ws = [
            window(0, 100, "tower tower clock"),
            window(100, 200, "a pot of tea"),
            window(200, 300, "granite"),
        ];
        // Meaning alone.
        let c = [cos(0, 100, 0.1), cos(100, 200, 0.6), cos(200, 300, 0.2)];
        let r = rank_windows(&ws, &[], "hot drink", &c);
        assert_eq!((r[0].window, r[0].found_by()), (1, FoundBy::Meaning));
        // Words put window 0 first, meaning window 1; window 1 is second by words too (it has
        // "tea"), window 0 last by meaning: window 1 wins.
        let r = rank_windows(&ws, &[], "tower tea", &[cos(0, 100, 0.0), c[1], c[2]]);
        assert_eq!(r[0].window, 1, "{r:?}");
        // Both agree.
        let r = rank_windows(&ws, &[], "tea", &c);
        assert_eq!((r[0].window, r[0].found_by()), (1, FoundBy::Both));
    }

    #[test]
    fn a_chunk_counts_for_the_window_holding_most_of_it() {
        let ws = [window(0, 100, "a"), window(90, 200, "b")];
        let c = window_cosines(&ws, &[cos(95, 180, 0.9), cos(0, 92, 0.3)]);
        assert_eq!(c, [Some(0.3), Some(0.9)]);
    }
}
