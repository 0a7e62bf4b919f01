//! Scenario 3: questions about one long document. The document (prose with one planted fact
//! per question) is added to a data dir and encoded once — every window of it, each an exact
//! cached prefix; then each question, in a conversation of its own, prefills only its own
//! tokens and reads the window its words point at. With `--restart`, a new engine on the same
//! data dir restores every window from SQLite, timed against an engine without the disk tier
//! recomputing them.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use hearth::chat::{ChatEngine, import_document, turn_document};
use hearth::gguf::GgufFile;
use hearth::store::kv_blocks::KvStoreOptions;
use hearth::store::{Settings, Store};
use hearth::tokenizer::Tokenizer;
use serde_json::json;

use super::{model, percentile, plot};
use crate::cached_generate::KV_DATABASE_FILE;
use crate::util::print_json;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: Option<PathBuf>,
    /// Tokens of the document (at least; the prose is cut at a sentence).
    #[arg(long, default_value_t = 2000)]
    doc_tokens: usize,
    #[arg(long, default_value_t = 5)]
    questions: usize,
    /// Context length: windows take three quarters of it.
    #[arg(long, default_value_t = 4096)]
    context: u32,
    /// Also time a new engine restoring the document from disk against recomputing it.
    #[arg(long)]
    restart: bool,
    /// Keep the store and the KV disk tier here (default: a temporary folder).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Write an SVG plot of each question's TTFT.
    #[arg(long)]
    plot: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

const ANIMALS: [&str; 12] = [
    "heron", "badger", "otter", "falcon", "weasel", "marten", "curlew", "stoat", "plover",
    "kestrel", "lapwing", "dormouse",
];
const PLACES: [&str; 12] = [
    "quarry",
    "orchard",
    "chapel",
    "brewery",
    "lighthouse",
    "tannery",
    "granary",
    "forge",
    "mill",
    "boathouse",
    "vicarage",
    "smithy",
];
const FILLER: [&str; 25] = [
    "the", "old", "harbour", "town", "kept", "its", "boats", "in", "a", "long", "row", "while",
    "gulls", "circled", "over", "grey", "water", "and", "nets", "dried", "on", "stone", "walls",
    "near", "market",
];

fn fact(k: usize) -> (String, String) {
    let (a, p) = (ANIMALS[k % 12], PLACES[(k * 5 + k / 12) % 12]);
    let name = format!("Keeper{k}");
    (
        format!("The {a} of the {p} number {k} was called {name}."),
        format!("What was the {a} of the {p} number {k} called?"),
    )
}

/// Prose of `sentences` sentences with fact k at sentence `k · sentences / facts + 7`.
fn prose(sentences: usize, facts: usize) -> String {
    let mut out = String::new();
    for i in 0..sentences {
        let planted = (0..facts).find(|k| i == k * sentences / facts.max(1) + 7);
        match planted {
            Some(k) => out.push_str(&fact(k).0),
            None => {
                let n = 8 + i % 5;
                let words: Vec<&str> = (0..n).map(|j| FILLER[(i * 7 + j * 3) % 25]).collect();
                let mut s = words.join(" ");
                s[..1].make_ascii_uppercase();
                out.push_str(&s);
                out.push('.');
            }
        }
        out.push_str(if i % 6 == 5 { "\n\n" } else { " " });
    }
    out
}

pub fn run(args: Args) -> Result<()> {
    if args.questions == 0 || args.doc_tokens == 0 {
        bail!("need at least one question and a non-empty document");
    }
    let path = model::model_path(args.model.as_deref())?;
    let tmp = tempfile_dir()?;
    let dir = args.data_dir.clone().unwrap_or_else(|| tmp.clone());
    std::fs::create_dir_all(&dir)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let store = rt.block_on(Store::open(dir.join("hearth.db")))?;
    // Size the prose from a sample's tokens per sentence.
    let file = GgufFile::open(&path)?;
    let tokenizer = Tokenizer::from_gguf(&file)?;
    let sample = tokenizer.encode(&prose(60, 0), false, false)?.len().max(1);
    let sentences = (args.doc_tokens * 60).div_ceil(sample) + 1;
    let text = prose(sentences, args.questions);
    let doc_file = dir.join("scenario-document.txt");
    std::fs::write(&doc_file, &text)?;
    let doc = rt.block_on(import_document(&store, &doc_file))?;
    let settings = Settings {
        temperature: 0.0,
        max_tokens: 4,
        ..rt.block_on(store.load_settings())?.settings
    };
    let open = |disk: bool| -> Result<ChatEngine> {
        let mut e = ChatEngine::new();
        if let Some(reason) = e.adapter_error() {
            bail!("{reason}");
        }
        if disk {
            e.open_kv_disk(&dir.join(KV_DATABASE_FILE), KvStoreOptions::default())?;
        }
        e.load(&path, args.context, &mut |_, _| {})
            .context("cannot load the model")?;
        Ok(e)
    };
    let mut engine = open(true)?;
    let whole = rt.block_on(turn_document(&store, doc.summary.id, ""))?;
    let started = Instant::now();
    let report = engine.encode_document(&whole, &settings)?;
    let encode_ms = started.elapsed().as_secs_f64() * 1e3;

    let mut ttft = Vec::new();
    let mut prefilled = Vec::new();
    let mut found = 0;
    for k in 0..args.questions {
        let (fact_text, question) = fact(k);
        let td = rt.block_on(turn_document(&store, doc.summary.id, &question))?;
        let out = engine.send_with_documents(
            k as i64 + 1,
            &[],
            &question,
            std::slice::from_ref(&td),
            &settings,
            &mut |_| {},
            &AtomicBool::new(false),
        )?;
        let read = &out.stats.documents[0];
        let at = text
            .find(&fact_text)
            .map(|b| text[..b].chars().count() as u64);
        if at.is_some_and(|s| {
            read.char_start <= s && s + fact_text.chars().count() as u64 <= read.char_end
        }) {
            found += 1;
        }
        ttft.push(out.stats.ttft_ms);
        prefilled.push(out.stats.computed_tokens as f64);
    }
    engine.flush_cache()?;
    let (mut restore_ms, mut recompute_ms, mut restored_bytes) = (None, None, None);
    if args.restart {
        drop(engine);
        let mut warm = open(true)?;
        let started = Instant::now();
        let again = warm.encode_document(&whole, &settings)?;
        restore_ms = Some(started.elapsed().as_secs_f64() * 1e3);
        let recomputed: usize = again.windows.iter().map(|w| w.encoded_tokens).sum();
        if recomputed > 0 {
            eprintln!("note: {recomputed} tokens were recomputed instead of restored");
        }
        restored_bytes = Some(warm.metrics().snapshot().restored_bytes.disk);
        drop(warm);
        let mut cold = open(false)?;
        let started = Instant::now();
        cold.encode_document(&whole, &settings)?;
        recompute_ms = Some(started.elapsed().as_secs_f64() * 1e3);
    }
    if let Some(p) = &args.plot {
        plot::lines(
            p,
            "Document questions: TTFT per question",
            "question",
            "TTFT (ms)",
            &[("ttft", &ttft)],
        )?;
    }
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    let encoded: usize = report.windows.iter().map(|w| w.encoded_tokens).sum();
    let out = json!({
        "model": path.display().to_string(),
        "doc_tokens": report.doc_tokens,
        "windows": report.windows.len(),
        "encoded_tokens": encoded,
        "encode_ms": encode_ms,
        "questions": args.questions,
        "question_ttft_ms_p50": percentile(&ttft, 0.5),
        "question_ttft_ms_p99": percentile(&ttft, 0.99),
        "question_prefilled_tokens": prefilled,
        "questions_reading_their_fact": found,
        "restore_ms": restore_ms,
        "recompute_ms": recompute_ms,
        "restored_bytes_from_disk": restored_bytes,
    });
    if args.json {
        return print_json(&out);
    }
    println!(
        "document: {} tokens in {} window(s), encoded once in {:.0} ms ({} tokens)",
        report.doc_tokens,
        report.windows.len(),
        encode_ms,
        encoded
    );
    println!("{:<10} {:>10} {:>10}", "question", "TTFT ms", "prefilled");
    for (i, (t, p)) in ttft.iter().zip(&prefilled).enumerate() {
        println!("{:<10} {:>10.1} {:>10}", i + 1, t, p);
    }
    println!(
        "{found} of {} questions read the window holding their fact",
        args.questions
    );
    if let (Some(r), Some(c)) = (restore_ms, recompute_ms) {
        println!(
            "new engine: restore {r:.0} ms vs recompute {c:.0} ms ({:.1}x)",
            c / r
        );
    }
    Ok(())
}

/// A fresh folder under the system's temp dir.
fn tempfile_dir() -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    Ok(std::env::temp_dir().join(format!("hearth-doc-bench-{}-{nanos}", std::process::id())))
}
