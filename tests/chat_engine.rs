//! `hearth::chat::ChatEngine` on the GPU engine (lavapipe in CI) with the trained
//! stories260K-f32 fixture. It has no chat template, so the Llama 2 fallback renders the
//! conversation. Replies are greedy, so runs are reproducible.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use hearth::chat::{
    ChatEngine, ChatError, REASON_CONTEXT_FULL, REASON_FIRST_TURN, REASON_MODEL_RELOADED,
    REASON_OTHER_CONVERSATION, TurnEvent, TurnOutcome,
};
use hearth::store::{Message, Role, Settings, StopReason};

const MODEL: &str = "stories260K-f32.gguf";

fn engine_with_model(context: u32) -> Option<(ChatEngine, PathBuf)> {
    let path = common::fixture_model(MODEL)?;
    let mut engine = ChatEngine::new();
    if let Some(reason) = engine.adapter_error() {
        if std::env::var_os("CI").is_some() {
            panic!("no GPU adapter and CI is set: {reason}");
        }
        eprintln!("SKIP: {reason}");
        return None;
    }
    let mut stages = Vec::new();
    engine
        .load(&path, context, &mut |f, s| stages.push((f, s.to_string())))
        .expect("load stories260K");
    assert_eq!(
        stages.last().map(|s| s.0),
        Some(1.0),
        "load ends at 100%: {stages:?}"
    );
    Some((engine, path))
}

fn greedy(max_tokens: u32) -> Settings {
    Settings {
        temperature: 0.0,
        repeat_penalty: 1.0,
        max_tokens,
        ..Settings::default()
    }
}

fn message(conversation_id: i64, role: Role, content: &str) -> Message {
    Message {
        id: 0,
        conversation_id,
        role,
        content: content.to_string(),
        created_at: "2025-01-01T00:00:00.000Z".into(),
        stats: None,
    }
}

/// Runs a turn and returns its outcome and the events it streamed.
fn turn(
    engine: &mut ChatEngine,
    conversation: i64,
    history: &[Message],
    text: &str,
    settings: &Settings,
) -> (TurnOutcome, Vec<TurnEvent>) {
    let mut events = Vec::new();
    let cancel = AtomicBool::new(false);
    let out = engine
        .send(
            conversation,
            history,
            text,
            settings,
            &mut |e| events.push(e),
            &cancel,
        )
        .expect("turn");
    (out, events)
}

fn streamed_text(events: &[TurnEvent]) -> String {
    events
        .iter()
        .filter_map(|e| {
            if let TurnEvent::Token { text } = e {
                Some(text.as_str())
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn second_turn_computes_only_the_new_tokens() {
    let Some((mut engine, _)) = engine_with_model(512) else {
        return;
    };
    let settings = greedy(24);
    let (first, events) = turn(&mut engine, 1, &[], "Once upon a time", &settings);
    let s1 = &first.stats;
    println!("turn 1: {s1:?} {:?}", first.text);
    assert_eq!(s1.reused_tokens, 0);
    assert_eq!(s1.computed_tokens, s1.prompt_tokens);
    assert_eq!(s1.recompute_reason.as_deref(), Some(REASON_FIRST_TURN));
    assert!(s1.generated_tokens > 0);
    assert_eq!(
        streamed_text(&events),
        first.text,
        "the streamed tokens are the reply"
    );
    assert!(matches!(
        events.first(),
        Some(TurnEvent::Started {
            reused_tokens: 0,
            ..
        })
    ));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TurnEvent::Prefill { done, total } if done == total))
    );

    let history = [
        message(1, Role::User, "Once upon a time"),
        message(1, Role::Assistant, &first.text),
    ];
    let (second, _) = turn(&mut engine, 1, &history, "What happened next?", &settings);
    let s2 = &second.stats;
    println!("turn 2: {s2:?}");
    // Everything the first turn computed (its prompt, and its reply up to how the template
    // re-renders it) is reused; only the rest is computed.
    let cached_after_first = s1.prompt_tokens + s1.generated_tokens;
    assert!(
        s2.reused_tokens >= s1.prompt_tokens,
        "reused {} < first prompt {}",
        s2.reused_tokens,
        s1.prompt_tokens
    );
    assert!(s2.reused_tokens <= cached_after_first);
    assert_eq!(s2.computed_tokens, s2.prompt_tokens - s2.reused_tokens);
    assert!(s2.computed_tokens < s2.prompt_tokens);
    assert!(
        s2.recompute_reason.is_none()
            || s2.recompute_reason.as_deref() == Some(hearth::chat::REASON_TEMPLATE),
        "{:?}",
        s2.recompute_reason
    );
    if s2.recompute_reason.is_none() {
        // Nothing cached was lost: reuse covers the whole cache after turn 1 (the last
        // generated token is only in the cache when generation went on past it).
        assert!(
            s2.reused_tokens + 1 >= cached_after_first,
            "{} vs {cached_after_first}",
            s2.reused_tokens
        );
    }

    let stats = engine.stats();
    assert_eq!(stats.replies_total, 2);
    assert_eq!(stats.reused_tokens_total, u64::from(s2.reused_tokens));
    assert!(stats.kv_tokens_held >= u64::from(s2.prompt_tokens));
    assert!(stats.kv_bytes_held > 0);
    assert!(stats.ttft_ms_p50.is_some());
}

#[test]
fn a_cached_run_gives_the_same_greedy_tokens_as_a_cold_run() {
    let Some((mut engine, _)) = engine_with_model(512) else {
        return;
    };
    let settings = greedy(16);
    let (first, _) = turn(&mut engine, 1, &[], "Once upon a time", &settings);
    let history = [
        message(1, Role::User, "Once upon a time"),
        message(1, Role::Assistant, &first.text),
    ];
    let (cached, _) = turn(&mut engine, 1, &history, "The cat sat down.", &settings);
    assert!(cached.stats.reused_tokens > 0);

    engine.clear_cache();
    let (cold, _) = turn(&mut engine, 1, &history, "The cat sat down.", &settings);
    assert_eq!(cold.stats.reused_tokens, 0);
    assert_eq!(
        cold.stats.recompute_reason.as_deref(),
        Some(REASON_MODEL_RELOADED)
    );
    assert_eq!(cold.stats.prompt_tokens, cached.stats.prompt_tokens);
    assert_eq!(
        cold.tokens, cached.tokens,
        "cold {:?} vs cached {:?}",
        cold.text, cached.text
    );
}

#[test]
fn switching_conversations_says_why_the_cache_was_not_reused() {
    let Some((mut engine, _)) = engine_with_model(512) else {
        return;
    };
    let settings = greedy(8);
    let (a, _) = turn(&mut engine, 1, &[], "Once upon a time", &settings);
    let other = [
        message(2, Role::User, "Lily had a ball."),
        message(2, Role::Assistant, "She liked to play."),
    ];
    let (b, _) = turn(&mut engine, 2, &other, "Where did she go?", &settings);
    assert_eq!(
        b.stats.recompute_reason.as_deref(),
        Some(REASON_OTHER_CONVERSATION)
    );
    assert!(
        b.stats.reused_tokens < a.stats.prompt_tokens,
        "only a shared start (BOS, [INST]) can be reused"
    );

    // Back to the first conversation: conversation 2 holds the cache now.
    let history = [
        message(1, Role::User, "Once upon a time"),
        message(1, Role::Assistant, &a.text),
    ];
    let (back, _) = turn(&mut engine, 1, &history, "And then?", &settings);
    assert_eq!(
        back.stats.recompute_reason.as_deref(),
        Some(REASON_OTHER_CONVERSATION)
    );
}

#[test]
fn cancel_stops_the_reply() {
    let Some((mut engine, _)) = engine_with_model(512) else {
        return;
    };
    let settings = greedy(200);
    let cancel = AtomicBool::new(false);
    let mut tokens = 0;
    let out = engine
        .send(
            1,
            &[],
            "Once upon a time",
            &settings,
            &mut |e| {
                if matches!(e, TurnEvent::Token { .. }) {
                    tokens += 1;
                    if tokens == 3 {
                        cancel.store(true, Ordering::Relaxed);
                    }
                }
            },
            &cancel,
        )
        .unwrap();
    assert_eq!(out.stats.stop_reason, StopReason::Cancelled);
    assert!(
        out.stats.generated_tokens <= 4,
        "stopped right after the flag: {}",
        out.stats.generated_tokens
    );

    // Cancelled before the prefill: nothing is generated, the engine stays usable.
    cancel.store(true, Ordering::Relaxed);
    let out = engine
        .send(2, &[], "Hello", &settings, &mut |_| {}, &cancel)
        .unwrap();
    assert_eq!(out.stats.stop_reason, StopReason::Cancelled);
    assert_eq!(out.stats.generated_tokens, 0);
    let (after, _) = turn(&mut engine, 2, &[], "Hello", &greedy(4));
    assert!(after.stats.generated_tokens > 0);
}

#[test]
fn context_overflow_drops_the_oldest_turns_and_says_so() {
    let Some((mut engine, _)) = engine_with_model(128) else {
        return;
    };
    let settings = Settings {
        system_prompt: "You tell short stories.".into(),
        ..greedy(8)
    };
    let mut history = Vec::new();
    for i in 0..12 {
        history.push(message(
            1,
            Role::User,
            &format!("Tell me about the dog number {i} in the park."),
        ));
        history.push(message(
            1,
            Role::Assistant,
            "The dog ran and played with a red ball all day long.",
        ));
    }
    let (out, _) = turn(&mut engine, 1, &history, "And the cat?", &settings);
    let reason = out.stats.recompute_reason.clone().unwrap_or_default();
    assert!(reason.starts_with(REASON_CONTEXT_FULL), "{reason}");
    assert!(out.stats.prompt_tokens as usize + 8 <= 128);
}

#[test]
fn plain_errors_without_a_model_a_gpu_or_a_good_file() {
    let mut engine = ChatEngine::with_gpu(Err("No usable GPU adapter was found (test)".into()));
    let cancel = AtomicBool::new(false);
    let err = engine
        .send(1, &[], "Hi", &greedy(4), &mut |_| {}, &cancel)
        .unwrap_err();
    assert!(matches!(err, ChatError::NoModel), "{err}");
    let Some(path) = common::fixture_model(MODEL) else {
        return;
    };
    let err = engine.load(&path, 512, &mut |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("No usable GPU adapter"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.gguf");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&broken, &bytes).unwrap();
    let err = engine.plan(&broken, 512).unwrap_err().to_string();
    assert!(
        err.contains("broken.gguf") && err.contains("not a usable GGUF file"),
        "{err}"
    );
}
