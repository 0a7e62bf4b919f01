//! hearth::store::kv_blocks with several writers on one file: two stores and a child process
//! at once, and a writer process killed with SIGKILL in the middle of a transaction.
//!
//! Child processes re-run this test binary with `HEARTH_KV_CHILD` set (see `child_process_entry`).

mod kv_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hearth::store::kv_blocks::{BlockRecord, Enqueued, HASH_LEN, VerifyAction, chain_hash};
use kv_support::*;

const CHILD_ENV: &str = "HEARTH_KV_CHILD";

/// Starts this test binary as a child running `child_process_entry` in `mode`.
fn spawn_child(path: &Path, mode: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "child_process_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{mode}:{}", path.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The child side. `write:<path>` stores a chain of 40 blocks under fingerprint 3 and exits;
/// `loop:<path>` writes 256 KiB blocks under fingerprint 4 as fast as it can, printing
/// `committed <n>` after each flush, until it is killed.
#[test]
fn child_process_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return; // only meaningful as a child of the tests below
    };
    let (mode, path) = spec.split_once(':').unwrap();
    let store = open(Path::new(path));
    match mode {
        "write" => {
            for b in chain(fingerprint(3), 0, 40, 20_000, &["process:child"]) {
                assert_eq!(store.put(b.clone()).unwrap(), Enqueued::Queued);
                // Read back what the parent wrote meanwhile: every hit must verify.
                let parent_chain = chain(fingerprint(1), 0, 40, 20_000, &[]);
                let n = store
                    .contains_prefix(&fingerprint(1), &hashes(&parent_chain))
                    .unwrap();
                if n > 0 {
                    assert_hit(&store, &parent_chain[n - 1]);
                }
            }
            store.close().unwrap();
            println!("child done");
        }
        "loop" => {
            // A producer keeps the queue full, so the writer is almost always inside a
            // transaction when the parent kills this process.
            let producer = store.clone();
            std::thread::spawn(move || {
                // One payload, reused: the writer, not the producer, must be the bottleneck.
                let template = chain(fingerprint(4), 0, 1, 256 << 10, &["process:loop"]).remove(0);
                let mut parent = [std::process::id() as u8; HASH_LEN];
                for i in 0u32.. {
                    let tokens: Vec<u32> = (0..16).map(|t| i * 16 + t).collect();
                    let hash = chain_hash(&parent, &tokens);
                    let block = BlockRecord {
                        hash,
                        parent,
                        tokens,
                        ..template.clone()
                    };
                    if producer.put(block).unwrap() == Enqueued::Queued {
                        parent = hash;
                    }
                }
            });
            loop {
                store.flush().unwrap();
                println!("committed {}", store.stats().unwrap().counters.writes);
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn read_line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line
}

#[test]
fn two_stores_and_a_child_process_share_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.sqlite");
    let first = open(&path);
    let second = open(&path);
    let mut child = spawn_child(&path, "write");
    let a = chain(fingerprint(1), 0, 40, 20_000, &["store:first"]);
    let b = chain(fingerprint(2), 0, 40, 20_000, &["store:second"]);

    std::thread::scope(|s| {
        for (writer, reader, mine, theirs) in [(&first, &second, &a, &b), (&second, &first, &b, &a)]
        {
            s.spawn(move || {
                for block in mine {
                    assert_eq!(writer.put(block.clone()).unwrap(), Enqueued::Queued);
                    let n = reader
                        .contains_prefix(&theirs[0].fingerprint, &hashes(theirs))
                        .unwrap();
                    if n > 0 {
                        assert_hit(reader, &theirs[n - 1]);
                    }
                }
                writer.flush().unwrap();
            });
        }
    });
    assert!(child.wait().unwrap().success(), "the child process failed");
    let child_blocks = chain(fingerprint(3), 0, 40, 20_000, &[]);
    for store in [&first, &second] {
        for block in a.iter().chain(&b).chain(&child_blocks) {
            assert_hit(store, block);
        }
    }
    let report = first.verify_all(VerifyAction::ReportOnly).unwrap();
    assert_eq!((report.checked, report.invalid_count), (120, 0));
    let stats = second.stats().unwrap();
    assert_eq!((stats.blocks, stats.per_owner.len()), (120, 3));
}

/// Whether the WAL ends in frames of a transaction that never committed, i.e. the writer is (or
/// was, when killed) inside a transaction. Reads only the frame headers.
///
/// Layout (https://sqlite.org/fileformat.html#the_write_ahead_log): a 32-byte header (page size
/// at 8, salts at 16..24), then frames of a 24-byte header (database size after commit at 4, 0
/// when not a commit frame; salts at 8..16) and one page. Frames of the current generation carry
/// the header's salts; after a checkpoint the WAL restarts from the top, so frames further on
/// are left over from before and do not count.
fn wal_has_uncommitted_frames(wal: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(wal) else {
        return false;
    };
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    let mut header = [0u8; 32];
    if file.read_exact(&mut header).is_err() {
        return false;
    }
    let frame_len = 24 + u64::from(u32::from_be_bytes(header[8..12].try_into().unwrap()));
    let (mut frames, mut committed) = (0u64, 0u64);
    let mut frame = [0u8; 24];
    let mut at = 32;
    while at + frame_len <= len
        && file.seek(SeekFrom::Start(at)).is_ok()
        && file.read_exact(&mut frame).is_ok()
        && frame[8..16] == header[16..24]
    {
        frames += 1;
        if frame[4..8] != [0; 4] {
            committed = frames;
        }
        at += frame_len;
    }
    frames > committed
}

#[test]
fn a_writer_killed_mid_write_leaves_a_valid_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.sqlite");
    let (mut rounds, mut mid_transaction) = (0, 0);
    let mut at_least = 0;
    // Every round must leave a valid database; keep going until at least two kills landed
    // inside a transaction (the WAL shows frames that never committed), so the test is not
    // satisfied by kills that happened to fall between transactions.
    while rounds < 3 || (mid_transaction < 2 && rounds < 12) {
        rounds += 1;
        let mut child = spawn_child(&path, "loop");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut committed = 0;
        while committed < 24 {
            let line = read_line(&mut out);
            assert!(!line.is_empty(), "the child exited early");
            if let Some(n) = line.trim().strip_prefix("committed ") {
                committed = n.parse().unwrap();
            }
        }
        // Kill it the moment the WAL shows a transaction in progress.
        let wal = path.with_extension("sqlite-wal");
        for _ in 0..20_000 {
            if wal_has_uncommitted_frames(&wal) {
                break;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        at_least += committed;
        if wal_has_uncommitted_frames(&wal) {
            mid_transaction += 1;
        }

        let store = open(&path);
        let report = store.verify_all(VerifyAction::ReportOnly).unwrap();
        assert_eq!(report.invalid_count, 0, "{:?}", report.invalid);
        assert!(
            report.checked >= at_least as u64,
            "{} < {at_least}",
            report.checked
        );
        // Still usable: write and read.
        let block = chain(fingerprint(5), report.checked as u32, 1, 1000, &[]).remove(0);
        put_all(&store, std::slice::from_ref(&block));
        assert_hit(&store, &block);
        store.close().unwrap();
        assert_eq!(Raw::open(&path).scalar("PRAGMA integrity_check"), "ok");
        at_least = report.checked as usize + 1;
    }
    eprintln!("{mid_transaction} of {rounds} kills landed inside a transaction");
    assert!(
        mid_transaction >= 1,
        "no kill landed inside a transaction in {rounds} rounds"
    );
}
