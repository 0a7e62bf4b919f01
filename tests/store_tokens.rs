//! Exact token histories in the store: a message's token segment round-trips, survives a
//! reopen of the file, and a damaged one is a warning (the message is still shown).

use hearth::store::{Role, Store, StoreError, TokenSegment};

fn segment(base: bool, ids: &[u32]) -> TokenSegment {
    TokenSegment {
        model: "ab12".into(),
        base,
        ids: ids.to_vec(),
    }
}

#[tokio::test]
async fn token_segments_round_trip_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hearth.db");
    let (conv, user, reply) = {
        let s = Store::open(&path).await.unwrap();
        let conv = s.create_conversation(None).await.unwrap().id;
        let user = s
            .append_message(conv, Role::User, "Hi", None)
            .await
            .unwrap();
        let reply = s
            .append_message(conv, Role::Assistant, "Hello", None)
            .await
            .unwrap();
        assert_eq!(user.tokens, None);
        s.set_message_tokens(user.id, &segment(true, &[1, 2, 3, u32::MAX]))
            .await
            .unwrap();
        s.set_message_tokens(reply.id, &segment(false, &[7, 8]))
            .await
            .unwrap();
        (conv, user.id, reply.id)
    };
    let s = Store::open(&path).await.unwrap();
    let got = s.get_conversation(conv).await.unwrap();
    assert!(got.warnings.is_empty(), "{:?}", got.warnings);
    let by_id = |id| got.messages.iter().find(|m| m.id == id).unwrap();
    assert_eq!(
        by_id(user).tokens,
        Some(segment(true, &[1, 2, 3, u32::MAX]))
    );
    assert_eq!(by_id(reply).tokens, Some(segment(false, &[7, 8])));
    // Not part of the page's JSON.
    let json = serde_json::to_value(by_id(user)).unwrap();
    assert!(json.get("tokens").is_none(), "{json}");
}

#[tokio::test]
async fn damaged_segments_are_warnings_and_bad_writes_are_refused() {
    let s = Store::open_in_memory().await.unwrap();
    let conv = s.create_conversation(None).await.unwrap().id;
    let m = s
        .append_message(conv, Role::User, "Hi", None)
        .await
        .unwrap();
    s.set_message_tokens(m.id, &segment(true, &[1, 2]))
        .await
        .unwrap();
    sqlx::query("UPDATE messages SET tokens = x'010203' WHERE id = ?1")
        .bind(m.id)
        .execute(s.pool())
        .await
        .unwrap();
    let got = s.get_conversation(conv).await.unwrap();
    assert_eq!(got.messages.len(), 1, "the message is still shown");
    assert_eq!(got.messages[0].tokens, None);
    assert!(
        got.warnings[0].problem.contains("not a whole number"),
        "{:?}",
        got.warnings
    );
    assert!(matches!(
        s.set_message_tokens(9999, &segment(false, &[1])).await,
        Err(StoreError::MessageNotFound { id: 9999 })
    ));
    let nameless = TokenSegment {
        model: String::new(),
        ..segment(false, &[1])
    };
    assert!(s.set_message_tokens(m.id, &nameless).await.is_err());
}
