//! hearth::store documents on an in-memory database: add (deduplicated), get, list, rename,
//! delete, attach/detach and cascades, token counts, chunks and BM25 search (with hostile
//! queries), damaged rows, and the JSON shape.

use std::path::Path;

use hearth::store::{ChunkSpec, Store, StoreError, text_sha256};

async fn store() -> Store {
    Store::open_in_memory().await.expect("in-memory store")
}

/// Chunks that are exactly the text's paragraphs (split at blank lines), as char ranges.
fn paragraph_chunks(text: &str) -> Vec<ChunkSpec> {
    let mut chunks = Vec::new();
    let mut char_start = 0;
    for para in text.split("\n\n") {
        let n = para.chars().count();
        if n > 0 {
            chunks.push(ChunkSpec {
                char_start,
                char_end: char_start + n,
                text: para.to_string(),
            });
        }
        char_start += n + 2;
    }
    chunks
}

#[tokio::test]
async fn add_get_rename_delete() {
    let s = store().await;
    let text = "Première ligne.\nSecond line 😀.";
    let d = s
        .add_document("  notes.md ", Some(Path::new("/home/me/notes.md")), text)
        .await
        .unwrap();
    assert_eq!(d.summary.name, "notes.md");
    assert_eq!(d.summary.source_path.as_deref(), Some("/home/me/notes.md"));
    assert_eq!(d.summary.sha256, text_sha256(text));
    assert_eq!(d.summary.byte_count, text.len() as u64);
    assert_eq!(d.summary.char_count, text.chars().count() as u64);
    assert!(d.summary.char_count < d.summary.byte_count);
    assert!(d.summary.created_at.ends_with('Z'));
    assert!(d.summary.conversation_ids.is_empty() && d.warnings.is_empty());
    assert_eq!(d.text, text);

    let got = s.document(d.summary.id).await.unwrap();
    assert_eq!(got, d);

    let renamed = s.rename_document(d.summary.id, " Notes ").await.unwrap();
    assert_eq!(renamed.name, "Notes");
    assert_eq!(
        s.document(d.summary.id).await.unwrap().summary.name,
        "Notes"
    );
    for bad in ["", "  ", "two\nlines"] {
        assert!(
            matches!(
                s.rename_document(d.summary.id, bad).await,
                Err(StoreError::InvalidDocument { .. })
            ),
            "{bad:?}"
        );
    }

    for bad_text in ["", " \n\t ", "nul\0inside"] {
        assert!(
            matches!(
                s.add_document("x", None, bad_text).await,
                Err(StoreError::InvalidDocument { .. })
            ),
            "{bad_text:?}"
        );
    }
    let too_big = "a".repeat(hearth::store::MAX_DOCUMENT_BYTES + 1);
    let err = s.add_document("big", None, &too_big).await.unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");

    s.delete_document(d.summary.id).await.unwrap();
    assert!(matches!(
        s.document(d.summary.id).await,
        Err(StoreError::DocumentNotFound { id }) if id == d.summary.id
    ));
    assert!(matches!(
        s.delete_document(d.summary.id).await,
        Err(StoreError::DocumentNotFound { .. })
    ));
    assert!(matches!(
        s.rename_document(d.summary.id, "x").await,
        Err(StoreError::DocumentNotFound { .. })
    ));
    // Ids are never reused.
    let next = s.add_document("n", None, "other").await.unwrap();
    assert!(next.summary.id > d.summary.id);
}

#[tokio::test]
async fn the_same_text_gives_back_the_same_document() {
    let s = store().await;
    let a = s.add_document("a.txt", None, "same text").await.unwrap();
    let b = s
        .add_document("b.txt", Some(Path::new("/tmp/b.txt")), "same text")
        .await
        .unwrap();
    assert_eq!(b.summary.id, a.summary.id);
    assert_eq!(
        b.summary.name, "a.txt",
        "the existing document is unchanged"
    );
    let c = s.add_document("c.txt", None, "same text.").await.unwrap();
    assert_ne!(c.summary.id, a.summary.id);
    assert_eq!(s.list_documents().await.unwrap().documents.len(), 2);
}

#[tokio::test]
async fn list_attach_detach_and_cascades() {
    let s = store().await;
    let c1 = s.create_conversation(Some("one")).await.unwrap();
    let c2 = s.create_conversation(Some("two")).await.unwrap();
    let d1 = s.add_document("d1", None, "first").await.unwrap().summary;
    let d2 = s.add_document("d2", None, "second").await.unwrap().summary;

    s.attach(c1.id, d1.id).await.unwrap();
    // Attaching is activity: c1, created first, is now the most recent.
    assert_eq!(s.list_conversations().await.unwrap()[0].id, c1.id);
    s.attach(c2.id, d1.id).await.unwrap();
    s.attach(c1.id, d1.id).await.unwrap(); // again: no change
    s.attach(c2.id, d2.id).await.unwrap();
    assert!(matches!(
        s.attach(c1.id, 999).await,
        Err(StoreError::DocumentNotFound { id: 999 })
    ));
    assert!(matches!(
        s.attach(999, d1.id).await,
        Err(StoreError::ConversationNotFound { id: 999 })
    ));

    let listed = s.list_documents().await.unwrap();
    assert!(listed.warnings.is_empty());
    let ids: Vec<i64> = listed.documents.iter().map(|d| d.id).collect();
    assert_eq!(ids, [d2.id, d1.id], "newest first");
    assert_eq!(listed.documents[1].conversation_ids, [c1.id, c2.id]);
    assert_eq!(listed.documents[0].conversation_ids, [c2.id]);

    let in_c2 = s.conversation_documents(c2.id).await.unwrap();
    let ids: Vec<i64> = in_c2.documents.iter().map(|d| d.id).collect();
    assert_eq!(ids, [d1.id, d2.id], "attachment order");
    assert_eq!(in_c2.documents[0].conversation_ids, [c1.id, c2.id]);
    assert!(matches!(
        s.conversation_documents(999).await,
        Err(StoreError::ConversationNotFound { .. })
    ));

    assert!(s.detach(c2.id, d1.id).await.unwrap());
    assert!(!s.detach(c2.id, d1.id).await.unwrap());
    assert!(matches!(
        s.detach(999, d1.id).await,
        Err(StoreError::ConversationNotFound { .. })
    ));
    assert_eq!(
        s.document(d1.id).await.unwrap().summary.conversation_ids,
        [c1.id]
    );

    // Deleting a conversation removes its links, not the documents.
    s.delete_conversation(c2.id).await.unwrap();
    assert!(
        s.document(d2.id)
            .await
            .unwrap()
            .summary
            .conversation_ids
            .is_empty()
    );
    assert_eq!(s.list_documents().await.unwrap().documents.len(), 2);

    // Deleting a document removes its links, token counts and chunks, not the conversation.
    s.set_token_count(d1.id, "model-a", 12).await.unwrap();
    s.replace_chunks(d1.id, &paragraph_chunks("first"))
        .await
        .unwrap();
    s.delete_document(d1.id).await.unwrap();
    assert!(
        s.conversation_documents(c1.id)
            .await
            .unwrap()
            .documents
            .is_empty()
    );
    assert_eq!(
        s.get_conversation(c1.id).await.unwrap().summary.title,
        "one"
    );
    let pool = s.pool();
    for sql in [
        "SELECT COUNT(*) FROM conversation_documents WHERE document_id = ?1",
        "SELECT COUNT(*) FROM document_tokens WHERE document_id = ?1",
        "SELECT COUNT(*) FROM document_chunks WHERE document_id = ?1",
    ] {
        let n: i64 = sqlx::query_scalar(sql)
            .bind(d1.id)
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(n, 0, "{sql}");
    }
    let fts: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM document_chunks_fts WHERE document_chunks_fts MATCH 'first'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(fts, 0, "index rows go with the chunks");
}

#[tokio::test]
async fn token_counts_per_model() {
    let s = store().await;
    let d = s
        .add_document("d", None, "some text")
        .await
        .unwrap()
        .summary;
    assert_eq!(s.token_count(d.id, "m1").await.unwrap(), None);
    s.set_token_count(d.id, "m1", 3).await.unwrap();
    s.set_token_count(d.id, "m2", 5).await.unwrap();
    s.set_token_count(d.id, "m1", 4).await.unwrap();
    assert_eq!(s.token_count(d.id, "m1").await.unwrap(), Some(4));
    assert_eq!(s.token_count(d.id, "m2").await.unwrap(), Some(5));
    assert!(matches!(
        s.set_token_count(999, "m1", 1).await,
        Err(StoreError::DocumentNotFound { .. })
    ));
    assert!(s.set_token_count(d.id, "", 1).await.is_err());
    assert!(s.set_token_count(d.id, "m", u64::MAX).await.is_err());
}

/// Six paragraphs of filler, one of which holds the planted fact.
fn library_text() -> String {
    let filler = [
        "The committee met on Tuesday to discuss the annual budget and the parking rules.",
        "Weather in the valley was mild, with light rain in the afternoon and clear nights.",
        "Chapter three describes how the old mill was rebuilt after the flood of the spring.",
        "The lighthouse keeper's cat is named Marmalade and sleeps beside the lamp each winter.",
        "Several recipes for bread appear in the appendix, including rye and sourdough loaves.",
        "Minutes of the meeting were approved without changes and the session was closed.",
    ];
    filler.join("\n\n")
}

#[tokio::test]
async fn search_routes_a_question_to_the_chunk_with_the_fact() {
    let s = store().await;
    let text = library_text();
    let d = s.add_document("lib", None, &text).await.unwrap().summary;
    let chunks = paragraph_chunks(&text);
    assert!(chunks.len() >= 5);
    assert_eq!(s.replace_chunks(d.id, &chunks).await.unwrap(), 6);
    assert_eq!(s.chunk_count(d.id).await.unwrap(), 6);

    // Another document with the same words must not leak into this one's hits.
    let other = s
        .add_document(
            "other",
            None,
            "A cat named Marmalade, the keeper, the lighthouse.",
        )
        .await
        .unwrap()
        .summary;
    s.replace_chunks(
        other.id,
        &paragraph_chunks("A cat named Marmalade, the keeper, the lighthouse."),
    )
    .await
    .unwrap();

    let found = s
        .search_chunks(d.id, "What is the name of the keeper's cat?", 3)
        .await
        .unwrap();
    assert!(found.warnings.is_empty());
    let best = &found.hits[0];
    assert_eq!(best.ordinal, 3, "{:?}", found.hits);
    assert_eq!(
        (best.char_start as usize, best.char_end as usize),
        (chunks[3].char_start, chunks[3].char_end)
    );
    assert!(found.hits.len() <= 3);
    assert!(found.hits.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(best.score > 0.0);

    // Stemming: "rebuilding" and "floods" find "rebuilt ... flood".
    let found = s.search_chunks(d.id, "floods", 1).await.unwrap();
    assert_eq!(found.hits[0].ordinal, 2);
    // Case and accents are folded.
    let found = s.search_chunks(d.id, "SOURDOUGH loavés", 5).await.unwrap();
    assert_eq!(found.hits[0].ordinal, 4);

    // Replacing chunks replaces the index too.
    s.replace_chunks(d.id, &chunks[..2]).await.unwrap();
    let found = s.search_chunks(d.id, "Marmalade", 5).await.unwrap();
    assert!(found.hits.is_empty(), "{:?}", found.hits);
    assert!(matches!(
        s.search_chunks(999, "x", 5).await,
        Err(StoreError::DocumentNotFound { .. })
    ));
}

#[tokio::test]
async fn fts_syntax_in_queries_never_errors() {
    let s = store().await;
    let text = library_text();
    let d = s.add_document("lib", None, &text).await.unwrap().summary;
    s.replace_chunks(d.id, &paragraph_chunks(&text))
        .await
        .unwrap();
    let hostile = [
        "",
        "   ",
        "\"",
        "\"\"\"",
        "cat\"",
        "NEAR(cat lamp, 2)",
        "NEAR",
        "cat AND",
        "OR OR OR",
        "NOT cat",
        "-cat",
        "cat*",
        "*",
        "^cat",
        "(cat",
        "cat)",
        "text: cat",
        "{text}: cat",
        "cat + lamp",
        "'; DROP TABLE documents; --",
        "\u{0}",
        "😀 🐈",
    ];
    for q in hostile {
        let found = s
            .search_chunks(d.id, q, 10)
            .await
            .unwrap_or_else(|e| panic!("{q:?}: {e}"));
        assert!(found.warnings.is_empty(), "{q:?}");
    }
    assert!(s.search_chunks(d.id, "", 10).await.unwrap().hits.is_empty());
    assert!(
        s.search_chunks(d.id, "*-()", 10)
            .await
            .unwrap()
            .hits
            .is_empty()
    );
    assert!(
        s.search_chunks(d.id, "cat", 0)
            .await
            .unwrap()
            .hits
            .is_empty()
    );
    // Operators are plain words: NEAR(cat ...) finds the cat.
    let found = s.search_chunks(d.id, "NEAR(cat lamp, 2)", 1).await.unwrap();
    assert_eq!(found.hits[0].ordinal, 3);
    assert_eq!(s.list_documents().await.unwrap().documents.len(), 1);
}

#[tokio::test]
async fn chunks_are_checked_against_the_text() {
    let s = store().await;
    let text = "αβγ δεζ ηθι";
    let d = s.add_document("greek", None, text).await.unwrap().summary;
    let good = ChunkSpec {
        char_start: 4,
        char_end: 7,
        text: "δεζ".into(),
    };
    s.replace_chunks(d.id, std::slice::from_ref(&good))
        .await
        .unwrap();
    let bad = [
        ChunkSpec {
            char_start: 5,
            char_end: 5,
            text: String::new(),
        },
        ChunkSpec {
            char_start: 8,
            char_end: 12,
            text: "ηθι?".into(),
        },
        ChunkSpec {
            char_start: 0,
            char_end: 3,
            text: "abc".into(),
        },
    ];
    for chunk in bad {
        let err = s
            .replace_chunks(d.id, &[good.clone(), chunk.clone()])
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidChunk { ordinal: 1, .. }),
            "{chunk:?}: {err}"
        );
    }
    assert_eq!(
        s.chunk_count(d.id).await.unwrap(),
        1,
        "a failed replace changes nothing"
    );
    assert!(matches!(
        s.replace_chunks(999, &[]).await,
        Err(StoreError::DocumentNotFound { .. })
    ));
}

#[tokio::test]
async fn damaged_rows_are_reported_not_fatal() {
    let s = store().await;
    let pool = s.pool();
    let good = s
        .add_document("good", None, "good text")
        .await
        .unwrap()
        .summary;
    let negative = s
        .add_document("neg", None, "negative")
        .await
        .unwrap()
        .summary;
    let bad_hash = s
        .add_document("hash", None, "hash text")
        .await
        .unwrap()
        .summary;
    let tampered = s
        .add_document("tampered", None, "original")
        .await
        .unwrap()
        .summary;
    sqlx::query("UPDATE documents SET byte_count = -5 WHERE id = ?1")
        .bind(negative.id)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE documents SET sha256 = 'not-a-hash' WHERE id = ?1")
        .bind(bad_hash.id)
        .execute(pool)
        .await
        .unwrap();
    // Text changed behind the store's back: hash and counts no longer match.
    sqlx::query("UPDATE documents SET text = 'changed text!' WHERE id = ?1")
        .bind(tampered.id)
        .execute(pool)
        .await
        .unwrap();

    let listed = s.list_documents().await.unwrap();
    let mut ids: Vec<i64> = listed.documents.iter().map(|d| d.id).collect();
    ids.sort();
    assert_eq!(ids, [good.id, tampered.id]);
    let mut warned: Vec<i64> = listed.warnings.iter().map(|w| w.id).collect();
    warned.sort();
    assert_eq!(warned, [negative.id, bad_hash.id]);
    assert!(listed.warnings.iter().all(|w| w.table == "documents"));
    assert!(
        listed
            .warnings
            .iter()
            .any(|w| w.problem.contains("negative")),
        "{:?}",
        listed.warnings
    );

    // Read with its text, a document's derived values are recomputed and the mismatch reported.
    let d = s.document(tampered.id).await.unwrap();
    assert_eq!(d.text, "changed text!");
    assert_eq!(d.summary.sha256, text_sha256("changed text!"));
    assert_eq!((d.summary.byte_count, d.summary.char_count), (13, 13));
    assert_eq!(d.warnings.len(), 3, "{:?}", d.warnings);
    assert!(d.warnings[0].problem.contains("sha256"));
    let d = s.document(negative.id).await.unwrap();
    assert_eq!(d.summary.byte_count, 8);

    // A negative token count reads as none (the caller counts again).
    s.set_token_count(good.id, "m", 7).await.unwrap();
    sqlx::query("UPDATE document_tokens SET token_count = -1")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(s.token_count(good.id, "m").await.unwrap(), None);

    // Chunk rows with impossible ranges or ordinals are skipped with a warning.
    let text = library_text();
    let lib = s.add_document("lib", None, &text).await.unwrap().summary;
    s.replace_chunks(lib.id, &paragraph_chunks(&text))
        .await
        .unwrap();
    sqlx::query(
        "UPDATE document_chunks SET char_end = 100000 WHERE document_id = ?1 AND ordinal = 3",
    )
    .bind(lib.id)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("UPDATE document_chunks SET ordinal = -2 WHERE document_id = ?1 AND ordinal = 5")
        .bind(lib.id)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE document_chunks SET char_start = char_start + 1 WHERE document_id = ?1 AND ordinal = 4")
        .bind(lib.id)
        .execute(pool)
        .await
        .unwrap();
    let found = s
        .search_chunks(lib.id, "cat meeting sourdough", 10)
        .await
        .unwrap();
    assert_eq!(found.warnings.len(), 3, "{:?}", found.warnings);
    assert!(found.warnings.iter().all(|w| w.table == "document_chunks"));
    let ordinals: Vec<u64> = found.hits.iter().map(|h| h.ordinal).collect();
    assert!(
        !ordinals.contains(&3) && !ordinals.contains(&4),
        "{ordinals:?}"
    );
}

#[tokio::test]
async fn json_is_camel_case() {
    let s = store().await;
    let c = s.create_conversation(None).await.unwrap();
    let d = s
        .add_document("n", Some(Path::new("/x/n.txt")), "text")
        .await
        .unwrap();
    s.attach(c.id, d.summary.id).await.unwrap();
    let d = s.document(d.summary.id).await.unwrap();
    let json = serde_json::to_value(&d).unwrap();
    for key in [
        "id",
        "name",
        "sourcePath",
        "sha256",
        "byteCount",
        "charCount",
        "createdAt",
        "conversationIds",
        "text",
    ] {
        assert!(json.get(key).is_some(), "{key} in {json}");
    }
    assert!(
        json.get("warnings").is_none(),
        "empty warnings are left out"
    );
    assert_eq!(json["conversationIds"], serde_json::json!([c.id]));

    let text = library_text();
    s.replace_chunks(d.summary.id, &[]).await.unwrap();
    let lib = s.add_document("lib", None, &text).await.unwrap().summary;
    s.replace_chunks(lib.id, &paragraph_chunks(&text))
        .await
        .unwrap();
    let hits = s.search_chunks(lib.id, "cat", 1).await.unwrap();
    let json = serde_json::to_value(&hits).unwrap();
    let hit = &json["hits"][0];
    for key in ["chunkId", "ordinal", "charStart", "charEnd", "score"] {
        assert!(hit.get(key).is_some(), "{key} in {hit}");
    }
}
