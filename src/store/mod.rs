//! The core store: conversations, messages, settings and documents (with their chunks and a
//! BM25 index over them) in one SQLite database (sqlx).
//!
//! [`Store::open`] creates the folder, opens the file in WAL mode with foreign keys on and a busy
//! timeout, and runs the embedded migrations (`migrations/`). The store never deletes or rewrites
//! a file it cannot read: a damaged or foreign file is a [`StoreError::Corrupt`].
//!
//! Rows are untrusted: a message with an unknown role is skipped, invalid stats JSON is dropped,
//! and a bad setting falls back to its default — each reported as a warning, never a failure
//! that hides the rest of the user's data.
//!
//! Writes that read before they write run in `BEGIN IMMEDIATE` transactions, so two writers
//! queue on the busy timeout instead of failing with a lock upgrade conflict.

mod cache_pins;
mod chunk_embeddings;
mod clock;
mod conversations;
mod document_chunks;
mod document_types;
mod documents;
mod error;
pub mod kv_blocks;
pub mod kv_redis;
mod messages;
mod search;
mod settings;
mod types;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use cache_pins::{PINS_KEY, parse_pins};
pub use chunk_embeddings::{
    ChunkVector, ChunkVectors, MAX_CHUNK_PIECES, MAX_EMBEDDING_DIM, StoredChunk, chunk_text_hash,
    vector_bytes,
};
pub use conversations::{DEFAULT_TITLE, MAX_TITLE_CHARS, validate_title};
pub use document_chunks::{MAX_CHUNK_HITS, MAX_QUERY_WORDS};
pub use document_types::{
    ChunkHit, ChunkHits, ChunkSpec, Document, DocumentSummary, LoadedDocuments,
};
pub use documents::{
    MAX_DOCUMENT_BYTES, MAX_DOCUMENT_NAME_CHARS, MAX_FINGERPRINT_BYTES, text_sha256,
    validate_document_name,
};
pub use error::StoreError;
pub use messages::MAX_CONTENT_BYTES;
pub use settings::{KvType, LoadedSettings, SettingWarning, Settings, Theme};
pub use types::{
    Conversation, ConversationSummary, DocumentRead, LoadedMessages, MAX_SEGMENT_TOKENS, Message,
    ReplyStats, ReusedByTier, Role, RowWarning, StopReason, TokenSegment,
};

/// The schema, embedded at compile time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections for a file database: WAL lets readers run beside the one writer.
const FILE_POOL_SIZE: u32 = 4;
/// Shown in errors about an in-memory store.
const IN_MEMORY_NAME: &str = ":memory:";

/// A handle to the database; cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across application crashes in WAL mode; only a power loss can
            // drop the last commits, never corrupt the file.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(FILE_POOL_SIZE)
            .connect_with(options)
            .await
            .map_err(|source| match error::corruption_detail(&source) {
                Some(detail) => StoreError::Corrupt {
                    path: path.clone(),
                    detail,
                },
                None => StoreError::Open {
                    path: path.clone(),
                    source,
                },
            })?;
        Store::migrated(pool, path).await
    }

    /// A private database that lives as long as the returned store (for tests and previews).
    pub async fn open_in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(IN_MEMORY_NAME);
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // Every connection to ":memory:" is a separate database: keep exactly one, forever.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(StoreError::db("opening an in-memory database", &path))?;
        Store::migrated(pool, path).await
    }

    async fn migrated(pool: SqlitePool, path: PathBuf) -> Result<Store, StoreError> {
        if let Err(err) = MIGRATOR.run(&pool).await {
            pool.close().await;
            return Err(migrate_error(err, &path));
        }
        Ok(Store { pool, path })
    }

    /// The database file (":memory:" for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection pool, for modules that keep their own tables in this database.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Waits for queries in flight to finish and closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The journal mode SQLite reports ("wal" for a file database).
    pub async fn journal_mode(&self) -> Result<String, StoreError> {
        sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&self.pool)
            .await
            .map_err(self.err("reading the journal mode"))
    }

    /// Maps a sqlx error from operation `op`.
    fn err(&self, op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
        StoreError::db(op, &self.path)
    }

    /// Fails with `ConversationNotFound` unless conversation `id` exists (read on `conn`, so
    /// inside the caller's transaction).
    async fn require_conversation(
        &self,
        conn: &mut sqlx::SqliteConnection,
        id: i64,
        op: &'static str,
    ) -> Result<(), StoreError> {
        let sql = "SELECT id FROM conversations WHERE id = ?1";
        match self.row_exists(conn, sql, id, op).await? {
            true => Ok(()),
            false => Err(StoreError::ConversationNotFound { id }),
        }
    }

    /// Whether `sql` (a `SELECT` by `?1`) finds a row for `id` on `conn`.
    async fn row_exists(
        &self,
        conn: &mut sqlx::SqliteConnection,
        sql: &'static str,
        id: i64,
        op: &'static str,
    ) -> Result<bool, StoreError> {
        let row: Option<i64> = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(self.err(op))?;
        Ok(row.is_some())
    }

    /// Starts a transaction that holds the write lock from its first statement.
    async fn begin_write(
        &self,
        op: &'static str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(self.err(op))
    }
}

fn migrate_error(err: sqlx::migrate::MigrateError, path: &Path) -> StoreError {
    use sqlx::migrate::MigrateError;
    let path = path.to_path_buf();
    match err {
        MigrateError::VersionMissing(version) => StoreError::NewerSchema { path, version },
        MigrateError::Execute(ref source) | MigrateError::ExecuteMigration(ref source, _) => {
            match error::corruption_detail(source) {
                Some(detail) => StoreError::Corrupt { path, detail },
                None => StoreError::Migrate { path, source: err },
            }
        }
        source => StoreError::Migrate { path, source },
    }
}
