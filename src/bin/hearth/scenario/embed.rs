//! `hearth bench embed`: indexing a long document for retrieval by meaning (chunking, embedding
//! every chunk, saving the vectors) and ranking questions against it (embedding the question,
//! reading the vectors, cosine over all chunks). Not a test: figures for docs and reports.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use hearth::chat::{import_document, index_document, question_cosines};
use hearth::store::Store;
use serde_json::json;

use crate::embed::{EmbedDevice, open_embedder};
use crate::util::print_json;

#[derive(clap::Args)]
pub struct Args {
    /// Approximate length of the generated document, in embedding-model tokens.
    #[arg(long, default_value_t = 100_000)]
    doc_tokens: usize,
    #[arg(long, default_value_t = 5)]
    questions: usize,
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = EmbedDevice::Auto)]
    device: EmbedDevice,
    #[arg(long)]
    json: bool,
}

const SENTENCES: &[&str] = &[
    "The tide came in over the mudflats twice a day, and the fishermen timed their nets by it.",
    "Weavers in the valley dyed their wool with madder root and walnut husks.",
    "The granite quarry closed in 1911 after the lower galleries flooded.",
    "A ferry crossed the estuary each morning, carrying post, flour and the schoolteacher.",
    "Farmers rotated barley, clover and turnips so the fields never lay tired.",
    "The chapel organ was built from salvaged ship timber and played a half tone flat.",
    "Children learned to read from almanacs, hymn books and the backs of seed packets.",
    "Every autumn the drovers brought cattle down from the hills to the market square.",
];

fn document(tokens: usize) -> String {
    // ~20 model tokens per sentence.
    let n = tokens / 20 + 1;
    let mut s = String::new();
    for i in 0..n {
        s.push_str(SENTENCES[i % SENTENCES.len()]);
        s.push_str(if i % 6 == 5 { "\n\n" } else { " " });
    }
    s
}

pub fn run(args: Args) -> Result<()> {
    let dir = tempfile_dir()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let embedder = open_embedder(args.model, args.device)?;
    let path = dir.join("bench-doc.txt");
    std::fs::write(&path, document(args.doc_tokens))?;
    let store = rt.block_on(Store::open(dir.join("hearth.db")))?;
    let started = Instant::now();
    let doc = rt.block_on(import_document(&store, &path))?;
    let id = doc.summary.id;
    let chunk_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let report = rt.block_on(index_document(&store, &embedder, id, &mut |_, _| {}))?;
    let index_s = started.elapsed().as_secs_f64();
    let questions = [
        "Who carried the letters across the river?",
        "What did they colour the cloth with?",
        "Why was the stone pit abandoned?",
        "How did the growers keep the soil healthy?",
        "What was wrong with the church music?",
    ];
    let mut latencies = Vec::new();
    for q in questions.iter().cycle().take(args.questions) {
        let t = Instant::now();
        let c = rt.block_on(question_cosines(&store, &embedder, id, q))?;
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        debug_assert_eq!(c.len(), report.chunks);
    }
    latencies.sort_by(f64::total_cmp);
    // Where a question's time goes: embedding it, reading the vectors, the cosines.
    let model = embedder.model();
    let t = Instant::now();
    let q = model.embed_reference(questions[0])?;
    let embed_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let stored = rt.block_on(store.chunk_vectors(id, model.fingerprint(), model.dim()))?;
    let read_ms = t.elapsed().as_secs_f64() * 1e3;
    let vectors: Vec<&Vec<f32>> = stored.vectors.iter().flat_map(|c| &c.vectors).collect();
    let t = Instant::now();
    let best = vectors
        .iter()
        .map(|v| hearth::embed::cosine(&q.vector, v))
        .fold(f32::NEG_INFINITY, f32::max);
    let cosine_ms = t.elapsed().as_secs_f64() * 1e3;
    std::hint::black_box(best);
    let out = json!({
        "backend": embedder.backend().name(),
        "doc_chars": doc.summary.char_count,
        "chunks": report.chunks,
        "chunk_ms": chunk_ms,
        "index_s": index_s,
        "chunks_per_s": report.chunks as f64 / index_s.max(1e-9),
        "question_ms_p50": latencies.get(latencies.len() / 2).copied().unwrap_or(0.0),
        "question_ms_max": latencies.last().copied().unwrap_or(0.0),
        "vectors": vectors.len(),
        "question_embed_ms": embed_ms,
        "vectors_read_ms": read_ms,
        "cosine_ms": cosine_ms,
    });
    std::fs::remove_dir_all(&dir).ok();
    if args.json {
        return print_json(&out);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("hearth-embed-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
