//! The Redis tier against a real `redis-server` started on loopback by each test:
//! - the tier's own contract (no GPU): a block that vanishes between the existence check and
//!   the fetch is a miss, a damaged value is rejected, deleted and counted, TTL expiry deletes
//!   blocks and is counted once, a dead server is an error the tiers treat as a miss (counted);
//! - two `hearth serve` processes with separate data dirs sharing one Redis: a prefix computed
//!   by the first is restored from Redis by the second, greedy output identical to a cold run;
//!   killing redis-server mid-run changes nothing but the counters;
//! - expired and damaged blocks in a served prefix are recomputed, output identical, counted.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::cli::{gpu_available, hearth_json, path_str};
use common::http::{get, post_json};
use common::redis::RedisServer;
use common::serve::ServeProc;
use hearth::store::kv_blocks::{BlockRecord, Fetched, InvalidBlock, chain_hash};
use hearth::store::kv_redis::{RedisOptions, RedisTier, TTL_INDEX_KEY, block_key};
use serde_json::{Value, json};

const MODEL: &str = "stories260K-q8_0.gguf";
const FP: [u8; 32] = [7; 32];

/// A chain of `n` blocks of 16 tokens under `FP`, each with 300 bytes of data.
fn chain(n: usize) -> Vec<BlockRecord> {
    let mut parent = FP;
    (0..n)
        .map(|i| {
            let tokens: Vec<u32> = (0..16).map(|t| (i * 16 + t) as u32).collect();
            let hash = chain_hash(&parent, &tokens);
            let b = BlockRecord {
                hash,
                parent,
                fingerprint: FP,
                tokens,
                data: vec![i as u8; 300],
                owners: Vec::new(),
            };
            parent = hash;
            b
        })
        .collect()
}

fn asked(blocks: &[BlockRecord]) -> Vec<([u8; 32], &[u32])> {
    blocks
        .iter()
        .map(|b| (b.hash, b.tokens.as_slice()))
        .collect()
}

fn tier(url: String, ttl: Option<Duration>) -> RedisTier {
    RedisTier::open(RedisOptions {
        ttl,
        ..RedisOptions::new(url)
    })
    .unwrap()
}

fn put_all(t: &RedisTier, blocks: &[BlockRecord]) {
    for b in blocks {
        assert!(t.put(b.clone()).unwrap(), "queued");
    }
    t.flush().unwrap();
}

#[test]
fn a_block_vanishing_mid_restore_is_a_miss_and_a_damaged_value_is_rejected() {
    let Some(r) = RedisServer::start() else {
        return;
    };
    let mut t = tier(r.url(), None);
    let blocks = chain(6);
    put_all(&t, &blocks);
    assert_eq!(t.counters().written, 6);
    let hashes: Vec<[u8; 32]> = blocks.iter().map(|b| b.hash).collect();
    assert_eq!(t.reach(&FP, &hashes).unwrap(), 6);
    assert_eq!(t.reach(&[8; 32], &hashes).unwrap(), 0, "another model");

    // Block 2 vanishes after the existence check (as an expiry would): a miss, not an error.
    let mut c = r.conn();
    let _: () = redis::cmd("DEL")
        .arg(block_key(&FP, &blocks[2].hash))
        .query(&mut c)
        .unwrap();
    // Block 4's data is damaged in Redis.
    let key4 = block_key(&FP, &blocks[4].hash);
    let mut value: Vec<u8> = redis::cmd("GET").arg(&key4).query(&mut c).unwrap();
    *value.last_mut().unwrap() ^= 1;
    let _: () = redis::cmd("SET")
        .arg(&key4)
        .arg(value)
        .query(&mut c)
        .unwrap();

    let got = t.fetch(&FP, &asked(&blocks)).unwrap();
    assert_eq!(got[0], Fetched::Hit(blocks[0].data.clone()));
    assert_eq!(got[1], Fetched::Hit(blocks[1].data.clone()));
    assert_eq!(got[2], Fetched::Miss);
    assert_eq!(got[3], Fetched::Hit(blocks[3].data.clone()));
    assert_eq!(got[4], Fetched::Invalid(InvalidBlock::Checksum));
    // Asked with other tokens than the block holds: rejected too (never another block's data).
    let wrong = [(blocks[5].hash, &blocks[4].tokens[..])];
    assert_eq!(
        t.fetch(&FP, &wrong).unwrap(),
        [Fetched::Invalid(InvalidBlock::Tokens)]
    );
    let n = t.counters();
    assert_eq!((n.invalid, n.errors), (2, 0), "{n:?}");
    // Rejected values are deleted by the writer.
    t.flush().unwrap();
    let exists: i64 = redis::cmd("EXISTS").arg(&key4).query(&mut c).unwrap();
    assert_eq!(exists, 0);
    assert_eq!(t.reach(&FP, &hashes).unwrap(), 2);
}

#[test]
fn ttl_expires_unused_blocks_and_each_expiry_is_counted_once() {
    let Some(r) = RedisServer::start() else {
        return;
    };
    let ttl = Some(Duration::from_millis(1500));
    let mut t = tier(r.url(), ttl);
    // A second process's tier sweeping the same index: together they count each expiry once.
    let other = tier(r.url(), ttl);
    let blocks = chain(4);
    put_all(&t, &blocks);
    let mut c = r.conn();
    for b in &blocks {
        let pttl: i64 = redis::cmd("PTTL")
            .arg(block_key(&FP, &b.hash))
            .query(&mut c)
            .unwrap();
        assert!(pttl > 0 && pttl <= 1500, "written with a TTL: {pttl}");
    }
    // Reading block 0 and 1 again and again keeps them (a read refreshes the TTL).
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2500) {
        let got = t.fetch(&FP, &asked(&blocks[..2])).unwrap();
        assert!(got.iter().all(|f| matches!(f, Fetched::Hit(_))), "{got:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let hashes: Vec<[u8; 32]> = blocks.iter().map(|b| b.hash).collect();
    assert_eq!(t.reach(&FP, &hashes).unwrap(), 2, "blocks 2 and 3 expired");
    assert_eq!(
        t.fetch(&FP, &asked(&blocks[2..])).unwrap(),
        [Fetched::Miss, Fetched::Miss]
    );
    // The sweeps (about once a second) count the two expired blocks, once between the two.
    let start = Instant::now();
    loop {
        let expired = t.counters().expired + other.counters().expired;
        if expired == 2 {
            break;
        }
        assert!(expired < 2, "counted twice: {expired}");
        assert!(start.elapsed() < Duration::from_secs(10), "not counted");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The refreshed blocks are still indexed; the expired ones are not.
    let indexed: i64 = redis::cmd("ZCARD")
        .arg(TTL_INDEX_KEY)
        .query(&mut c)
        .unwrap();
    assert_eq!(indexed, 2);
    assert_eq!(t.counters().errors + other.counters().errors, 0);
}

#[test]
fn a_dead_server_is_an_error_counted_once_then_skipped_until_the_back_off_ends() {
    let Some(mut r) = RedisServer::start() else {
        return;
    };
    let mut t = RedisTier::open(RedisOptions {
        retry_after: Duration::from_millis(500),
        ..RedisOptions::new(r.url())
    })
    .unwrap();
    let blocks = chain(2);
    put_all(&t, &blocks);
    r.kill();
    let hashes: Vec<[u8; 32]> = blocks.iter().map(|b| b.hash).collect();
    let start = Instant::now();
    assert!(t.reach(&FP, &hashes).is_err());
    assert!(t.fetch(&FP, &asked(&blocks)).is_err(), "in back-off");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        t.counters().errors,
        1,
        "the back-off call is not a new error"
    );
    std::thread::sleep(Duration::from_millis(600));
    assert!(t.reach(&FP, &hashes).is_err());
    assert_eq!(t.counters().errors, 2);
    // Writes while it is down are dropped (counted), never blocking or failing the caller.
    assert!(t.put(blocks[0].clone()).unwrap());
    t.flush().unwrap();
    assert_eq!(t.counters().dropped, 1);
}

// ---- two servers ----

/// The fixture model, when the fixtures and a GPU are here (skip-or-fail otherwise).
fn model() -> Option<PathBuf> {
    let m = common::fixture_model(MODEL)?;
    gpu_available().then_some(m)
}

/// A story prompt of several 16-token blocks; `n` varies it.
fn prompt(n: usize) -> String {
    format!(
        "Once upon a time there was a little cat number {n} who lived in a big house with a dog. \
         Every day the cat and the dog played in the park near the river, and one day they met \
         a bird who could sing."
    )
}

const MAX_TOKENS: u64 = 20;

/// The greedy text of a cold run (a fresh `hearth generate` process, no cache tiers).
fn cold(model: &Path, prompt: &str) -> Value {
    hearth_json(&[
        "generate",
        "--model",
        path_str(model),
        "--temperature",
        "0",
        "--json",
        "--max-tokens",
        &MAX_TOKENS.to_string(),
        "--prompt",
        prompt,
    ])
}

fn complete(s: &ServeProc, prompt: &str) -> Value {
    let body = json!({
        "model": s.model_id,
        "prompt": prompt,
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
    });
    let r = post_json(&s.addr, "/v1/completions", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn by_tier(v: &Value, tier: &str) -> u64 {
    v["usage"]["hearth"]["cached_by_tier"][tier]
        .as_u64()
        .unwrap_or_else(|| panic!("no cached_by_tier.{tier}: {v}"))
}

/// The sum of a metric's samples whose labels include `label`.
fn metric(s: &ServeProc, name: &str, label: (&str, &str)) -> f64 {
    let text = get(&s.addr, "/metrics").text();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("the metrics parse");
    scrape
        .samples
        .iter()
        .filter(|x| x.metric == name && x.labels.get(label.0) == Some(label.1))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

fn serve(model: &Path, redis: &RedisServer, data_dir: &Path, extra: &[&str]) -> ServeProc {
    let url = redis.url();
    let mut args = vec!["--redis", &url, "--data-dir", path_str(data_dir)];
    args.extend_from_slice(extra);
    ServeProc::start(model, &args)
}

#[test]
fn a_prefix_computed_by_one_server_is_restored_from_redis_by_another_and_redis_dying_changes_nothing_but_counters()
 {
    let Some(model) = model() else { return };
    let Some(mut r) = RedisServer::start() else {
        return;
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = serve(&model, &r, dir_a.path(), &[]);
    let b = serve(&model, &r, dir_b.path(), &[]);
    let p = prompt(1);
    let cold_p = cold(&model, &p);

    let first = complete(&a, &p);
    assert_eq!(first["choices"][0]["text"], cold_p["text"], "{first}");
    let prompt_tokens = first["usage"]["prompt_tokens"].as_u64().unwrap();
    // The prompt's whole blocks (at least its last token is always computed).
    let blocks = prompt_tokens / 16;
    let reusable = (blocks * 16).min(prompt_tokens - 1);
    assert!(blocks >= 2, "{first}");
    assert!(!a.stderr().contains("Redis KV tier"), "{}", a.stderr());
    r.wait_for_keys("A's blocks reach Redis", |n| n as u64 >= blocks);

    // B has never seen the prompt: its prefix comes from Redis, and the text is the cold one.
    let second = complete(&b, &p);
    assert_eq!(second["choices"][0]["text"], cold_p["text"], "{second}");
    let cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert_eq!(cached, reusable, "{second}");
    assert_eq!(by_tier(&second, "redis"), cached, "{second}");
    for tier in ["gpu", "ram", "disk"] {
        assert_eq!(by_tier(&second, tier), 0, "{second}");
    }
    let hits = metric(&b, "hearth_prefix_cache_hits_total", ("tier", "redis"));
    assert_eq!(hits, cached as f64);
    let restores = metric(&b, "hearth_kv_restores_total", ("from", "redis"));
    assert_eq!(restores, blocks as f64);
    assert_eq!(
        metric(&b, "hearth_kv_tier_errors_total", ("tier", "redis")),
        0.0
    );
    assert!(metric(&a, "hearth_kv_spills_total", ("to", "redis")) >= blocks as f64);
    // What B restored from Redis went to its own disk tier too.
    assert!(metric(&b, "hearth_kv_spills_total", ("to", "disk")) >= blocks as f64);

    // Redis dies mid-run: every request still succeeds with the cold text; only counters move.
    r.kill();
    let p2 = prompt(2);
    let cold_p2 = cold(&model, &p2);
    for (s, name) in [(&a, "A"), (&b, "B")] {
        for q in [&p, &p2, &p2] {
            let v = complete(s, q);
            let want = if *q == p { &cold_p } else { &cold_p2 };
            assert_eq!(v["choices"][0]["text"], want["text"], "{name}: {v}");
            assert_eq!(by_tier(&v, "redis"), 0, "{name}: {v}");
        }
        let errors = metric(s, "hearth_kv_tier_errors_total", ("tier", "redis"));
        assert!(errors >= 1.0, "{name}: {errors}");
        // Logged once per outage, however many requests met it.
        let logged = s.stderr().matches("Redis KV tier at").count();
        assert_eq!(logged, 1, "{name}: {}", s.stderr());
    }
    let stats = hearth_json(&[
        "cache",
        "stats",
        "--data-dir",
        path_str(dir_b.path()),
        "--json",
    ]);
    assert!(stats["blocks"].as_u64().unwrap() >= blocks, "{stats}");
}

#[test]
fn expired_and_damaged_blocks_in_redis_are_recomputed_with_identical_output_and_counted() {
    let Some(model) = model() else { return };
    let Some(r) = RedisServer::start() else {
        return;
    };
    let dirs: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();

    // Expiry: A writes with a 1 s TTL; once Redis has dropped the blocks, B recomputes.
    let a = serve(&model, &r, dirs[0].path(), &["--cache-ttl", "1"]);
    let p = prompt(3);
    let cold_p = cold(&model, &p);
    let first = complete(&a, &p);
    assert_eq!(first["choices"][0]["text"], cold_p["text"]);
    let written = r.wait_for_keys("A's blocks reach Redis", |n| n >= 2);
    r.wait_for_keys("A's blocks expire", |n| n == 0);
    // A's sweeps count the expirations; a request publishes them to /metrics.
    let start = Instant::now();
    loop {
        complete(&a, "A short one.");
        let expired = metric(&a, "hearth_kv_expirations_total", ("from", "redis"));
        // A's later requests write (and expire) blocks of their own: at least A's first ones.
        if expired >= written as f64 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{expired}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let b = serve(&model, &r, dirs[1].path(), &[]);
    let v = complete(&b, &p);
    assert_eq!(v["choices"][0]["text"], cold_p["text"], "{v}");
    assert_eq!(by_tier(&v, "redis"), 0, "{v}");
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 0);

    // Damage: C writes; every value's last byte is flipped; D rejects them and recomputes.
    let c = serve(&model, &r, dirs[2].path(), &[]);
    let p2 = prompt(4);
    let cold_p2 = cold(&model, &p2);
    complete(&c, &p2);
    r.wait_for_keys("C's blocks reach Redis", |n| n >= 2);
    let mut conn = r.conn();
    for key in r.block_keys() {
        let mut value: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
        *value.last_mut().unwrap() ^= 0x55;
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(value)
            .query(&mut conn)
            .unwrap();
    }
    let d = serve(&model, &r, dirs[3].path(), &[]);
    let v = complete(&d, &p2);
    assert_eq!(v["choices"][0]["text"], cold_p2["text"], "{v}");
    assert_eq!(by_tier(&v, "redis"), 0, "{v}");
    let rejected = metric(
        &d,
        "hearth_kv_verification_failures_total",
        ("reason", "checksum"),
    );
    assert!(rejected >= 1.0, "{rejected}");
    // The rejected values were deleted and D's recomputed blocks took their place: a fresh
    // server restores the prefix from Redis again.
    let e = serve(&model, &r, dirs[4].path(), &[]);
    let v = complete(&e, &p2);
    assert!(by_tier(&v, "redis") >= 16, "not repaired: {v}");
    assert_eq!(v["choices"][0]["text"], cold_p2["text"], "{v}");
    assert_eq!(
        metric(&d, "hearth_kv_tier_errors_total", ("tier", "redis")),
        0.0
    );
}
