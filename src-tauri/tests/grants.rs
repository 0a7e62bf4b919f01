//! Which paths reach the core: only granted files, whatever their spelling, and the test-only
//! scripted pick that stands in for the native dialog.

mod common;

use std::path::Path;

use common::ScratchDir;
use hearth_desktop::commands::scripted_pick;
use hearth_desktop::grants::{GrantError, GrantedPaths};

#[test]
fn only_granted_files_pass_whatever_their_spelling() {
    let dir = ScratchDir::new();
    let model = dir.path().join("m.gguf");
    let other = dir.path().join("other.gguf");
    std::fs::write(&model, b"GGUF").unwrap();
    std::fs::write(&other, b"GGUF").unwrap();
    let grants = GrantedPaths::default();
    assert!(matches!(
        grants.check(&model),
        Err(GrantError::NotGranted { .. })
    ));

    grants.grant(&model);
    assert_eq!(grants.check(&model).unwrap(), model.canonicalize().unwrap());
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    assert!(
        grants.check(&dir.path().join("sub/../m.gguf")).is_ok(),
        "the same file through .."
    );
    let err = grants.check(&other).unwrap_err();
    assert!(matches!(err, GrantError::NotGranted { .. }));
    let text = err.to_string();
    assert!(
        text.contains("other.gguf") && text.contains("Open a GGUF model"),
        "{text}"
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_to_a_granted_file_is_that_file_and_a_missing_file_says_so() {
    let dir = ScratchDir::new();
    let model = dir.path().join("m.gguf");
    std::fs::write(&model, b"GGUF").unwrap();
    let link = dir.path().join("link.gguf");
    std::os::unix::fs::symlink(&model, &link).unwrap();
    let grants = GrantedPaths::default();
    grants.grant(&link);
    assert!(grants.check(&model).is_ok());
    let gone = dir.path().join("gone.gguf");
    assert!(matches!(
        grants.check(&gone),
        Err(GrantError::Missing { .. })
    ));
}

#[test]
fn a_scripted_pick_is_used_once_and_nothing_queued_is_a_cancel() {
    let dir = ScratchDir::new();
    let queue = dir.path().join("next-pick");
    assert_eq!(scripted_pick(&queue), None, "nothing queued");
    std::fs::write(&queue, "/models/m.gguf\n").unwrap();
    assert_eq!(
        scripted_pick(&queue).as_deref(),
        Some(Path::new("/models/m.gguf"))
    );
    assert_eq!(scripted_pick(&queue), None, "consumed");
    std::fs::write(&queue, "  \n").unwrap();
    assert_eq!(scripted_pick(&queue), None, "blank");
}
