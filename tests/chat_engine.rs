//! `hearth::chat::ChatEngine` on the GPU engine (lavapipe in CI) with the trained
//! stories260K-f32 fixture. It has no chat template, so the Llama 2 fallback renders the
//! conversation. Replies are greedy, so runs are reproducible.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use hearth::chat::{
    ChatEngine, ChatError, REASON_CONTEXT_FULL, REASON_EVICTED, REASON_FIRST_TURN,
    REASON_MODEL_RELOADED, REASON_TEMPLATE, TurnEvent, TurnOutcome,
};
use hearth::store::{Message, Role, Settings, StopReason};

const MODEL: &str = "stories260K-f32.gguf";

fn engine_with_model(context: u32) -> Option<(ChatEngine, PathBuf)> {
    engine_with_budget(context, None)
}

/// An engine whose KV pool gets `budget` bytes (Some(1): one context, the least).
fn engine_with_budget(context: u32, budget: Option<u64>) -> Option<(ChatEngine, PathBuf)> {
    let path = common::fixture_model(MODEL)?;
    let mut engine = ChatEngine::new();
    engine.set_kv_budget(budget);
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
        tokens: None,
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
fn each_conversation_keeps_its_cache_when_another_runs() {
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
        Some(REASON_MODEL_RELOADED),
        "never ran since the load"
    );
    assert_eq!(b.stats.reused_tokens, 0);
    assert_eq!(engine.resident_conversations(), 2);
    assert_eq!(engine.stats().kv_conversations_held, 2);

    // Back to the first conversation: its sequence is still in the pool.
    let history = [
        message(1, Role::User, "Once upon a time"),
        message(1, Role::Assistant, &a.text),
    ];
    let (back, _) = turn(&mut engine, 1, &history, "And then?", &settings);
    assert!(
        back.stats.reused_tokens >= a.stats.prompt_tokens,
        "reused {} of the first turn's {} prompt tokens",
        back.stats.reused_tokens,
        a.stats.prompt_tokens
    );
    assert!(
        matches!(
            back.stats.recompute_reason.as_deref(),
            None | Some(REASON_TEMPLATE)
        ),
        "{:?}",
        back.stats.recompute_reason
    );
    let held = engine.stats().kv_tokens_held;
    engine.forget_conversation(2);
    assert_eq!(engine.resident_conversations(), 1);
    assert!(
        engine.stats().kv_tokens_held < held,
        "conversation 2's tokens are released"
    );
}

#[test]
fn a_conversation_evicted_for_room_says_so() {
    // A pool of one 128-token context: conversation 1 takes two 16-token blocks;
    // conversation 2's long history and reply need more than the rest, so conversation 1
    // lets its sequence go and its cached blocks are evicted.
    let Some((mut engine, _)) = engine_with_budget(128, Some(1)) else {
        return;
    };
    let settings = greedy(8);
    let (a, _) = turn(&mut engine, 1, &[], "Once upon a time", &settings);
    let long: Vec<Message> = [
        "Lily had a big red ball and a small blue ball.",
        "She played with them in the park every day after school.",
        "One day a dog ran to the park and took the red ball.",
        "Lily ran after the dog and called for her mom.",
    ]
    .iter()
    .enumerate()
    .map(|(i, t)| {
        message(
            2,
            if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            },
            t,
        )
    })
    .collect();
    // Room for a 40-token reply on top of its prompt.
    let (b, _) = turn(&mut engine, 2, &long, "What did her mom do?", &greedy(40));
    let a_held = (a.stats.prompt_tokens + a.stats.generated_tokens) as usize;
    assert!(
        b.stats.prompt_tokens as usize + 40 > 128 - a_held.div_ceil(16) * 16,
        "the test needs conversation 2 to overflow what conversation 1 leaves: {:?}",
        b.stats
    );
    assert_eq!(
        engine.resident_conversations(),
        1,
        "conversation 1 was evicted: {:?}",
        b.stats
    );

    let history = [
        message(1, Role::User, "Once upon a time"),
        message(1, Role::Assistant, &a.text),
    ];
    let (back, _) = turn(&mut engine, 1, &history, "And then?", &settings);
    assert_eq!(back.stats.recompute_reason.as_deref(), Some(REASON_EVICTED));
    // Its whole blocks were written behind to RAM: what it reuses comes from there.
    let by = back.stats.reused_by_tier.unwrap();
    assert_eq!(by.gpu, 0, "{:?}", back.stats);
    assert_eq!(by.ram, back.stats.reused_tokens, "{:?}", back.stats);
    assert!(!back.text.is_empty() || back.stats.generated_tokens > 0);
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

/// Two conversations with one system prompt: the second finds the system prompt's blocks
/// (computed by the first) by content, and its greedy reply is token-identical to a cold
/// run of the same turn.
#[test]
fn conversations_share_a_system_prompt_and_a_hit_matches_a_cold_run() {
    let Some((mut engine, _)) = engine_with_model(512) else {
        return;
    };
    let settings = Settings {
        system_prompt: "You tell short stories for small children. Every story has a cat, \
                        a dog and a big red ball, and it ends happily in the park."
            .into(),
        ..greedy(12)
    };
    let (first, _) = turn(&mut engine, 1, &[], "Once upon a time", &settings);
    assert_eq!(first.stats.reused_tokens, 0);
    let (shared, _) = turn(&mut engine, 2, &[], "The dog ran.", &settings);
    let reused = shared.stats.reused_tokens;
    assert!(
        reused >= 32 && reused % 16 == 0,
        "the system prompt's whole blocks come from conversation 1: {:?}",
        shared.stats
    );
    assert_eq!(
        shared.stats.computed_tokens,
        shared.stats.prompt_tokens - reused
    );
    let snapshot = engine.stats();
    assert_eq!(snapshot.reused_tokens_total, u64::from(reused));

    engine.clear_cache();
    let (cold, _) = turn(&mut engine, 3, &[], "The dog ran.", &settings);
    assert_eq!(cold.stats.reused_tokens, 0, "a cleared cache holds nothing");
    assert_eq!(cold.stats.prompt_tokens, shared.stats.prompt_tokens);
    assert_eq!(
        cold.tokens, shared.tokens,
        "cold {:?} vs shared {:?}",
        cold.text, shared.text
    );
}

/// Exact token histories on a model without a chat template (the Llama 2 fallback renders
/// it): each turn extends the previous turn's exact ids (its prompt and the reply's generated
/// ids), so turn N reuses every token of turn N−1's prompt and reply, and says nothing about
/// recomputing.
#[test]
fn turn_n_reuses_every_token_of_turn_n_minus_1() {
    let Some((mut engine, _)) = engine_with_model(512) else {
        return;
    };
    let settings = greedy(12);
    let mut history: Vec<Message> = Vec::new();
    let mut previous = 0usize;
    for (i, text) in [
        "Once upon a time",
        "The cat sat down.",
        "Then a dog came to the park.",
    ]
    .iter()
    .enumerate()
    {
        let (out, _) = turn(&mut engine, 1, &history, text, &settings);
        if i > 0 {
            assert!(
                out.stats.reused_tokens as usize >= previous,
                "turn {}: reused {} of the previous {previous}: {:?}",
                i + 1,
                out.stats.reused_tokens,
                out.stats
            );
            assert_eq!(out.stats.recompute_reason, None, "{:?}", out.stats);
            assert!(!out.user_tokens.base, "extends the history");
        } else {
            assert!(out.user_tokens.base);
        }
        previous = out.stats.prompt_tokens as usize + out.tokens.len();
        let mut user = message(1, Role::User, text);
        user.tokens = Some(out.user_tokens.clone());
        let mut reply = message(1, Role::Assistant, &out.text);
        reply.tokens = out.reply_tokens.clone();
        history.extend([user, reply]);
    }
}
