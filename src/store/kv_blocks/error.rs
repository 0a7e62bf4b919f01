//! `KvStoreError`: every failure of the KV block database, naming the file or operation at fault.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KvStoreError {
    #[error("could not create the folder {path} for the KV cache database: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The file is not a SQLite database, or is damaged. It is never deleted or rewritten.
    #[error(
        "the KV cache database {path} is damaged or is not a SQLite database ({detail}); \
         the file was left untouched — move it aside (the cache is rebuilt as you chat)"
    )]
    Corrupt { path: PathBuf, detail: String },

    #[error(
        "the KV cache database {path} was written by a newer version of Hearth \
         (schema version {version}); update Hearth or move the file aside"
    )]
    NewerSchema { path: PathBuf, version: i64 },

    #[error("could not update the schema of the KV cache database {path}: {source}")]
    Migrate {
        path: PathBuf,
        source: sqlx::migrate::MigrateError,
    },

    #[error("could not open the KV cache database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },

    #[error("KV cache database error while {op}: {source}")]
    Database {
        op: &'static str,
        source: sqlx::Error,
    },

    #[error("could not start the KV cache database's {what}: {source}")]
    Start {
        what: &'static str,
        source: std::io::Error,
    },

    /// `put` refused a block whose fields do not agree with each other.
    #[error("refused KV block: {reason}")]
    BadBlock { reason: String },

    #[error("invalid KV block owner {owner:?}: {reason}")]
    BadOwner { owner: String, reason: &'static str },

    /// The writer thread is gone (the store is closing, or the thread panicked).
    #[error("the KV cache writer has stopped")]
    WriterStopped,

    /// A batch could not be committed (disk full, lock held past the busy timeout, ...); its
    /// blocks were dropped. Reported by the next `flush`.
    #[error("writing KV blocks failed: {detail}")]
    Write { detail: String },

    #[error("could not read the model file {path}: {source}")]
    ModelFile {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("the model file {path} changed while it was being hashed; try again")]
    ModelFileChanged { path: PathBuf },
}

impl KvStoreError {
    /// Wraps a sqlx error from operation `op`; damaged-file errors become `Corrupt`.
    pub(crate) fn db(op: &'static str, path: &Path) -> impl FnOnce(sqlx::Error) -> KvStoreError {
        move |source| match crate::store::error::corruption_detail(&source) {
            Some(detail) => KvStoreError::Corrupt {
                path: path.to_path_buf(),
                detail,
            },
            None => KvStoreError::Database { op, source },
        }
    }

    /// Maps a failure of the embedded migrations.
    pub(crate) fn migrate(err: sqlx::migrate::MigrateError, path: &Path) -> KvStoreError {
        use sqlx::migrate::MigrateError;
        let path = path.to_path_buf();
        match err {
            MigrateError::VersionMissing(version) => KvStoreError::NewerSchema { path, version },
            MigrateError::Execute(ref source) | MigrateError::ExecuteMigration(ref source, _) => {
                match crate::store::error::corruption_detail(source) {
                    Some(detail) => KvStoreError::Corrupt { path, detail },
                    None => KvStoreError::Migrate { path, source: err },
                }
            }
            source => KvStoreError::Migrate { path, source },
        }
    }
}
