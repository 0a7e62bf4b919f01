//! hearth::store::kv_blocks, the disk tier of the KV cache, in one process: round trips, prefix
//! lookups, verification of damaged rows, the disk budget, the bounded queue, owners, foreign
//! files, the model hash memo, and (ignored) the page size measurement. Several stores and
//! processes on one file, and SIGKILL, are in `kv_blocks_processes.rs`.

mod kv_support;

use std::time::Duration;

use hearth::store::kv_blocks::{
    BlockRecord, ClearFilter, Enqueued, Fetched, HASH_LEN, InvalidBlock, KvBlockStore,
    KvStoreError, KvStoreOptions, PAGE_SIZE, VerifyAction,
};
use kv_support::*;

#[test]
fn blocks_round_trip_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("kv.sqlite");
    let blocks = chain(fingerprint(1), 0, 5, 10_000, &["conversation:1"]);
    let store = open(&path);
    put_all(&store, &blocks);
    for b in &blocks {
        assert_hit(&store, b);
    }
    // Content addressed: the same blocks again insert nothing.
    put_all(&store, &blocks);
    let stats = store.stats().unwrap();
    assert_eq!((stats.blocks, stats.bytes), (5, 50_000));
    assert_eq!(stats.counters.writes, 5);
    assert_eq!(stats.per_owner.len(), 1);
    assert_eq!(stats.per_owner[0].key, "conversation:1");
    assert_eq!(
        (stats.per_owner[0].blocks, stats.per_owner[0].bytes),
        (5, 50_000)
    );
    assert_eq!(stats.per_fingerprint[0].key, fingerprint(1).to_vec());
    store.close().unwrap();

    let store = open(&path);
    for b in &blocks {
        assert_hit(&store, b);
    }
    let mut raw = Raw::open(&path);
    assert_eq!(raw.scalar("PRAGMA journal_mode"), "wal");
    assert_eq!(
        raw.scalar("SELECT CAST(page_size AS TEXT) FROM pragma_page_size"),
        PAGE_SIZE.to_string()
    );
    assert_eq!(raw.scalar("PRAGMA integrity_check"), "ok");
    // The app database's migrations are not here; the KV schema's own are.
    assert_eq!(
        raw.scalar("SELECT CAST(COUNT(*) AS TEXT) FROM _sqlx_migrations"),
        "1"
    );
}

#[test]
fn contains_prefix_stops_at_the_first_missing_hash() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("kv.sqlite"));
    let fp = fingerprint(1);
    let blocks = chain(fp, 0, 8, 1000, &[]);
    // Store blocks 0..3 and 4..7 but not 3.
    put_all(&store, &blocks[..3]);
    put_all(&store, &blocks[4..]);
    let all = hashes(&blocks);
    assert_eq!(store.contains_prefix(&fp, &all).unwrap(), 3);
    assert_eq!(store.contains_prefix(&fp, &all[..2]).unwrap(), 2);
    assert_eq!(store.contains_prefix(&fp, &all[4..]).unwrap(), 4);
    assert_eq!(store.contains_prefix(&fp, &[]).unwrap(), 0);
    assert_eq!(store.contains_prefix(&fingerprint(2), &all).unwrap(), 0);
    put_all(&store, &blocks[3..4]);
    assert_eq!(store.contains_prefix(&fp, &all).unwrap(), 8);
    // Longer than one query's worth of hashes.
    let long = chain(fp, 1, 700, 16, &[]);
    put_all(&store, &long[..600]);
    assert_eq!(store.contains_prefix(&fp, &hashes(&long)).unwrap(), 600);
    assert_eq!(get(&store, &long[650]), Fetched::Miss);
}

#[test]
fn get_checks_tokens_and_fingerprint_and_drops_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("kv.sqlite"));
    let blocks = chain(fingerprint(1), 0, 2, 1000, &[]);
    put_all(&store, &blocks);
    let b = &blocks[0];
    let mut other_tokens = b.tokens.clone();
    other_tokens[3] += 1;
    assert_eq!(
        store.get(&b.fingerprint, &b.hash, &other_tokens).unwrap(),
        Fetched::Invalid(InvalidBlock::Tokens)
    );
    assert_eq!(get(&store, b), Fetched::Miss);
    let b = &blocks[1];
    assert_eq!(
        store.get(&fingerprint(9), &b.hash, &b.tokens).unwrap(),
        Fetched::Invalid(InvalidBlock::Fingerprint)
    );
    assert_eq!(get(&store, b), Fetched::Miss);
    let invalid = store.stats().unwrap().counters.invalid;
    assert_eq!((invalid.tokens, invalid.fingerprint), (1, 1));
}

#[test]
fn damaged_blobs_are_invalid_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.sqlite");
    let store = open(&path);
    let blocks = chain(fingerprint(1), 0, 3, 4000, &["document:3"]);
    put_all(&store, &blocks);
    let mut raw = Raw::open(&path);

    let mut data = raw.data(&blocks[0].hash);
    data[1234] ^= 0x40;
    raw.set_blob(&blocks[0].hash, "data", &data);
    assert_eq!(
        get(&store, &blocks[0]),
        Fetched::Invalid(InvalidBlock::Checksum)
    );
    assert_eq!(raw.scalar("SELECT CAST(COUNT(*) AS TEXT) FROM blocks"), "2");
    assert_eq!(get(&store, &blocks[0]), Fetched::Miss);

    let data = raw.data(&blocks[1].hash);
    raw.set_blob(&blocks[1].hash, "data", &data[..1000]);
    assert_eq!(
        get(&store, &blocks[1]),
        Fetched::Invalid(InvalidBlock::Truncated {
            expected: 4000,
            got: 1000
        })
    );
    // Owners go with the block (foreign key cascade).
    assert_eq!(
        raw.scalar("SELECT CAST(COUNT(*) AS TEXT) FROM block_owners"),
        "1"
    );
    assert_hit(&store, &blocks[2]);
    let invalid = store.stats().unwrap().counters.invalid;
    assert_eq!((invalid.checksum, invalid.truncated), (1, 1));
}

#[test]
fn verify_all_finds_tampered_rows_and_deletes_them_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.sqlite");
    let store = open(&path);
    let blocks = chain(fingerprint(1), 0, 8, 2000, &[]);
    put_all(&store, &blocks);
    let mut raw = Raw::open(&path);
    // Tokens that no longer hash to the block's hash.
    let mut tokens = raw_tokens(&blocks[0]);
    tokens[0] ^= 1;
    raw.set_blob(&blocks[0].hash, "tokens", &tokens);
    // A parent that breaks the chain.
    raw.set_blob(&blocks[1].hash, "parent", &[7; HASH_LEN]);
    // A hash of the wrong length.
    raw.set_blob(&blocks[2].hash, "hash", &[1; 31]);
    // A checksum that does not match.
    raw.set_blob(&blocks[3].hash, "checksum", &[0; HASH_LEN]);
    // Columns of the wrong type.
    let hex: String = blocks[4].hash.iter().map(|b| format!("{b:02x}")).collect();
    raw.exec(&format!(
        "UPDATE blocks SET n_tokens = 'many' WHERE hash = x'{hex}'"
    ));
    let hex: String = blocks[5].hash.iter().map(|b| format!("{b:02x}")).collect();
    raw.exec(&format!(
        "UPDATE blocks SET tokens = x'010203' WHERE hash = x'{hex}'"
    ));

    let report = store.verify_all(VerifyAction::ReportOnly).unwrap();
    assert_eq!(
        (report.checked, report.valid, report.invalid_count),
        (8, 2, 6)
    );
    assert_eq!(report.deleted, 0);
    let reasons: Vec<_> = report.invalid.iter().map(|r| r.reason.clone()).collect();
    assert_eq!(reasons[0], InvalidBlock::Tokens);
    assert_eq!(reasons[1], InvalidBlock::Tokens);
    assert!(matches!(&reasons[2], InvalidBlock::Decode(m) if m.contains("hash is 31 bytes")));
    assert_eq!(reasons[3], InvalidBlock::Checksum);
    assert!(matches!(&reasons[4], InvalidBlock::Decode(m) if m.contains("n_tokens")));
    assert!(matches!(&reasons[5], InvalidBlock::Decode(m) if m.contains("multiple of 4")));
    assert_eq!(report.invalid[2].hash, vec![1; 31]);

    let report = store.verify_all(VerifyAction::DeleteInvalid).unwrap();
    assert_eq!((report.invalid_count, report.deleted), (6, 6));
    let report = store.verify_all(VerifyAction::ReportOnly).unwrap();
    assert_eq!((report.checked, report.valid), (2, 2));
    assert_hit(&store, &blocks[6]);
    assert_hit(&store, &blocks[7]);
}

fn raw_tokens(b: &BlockRecord) -> Vec<u8> {
    b.tokens.iter().flat_map(|t| t.to_le_bytes()).collect()
}

#[test]
fn budget_collects_least_recently_used_and_keeps_pins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.sqlite");
    let store = KvBlockStore::open(&path, opts(10_000, 64)).unwrap();
    let pinned = chain(
        fingerprint(1),
        0,
        4,
        1000,
        &["pin:document:1", "document:1"],
    );
    let loose = chain(fingerprint(1), 1, 9, 1000, &["conversation:2"]);
    put_all(&store, &pinned);
    put_all(&store, &loose[..6]);
    assert_eq!(store.stats().unwrap().counters.collected, 0);
    // Distinct milliseconds, so the read below is strictly the most recent use.
    std::thread::sleep(Duration::from_millis(3));
    assert_hit(&store, &loose[0]);
    store.flush().unwrap();
    std::thread::sleep(Duration::from_millis(3));
    put_all(&store, &loose[6..]);

    let stats = store.stats().unwrap();
    assert_eq!(stats.counters.collected, 3);
    assert!(stats.bytes <= 10_000, "{} bytes over budget", stats.bytes);
    for b in pinned.iter().chain(&loose[4..]).chain(&loose[..1]) {
        assert_hit(&store, b);
    }
    for b in &loose[1..4] {
        assert_eq!(get(&store, b), Fetched::Miss);
    }

    // Pinned blocks past the budget stay; once unpinned, the next batch collects them.
    let more_pins = chain(fingerprint(1), 2, 12, 1000, &["pin:document:2"]);
    put_all(&store, &more_pins);
    let stats = store.stats().unwrap();
    assert_eq!(stats.blocks, 16);
    for b in pinned.iter().chain(&more_pins) {
        assert_hit(&store, b);
    }
    assert_eq!(store.remove_owner_everywhere("pin:document:2").unwrap(), 12);
    put_all(&store, &chain(fingerprint(1), 3, 1, 1000, &[]));
    let stats = store.stats().unwrap();
    assert!(stats.bytes <= 10_000, "{} bytes over budget", stats.bytes);
    for b in &pinned {
        assert_hit(&store, b);
    }
}

#[test]
fn a_sole_owner_clear_keeps_shared_blocks_and_a_lower_budget_applies_live() {
    let dir = tempfile::tempdir().unwrap();
    let store = KvBlockStore::open(&dir.path().join("kv.sqlite"), opts(100_000, 64)).unwrap();
    let a = chain(fingerprint(1), 0, 4, 1000, &["conversation:1"]);
    put_all(&store, &a);
    store.flush().unwrap();
    // The first block is shared with conversation 2.
    assert!(store.add_owner(&a[0].hash, "conversation:2").unwrap());
    assert_eq!(
        store
            .clear(ClearFilter::SoleOwner("conversation:1".into()))
            .unwrap(),
        3
    );
    assert_hit(&store, &a[0]);
    let owners: Vec<_> = store
        .stats()
        .unwrap()
        .per_owner
        .into_iter()
        .map(|u| (u.key, u.blocks))
        .collect();
    assert_eq!(owners, [("conversation:2".into(), 1)]);

    // A lower budget, set on the open store, is enforced after the next write.
    put_all(
        &store,
        &chain(fingerprint(1), 1, 8, 1000, &["conversation:3"]),
    );
    assert_eq!(store.stats().unwrap().blocks, 9);
    store.set_budget(4_000);
    assert_eq!(store.stats().unwrap().budget_bytes, 4_000);
    put_all(&store, &chain(fingerprint(1), 2, 1, 1000, &[]));
    let stats = store.stats().unwrap();
    assert!(
        stats.bytes <= 4_000,
        "{} bytes over the new budget",
        stats.bytes
    );
}

#[test]
fn a_full_queue_drops_instead_of_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.sqlite");
    let store = KvBlockStore::open(&path, opts(u64::MAX, 4)).unwrap();
    // Hold the write lock: the writer's first batch waits on it, so the queue fills.
    let mut raw = Raw::open(&path);
    raw.exec("BEGIN IMMEDIATE");
    let blocks = chain(fingerprint(1), 0, 200, 100, &[]);
    let dropped = blocks
        .iter()
        .filter(|b| store.put((*b).clone()).unwrap() == Enqueued::Dropped)
        .count();
    raw.exec("ROLLBACK");
    // At most one batch (64) in the writer's hands plus the queue (4) can be accepted.
    assert!(dropped >= 200 - 64 - 4, "only {dropped} dropped");
    store.flush().unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(stats.counters.dropped, dropped as u64);
    assert_eq!(stats.blocks, (200 - dropped) as u64);
}

#[test]
fn owners_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("kv.sqlite"));
    let a = chain(fingerprint(1), 0, 3, 100, &["conversation:1"]);
    let b = chain(fingerprint(2), 1, 2, 100, &["conversation:2"]);
    put_all(&store, &a);
    put_all(&store, &b);
    assert!(store.add_owner(&a[0].hash, "document:7").unwrap());
    assert!(!store.add_owner(&a[0].hash, "document:7").unwrap());
    assert!(!store.add_owner(&[0; HASH_LEN], "document:7").unwrap());
    assert!(matches!(
        store.add_owner(&a[0].hash, ""),
        Err(KvStoreError::BadOwner { .. })
    ));
    assert!(store.remove_owner(&a[1].hash, "conversation:1").unwrap());
    assert!(!store.remove_owner(&a[1].hash, "conversation:1").unwrap());
    let owners: Vec<_> = store
        .stats()
        .unwrap()
        .per_owner
        .into_iter()
        .map(|u| (u.key, u.blocks))
        .collect();
    assert_eq!(
        owners,
        [
            ("conversation:1".into(), 2),
            ("conversation:2".into(), 2),
            ("document:7".into(), 1)
        ]
    );
    assert_eq!(
        store
            .clear(ClearFilter::Owner("document:7".into()))
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .clear(ClearFilter::Fingerprint(fingerprint(2)))
            .unwrap(),
        2
    );
    assert_eq!(store.stats().unwrap().blocks, 2);
    assert_eq!(store.clear(ClearFilter::All).unwrap(), 2);
    let stats = store.stats().unwrap();
    assert_eq!((stats.blocks, stats.per_owner.len()), (0, 0));
}

#[test]
fn foreign_files_and_newer_schemas_are_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.sqlite");
    let junk = b"this is somebody's notes, not a database\n".repeat(100);
    std::fs::write(&path, &junk).unwrap();
    let err = KvBlockStore::open(&path, KvStoreOptions::default()).unwrap_err();
    assert!(matches!(err, KvStoreError::Corrupt { .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), junk);

    let path = dir.path().join("newer.sqlite");
    open(&path).close().unwrap();
    let mut raw = Raw::open(&path);
    raw.exec(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99, 'future', 1, x'00', 0)",
    );
    let err = KvBlockStore::open(&path, KvStoreOptions::default()).unwrap_err();
    assert!(
        matches!(err, KvStoreError::NewerSchema { version: 99, .. }),
        "{err}"
    );
}

#[test]
fn model_hash_is_memoised_by_path_size_and_mtime() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("kv.sqlite"));
    let model = dir.path().join("model.gguf");
    let contents = payload(7, 3 << 20);
    std::fs::write(&model, &contents).unwrap();
    let hashed = |s: &KvBlockStore| s.stats().unwrap().counters.model_files_hashed;

    let first = store.model_hash(&model).unwrap();
    assert_eq!(first, *blake3::hash(&contents).as_bytes());
    assert_eq!(hashed(&store), 1);
    assert_eq!(store.model_hash(&model).unwrap(), first);
    assert_eq!(hashed(&store), 1, "the second call must come from the memo");

    // Same size and contents, new mtime: read again, same hash.
    let file = std::fs::File::options().write(true).open(&model).unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(60);
    file.set_modified(later).unwrap();
    drop(file);
    assert_eq!(store.model_hash(&model).unwrap(), first);
    assert_eq!(hashed(&store), 2);

    // New contents of a new size: a new hash.
    std::fs::write(&model, &contents[..contents.len() - 1]).unwrap();
    let second = store.model_hash(&model).unwrap();
    assert_ne!(second, first);
    assert_eq!(hashed(&store), 3);

    // The memo is in the database: another store (a restart) does not read the file.
    let path = store.path().to_path_buf();
    store.close().unwrap();
    let store = open(&path);
    assert_eq!(store.model_hash(&model).unwrap(), second);
    assert_eq!(hashed(&store), 0);
    assert!(matches!(
        store.model_hash(&dir.path().join("missing.gguf")),
        Err(KvStoreError::ModelFile { .. })
    ));
}

/// Page size for 1 MB blobs: `cargo test --test kv_blocks page_size -- --ignored --nocapture`.
/// Best of three runs of: 64 blobs written in transactions of 16, then each read back 4 times.
#[test]
#[ignore = "a measurement, not a check"]
fn page_size_measurement() {
    for page_size in [4096u32, 16384, 32768, 65536] {
        let (mut write, mut read) = (0f64, 0f64);
        for _ in 0..3 {
            let (w, r) = page_size_run(page_size);
            (write, read) = (write.max(w), read.max(r));
        }
        println!("page_size {page_size:>6}: write {write:>6.0} MB/s, read {read:>6.0} MB/s");
    }
}

/// One run: (write MB/s, read MB/s).
fn page_size_run(page_size: u32) -> (f64, f64) {
    const BLOBS: usize = 64;
    const READS: usize = 4;
    let blob = payload(1, 1 << 20);
    let dir = tempfile::tempdir().unwrap();
    let mut raw = Raw::open_new(&dir.path().join("bench.sqlite"), page_size);
    raw.exec("CREATE TABLE t (hash BLOB PRIMARY KEY, n INTEGER, data BLOB)");
    let key = |i: usize| *blake3::hash(&(i as u64).to_le_bytes()).as_bytes();
    let start = std::time::Instant::now();
    for batch in 0..BLOBS / 16 {
        raw.exec("BEGIN IMMEDIATE");
        for i in batch * 16..batch * 16 + 16 {
            let hash = key(i);
            let query = sqlx::query("INSERT INTO t VALUES (?, ?, ?)")
                .bind(&hash[..])
                .bind(i as i64)
                .bind(&blob[..]);
            raw.rt.block_on(query.execute(&mut raw.conn)).unwrap();
        }
        raw.exec("COMMIT");
    }
    let write = BLOBS as f64 / start.elapsed().as_secs_f64();
    let start = std::time::Instant::now();
    for i in 0..BLOBS * READS {
        let hash = key(i % BLOBS);
        let query =
            sqlx::query_scalar::<_, Vec<u8>>("SELECT data FROM t WHERE hash = ?").bind(&hash[..]);
        let data = raw.rt.block_on(query.fetch_one(&mut raw.conn)).unwrap();
        assert_eq!(data.len(), blob.len());
    }
    (
        write,
        (BLOBS * READS) as f64 / start.elapsed().as_secs_f64(),
    )
}

#[test]
fn stores_opening_a_new_file_at_once_all_succeed() {
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.sqlite");
        let start = std::sync::Barrier::new(4);
        let stores: Vec<KvBlockStore> = std::thread::scope(|s| {
            let openers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        KvBlockStore::open(&path, KvStoreOptions::default())
                    })
                })
                .collect();
            openers
                .into_iter()
                .map(|t| t.join().unwrap().unwrap())
                .collect()
        });
        let blocks = chain(fingerprint(1), 0, 4, 100, &[]);
        for (store, block) in stores.iter().zip(&blocks) {
            put_all(store, std::slice::from_ref(block));
        }
        for store in &stores {
            assert_eq!(
                store
                    .contains_prefix(&fingerprint(1), &hashes(&blocks))
                    .unwrap(),
                4
            );
        }
    }
}

/// `ttl`: blocks not used within it are deleted by the writer (about once a second), counted;
/// pinned blocks and blocks read meanwhile stay; a block that expired is a miss, not an error.
#[test]
fn ttl_expires_unused_unpinned_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let opts = KvStoreOptions {
        ttl: Some(std::time::Duration::from_millis(1200)),
        ..kv_support::opts(u64::MAX, 1024)
    };
    let store = KvBlockStore::open(&dir.path().join("kv.sqlite"), opts).unwrap();
    let fp = fingerprint(1);
    let stale = chain(fp, 1, 4, 256, &["conversation:1"]);
    let pinned = chain(fp, 2, 3, 256, &["pin:document:1"]);
    let read = chain(fp, 3, 2, 256, &["conversation:2"]);
    for c in [&stale, &pinned, &read] {
        put_all(&store, c);
    }
    // Keep reading one chain while the others age past the TTL.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(3500);
    while std::time::Instant::now() < deadline {
        for b in &read {
            assert_hit(&store, b);
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    store.flush().unwrap();
    for b in &stale {
        assert_eq!(get(&store, b), Fetched::Miss, "expired: a miss");
    }
    for b in pinned.iter().chain(&read) {
        assert_hit(&store, b);
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.counters.expired, 4, "{stats:?}");
    assert_eq!(stats.blocks, 5);
    assert_eq!(
        store.contains_prefix(&fp, &hashes(&stale)).unwrap(),
        0,
        "a lookup after expiry finds nothing to restore"
    );
}
