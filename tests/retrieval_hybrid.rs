//! Hybrid retrieval over a real embedding model (all-MiniLM-L6-v2): a planted fact that shares
//! no content word with its question ("hot drink" / "tower" against "pot of tea" / "lighthouse")
//! is found by meaning, where BM25 alone routes the question to a window whose words match but
//! whose sense does not.

mod common;

use std::sync::Arc;

use hearth::chat::{
    ChunkCosine, DocWindow, FoundBy, import_document, rank_windows, route, turn_document_with,
};
use hearth::documents::chunk;
use hearth::embed::{EmbedModel, Embedder, Prefer};
use hearth::store::Store;

const FACT: &str = "Every evening the lighthouse keeper's daughter carried a pot of tea up the 112 steps to the lamp room.";
const QUESTION: &str = "Who brought a hot drink up the tower?";
/// Shares "who", "brought" and "up" with the question (no other passage has them), and nothing
/// of its sense.
const DECOY: &str = "The clerk who brought the rent rolls up to date was paid in seed corn.";

const FILLER: &[&str] = &[
    "The weavers of the valley dyed their wool with madder root and walnut husks, and the dye vats stood by the mill race.",
    "Barley, clover and turnips followed one another in the fields so the soil never tired.",
    "The granite quarry closed in 1911 after its lower galleries flooded in a wet spring.",
    "Fishermen mended their nets on the shingle and timed the boats by the tide tables.",
    "The chapel organ was built from ship timber and played a half tone flat in damp weather.",
    "Drovers drove cattle down from the hills to the market square each autumn.",
    "Children learned their letters from almanacs, hymn books and the backs of seed packets.",
    "The ferry crossed the estuary each morning with flour, post and the schoolteacher.",
];

/// Eight sections of ~1,000 characters; the decoy in section 2, the fact in section 5.
fn document() -> String {
    let mut s = String::new();
    for section in 0..8 {
        let mut para = String::new();
        let mut i = section;
        while para.len() < 900 {
            if section == 2 && para.len() > 300 && !para.contains(DECOY) {
                para.push_str(DECOY);
            } else if section == 5 && para.len() > 300 && !para.contains(FACT) {
                para.push_str(FACT);
            } else {
                para.push_str(FILLER[i % FILLER.len()]);
                i += 3;
            }
            para.push(' ');
        }
        s.push_str(para.trim_end());
        s.push_str("\n\n");
    }
    s
}

fn window_of(windows: &[DocWindow], text: &str, needle: &str) -> usize {
    let at = text[..text.find(needle).unwrap()].chars().count();
    windows
        .iter()
        .position(|w| w.char_start <= at && at < w.char_end)
        .unwrap()
}

#[test]
fn a_fact_without_shared_words_is_found_by_meaning() {
    let Some(dir) = common::embed_model_dir() else {
        return;
    };
    let model = Arc::new(EmbedModel::load(&dir).unwrap());
    let embedder = Arc::new(Embedder::new(model, Prefer::Cpu));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let text = document();
    let file = tmp.path().join("lighthouse.txt");
    std::fs::write(&file, &text).unwrap();
    let store = rt
        .block_on(Store::open(tmp.path().join("hearth.db")))
        .unwrap();
    let doc = rt.block_on(import_document(&store, &file)).unwrap();
    let td = rt
        .block_on(turn_document_with(
            &store,
            doc.summary.id,
            QUESTION,
            Some(&embedder),
        ))
        .unwrap();
    assert!(!td.chunk_cosines.is_empty(), "every chunk has a cosine");
    let windows: Vec<DocWindow> = chunk(&text, 1100, 100)
        .into_iter()
        .map(|c| DocWindow {
            char_start: c.char_start,
            char_end: c.char_end,
            text: c.text,
            tokens: 0,
        })
        .collect();
    assert!(windows.len() >= 5, "{} windows", windows.len());
    let (fact_w, decoy_w) = (
        window_of(&windows, &text, FACT),
        window_of(&windows, &text, DECOY),
    );
    assert_ne!(fact_w, decoy_w);

    let words = route(&windows, &td.hits, &td.query).map(|(w, _)| w);
    let ranked = rank_windows(&windows, &td.hits, &td.query, &td.chunk_cosines);
    for r in &ranked {
        eprintln!(
            "window {}: bm25 {:.3} (rank {:?}), cosine {:?} (rank {:?}), rrf {:.5}",
            r.window, r.bm25, r.words_rank, r.cosine, r.meaning_rank, r.score
        );
    }
    eprintln!("fact in window {fact_w}, decoy in {decoy_w}; BM25 alone: {words:?}");
    assert_eq!(words, Some(decoy_w), "BM25 alone reads the decoy's window");
    assert_ne!(words, Some(fact_w), "BM25 alone misses the fact");
    assert_eq!(ranked[0].window, fact_w, "hybrid reads the fact's window");
    assert_eq!(ranked[0].found_by(), FoundBy::Meaning);
    assert_eq!(ranked[0].meaning_rank, Some(1));

    // Without embeddings the hybrid order is BM25's.
    let no_meaning = rank_windows(&windows, &td.hits, &td.query, &[] as &[ChunkCosine]);
    assert_eq!(no_meaning[0].window, decoy_w);
    assert_eq!(no_meaning[0].found_by(), FoundBy::Words);
}
