//! The chat engine as the chat tests load it.

use std::path::Path;

use std::sync::atomic::AtomicBool;

use hearth::chat::{ChatEngine, TurnOutcome};
use hearth::store::kv_blocks::KvStoreOptions;
use hearth::store::{Message, Role, Settings};

/// An engine with `model` loaded for `context` tokens: `kv` opens the disk tier there;
/// `budget` bytes of GPU KV (Some(1): one context). None, with the reason printed, when there
/// is no GPU adapter (a failure when `CI` is set).
pub fn engine(
    model: &Path,
    kv: Option<&Path>,
    budget: Option<u64>,
    context: u32,
) -> Option<ChatEngine> {
    let mut e = ChatEngine::new();
    if let Some(reason) = e.adapter_error() {
        assert!(
            std::env::var_os("CI").is_none(),
            "no GPU adapter and CI is set: {reason}"
        );
        eprintln!("SKIP: {reason}");
        return None;
    }
    if let Some(kv) = kv {
        e.open_kv_disk(kv, KvStoreOptions::default()).unwrap();
    }
    e.set_kv_budget(budget);
    e.load(model, context, &mut |_, _| {}).unwrap();
    Some(e)
}

/// Greedy, short replies after a system prompt long enough to fill whole KV blocks: the
/// settings of the stories260K cache tests.
pub fn story_settings() -> Settings {
    Settings {
        temperature: 0.0,
        repeat_penalty: 1.0,
        max_tokens: 10,
        system_prompt: "You tell short stories for small children about a cat, a dog and a \
                        big red ball in the park, and they always end happily."
            .into(),
        ..Settings::default()
    }
}

/// One turn of conversation `conv` with [`story_settings`].
pub fn story_turn(e: &mut ChatEngine, conv: i64, history: &[Message], text: &str) -> TurnOutcome {
    e.send(
        conv,
        history,
        text,
        &story_settings(),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap()
}

/// The history after `out` answered `text`, with the exact token segments.
pub fn push_turn(history: &mut Vec<Message>, conv: i64, text: &str, out: &TurnOutcome) {
    let msg = |role, content: &str| Message {
        id: history.len() as i64 + 1,
        conversation_id: conv,
        role,
        content: content.to_string(),
        created_at: String::new(),
        stats: None,
        tokens: None,
    };
    let mut user = msg(Role::User, text);
    user.tokens = Some(out.user_tokens.clone());
    let mut reply = msg(Role::Assistant, &out.text);
    reply.tokens = out.reply_tokens.clone();
    history.extend([user, reply]);
}

/// The reply to `text` after `history` from a fresh engine on `model` with nothing cached: the
/// cold reference a cached turn must equal.
pub fn story_cold_reply(
    model: &Path,
    history: &[Message],
    text: &str,
    context: u32,
) -> TurnOutcome {
    let mut cold = engine(model, None, None, context).unwrap();
    let reference = story_turn(&mut cold, 1, history, text);
    assert_eq!(reference.stats.reused_tokens, 0);
    reference
}
