//! `hearth chat --model M [--data-dir D] [--conversation ID]`: an interactive terminal chat over
//! the same engine as the app (`hearth::chat`). With a data dir the conversation and its exact
//! token history are saved in `hearth.db` and the KV cache's disk tier in `kv.sqlite` (the
//! app's files), so a later `--conversation ID` resumes without recomputing. Commands: `/stats`
//! (the cache's snapshot), `/new` (a new conversation), `/quit`. `--doc ID` attaches a
//! document (`hearth doc add`): each question reads the window its words point at; `/all
//! QUESTION` asks every window and combines the answers.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use hearth::chat::{ChatEngine, TurnEvent, finish_turn, prepare_turn, turn_documents};
use hearth::store::Store;

use super::cached_generate::{KV_DATABASE_FILE, disk_options};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: PathBuf,
    /// Keep conversations (hearth.db) and the KV cache's disk tier (kv.sqlite) here.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Continue this saved conversation (needs --data-dir).
    #[arg(long, requires = "data_dir")]
    conversation: Option<i64>,
    #[arg(long, default_value_t = 4096)]
    context: u32,
    #[arg(long, default_value_t = 256)]
    max_tokens: u32,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.7)]
    temperature: f64,
    #[arg(long)]
    system: Option<String>,
    /// With --data-dir: KV blocks on disk not used for this many seconds expire.
    #[arg(long, requires = "data_dir")]
    cache_ttl: Option<u64>,
    /// Attach this document (see `hearth doc add`; needs --data-dir) to the conversation.
    #[arg(long, requires = "data_dir")]
    doc: Vec<i64>,
}

pub fn run(args: Args) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let store = match &args.data_dir {
        Some(d) => rt.block_on(Store::open(d.join("hearth.db")))?,
        None => rt.block_on(Store::open_in_memory())?,
    };
    let mut engine = ChatEngine::new();
    if let Some(reason) = engine.adapter_error() {
        bail!("{reason}");
    }
    if let Some(d) = &args.data_dir {
        engine.open_kv_disk(&d.join(KV_DATABASE_FILE), disk_options(args.cache_ttl))?;
    }
    eprintln!("loading {} …", args.model.display());
    let info = engine
        .load(&args.model, args.context, &mut |_, _| {})
        .context("cannot load the model")?;
    let mut settings = rt.block_on(store.load_settings())?.settings;
    settings.max_tokens = args.max_tokens;
    settings.temperature = args.temperature;
    if let Some(s) = &args.system {
        settings.system_prompt = s.clone();
    }
    let mut conversation = match args.conversation {
        Some(id) => rt.block_on(store.get_conversation(id))?.summary.id,
        None => rt.block_on(store.create_conversation(None))?.id,
    };
    for &d in &args.doc {
        rt.block_on(store.attach(conversation, d))
            .with_context(|| format!("cannot attach document {d}"))?;
    }
    eprintln!(
        "{} ({}, {} tokens of context). Conversation {conversation}. /stats /new /all Q /quit",
        info.name, info.quantization, info.context_length
    );
    let stdin = std::io::stdin();
    loop {
        eprint!("> ");
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim();
        match line {
            "" => continue,
            "/quit" | "/exit" => break,
            "/stats" => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&engine.metrics().snapshot())?
                );
                continue;
            }
            all if all.starts_with("/all ") => {
                let question = all["/all ".len()..].trim();
                let documents = rt.block_on(turn_documents(&store, conversation, question))?;
                let Some(doc) = documents.first() else {
                    eprintln!(
                        "/all asks every window of the attached document: attach one with --doc"
                    );
                    continue;
                };
                let mut out = std::io::stdout();
                let every = engine.ask_every_window(
                    doc,
                    question,
                    &settings,
                    &mut |e| print_tokens(&mut out, e),
                    &AtomicBool::new(false),
                )?;
                println!();
                eprintln!(
                    "[asked {} windows, then combined ({} prompt tokens)]",
                    every.parts.len(),
                    every.combined.stats.prompt_tokens
                );
                continue;
            }
            "/new" => {
                conversation = rt.block_on(store.create_conversation(None))?.id;
                eprintln!("conversation {conversation}");
                continue;
            }
            _ => {}
        }
        // The core's turn (hearth::chat::run_turn's halves): the engine runs outside the
        // runtime, since the disk tier blocks on its own.
        let request = rt.block_on(prepare_turn(&store, conversation, line, &settings))?;
        let mut out = std::io::stdout();
        let outcome = request.run(
            &mut engine,
            &mut |e| print_tokens(&mut out, e),
            &AtomicBool::new(false),
        )?;
        let turn = rt.block_on(finish_turn(&store, request.user_message, outcome))?;
        let outcome = turn.outcome;
        println!();
        let s = &outcome.stats;
        let by = s.reused_by_tier.unwrap_or_default();
        eprintln!(
            "[{} prompt tokens: {} reused (gpu {}, ram {}, disk {}), {} computed; {} generated; ttft {:.0} ms{}]",
            s.prompt_tokens,
            s.reused_tokens,
            by.gpu,
            by.ram,
            by.disk,
            s.computed_tokens,
            s.generated_tokens,
            s.ttft_ms,
            s.recompute_reason
                .as_deref()
                .map(|r| format!("; recomputed: {r}"))
                .unwrap_or_default()
        );
        for d in &s.documents {
            eprintln!(
                "[read {}: window {} of {}{}, chars {}..{}; prefix {} tokens, {} encoded now]",
                d.name,
                d.window,
                d.windows,
                d.found_by
                    .as_deref()
                    .map_or(String::new(), |f| format!(" (found by {f})")),
                d.char_start,
                d.char_end,
                d.prefix_tokens,
                d.encoded_tokens
            );
        }
    }
    engine.flush_cache()?;
    Ok(())
}

/// Streams a turn's text to `out` as it comes.
fn print_tokens(out: &mut std::io::Stdout, event: TurnEvent) {
    if let TurnEvent::Token { text } = event {
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}
