//! Runs the `hearth` binary as other tools do.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs `hearth ARGS`: (success, stdout, stderr).
pub fn hearth(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .output()
        .expect("run hearth");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `hearth ARGS`, which must succeed and print one JSON value.
pub fn hearth_json(args: &[&str]) -> Value {
    let (ok, stdout, stderr) = hearth(args);
    assert!(ok, "hearth {args:?} failed: {stderr}");
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}\n{stdout}"))
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Whether `hearth inspect --gpu` finds an adapter (printing why not; a failure when `CI` is
/// set).
pub fn gpu_available() -> bool {
    let gpu = hearth_json(&["inspect", "--gpu", "--json"]);
    if gpu.get("error").is_some() {
        assert!(
            std::env::var_os("CI").is_none(),
            "no GPU adapter and CI is set: {gpu}"
        );
        eprintln!("SKIP: no GPU adapter here: {}", gpu["error"]);
        return false;
    }
    true
}
