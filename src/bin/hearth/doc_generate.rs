//! `hearth generate --data-dir D --doc ID`: one question about a document (see `hearth doc
//! add`), answered through the chat engine as a one-turn conversation: the document's window
//! (the one the question's words point at) is a cached prefix found by hash — encoded once,
//! restored from `kv.sqlite` by later processes — and the JSON says which window was read.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use hearth::chat::{ChatEngine, TurnEvent, turn_document};
use hearth::store::kv_blocks::KvStoreOptions;
use hearth::store::{Settings, Store};
use serde_json::json;

use super::cached_generate::KV_DATABASE_FILE;
use super::util::print_json;

/// The conversation id one-off questions run under (never stored; its blocks on disk are
/// owned by "conversation:-1", the document's prefix by the document).
const ONE_OFF: i64 = -1;

pub struct DocQuestion<'a> {
    pub model: &'a Path,
    pub data_dir: &'a Path,
    pub doc: i64,
    pub question: &'a str,
    pub system: Option<&'a str>,
    pub context: u32,
    pub settings: Settings,
    pub json: bool,
}

pub fn run(q: DocQuestion) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let store = rt.block_on(Store::open(q.data_dir.join("hearth.db")))?;
    let doc = rt
        .block_on(turn_document(&store, q.doc, q.question))
        .with_context(|| format!("document {} (see `hearth doc list`)", q.doc))?;
    let mut engine = ChatEngine::new();
    if let Some(reason) = engine.adapter_error() {
        bail!("{reason}");
    }
    engine.open_kv_disk(
        &q.data_dir.join(KV_DATABASE_FILE),
        KvStoreOptions::default(),
    )?;
    engine
        .load(q.model, q.context, &mut |_, _| {})
        .context("cannot load the model")?;
    let mut settings = q.settings;
    if let Some(s) = q.system {
        settings.system_prompt = s.to_string();
    }
    let mut out = std::io::stdout();
    let outcome = engine.send_with_documents(
        ONE_OFF,
        &[],
        q.question,
        std::slice::from_ref(&doc),
        &settings,
        &mut |e| {
            if let TurnEvent::Token { text } = e
                && !q.json
            {
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
        },
        &AtomicBool::new(false),
    )?;
    engine.flush_cache()?;
    let s = &outcome.stats;
    let by = s.reused_by_tier.unwrap_or_default();
    let read = s.documents.first();
    let document = read.map(|r| {
        let whole = r.prefix_tokens / 16 * 16;
        json!({
            "id": r.document_id,
            "window": r.window,
            "windows": r.windows,
            "chars": [r.char_start, r.char_end],
            "prefix_tokens": r.prefix_tokens,
            "encoded_tokens": r.encoded_tokens,
            "cached_tokens": s.reused_tokens.min(whole),
            "found_by": r.found_by,
        })
    });
    if !q.json {
        println!();
        if let Some(r) = read {
            eprintln!(
                "[read {}: window {} of {}, chars {}..{}; {} prompt tokens, {} reused]",
                r.name,
                r.window,
                r.windows,
                r.char_start,
                r.char_end,
                s.prompt_tokens,
                s.reused_tokens
            );
        }
        return Ok(());
    }
    print_json(&json!({
        "text": outcome.text,
        "tokens": outcome.tokens,
        "prompt_tokens": s.prompt_tokens,
        "completion_tokens": s.generated_tokens,
        "cached_tokens": s.reused_tokens,
        "cached_by_tier": {"gpu": by.gpu, "ram": by.ram, "disk": by.disk},
        "ttft_ms": s.ttft_ms,
        "decode_tok_s": s.decode_tok_s,
        "stop_reason": s.stop_reason,
        "document": document,
    }))
}
