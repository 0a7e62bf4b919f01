//! `hearth embed`, `hearth doc add` (embedding the chunks) and `hearth doc search`, each in a
//! new process as a user runs them.

mod common;

use std::path::Path;
use std::process::Command;

use common::cli::path_str;
use serde_json::Value;

/// Runs `hearth ARGS` with the embedding model in `$HEARTH_EMBED_MODEL`; must succeed and print
/// one JSON value.
fn hearth_json(model_dir: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .env("HEARTH_EMBED_MODEL", model_dir)
        .envs(extra_env.iter().copied())
        .output()
        .expect("run hearth");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "hearth {args:?} failed: {stderr}");
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}\n{stdout}"))
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn embed_prints_the_vector_and_its_tokens() {
    let Some(dir) = common::embed_model_dir() else {
        return;
    };
    let text = "A man is eating food.";
    let auto = hearth_json(
        &dir,
        &["embed", "--text", text, "--device", "gpu", "--json"],
        &[],
    );
    let cpu = hearth_json(
        &dir,
        &["embed", "--text", text, "--device", "cpu", "--json"],
        &[],
    );
    let (a, c) = (floats(&auto["embedding"]), floats(&cpu["embedding"]));
    assert_eq!(a.len(), 384);
    assert_eq!(auto["tokens"], 8, "[CLS] a man is eating food . [SEP]");
    assert_eq!(cpu["tokens"], 8);
    assert!(hearth::embed::cosine(&a, &c) >= 0.9999);
    let bread = hearth_json(
        &dir,
        &[
            "embed",
            "--text",
            "A man is eating a piece of bread.",
            "--device",
            "cpu",
            "--json",
        ],
        &[],
    );
    let cos = hearth::embed::cosine(&c, &floats(&bread["embedding"]));
    assert!((cos - 0.755).abs() <= 0.002, "{cos}");
    // A missing model folder is a clear error, not a panic.
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["embed", "--text", "x", "--model", "/nonexistent/model"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("config.json"),
        "{err}"
    );
}

const FACT: &str = "Every evening the lighthouse keeper's daughter carried a pot of tea up the 112 steps to the lamp room.";

fn document() -> String {
    let filler = [
        "Fishermen mended their nets on the shingle and timed the boats by the tide tables.",
        "Barley, clover and turnips followed one another in the fields so the soil never tired.",
        "The weavers dyed their wool with madder root and walnut husks beside the mill race.",
        "Drovers drove cattle down from the hills to the market square each autumn.",
    ];
    let mut s = String::new();
    for section in 0..8 {
        for i in 0..10 {
            if section == 5 && i == 4 {
                s.push_str(FACT);
            } else {
                s.push_str(filler[(section + i) % filler.len()]);
            }
            s.push(' ');
        }
        s.push_str("\n\n");
    }
    s
}

#[test]
fn doc_add_embeds_and_doc_search_ranks_windows_best_first() {
    let Some(dir) = common::embed_model_dir() else {
        return;
    };
    let Some(model) = common::fixture_model("stories260K-f32.gguf") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("keeper.txt");
    let text = document();
    std::fs::write(&file, &text).unwrap();
    let d = path_str(data.path());
    let cpu = [("HEARTH_EMBED_DEVICE", "cpu")];
    let added = hearth_json(
        &dir,
        &["doc", "add", path_str(&file), "--data-dir", d, "--json"],
        &cpu,
    );
    let chunks = added["chunks"].as_u64().unwrap();
    assert!(chunks >= 2, "{added}");
    assert_eq!(added["embedded_chunks"].as_u64(), Some(chunks), "{added}");
    let id = added["id"].to_string();
    // Adding it again embeds nothing: the vectors are stored for this model.
    let again = hearth_json(
        &dir,
        &["doc", "add", path_str(&file), "--data-dir", d, "--json"],
        &cpu,
    );
    assert_eq!(again["embedded_chunks"], 0, "{again}");
    let search = |extra: &[&str]| {
        let mut args = vec![
            "doc",
            "search",
            &id,
            "--query",
            "Who brought a hot drink up the tower?",
            "--model",
            path_str(&model),
            "--data-dir",
            d,
            "--context",
            "512",
            "--json",
        ];
        args.extend_from_slice(extra);
        hearth_json(&dir, &args, &cpu)
    };
    let out = search(&[]);
    let windows = out["windows"].as_array().unwrap();
    assert!(out["of"].as_u64().unwrap() >= 5, "{out}");
    let fact_at = text[..text.find(FACT).unwrap()].chars().count() as u64;
    let best = &windows[0];
    let chars = best["chars"].as_array().unwrap();
    let (s, e) = (chars[0].as_u64().unwrap(), chars[1].as_u64().unwrap());
    assert!(
        s <= fact_at && fact_at < e,
        "best window {best} holds the fact at {fact_at}"
    );
    assert!(best["window"].as_u64().unwrap() >= 1);
    for w in windows {
        for key in ["window", "chars", "bm25", "cosine", "score"] {
            assert!(w.get(key).is_some(), "{key} in {w}");
        }
    }
    let scores: Vec<f64> = windows
        .iter()
        .map(|w| w["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|p| p[0] >= p[1]),
        "best first: {scores:?}"
    );
    // By words alone the cosines are absent.
    let words = search(&["--words-only"]);
    assert!(
        words["windows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["cosine"].is_null())
    );
}
