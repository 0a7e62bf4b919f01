//! Scenario 1: one long multi-turn chat. Per turn: the prompt, what the cache reused, what
//! was prefilled, the reply; the KV memory the conversation holds (measured from the pool, and
//! by the formula 2 · layers · kv_heads · head_dim · bytes · tokens); and the time to first
//! token with the cache versus recomputing the whole history (a second engine whose cache is
//! cleared before every turn).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use hearth::chat::{ChatEngine, TurnOutcome};
use hearth::model::ModelConfig;
use hearth::store::{Message, Role, Settings};
use serde_json::{Value, json};

use super::{model, plot};
use crate::util::print_json;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long, default_value_t = 10)]
    turns: usize,
    /// Tokens per reply.
    #[arg(long, default_value_t = 32)]
    reply_tokens: u32,
    #[arg(long, default_value_t = 8192)]
    context: u32,
    #[arg(long)]
    plot: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

const QUESTIONS: [&str; 5] = [
    "Tell me a short story about a cat who finds a red ball in the park.",
    "What did the cat do with the ball next? Describe the park and the weather too.",
    "Then a dog arrives and wants to play. What happens between them?",
    "How does the story end, and what did the cat and the dog learn?",
    "Now tell the same story again from the dog's point of view, with more detail.",
];

fn engine(path: &std::path::Path, context: u32) -> Result<ChatEngine> {
    let mut e = ChatEngine::new();
    if let Some(reason) = e.adapter_error() {
        bail!("{reason}");
    }
    e.load(path, context, &mut |_, _| {})
        .context("cannot load the model")?;
    Ok(e)
}

fn send(e: &mut ChatEngine, history: &[Message], text: &str, s: &Settings) -> Result<TurnOutcome> {
    Ok(e.send(1, history, text, s, &mut |_| {}, &AtomicBool::new(false))?)
}

pub fn run(args: Args) -> Result<()> {
    if args.turns == 0 {
        bail!("--turns must be at least 1");
    }
    let path = model::model_path(args.model.as_deref())?;
    let cfg = ModelConfig::from_gguf(&hearth::gguf::GgufFile::open(&path)?)?;
    let settings = Settings {
        temperature: 0.0,
        repeat_penalty: 1.0,
        max_tokens: args.reply_tokens,
        system_prompt: "You are a storyteller for small children. Keep every story gentle.".into(),
        ..Settings::default()
    };
    let mut cached = engine(&path, args.context)?;
    let mut recompute = engine(&path, args.context)?;
    // f16 K and V: 2 bytes per element.
    let per_token = 2 * cfg.n_layer as u64 * cfg.n_head_kv as u64 * cfg.head_dim as u64 * 2;
    let mut history: Vec<Message> = Vec::new();
    let mut turns: Vec<Value> = Vec::new();
    let (mut ttft_cached, mut ttft_recompute, mut kv_mib) = (Vec::new(), Vec::new(), Vec::new());
    for turn in 1..=args.turns {
        let text = QUESTIONS[(turn - 1) % QUESTIONS.len()];
        recompute.clear_cache();
        let cold = send(&mut recompute, &history, text, &settings)?;
        let warm = send(&mut cached, &history, text, &settings)?;
        if warm.tokens != cold.tokens {
            bail!("turn {turn}: the cached reply differs from the recomputed one");
        }
        let (blocks, block_bytes) = cached.kv_blocks_held().unwrap_or((0, 0));
        let block_size = 16;
        let s = &warm.stats;
        turns.push(json!({
            "turn": turn,
            "prompt_tokens": s.prompt_tokens,
            "reused_tokens": s.reused_tokens,
            "prefilled_tokens": s.computed_tokens,
            "reply_tokens": s.generated_tokens,
            "kv_tokens": blocks * block_size,
            "kv_bytes": blocks * block_bytes,
            "kv_bytes_formula": per_token * blocks * block_size,
            "ttft_ms_cached": s.ttft_ms,
            "ttft_ms_recompute": cold.stats.ttft_ms,
            "recompute_reason": s.recompute_reason,
        }));
        ttft_cached.push(s.ttft_ms);
        ttft_recompute.push(cold.stats.ttft_ms);
        kv_mib.push((blocks * block_bytes) as f64 / (1024.0 * 1024.0));
        let mut user = message(turn, Role::User, text);
        user.tokens = Some(warm.user_tokens.clone());
        let mut reply = message(turn, Role::Assistant, &warm.text);
        reply.tokens = warm.reply_tokens.clone();
        history.extend([user, reply]);
    }
    if let Some(p) = &args.plot {
        plot::lines(
            p,
            "Time to first token per turn: cached vs recomputing the history",
            "turn",
            "TTFT (ms)",
            &[("cached", &ttft_cached), ("recompute", &ttft_recompute)],
        )?;
    }
    let report = json!({
        "model": path.display().to_string(),
        "kv_bytes_per_token": per_token,
        "turns": turns,
    });
    if args.json {
        return print_json(&report);
    }
    println!(
        "{:>4} {:>7} {:>7} {:>9} {:>6} {:>10} {:>11} {:>12}",
        "turn", "prompt", "reused", "prefilled", "reply", "KV MiB", "TTFT cache", "TTFT recomp"
    );
    for (t, mib) in turns.iter().zip(&kv_mib) {
        println!(
            "{:>4} {:>7} {:>7} {:>9} {:>6} {:>10.2} {:>9.1}ms {:>10.1}ms",
            n(&t["turn"]),
            n(&t["prompt_tokens"]),
            n(&t["reused_tokens"]),
            n(&t["prefilled_tokens"]),
            n(&t["reply_tokens"]),
            mib,
            t["ttft_ms_cached"].as_f64().unwrap_or(0.0),
            t["ttft_ms_recompute"].as_f64().unwrap_or(0.0)
        );
    }
    println!("KV bytes per token: {per_token} (2 · layers · kv_heads · head_dim · 2 bytes)");
    Ok(())
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn message(turn: usize, role: Role, content: &str) -> Message {
    Message {
        id: (turn * 2) as i64,
        conversation_id: 1,
        role,
        content: content.to_string(),
        created_at: String::new(),
        stats: None,
        tokens: None,
    }
}
