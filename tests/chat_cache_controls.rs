//! The cache panel's controls through the chat engine (stories260K on lavapipe): clearing one
//! conversation, one tier, pinning and unpinning — and every reply after a clear is
//! token-identical to a cold run.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use hearth::chat::{ChatEngine, ChatError, TurnDocument, TurnOutcome};
use hearth::kv::{CacheTier, Owner};
use hearth::store::Message;

const MODEL: &str = "stories260K-f32.gguf";

use common::chat::{push_turn as push, story_settings as settings, story_turn as turn};

fn engine(kv: Option<&Path>, budget: Option<u64>, context: u32) -> Option<ChatEngine> {
    common::chat::engine(&common::fixture_model(MODEL)?, kv, budget, context)
}

const FIRST: &str = "Once upon a time there was a cat.";
const OTHER: &str = "Tell me about a dog who found a ball.";
const NEXT: &str = "What did the dog do?";
const LONG: &str = "Lily had a big red ball and a small blue ball. She played with them in the \
                    park every day after school, and her dog ran after the balls and brought \
                    them back to her. One day the red ball rolled into the pond.";

/// An engine whose GPU pool holds `blocks` blocks (of 16 tokens) at `context` tokens, so that
/// pins (at most half the pool, leaving one context free) have room.
fn engine_with_blocks(blocks: u64, context: u32) -> Option<ChatEngine> {
    let probe = engine(None, Some(1), context)?;
    let (_, per_block) = probe.kv_blocks_held()?;
    drop(probe);
    engine(None, Some(per_block * blocks), context)
}

/// The next turn after `history` with nothing cached: the cold reference.
fn cold_reply(history: &[Message], context: u32) -> TurnOutcome {
    let model = common::fixture_model(MODEL).unwrap();
    common::chat::story_cold_reply(&model, history, NEXT, context)
}

#[test]
fn clearing_one_conversation_recomputes_it_and_leaves_the_shared_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let kv = dir.path().join("kv.sqlite");
    let Some(mut e) = engine(Some(&kv), None, 512) else {
        return;
    };
    let mut h1 = Vec::new();
    let a = turn(&mut e, 1, &h1, FIRST);
    push(&mut h1, 1, FIRST, &a);
    let mut h2 = Vec::new();
    let b = turn(&mut e, 2, &h2, OTHER);
    push(&mut h2, 2, OTHER, &b);
    let shared = b.stats.reused_tokens;
    assert!(shared > 0, "the system prompt is shared: {:?}", b.stats);
    e.flush_cache().unwrap();

    e.clear_owner(Owner::Conversation(1)).unwrap();
    let owners = e.kv_disk().unwrap().stats().unwrap().per_owner;
    assert!(
        owners.iter().all(|u| u.key != "conversation:1"),
        "{owners:?}"
    );
    assert!(
        owners.iter().any(|u| u.key == "conversation:2"),
        "{owners:?}"
    );

    let warm = turn(&mut e, 1, &h1, NEXT);
    let by = warm.stats.reused_by_tier.unwrap();
    assert!(
        warm.stats.reused_tokens <= shared && by.ram + by.disk == 0,
        "only the prefix conversation 2 shares is left: {:?}",
        warm.stats
    );
    assert_eq!(warm.tokens, cold_reply(&h1, 512).tokens);

    // Conversation 2 kept all of its cache.
    let again = turn(&mut e, 2, &h2, NEXT);
    let prompt_before_reply = (b.stats.prompt_tokens + b.stats.generated_tokens) as usize;
    assert!(
        again.stats.reused_tokens as usize + 1 >= prompt_before_reply,
        "{:?}",
        again.stats
    );
}

/// Runs twelve one-turn conversations from `first` on (a long story each, sharing only the
/// system prompt): several times the pool's size, so every unpinned block that is not in use
/// is evicted. Returns the next unused conversation id.
fn pressure(e: &mut ChatEngine, first: i64) -> i64 {
    let evicted = e.metrics().snapshot().evictions.gpu;
    for conv in first..first + 12 {
        turn(e, conv, &[], &format!("Story {conv}. {LONG}"));
    }
    assert!(
        e.metrics().snapshot().evictions.gpu > evicted,
        "the test needs pressure that evicts blocks"
    );
    first + 12
}

#[test]
fn a_pinned_conversation_survives_pressure_and_unpinning_lets_it_go() {
    // 1,024 tokens of GPU KV at a 256-token context: other conversations' turns evict the
    // first's blocks unless they are pinned.
    let Some(mut e) = engine_with_blocks(64, 256) else {
        return;
    };
    assert_eq!(e.pinned_tokens(), Some((0, 512)));
    let mut h1 = Vec::new();
    let a = turn(&mut e, 1, &h1, FIRST);
    push(&mut h1, 1, FIRST, &a);
    let pinned = e.pin_owner(Owner::Conversation(1)).unwrap();
    assert!(pinned >= 32, "its whole blocks are pinned: {pinned}");
    assert!(e.is_pinned(Owner::Conversation(1)));

    let next = pressure(&mut e, 2);
    let warm = turn(&mut e, 1, &h1, NEXT);
    let by = warm.stats.reused_by_tier.unwrap();
    assert!(
        by.ram == 0 && by.gpu as usize >= pinned,
        "the pinned blocks stayed on the GPU: {:?}",
        warm.stats
    );
    assert_eq!(warm.tokens, cold_reply(&h1, 256).tokens);

    e.unpin_owner(Owner::Conversation(1));
    assert!(!e.is_pinned(Owner::Conversation(1)));
    assert_eq!(e.pinned_tokens().unwrap().0, 0);
    pressure(&mut e, next);
    let later = turn(&mut e, 1, &h1, NEXT);
    let by = later.stats.reused_by_tier.unwrap();
    assert!(
        (by.gpu as usize) < pinned && by.ram > 0,
        "unpinned, its blocks were evicted (and came back from RAM): {:?}",
        later.stats
    );
    assert_eq!(later.tokens, warm.tokens);
}

#[test]
fn pins_may_take_at_most_half_the_gpu_cache() {
    // A pool of one context allows no pins: a turn must always find room.
    let Some(mut one) = engine(None, Some(1), 256) else {
        return;
    };
    turn(&mut one, 1, &[], FIRST);
    assert!(matches!(
        one.pin_owner(Owner::Conversation(1)),
        Err(ChatError::PinLimit { limit: 0, .. })
    ));
    drop(one);

    let mut e = engine_with_blocks(64, 256).unwrap();
    let (_, limit) = e.pinned_tokens().unwrap();
    let mut refused = None;
    for conv in 1..=16 {
        turn(&mut e, conv, &[], &format!("Story {conv}. {LONG}"));
        match e.pin_owner(Owner::Conversation(conv)) {
            Ok(n) => assert!(n > 0, "a resident conversation is pinned now"),
            Err(err) => {
                assert!(matches!(err, ChatError::PinLimit { .. }), "{err}");
                assert!(err.to_string().contains("at most half of the GPU cache"));
                refused = Some(conv);
                break;
            }
        }
        assert!(e.pinned_tokens().unwrap().0 <= limit);
    }
    let refused = refused.expect("pinning sixteen conversations hit the limit");
    assert!(!e.is_pinned(Owner::Conversation(refused)));
    assert!(e.is_pinned(Owner::Conversation(1)));
}

#[test]
fn each_tier_clears_alone() {
    let dir = tempfile::tempdir().unwrap();
    let kv = dir.path().join("kv.sqlite");
    let Some(mut e) = engine(Some(&kv), None, 512) else {
        return;
    };
    let mut h1 = Vec::new();
    let a = turn(&mut e, 1, &h1, FIRST);
    push(&mut h1, 1, FIRST, &a);
    e.flush_cache().unwrap();
    let tiers = |e: &ChatEngine| {
        let t = e.metrics().snapshot().tiers;
        let disk = e.kv_disk().unwrap().stats().unwrap().blocks;
        (t.gpu.blocks, t.ram.blocks, disk)
    };
    let (gpu, ram, disk) = tiers(&e);
    assert!(gpu > 0 && ram > 0 && disk > 0, "{:?}", tiers(&e));

    e.clear_tier(CacheTier::Ram).unwrap();
    assert_eq!(tiers(&e), (gpu, 0, disk));
    e.clear_tier(CacheTier::Disk).unwrap();
    assert_eq!(tiers(&e), (gpu, 0, 0));
    assert_eq!(e.metrics().snapshot().tiers.disk.blocks, 0);
    e.clear_tier(CacheTier::Gpu).unwrap();
    assert_eq!(tiers(&e), (0, 0, 0));

    let cold = turn(&mut e, 1, &h1, NEXT);
    assert_eq!(cold.stats.reused_tokens, 0, "{:?}", cold.stats);
    assert_eq!(cold.tokens, cold_reply(&h1, 512).tokens);
}

#[test]
fn the_kv_type_applies_at_the_next_load() {
    let Some(model) = common::fixture_model(MODEL) else {
        return;
    };
    let Some(mut e) = common::chat::engine(&model, None, None, 256) else {
        return;
    };
    assert_eq!(e.kv_type(), Some("f16"));
    e.set_kv_f16(false);
    assert_eq!(e.kv_type(), Some("f16"), "not before the next load");
    e.load(&model, 256, &mut |_, _| {}).unwrap();
    assert_eq!(e.kv_type(), Some("f32"));
    let out = turn(&mut e, 1, &[], FIRST);
    assert!(!out.tokens.is_empty());
}

fn document() -> TurnDocument {
    TurnDocument {
        id: 7,
        name: "ball.txt".into(),
        text: "The red ball rolled down the hill and into the pond. The dog swam out and \
               brought it back."
            .into(),
        sha256: "ab".repeat(32),
        query: "Where did the ball go?".into(),
        hits: Vec::new(),
        chunk_cosines: Vec::new(),
    }
}

fn ask(e: &mut ChatEngine, conv: i64) -> TurnOutcome {
    e.send_with_documents(
        conv,
        &[],
        "Where did the ball go?",
        &[document()],
        &settings(),
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap()
}

#[test]
fn a_pinned_document_stays_pinned_when_detached_and_clearing_it_recomputes_it() {
    let Some(mut e) = engine_with_blocks(96, 512) else {
        return;
    };
    let first = ask(&mut e, 1);
    let (attached, _) = e.pinned_tokens().unwrap();
    assert!(attached > 0, "an attached document's prefix is pinned");

    e.pin_owner(Owner::Document(7)).unwrap();
    // Detached from its last conversation: pinned by the person, it stays.
    e.unpin_document(7);
    assert_eq!(e.pinned_tokens().unwrap().0, attached);
    e.unpin_owner(Owner::Document(7));
    e.unpin_document(7);
    assert_eq!(e.pinned_tokens().unwrap().0, 0);

    // Conversation 1 still uses the prefix: clearing the document alone leaves it for it.
    e.clear_owner(Owner::Document(7)).unwrap();
    let shared = ask(&mut e, 3);
    assert_eq!(
        shared.stats.documents[0].encoded_tokens, 0,
        "{:?}",
        shared.stats
    );
    e.clear_owner(Owner::Conversation(1)).unwrap();
    e.clear_owner(Owner::Conversation(3)).unwrap();
    e.clear_owner(Owner::Document(7)).unwrap();
    let again = ask(&mut e, 2);
    let read = &again.stats.documents[0];
    assert!(
        read.encoded_tokens > 0,
        "the document's prefix was computed again: {:?}",
        again.stats
    );
    assert_eq!(again.tokens, first.tokens);
}
