//! `hearth doc search ID --query Q --model M --data-dir D`: the document's windows for a
//! `--context N` context (cut by the chat model's tokenizer into `window_budget(N)`-token
//! windows, as a turn cuts them less its template's frame), ranked for the question by BM25,
//! by the cosine of embeddings, and by their reciprocal rank fusion — the order a turn routes by.

use std::path::PathBuf;

use anyhow::{Result, bail};
use hearth::chat::{
    plan_windows, rank_windows, shared_embedder, turn_document_with, window_budget,
};
use hearth::store::Store;
use hearth::tokenizer::Tokenizer;
use serde_json::json;

use super::util::{open_model, print_json};

#[derive(clap::Args)]
pub struct Args {
    id: i64,
    #[arg(long)]
    query: String,
    /// The chat model (GGUF) whose tokenizer cuts the windows.
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long, default_value_t = 4096)]
    context: u32,
    /// Rank by words only (no embedding model).
    #[arg(long)]
    words_only: bool,
    #[arg(long)]
    json: bool,
}

pub fn run(rt: &tokio::runtime::Runtime, args: Args) -> Result<()> {
    let db = args.data_dir.join("hearth.db");
    if !db.is_file() {
        bail!("no Hearth data in {}", args.data_dir.display());
    }
    let store = rt.block_on(Store::open(db))?;
    let tokenizer = Tokenizer::from_gguf(&open_model(&args.model)?)?;
    let embedder = if args.words_only {
        None
    } else {
        shared_embedder()
    };
    let doc = rt.block_on(turn_document_with(
        &store,
        args.id,
        &args.query,
        embedder.as_ref(),
    ))?;
    let plan = plan_windows(&tokenizer, &doc.text, window_budget(args.context as usize))?;
    let ranked = rank_windows(&plan.windows, &doc.hits, &doc.query, &doc.chunk_cosines);
    let windows: Vec<_> = ranked
        .iter()
        .map(|r| {
            let w = &plan.windows[r.window];
            json!({
                "window": r.window + 1,
                "chars": [w.char_start, w.char_end],
                "bm25": r.bm25,
                "cosine": r.cosine,
                "score": r.score,
                "found_by": r.found_by().as_str(),
            })
        })
        .collect();
    let out = json!({"windows": windows, "of": plan.windows.len()});
    if args.json {
        return print_json(&out);
    }
    for r in &ranked {
        let w = &plan.windows[r.window];
        println!(
            "window {:>3} of {} chars {}..{}  bm25 {:.3}  cosine {}  score {:.5}  ({})",
            r.window + 1,
            plan.windows.len(),
            w.char_start,
            w.char_end,
            r.bm25,
            r.cosine.map_or("-".into(), |c| format!("{c:.4}")),
            r.score,
            r.found_by().as_str()
        );
    }
    Ok(())
}
