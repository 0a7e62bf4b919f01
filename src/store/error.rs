//! `StoreError`: every failure of the store, naming the operation or the field at fault.

use std::path::PathBuf;

/// SQLite's primary result codes that mean "this file is not a usable database".
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_NOTADB: i64 = 26;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not create the folder {path} for the database: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The file at the database path is not a SQLite database, or is damaged. The store never
    /// deletes or rewrites such a file; the user decides what to do with it.
    #[error(
        "the database {path} is damaged or is not a Hearth database ({detail}); \
         the file was left untouched — move it aside to start fresh, or restore a backup"
    )]
    Corrupt { path: PathBuf, detail: String },

    /// The database was written by a newer Hearth (it has migrations this build does not know).
    #[error(
        "the database {path} was written by a newer version of Hearth \
         (schema version {version}); update Hearth to open it"
    )]
    NewerSchema { path: PathBuf, version: i64 },

    #[error("could not update the database schema of {path}: {source}")]
    Migrate {
        path: PathBuf,
        source: sqlx::migrate::MigrateError,
    },

    #[error("could not open the database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },

    #[error("database error while {op}: {source}")]
    Database {
        op: &'static str,
        source: sqlx::Error,
    },

    #[error("conversation {id} does not exist")]
    ConversationNotFound { id: i64 },

    #[error("message {id} does not exist")]
    MessageNotFound { id: i64 },

    #[error("message {id} does not exist in conversation {conversation_id}")]
    MessageNotInConversation { id: i64, conversation_id: i64 },

    #[error("invalid conversation title: {reason}")]
    InvalidTitle { reason: String },

    #[error("invalid message role {role:?}: expected system, user or assistant")]
    InvalidRole { role: String },

    #[error("message {id} is a {role} message; only assistant messages can be updated")]
    NotAssistant { id: i64, role: String },

    #[error("invalid message: {reason}")]
    InvalidMessage { reason: String },

    #[error("invalid reply stats: {field} {reason}")]
    InvalidStats { field: &'static str, reason: String },

    #[error("document {id} does not exist")]
    DocumentNotFound { id: i64 },

    #[error("invalid document: {reason}")]
    InvalidDocument { reason: String },

    #[error("invalid chunk {ordinal} of document {document_id}: {reason}")]
    InvalidChunk {
        document_id: i64,
        ordinal: usize,
        reason: String,
    },

    #[error("invalid embedding for chunk {chunk_id}: {reason}")]
    InvalidEmbedding { chunk_id: i64, reason: String },

    /// `field` is the camelCase name the app uses (`topP`, `contextLength`, ...).
    #[error("invalid setting {field}: {reason}")]
    InvalidSetting { field: &'static str, reason: String },
}

impl StoreError {
    /// Wraps a sqlx error from operation `op`; damaged-file errors become `Corrupt`.
    pub(crate) fn db(
        op: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| {
            if let Some(detail) = corruption_detail(&source) {
                StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail,
                }
            } else {
                StoreError::Database { op, source }
            }
        }
    }
}

/// SQLite's message when `err` says the file is damaged or not a database.
pub(crate) fn corruption_detail(err: &sqlx::Error) -> Option<String> {
    let db_err = err.as_database_error()?;
    let code: i64 = db_err.code()?.parse().ok()?;
    // Extended codes carry the primary code in the low byte.
    match code & 0xff {
        SQLITE_CORRUPT | SQLITE_NOTADB => Some(db_err.message().to_string()),
        _ => None,
    }
}
