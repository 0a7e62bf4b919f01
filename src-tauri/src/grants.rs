//! The files the person has handed to Hearth. The page never names a file on its own: a path
//! reaches the core only after the open dialog returned it, it was dropped on the window, Hearth
//! downloaded it, or it is the model Hearth itself loaded last time. `plan_model` and
//! `load_model` refuse any other path, so a compromised page cannot make the core read files.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GrantError {
    #[error(
        "{path}: Hearth opens files only when you choose them (Open a GGUF model…, Attach a document…, or drag the file onto the window)"
    )]
    NotGranted { path: String },
    #[error("{path}: the file cannot be found ({reason})")]
    Missing { path: String, reason: String },
}

#[derive(Debug, Default)]
pub struct GrantedPaths {
    paths: Mutex<HashSet<PathBuf>>,
}

impl GrantedPaths {
    /// Records `path` as handed over by the person. Paths are compared in canonical form, so a
    /// symlink or `..` spelling of a granted file is the same file; a path that cannot be
    /// resolved now is kept as given (it cannot be opened until it exists, and then it resolves).
    pub fn grant(&self, path: &Path) {
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if let Ok(mut paths) = self.paths.lock() {
            paths.insert(key);
        }
    }

    /// The canonical form of `path` if it was granted.
    pub fn check(&self, path: &Path) -> Result<PathBuf, GrantError> {
        let shown = path.display().to_string();
        let canonical = path.canonicalize().map_err(|e| GrantError::Missing {
            path: shown.clone(),
            reason: e.kind().to_string(),
        })?;
        let granted = self
            .paths
            .lock()
            .map(|paths| paths.contains(&canonical))
            .unwrap_or(false);
        if granted {
            Ok(canonical)
        } else {
            Err(GrantError::NotGranted { path: shown })
        }
    }
}
