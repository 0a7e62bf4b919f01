//! hearth::store on real files: WAL mode, restart, concurrent writers, damaged and foreign files,
//! databases from a newer Hearth.

use std::path::Path;

use hearth::store::{ReplyStats, Role, Settings, StopReason, Store, StoreError, Theme};

fn db_path(dir: &tempfile::TempDir) -> std::path::PathBuf {
    // A folder that does not exist yet: open must create it.
    dir.path().join("app-data").join("nested").join("hearth.db")
}

#[tokio::test]
async fn file_store_uses_wal_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let s = Store::open(&path).await.unwrap();
    assert!(path.is_file());
    assert_eq!(s.path(), path);
    assert_eq!(s.journal_mode().await.unwrap(), "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let ok: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(ok, "ok");
    s.close().await;
}

#[tokio::test]
async fn everything_is_there_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let stats = ReplyStats {
        prompt_tokens: 9,
        reused_tokens: 0,
        computed_tokens: 9,
        generated_tokens: 3,
        ttft_ms: 12.0,
        decode_tok_s: 40.5,
        stop_reason: StopReason::Cancelled,
        recompute_reason: Some("first turn".into()),
        reused_by_tier: None,
        documents: Vec::new(),
    };
    let settings = Settings {
        context_length: 8192,
        temperature: 0.0,
        top_k: 1,
        seed: 1234,
        system_prompt: "You are terse.".into(),
        theme: Theme::Dark,
        last_model_path: Some("/models/stories260K-f32.gguf".into()),
        ..Settings::default()
    };

    let (before_list, before_convs) = {
        let s = Store::open(&path).await.unwrap();
        let a = s.create_conversation(Some("First")).await.unwrap().id;
        let b = s.create_conversation(None).await.unwrap().id;
        s.append_message(a, Role::User, "Once upon a time", None)
            .await
            .unwrap();
        let r = s
            .append_message(a, Role::Assistant, "", None)
            .await
            .unwrap();
        s.update_assistant_message(r.id, "there was a fox.", Some(&stats))
            .await
            .unwrap();
        s.append_message(b, Role::User, "Second chat", None)
            .await
            .unwrap();
        s.rename_conversation(b, "Renamed").await.unwrap();
        s.save_settings(&settings).await.unwrap();
        let list = s.list_conversations().await.unwrap();
        let convs = vec![
            s.get_conversation(a).await.unwrap(),
            s.get_conversation(b).await.unwrap(),
        ];
        s.close().await;
        (list, convs)
    };

    let s = Store::open(&path).await.unwrap();
    assert_eq!(s.list_conversations().await.unwrap(), before_list);
    for c in &before_convs {
        assert_eq!(&s.get_conversation(c.summary.id).await.unwrap(), c);
    }
    assert_eq!(before_convs[0].messages[1].stats.as_ref(), Some(&stats));
    let loaded = s.load_settings().await.unwrap();
    assert_eq!(loaded.settings, settings);
    assert!(loaded.warnings.is_empty());
    assert_eq!(
        s.search_conversations("fox").await.unwrap()[0].id,
        before_convs[0].summary.id
    );
    // New ids keep counting up after a restart.
    let c = s.create_conversation(None).await.unwrap();
    assert!(c.id > before_convs[1].summary.id);
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_keep_each_writers_order() {
    const PER_TASK: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let first = Store::open(&path).await.unwrap();
    // A second, independent pool on the same file: the writers contend through SQLite's locks.
    let second = Store::open(&path).await.unwrap();
    let conv = first.create_conversation(None).await.unwrap().id;

    let writer = |store: Store, tag: &'static str| {
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..PER_TASK {
                let role = if i % 2 == 0 {
                    Role::User
                } else {
                    Role::Assistant
                };
                ids.push(
                    store
                        .append_message(conv, role, &format!("{tag}{i}"), None)
                        .await
                        .unwrap()
                        .id,
                );
            }
            ids
        })
    };
    let tasks = [
        writer(first.clone(), "a"),
        writer(first.clone(), "b"),
        writer(second.clone(), "c"),
    ];
    let mut returned = Vec::new();
    for t in tasks {
        returned.push(t.await.unwrap());
    }

    let messages = second.list_messages(conv).await.unwrap().messages;
    assert_eq!(messages.len(), 3 * PER_TASK);
    assert!(
        messages.windows(2).all(|w| w[0].id < w[1].id),
        "listed in id order"
    );
    for (tag, ids) in ["a", "b", "c"].into_iter().zip(&returned) {
        let mine: Vec<&str> = messages
            .iter()
            .filter(|m| m.content.starts_with(tag))
            .map(|m| m.content.as_str())
            .collect();
        let expected: Vec<String> = (0..PER_TASK).map(|i| format!("{tag}{i}")).collect();
        assert_eq!(mine, expected, "writer {tag} kept its order");
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "writer {tag} got increasing ids"
        );
    }
    assert_eq!(
        first
            .conversation_summary(conv)
            .await
            .unwrap()
            .message_count,
        3 * PER_TASK as u64
    );
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn an_unopenable_path_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where the database file should be.
    let path = dir.path().join("hearth.db");
    std::fs::create_dir(&path).unwrap();
    match Store::open(&path).await {
        Err(StoreError::Open { path: p, .. }) => assert_eq!(p, path),
        other => panic!("expected Open, got {other:?}"),
    }
    assert!(path.is_dir());
}

fn assert_untouched(path: &Path, original: &[u8]) {
    assert_eq!(
        std::fs::read(path).expect("the file is still there"),
        original,
        "the file was not modified"
    );
}

#[tokio::test]
async fn a_garbage_file_is_a_typed_error_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hearth.db");
    let garbage: Vec<u8> = b"this is not a SQLite database, it is a shopping list\n".repeat(100);
    std::fs::write(&path, &garbage).unwrap();

    let err = Store::open(&path).await.expect_err("garbage must not open");
    match &err {
        StoreError::Corrupt { path: p, detail } => {
            assert_eq!(p, &path);
            assert!(!detail.is_empty());
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let shown = err.to_string();
    assert!(
        shown.contains("hearth.db") && shown.contains("untouched"),
        "{shown}"
    );
    assert_untouched(&path, &garbage);
    // Opening again behaves the same (nothing was "repaired" in between).
    assert!(matches!(
        Store::open(&path).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert_untouched(&path, &garbage);
}

#[tokio::test]
async fn damaged_pages_are_a_typed_error_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hearth.db");
    {
        let s = Store::open(&path).await.unwrap();
        let c = s.create_conversation(None).await.unwrap().id;
        s.append_message(c, Role::User, &"words ".repeat(2000), None)
            .await
            .unwrap();
        // Move everything from the WAL into the main file before damaging it.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(s.pool())
            .await
            .unwrap();
        s.close().await;
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let page_size = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    assert!(bytes.len() > 2 * page_size, "several pages");
    // Keep the header page (schema), scribble over every other page.
    for b in &mut bytes[page_size..] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let _ = std::fs::remove_file(path.with_extension("db-wal"));

    let result = match Store::open(&path).await {
        Err(e) => Err(e),
        Ok(s) => s.list_conversations().await.map(|_| ()),
    };
    assert!(
        matches!(result, Err(StoreError::Corrupt { .. })),
        "{result:?}"
    );
    assert_untouched(&path, &bytes);
}

#[tokio::test]
async fn a_database_from_a_newer_hearth_is_refused_not_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hearth.db");
    {
        let s = Store::open(&path).await.unwrap();
        s.create_conversation(Some("keep me")).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (9999, 'from the future', 1, x'00', 0)",
        )
        .execute(s.pool())
        .await
        .unwrap();
        s.close().await;
    }
    match Store::open(&path).await {
        Err(StoreError::NewerSchema { version, .. }) => assert_eq!(version, 9999),
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    // The data is still there for the newer version.
    let pool =
        sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
            .await
            .unwrap();
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM conversations")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(titles, ["keep me"]);
    pool.close().await;
}
