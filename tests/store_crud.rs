//! hearth::store on an in-memory database: conversations, messages, ordering, search, cascade
//! delete, bad rows, and the JSON shapes of the app contract.

use hearth::store::{ReplyStats, Role, StopReason, Store, StoreError};

async fn store() -> Store {
    Store::open_in_memory().await.expect("in-memory store")
}

fn stats() -> ReplyStats {
    ReplyStats {
        prompt_tokens: 120,
        reused_tokens: 100,
        computed_tokens: 20,
        generated_tokens: 42,
        ttft_ms: 85.5,
        decode_tok_s: 31.25,
        stop_reason: StopReason::Eog,
        recompute_reason: None,
        reused_by_tier: None,
        documents: Vec::new(),
    }
}

fn ids(list: &[hearth::store::ConversationSummary]) -> Vec<i64> {
    list.iter().map(|c| c.id).collect()
}

#[tokio::test]
async fn create_get_rename_delete() {
    let s = store().await;
    let c = s.create_conversation(None).await.unwrap();
    assert_eq!(c.title, "New chat");
    assert_eq!((c.message_count, c.preview.as_str()), (0, ""));
    assert!(
        c.created_at.ends_with('Z') && c.created_at.contains('T'),
        "RFC 3339 UTC: {}",
        c.created_at
    );

    let named = s.create_conversation(Some("  Trip plans  ")).await.unwrap();
    assert_eq!(named.title, "Trip plans");

    let renamed = s.rename_conversation(c.id, " Recipes ").await.unwrap();
    assert_eq!(renamed.title, "Recipes");
    assert_eq!(
        s.get_conversation(c.id).await.unwrap().summary.title,
        "Recipes"
    );

    for bad in ["", "   ", "line\nbreak"] {
        assert!(
            matches!(
                s.rename_conversation(c.id, bad).await,
                Err(StoreError::InvalidTitle { .. })
            ),
            "{bad:?}"
        );
    }
    let too_long = "a".repeat(201);
    assert!(matches!(
        s.create_conversation(Some(&too_long)).await,
        Err(StoreError::InvalidTitle { .. })
    ));
    assert!(s.rename_conversation(c.id, &"a".repeat(200)).await.is_ok());

    s.delete_conversation(c.id).await.unwrap();
    assert!(
        matches!(s.get_conversation(c.id).await, Err(StoreError::ConversationNotFound { id }) if id == c.id)
    );
    assert!(matches!(
        s.delete_conversation(c.id).await,
        Err(StoreError::ConversationNotFound { .. })
    ));
    assert!(matches!(
        s.rename_conversation(c.id, "x").await,
        Err(StoreError::ConversationNotFound { .. })
    ));
    assert_eq!(ids(&s.list_conversations().await.unwrap()), [named.id]);

    // Ids are never reused after a delete.
    let next = s.create_conversation(None).await.unwrap();
    assert!(next.id > named.id && next.id != c.id);
}

#[tokio::test]
async fn newest_first_follows_activity_not_renames() {
    let s = store().await;
    let a = s.create_conversation(Some("A")).await.unwrap().id;
    let b = s.create_conversation(Some("B")).await.unwrap().id;
    let c = s.create_conversation(Some("C")).await.unwrap().id;
    // All of this usually lands within one millisecond: the order must still be exact.
    assert_eq!(ids(&s.list_conversations().await.unwrap()), [c, b, a]);

    s.append_message(a, Role::User, "hello", None)
        .await
        .unwrap();
    assert_eq!(ids(&s.list_conversations().await.unwrap()), [a, c, b]);

    s.rename_conversation(b, "B renamed").await.unwrap();
    assert_eq!(ids(&s.list_conversations().await.unwrap()), [a, c, b]);

    s.touch_conversation(b).await.unwrap();
    assert_eq!(ids(&s.list_conversations().await.unwrap()), [b, a, c]);

    let reply = s
        .append_message(c, Role::Assistant, "…", None)
        .await
        .unwrap();
    assert_eq!(ids(&s.list_conversations().await.unwrap())[0], c);
    s.touch_conversation(a).await.unwrap();
    s.update_assistant_message(reply.id, "done", Some(&stats()))
        .await
        .unwrap();
    assert_eq!(ids(&s.list_conversations().await.unwrap()), [c, a, b]);

    let list = s.list_conversations().await.unwrap();
    assert!(
        list.windows(2).all(|w| w[0].updated_at >= w[1].updated_at),
        "updatedAt descending: {list:#?}"
    );
    assert!(matches!(
        s.touch_conversation(9999).await,
        Err(StoreError::ConversationNotFound { id: 9999 })
    ));
}

#[tokio::test]
async fn messages_append_list_update_and_delete_after() {
    let s = store().await;
    let conv = s.create_conversation(None).await.unwrap().id;
    let sys = s
        .append_message(conv, Role::System, "Be brief.", None)
        .await
        .unwrap();
    let u1 = s
        .append_message(conv, Role::User, "Hi there", None)
        .await
        .unwrap();
    let a1 = s
        .append_message(
            conv,
            Role::Assistant,
            "Hello! How can I help?",
            Some(&stats()),
        )
        .await
        .unwrap();
    let u2 = s
        .append_message(conv, Role::User, "Tell me a story", None)
        .await
        .unwrap();
    let a2 = s
        .append_message(conv, Role::Assistant, "", None)
        .await
        .unwrap();

    let loaded = s.list_messages(conv).await.unwrap();
    assert!(loaded.warnings.is_empty());
    let got: Vec<(i64, Role, &str)> = loaded
        .messages
        .iter()
        .map(|m| (m.id, m.role, m.content.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (sys.id, Role::System, "Be brief."),
            (u1.id, Role::User, "Hi there"),
            (a1.id, Role::Assistant, "Hello! How can I help?"),
            (u2.id, Role::User, "Tell me a story"),
            (a2.id, Role::Assistant, ""),
        ]
    );
    assert_eq!(loaded.messages[2].stats.as_ref(), Some(&stats()));
    assert!(loaded.messages.iter().all(|m| m.conversation_id == conv));

    // Finish the streamed reply.
    let mut final_stats = stats();
    final_stats.stop_reason = StopReason::Length;
    final_stats.recompute_reason = Some("the chat template rewrote an earlier turn".into());
    let done = s
        .update_assistant_message(a2.id, "Once upon a time…", Some(&final_stats))
        .await
        .unwrap();
    assert_eq!(
        (done.id, done.content.as_str()),
        (a2.id, "Once upon a time…")
    );
    assert_eq!(done.stats, Some(final_stats.clone()));
    let summary = s.conversation_summary(conv).await.unwrap();
    assert_eq!(
        (summary.message_count, summary.preview.as_str()),
        (5, "Once upon a time…")
    );

    // Only assistant messages can be updated; missing ids are named.
    assert!(matches!(
        s.update_assistant_message(u2.id, "x", None).await,
        Err(StoreError::NotAssistant { id, ref role }) if id == u2.id && role == "user"
    ));
    assert!(matches!(
        s.update_assistant_message(424242, "x", None).await,
        Err(StoreError::MessageNotFound { id: 424242 })
    ));

    // Regenerate: drop everything after the first user message.
    assert_eq!(s.delete_messages_after(conv, u1.id).await.unwrap(), 3);
    let left: Vec<i64> = s
        .list_messages(conv)
        .await
        .unwrap()
        .messages
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, [sys.id, u1.id]);
    assert_eq!(s.delete_messages_after(conv, u1.id).await.unwrap(), 0);
    let other = s.create_conversation(None).await.unwrap().id;
    assert!(matches!(
        s.delete_messages_after(other, u1.id).await,
        Err(StoreError::MessageNotInConversation { id, conversation_id }) if id == u1.id && conversation_id == other
    ));
    // The preview skips system messages.
    assert_eq!(
        s.conversation_summary(conv).await.unwrap().preview,
        "Hi there"
    );
}

#[tokio::test]
async fn message_validation() {
    let s = store().await;
    let conv = s.create_conversation(None).await.unwrap().id;
    assert!(
        matches!("tool".parse::<Role>(), Err(StoreError::InvalidRole { ref role }) if role == "tool")
    );
    assert_eq!("assistant".parse::<Role>().unwrap(), Role::Assistant);
    assert!(matches!(
        s.append_message(conv, Role::User, "hi", Some(&stats()))
            .await,
        Err(StoreError::InvalidMessage { .. })
    ));
    let mut nan = stats();
    nan.decode_tok_s = f64::NAN;
    assert!(matches!(
        s.append_message(conv, Role::Assistant, "hi", Some(&nan))
            .await,
        Err(StoreError::InvalidStats {
            field: "decodeTokS",
            ..
        })
    ));
    let mut negative = stats();
    negative.ttft_ms = -1.0;
    assert!(matches!(
        s.append_message(conv, Role::Assistant, "hi", Some(&negative))
            .await,
        Err(StoreError::InvalidStats {
            field: "ttftMs",
            ..
        })
    ));
    assert!(matches!(
        s.append_message(777, Role::User, "hi", None).await,
        Err(StoreError::ConversationNotFound { id: 777 })
    ));
    assert!(matches!(
        s.list_messages(777).await,
        Err(StoreError::ConversationNotFound { id: 777 })
    ));
    let huge = "x".repeat(hearth::store::MAX_CONTENT_BYTES + 1);
    assert!(matches!(
        s.append_message(conv, Role::User, &huge, None).await,
        Err(StoreError::InvalidMessage { .. })
    ));
    // Nothing above was written.
    assert_eq!(s.list_messages(conv).await.unwrap().messages.len(), 0);
}

#[tokio::test]
async fn delete_cascades_to_messages_and_the_search_index() {
    let s = store().await;
    let keep = s.create_conversation(Some("keep")).await.unwrap().id;
    let gone = s.create_conversation(Some("gone")).await.unwrap().id;
    s.append_message(keep, Role::User, "zebra crossing", None)
        .await
        .unwrap();
    for i in 0..3 {
        s.append_message(gone, Role::User, &format!("zebra number {i}"), None)
            .await
            .unwrap();
    }
    assert_eq!(
        ids(&s.search_conversations("zebra").await.unwrap()),
        [gone, keep]
    );
    s.delete_conversation(gone).await.unwrap();

    let (total, orphans): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE conversation_id = ?1) FROM messages",
    )
    .bind(gone)
    .fetch_one(s.pool())
    .await
    .unwrap();
    assert_eq!((total, orphans), (1, 0));
    assert_eq!(ids(&s.search_conversations("zebra").await.unwrap()), [keep]);
    assert!(s.search_conversations("number").await.unwrap().is_empty());
    // The FTS index agrees with its content table.
    sqlx::query("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
        .execute(s.pool())
        .await
        .expect("FTS index consistent with messages");
}

#[tokio::test]
async fn search_matches_literal_substrings_in_titles_and_messages() {
    let s = store().await;
    let kyoto = s
        .create_conversation(Some("Trip to Kyoto"))
        .await
        .unwrap()
        .id;
    let sale = s.create_conversation(None).await.unwrap().id;
    s.append_message(sale, Role::User, "Is the 50% off sale real?", None)
        .await
        .unwrap();
    let plain = s.create_conversation(None).await.unwrap().id;
    s.append_message(plain, Role::User, "I counted 500 items, the cat sat", None)
        .await
        .unwrap();
    let snake = s.create_conversation(None).await.unwrap().id;
    s.append_message(
        snake,
        Role::Assistant,
        "Rust uses snake_case for functions",
        None,
    )
    .await
    .unwrap();
    let quote = s.create_conversation(None).await.unwrap().id;
    s.append_message(quote, Role::User, r#"She said "hi" OR bye"#, None)
        .await
        .unwrap();

    let search = |q: &'static str| {
        let s = s.clone();
        async move { ids(&s.search_conversations(q).await.unwrap()) }
    };
    // Titles, case-insensitively; short queries use the LIKE path, longer ones FTS.
    assert_eq!(search("kyoto").await, [kyoto]);
    assert_eq!(search("KY").await, [kyoto]);
    // Message text, anywhere in a word.
    assert_eq!(search("ount").await, [plain]);
    // '%' and '_' are literal on both paths, never wildcards.
    assert_eq!(search("%").await, [sale]);
    assert_eq!(search("50%").await, [sale]);
    assert_eq!(search("0%").await, [sale]);
    assert_eq!(search("_").await, [snake]);
    assert_eq!(
        search("e_c").await,
        [snake],
        "'e c' in 'the cat' must not match"
    );
    assert_eq!(search("%%").await, Vec::<i64>::new());
    assert_eq!(search("a%b").await, Vec::<i64>::new());
    // FTS5 syntax in a query is just text.
    assert_eq!(search(r#""hi" OR"#).await, [quote]);
    assert_eq!(search("OR by").await, [quote]);
    assert_eq!(search("NEAR(a b)").await, Vec::<i64>::new());
    assert_eq!(search("sale*").await, Vec::<i64>::new());
    assert_eq!(search("\"").await, [quote]);
    // Blank lists everything, newest first.
    assert_eq!(search("  ").await, [quote, snake, plain, sale, kyoto]);

    // Edited text is found by its new words only.
    let reply = s
        .append_message(kyoto, Role::Assistant, "draft", None)
        .await
        .unwrap();
    s.update_assistant_message(reply.id, "Visit Fushimi Inari early", None)
        .await
        .unwrap();
    assert_eq!(search("fushimi").await, [kyoto]);
    assert_eq!(search("draft").await, Vec::<i64>::new());
}

#[tokio::test]
async fn bad_rows_are_reported_and_skipped_not_fatal() {
    let s = store().await;
    let conv = s.create_conversation(None).await.unwrap().id;
    let good = s
        .append_message(conv, Role::User, "fine", None)
        .await
        .unwrap();
    let pool = s.pool();
    let insert = "INSERT INTO messages (conversation_id, role, content, stats, created_at) VALUES (?1, ?2, ?3, ?4, 0) RETURNING id";
    let tool: i64 = sqlx::query_scalar(insert)
        .bind(conv)
        .bind("tool")
        .bind("???")
        .bind(None::<String>)
        .fetch_one(pool)
        .await
        .unwrap();
    let bad_json: i64 = sqlx::query_scalar(insert)
        .bind(conv)
        .bind("assistant")
        .bind("kept")
        .bind("{not json")
        .fetch_one(pool)
        .await
        .unwrap();
    let bad_shape: i64 = sqlx::query_scalar(insert)
        .bind(conv)
        .bind("assistant")
        .bind("kept too")
        .bind(r#"{"promptTokens": -3}"#)
        .fetch_one(pool)
        .await
        .unwrap();
    let far_future: i64 = sqlx::query_scalar(
        "INSERT INTO messages (conversation_id, role, content, created_at) VALUES (?1, 'user', 'odd time', ?2) RETURNING id",
    )
    .bind(conv)
    .bind(i64::MAX)
    .fetch_one(pool)
    .await
    .unwrap();

    let c = s.get_conversation(conv).await.unwrap();
    let got: Vec<(i64, &str, bool)> = c
        .messages
        .iter()
        .map(|m| (m.id, m.content.as_str(), m.stats.is_some()))
        .collect();
    assert_eq!(
        got,
        [
            (good.id, "fine", false),
            (bad_json, "kept", false),
            (bad_shape, "kept too", false),
            (far_future, "odd time", false)
        ]
    );
    assert_eq!(c.messages[3].created_at, "1970-01-01T00:00:00.000Z");
    let warned: Vec<i64> = c.warnings.iter().map(|w| w.id).collect();
    assert_eq!(warned, [tool, bad_json, bad_shape]);
    assert!(c.warnings[0].problem.contains("tool"), "{}", c.warnings[0]);
    assert!(c.warnings.iter().all(|w| w.table == "messages"));
    // The summary still counts every stored row.
    assert_eq!(c.summary.message_count, 5);
}

#[tokio::test]
async fn json_matches_the_app_contract() {
    let s = store().await;
    let conv = s.create_conversation(Some("Contract")).await.unwrap().id;
    s.append_message(conv, Role::User, "Q", None).await.unwrap();
    s.append_message(conv, Role::Assistant, "A", Some(&stats()))
        .await
        .unwrap();
    let json = serde_json::to_value(s.get_conversation(conv).await.unwrap()).unwrap();
    let obj = json.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "createdAt",
            "id",
            "messageCount",
            "messages",
            "preview",
            "title",
            "updatedAt"
        ]
    );
    let user = &json["messages"][0];
    assert_eq!(user["role"], "user");
    assert_eq!(user["conversationId"], conv);
    assert!(user["stats"].is_null());
    let reply = &json["messages"][1];
    assert_eq!(
        reply["stats"],
        serde_json::json!({"promptTokens": 120, "reusedTokens": 100, "computedTokens": 20,
            "generatedTokens": 42, "ttftMs": 85.5, "decodeTokS": 31.25, "stopReason": "eog",
            "recomputeReason": null})
    );
    let summary = serde_json::to_value(&s.list_conversations().await.unwrap()[0]).unwrap();
    assert_eq!(summary["messageCount"], 2);
    assert_eq!(summary["preview"], "A");
}
