//! `hearth doc add|list|rm`: the documents of a data dir (`hearth.db`), as the app keeps them.
//! `add` reads a text, Markdown or PDF file, saves it and cuts it into search chunks; with
//! `--model` it also encodes every window of it into the KV cache (`kv.sqlite`), so that
//! questions about it later prefill only their own tokens. `add` also embeds the chunks for
//! retrieval by meaning when an embedding model is found (`--no-embed` skips it); `search`
//! ranks the windows for a question (`doc_search.rs`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use hearth::chat::{ChatEngine, import_document, index_document, shared_embedder, turn_document};
use hearth::store::Store;
use hearth::store::kv_blocks::{KvBlockStore, KvStoreOptions};
use serde_json::json;

use super::cached_generate::KV_DATABASE_FILE;
use super::util::print_json;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: DocCommand,
}

#[derive(clap::Subcommand)]
enum DocCommand {
    /// Add a document (text, Markdown or PDF); with --model, encode its windows now.
    Add {
        file: PathBuf,
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        model: Option<PathBuf>,
        /// Context length the windows are cut for (with --model).
        #[arg(long, default_value_t = 4096)]
        context: u32,
        /// Do not embed the chunks now (a first question embeds them).
        #[arg(long)]
        no_embed: bool,
        #[arg(long)]
        json: bool,
    },
    /// Rank a document's windows for a question: BM25, cosine and their fusion.
    Search(super::doc_search::Args),
    /// List the documents.
    List {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Delete a document, its chunks, its attachments and its KV blocks on disk.
    Rm {
        id: i64,
        #[arg(long)]
        data_dir: PathBuf,
    },
}

pub fn run(args: Args) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args.command {
        DocCommand::Add {
            file,
            data_dir,
            model,
            context,
            no_embed,
            json,
        } => {
            std::fs::create_dir_all(&data_dir)?;
            let store = rt.block_on(Store::open(data_dir.join("hearth.db")))?;
            let doc = rt.block_on(import_document(&store, &file))?;
            let id = doc.summary.id;
            let mut out = json!({
                "id": id,
                "name": doc.summary.name,
                "chars": doc.summary.char_count,
                "chunks": rt.block_on(store.chunk_count(id))?,
            });
            if !no_embed && let Some(embedder) = shared_embedder() {
                let bar = indicatif::ProgressBar::new(0).with_style(
                    indicatif::ProgressStyle::with_template(
                        "embedding chunks {bar:30} {pos}/{len} ({per_sec}, {eta})",
                    )?,
                );
                let started = Instant::now();
                let report =
                    rt.block_on(index_document(&store, &embedder, id, &mut |done, all| {
                        bar.set_length(all as u64);
                        bar.set_position(done as u64);
                    }))?;
                bar.finish_and_clear();
                for w in &report.warnings {
                    eprintln!("warning: {w}");
                }
                out["embedded_chunks"] = json!(report.computed);
                out["embed_ms"] = json!(started.elapsed().as_secs_f64() * 1e3);
                out["embed_backend"] = json!(embedder.backend().name());
            }
            if let Some(model) = model {
                let mut engine = ChatEngine::new();
                if let Some(reason) = engine.adapter_error() {
                    bail!("{reason}");
                }
                engine.open_kv_disk(&data_dir.join(KV_DATABASE_FILE), KvStoreOptions::default())?;
                engine
                    .load(&model, context, &mut |_, _| {})
                    .context("cannot load the model")?;
                let settings = rt.block_on(store.load_settings())?.settings;
                let turn_doc = rt.block_on(turn_document(&store, id, ""))?;
                let started = Instant::now();
                let report = engine.encode_document(&turn_doc, &settings)?;
                let encode_ms = started.elapsed().as_secs_f64() * 1e3;
                engine.flush_cache()?;
                if let Some(model_id) = engine.model_id() {
                    rt.block_on(store.set_token_count(id, model_id, report.doc_tokens as u64))?;
                }
                out["tokens"] = json!(report.doc_tokens);
                out["windows"] = json!(report.windows.len());
                out["encoded_tokens"] = json!(
                    report
                        .windows
                        .iter()
                        .map(|w| w.encoded_tokens)
                        .sum::<usize>()
                );
                out["encode_ms"] = json!(encode_ms);
            }
            if json {
                return print_json(&out);
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        DocCommand::Search(a) => super::doc_search::run(&rt, a)?,
        DocCommand::List { data_dir, json } => {
            let store = rt.block_on(Store::open(data_dir.join("hearth.db")))?;
            let list = rt.block_on(store.list_documents())?;
            if json {
                return print_json(&serde_json::to_value(&list)?);
            }
            for d in list.documents {
                println!(
                    "{:>5}  {:<40} {:>9} chars  conversations {:?}",
                    d.id, d.name, d.char_count, d.conversation_ids
                );
            }
        }
        DocCommand::Rm { id, data_dir } => {
            let store = rt.block_on(Store::open(data_dir.join("hearth.db")))?;
            rt.block_on(store.delete_document(id))?;
            let kv = data_dir.join(KV_DATABASE_FILE);
            if kv.is_file() {
                let disk = KvBlockStore::open(&kv, KvStoreOptions::default())?;
                let freed = disk.remove_owner_everywhere(&format!("document:{id}"))?;
                eprintln!("deleted document {id} ({freed} KV blocks freed on disk)");
            }
        }
    }
    Ok(())
}
