//! The KV cache's lower tiers through the chat engine (stories260K on lavapipe): blocks
//! evicted from the GPU come back from RAM, a new engine on the same data dir restores a
//! conversation from SQLite, damaged rows are recomputed — and every warm reply is
//! token-identical to a cold one.

mod common;

use std::path::Path;

use hearth::chat::{ChatEngine, TurnOutcome};
use hearth::store::Message;

const MODEL: &str = "stories260K-f32.gguf";

use common::chat::{push_turn as push, story_turn as turn};

/// An engine with stories260K loaded: `kv` opens the disk tier there; `budget` bytes of GPU
/// KV (Some(1): one context).
fn engine(kv: Option<&Path>, budget: Option<u64>, context: u32) -> Option<ChatEngine> {
    common::chat::engine(&common::fixture_model(MODEL)?, kv, budget, context)
}

const FIRST: &str = "Once upon a time there was a cat.";
const NEXT: &str = "What did the dog do?";

/// Conversation 1's first turn in an engine on the disk tier `kv`, flushed and the engine
/// closed: the history, the turn, and the blocks the disk tier then holds.
fn first_turn_on_disk(kv: &Path) -> Option<(Vec<Message>, TurnOutcome, u64)> {
    let mut first = engine(Some(kv), None, 512)?;
    let mut history = Vec::new();
    let a = turn(&mut first, 1, &history, FIRST);
    push(&mut history, 1, FIRST, &a);
    first.flush_cache().unwrap();
    let blocks = first.kv_disk().unwrap().stats().unwrap().blocks;
    Some((history, a, blocks))
}

/// The next turn after `history` with nothing cached: the cold reference.
fn cold_reply(history: &[Message], context: u32) -> TurnOutcome {
    let model = common::fixture_model(MODEL).unwrap();
    common::chat::story_cold_reply(&model, history, NEXT, context)
}

#[test]
fn a_new_engine_restores_a_conversation_from_disk_and_replies_as_a_cold_run() {
    let dir = tempfile::tempdir().unwrap();
    let kv = dir.path().join("kv.sqlite");
    let Some((history, a, stored)) = first_turn_on_disk(&kv) else {
        return;
    };
    assert!(stored >= 4, "the turn's blocks are on disk: {stored}");

    // "Restart": a new engine on the same data dir.
    let mut second = engine(Some(&kv), None, 512).unwrap();
    let warm = turn(&mut second, 1, &history, NEXT);
    let by = warm.stats.reused_by_tier.unwrap();
    let history_len = (a.stats.prompt_tokens as usize) + a.tokens.len();
    assert!(
        by.disk as usize >= history_len / 16 * 16 - 16 && by.disk > 0,
        "restored from disk: {:?}",
        warm.stats
    );
    assert_eq!(by.gpu + by.ram, 0, "nothing else held it: {:?}", warm.stats);
    assert_eq!(warm.stats.recompute_reason, None, "{:?}", warm.stats);
    let snap = second.metrics().snapshot();
    assert!(snap.restores.disk > 0 && snap.prefix_cache_hits.disk > 0);

    let reference = cold_reply(&history, 512);
    assert_eq!(warm.stats.prompt_tokens, reference.stats.prompt_tokens);
    assert_eq!(
        warm.tokens, reference.tokens,
        "warm {:?} vs cold {:?}",
        warm.text, reference.text
    );
}

#[test]
fn blocks_evicted_from_the_gpu_come_back_from_ram() {
    // One 256-token context of GPU KV: a second conversation's long turns evict the first's
    // blocks; the first's next turn finds them in RAM.
    let Some(mut e) = engine(None, Some(1), 256) else {
        return;
    };
    let mut h1 = Vec::new();
    let a = turn(&mut e, 1, &h1, FIRST);
    push(&mut h1, 1, FIRST, &a);
    let long = "Lily had a big red ball and a small blue ball. She played with them in the \
                park every day after school, and her dog ran after the balls and brought \
                them back to her. One day the red ball rolled into the pond.";
    let mut h2 = Vec::new();
    let b = turn(&mut e, 2, &h2, long);
    push(&mut h2, 2, long, &b);
    turn(
        &mut e,
        2,
        &h2,
        "What did Lily do then? Tell me about the pond and the dog.",
    );
    assert!(
        e.metrics().snapshot().evictions.gpu > 0,
        "the test needs conversation 2 to evict conversation 1's blocks"
    );
    let warm = turn(&mut e, 1, &h1, NEXT);
    let by = warm.stats.reused_by_tier.unwrap();
    assert!(by.ram > 0, "restored from RAM: {:?}", warm.stats);
    assert_eq!(warm.stats.recompute_reason, None, "{:?}", warm.stats);

    assert_eq!(warm.tokens, cold_reply(&h1, 256).tokens);
}

#[test]
fn a_damaged_block_on_disk_is_recomputed_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let kv = dir.path().join("kv.sqlite");
    let Some((history, _, _)) = first_turn_on_disk(&kv) else {
        return;
    };
    // Flip a byte in the middle of every stored block's data (as a damaged disk would).
    let db = corrupt_every_block(&kv);
    assert!(db > 0);

    let mut second = engine(Some(&kv), None, 512).unwrap();
    let warm = turn(&mut second, 1, &history, NEXT);
    let by = warm.stats.reused_by_tier.unwrap();
    assert_eq!(by.disk, 0, "no damaged block is used: {:?}", warm.stats);
    let snap = second.metrics().snapshot();
    assert!(snap.verification_failures.checksum > 0, "{snap:?}");

    assert_eq!(warm.tokens, cold_reply(&history, 512).tokens);
}

/// Damages every block's data in `kv` with plain SQL; returns the rows changed.
fn corrupt_every_block(kv: &Path) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", kv.display()))
            .await
            .unwrap();
        sqlx::query("UPDATE blocks SET data = substr(data, 1, 100) || x'5A' || substr(data, 102)")
            .execute(&mut c)
            .await
            .unwrap()
            .rows_affected()
    })
}
