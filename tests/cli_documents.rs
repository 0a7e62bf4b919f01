//! Documents through the CLI, one process per command as a user runs them: `hearth doc add`
//! encodes a document once into the data dir, `hearth generate --doc` in a new process finds
//! it on disk and answers token-identically to a cold data dir; bad files are clear errors;
//! `doc rm` forgets it; `bench document` (scenario 3) reads every fact from its window.

mod common;

use std::path::Path;

use common::cli::{gpu_available, hearth, hearth_json, path_str};
use serde_json::Value;

const MODEL: &str = "rand-qwen2-f16.gguf";

fn text() -> String {
    let mut s = String::new();
    for i in 0..50 {
        s.push_str(&format!(
            "Line {i}: the harbour kept its boats in a long row while gulls circled. "
        ));
        if i % 5 == 4 {
            s.push_str("\n\n");
        }
    }
    s.push_str("The heron of the quarry was called Ossian.\n");
    s
}

fn ask(model: &Path, dir: &Path, id: &str) -> Value {
    hearth_json(&[
        "generate",
        "--model",
        path_str(model),
        "--data-dir",
        path_str(dir),
        "--doc",
        id,
        "--prompt",
        "What was the heron of the quarry called?",
        "--temperature",
        "0",
        "--max-tokens",
        "5",
        "--context",
        "2048",
        "--json",
    ])
}

#[test]
fn a_document_added_once_is_restored_by_a_new_process_and_answers_as_cold() {
    let Some(model) = common::fixture_model(MODEL) else {
        return;
    };
    if !gpu_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("harbour.md");
    std::fs::write(&file, text()).unwrap();
    let data = dir.path().join("data");
    let added = hearth_json(&[
        "doc",
        "add",
        path_str(&file),
        "--data-dir",
        path_str(&data),
        "--model",
        path_str(&model),
        "--context",
        "2048",
        "--json",
    ]);
    assert_eq!(added["windows"], 1, "{added}");
    assert!(added["encoded_tokens"].as_u64().unwrap() > 300, "{added}");
    let id = added["id"].to_string();

    let warm = ask(&model, &data, &id);
    let doc = &warm["document"];
    assert_eq!(doc["encoded_tokens"], 0, "{warm}");
    assert_eq!(doc["window"], 1, "{warm}");
    assert!(doc["cached_tokens"].as_u64().unwrap() > 300, "{warm}");
    assert!(
        warm["cached_by_tier"]["disk"].as_u64().unwrap() > 300,
        "restored from disk in a new process: {warm}"
    );

    // Cold: another data dir, the document added without encoding.
    let cold_dir = dir.path().join("cold");
    let added = hearth_json(&[
        "doc",
        "add",
        path_str(&file),
        "--data-dir",
        path_str(&cold_dir),
        "--json",
    ]);
    let cold = ask(&model, &cold_dir, &added["id"].to_string());
    assert!(
        cold["document"]["encoded_tokens"].as_u64().unwrap() > 300,
        "{cold}"
    );
    assert_eq!(warm["tokens"], cold["tokens"], "warm from disk == cold");

    // rm forgets it.
    let (ok, _, err) = hearth(&["doc", "rm", &id, "--data-dir", path_str(&data)]);
    assert!(ok, "{err}");
    let list = hearth_json(&["doc", "list", "--data-dir", path_str(&data), "--json"]);
    assert_eq!(list["documents"].as_array().unwrap().len(), 0, "{list}");
}

#[test]
fn bad_files_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cases: [(&str, &[u8], &str); 3] = [
        ("empty.txt", b"", "empty"),
        (
            "binary.txt",
            &[0u8, 159, 146, 150, 0, 1, 2, 3, 0, 0],
            "binary",
        ),
        ("latin1.txt", b"caf\xe9 au lait, na\xefve", "UTF-8"),
    ];
    for (name, bytes, says) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let (ok, _, err) = hearth(&["doc", "add", path_str(&file), "--data-dir", path_str(&data)]);
        assert!(!ok, "{name} was accepted");
        assert!(
            err.to_lowercase().contains(&says.to_lowercase()) && err.contains(name),
            "{name}: {err}"
        );
    }
    let (ok, _, err) = hearth(&[
        "doc",
        "add",
        path_str(&dir.path().join("missing.txt")),
        "--data-dir",
        path_str(&data),
    ]);
    assert!(!ok && err.contains("missing.txt"), "{err}");
}

#[test]
fn bench_document_reads_every_fact_from_its_window() {
    if !gpu_available() {
        return;
    }
    let r = hearth_json(&[
        "bench",
        "document",
        "--doc-tokens",
        "1500",
        "--questions",
        "4",
        "--context",
        "512",
        "--restart",
        "--json",
    ]);
    assert!(r["windows"].as_u64().unwrap() >= 4, "{r}");
    assert_eq!(r["questions_reading_their_fact"], 4, "{r}");
    for p in r["question_prefilled_tokens"].as_array().unwrap() {
        assert!(
            p.as_f64().unwrap() < 64.0,
            "only the question's tokens: {r}"
        );
    }
    assert!(r["restored_bytes_from_disk"].as_u64().unwrap() > 0, "{r}");
    eprintln!(
        "bench document (1,500 tokens, context 512): restore {} ms vs recompute {} ms",
        r["restore_ms"], r["recompute_ms"]
    );
}
