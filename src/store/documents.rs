//! Documents: add (deduplicated by the SHA-256 of the text), get, list with the conversations
//! using each, rename, delete, attach to and detach from conversations, per-model token counts.
//!
//! Rows are untrusted. In a list, a row with impossible values (negative counts, a hash that is
//! not 64 hex digits) is skipped with a [`RowWarning`]; a single document read with its text has
//! its hash and counts recomputed from the text, each mismatch reported as a warning — the text
//! is what the user gave, the rest is derived from it and never handed out wrong.

use std::collections::HashMap;
use std::path::Path;

use sha2::{Digest, Sha256};
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, Row, SqliteConnection};

use super::document_types::{Document, DocumentSummary, LoadedDocuments};
use super::types::RowWarning;
use super::{Store, StoreError, clock};

/// Largest document text accepted, in bytes of UTF-8.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024 * 1024;
/// Longest document name, in characters, after trimming.
pub const MAX_DOCUMENT_NAME_CHARS: usize = 255;
/// Longest model fingerprint accepted for token counts, in bytes.
pub const MAX_FINGERPRINT_BYTES: usize = 512;

const TABLE: &str = "documents";

macro_rules! summary_columns {
    () => {
        "SELECT d.id, d.name, d.source_path, d.sha256, d.byte_count, d.char_count, d.created_at "
    };
}
const LIST_ALL: &str = concat!(
    summary_columns!(),
    "FROM documents d ORDER BY d.created_at DESC, d.id DESC"
);
const LIST_FOR_CONVERSATION: &str = concat!(
    summary_columns!(),
    "FROM documents d JOIN conversation_documents cd ON cd.document_id = d.id
     WHERE cd.conversation_id = ?1 ORDER BY cd.attached_at, d.id"
);
const GET_WITH_TEXT: &str = concat!(
    summary_columns!(),
    ", d.text FROM documents d WHERE d.id = ?1"
);

#[derive(FromRow)]
struct SummaryRow {
    id: i64,
    name: String,
    source_path: Option<String>,
    sha256: String,
    byte_count: i64,
    char_count: i64,
    created_at: i64,
}

impl SummaryRow {
    /// The summary, or the reason the row cannot be shown.
    fn into_summary(self, conversation_ids: Vec<i64>) -> Result<DocumentSummary, String> {
        let count = |name: &str, value: i64| {
            u64::try_from(value).map_err(|_| format!("{name} {value} is negative"))
        };
        let byte_count = count("byte_count", self.byte_count)?;
        let char_count = count("char_count", self.char_count)?;
        if char_count > byte_count {
            return Err(format!(
                "char_count {char_count} exceeds byte_count {byte_count}"
            ));
        }
        if !is_sha256_hex(&self.sha256) {
            return Err(format!(
                "sha256 {:?} is not 64 lowercase hex digits",
                self.sha256
            ));
        }
        Ok(DocumentSummary {
            id: self.id,
            name: self.name,
            source_path: self.source_path,
            sha256: self.sha256,
            byte_count,
            char_count,
            created_at: clock::rfc3339(self.created_at),
            conversation_ids,
        })
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Lowercase hex SHA-256 of the UTF-8 bytes of `text`.
pub fn text_sha256(text: &str) -> String {
    use std::fmt::Write;
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// The name as stored: trimmed, 1 to `MAX_DOCUMENT_NAME_CHARS` characters, no control
/// characters.
pub fn validate_document_name(name: &str) -> Result<String, StoreError> {
    let name = name.trim();
    let invalid = |reason: String| {
        Err(StoreError::InvalidDocument {
            reason: format!("the name {reason}"),
        })
    };
    if name.is_empty() {
        return invalid("is empty".into());
    }
    let chars = name.chars().count();
    if chars > MAX_DOCUMENT_NAME_CHARS {
        return invalid(format!(
            "is {chars} characters long; the limit is {MAX_DOCUMENT_NAME_CHARS}"
        ));
    }
    if name.chars().any(char::is_control) {
        return invalid("contains control characters such as line breaks".into());
    }
    Ok(name.to_string())
}

/// Text a document may hold: not blank, at most `MAX_DOCUMENT_BYTES`, no NUL characters.
fn validate_text(text: &str) -> Result<(), StoreError> {
    let invalid = |reason: String| Err(StoreError::InvalidDocument { reason });
    if text.len() > MAX_DOCUMENT_BYTES {
        return invalid(format!(
            "the text is {} bytes; the limit is {MAX_DOCUMENT_BYTES}",
            text.len()
        ));
    }
    if text.trim().is_empty() {
        return invalid("the text is empty or only whitespace".into());
    }
    if text.contains('\0') {
        return invalid("the text contains NUL characters".into());
    }
    Ok(())
}

fn validate_fingerprint(fingerprint: &str) -> Result<(), StoreError> {
    let invalid = |reason: &str| {
        Err(StoreError::InvalidDocument {
            reason: format!("model fingerprint {reason}"),
        })
    };
    if fingerprint.is_empty() {
        return invalid("is empty");
    }
    if fingerprint.len() > MAX_FINGERPRINT_BYTES {
        return invalid(&format!("is longer than {MAX_FINGERPRINT_BYTES} bytes"));
    }
    if fingerprint.chars().any(char::is_control) {
        return invalid("contains control characters");
    }
    Ok(())
}

fn warning(table: &str, id: i64, problem: String) -> RowWarning {
    RowWarning {
        table: table.into(),
        id,
        problem,
    }
}

/// Decodes summary rows one by one: bad rows become warnings, the rest are shown.
fn decode_summaries(rows: Vec<SqliteRow>, mut links: HashMap<i64, Vec<i64>>) -> LoadedDocuments {
    let mut loaded = LoadedDocuments::default();
    for row in rows {
        let id: i64 = row.try_get("id").unwrap_or(-1);
        let summary = SummaryRow::from_row(&row)
            .map_err(|e| e.to_string())
            .and_then(|r| r.into_summary(links.remove(&id).unwrap_or_default()));
        match summary {
            Ok(summary) => loaded.documents.push(summary),
            Err(problem) => loaded
                .warnings
                .push(warning(TABLE, id, format!("skipped: {problem}"))),
        }
    }
    loaded
}

/// The document as stored, with hash and counts recomputed from the text where they disagree.
fn decode_document(row: &SqliteRow, conversation_ids: Vec<i64>) -> Result<Document, String> {
    let text: String = row.try_get("text").map_err(|e| e.to_string())?;
    let stored = SummaryRow::from_row(row).map_err(|e| e.to_string())?;
    let id = stored.id;
    let mut warnings = Vec::new();
    let sha256 = text_sha256(&text);
    if stored.sha256 != sha256 {
        warnings.push(warning(
            TABLE,
            id,
            "stored sha256 does not match the text; recomputed".into(),
        ));
    }
    let mut checked = |name: &str, stored: i64, actual: usize| {
        if u64::try_from(stored).ok() != u64::try_from(actual).ok() {
            warnings.push(warning(
                TABLE,
                id,
                format!("stored {name} {stored} does not match the text ({actual}); recomputed"),
            ));
        }
        actual as u64
    };
    let byte_count = checked("byte_count", stored.byte_count, text.len());
    let char_count = checked("char_count", stored.char_count, text.chars().count());
    Ok(Document {
        summary: DocumentSummary {
            id,
            name: stored.name,
            source_path: stored.source_path,
            sha256,
            byte_count,
            char_count,
            created_at: clock::rfc3339(stored.created_at),
            conversation_ids,
        },
        text,
        warnings,
    })
}

impl Store {
    /// Adds a document holding `text` (validated: not blank, at most [`MAX_DOCUMENT_BYTES`]).
    /// When a document with the same text exists, returns it unchanged (its name is kept; the
    /// caller may rename it) — one text is one document, so its KV is encoded once.
    pub async fn add_document(
        &self,
        name: &str,
        source_path: Option<&Path>,
        text: &str,
    ) -> Result<Document, StoreError> {
        let name = validate_document_name(name)?;
        validate_text(text)?;
        let sha256 = text_sha256(text);
        let source_path = source_path.map(|p| p.to_string_lossy().into_owned());
        let op = "adding a document";
        let mut tx = self.begin_write(op).await?;
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM documents WHERE sha256 = ?1")
                .bind(&sha256)
                .fetch_optional(&mut *tx)
                .await
                .map_err(self.err(op))?;
        if let Some(id) = existing {
            let document = self.document_in(&mut tx, id).await?;
            tx.commit().await.map_err(self.err(op))?;
            return Ok(document);
        }
        let (id, created_at): (i64, i64) = sqlx::query_as(
            "INSERT INTO documents
                 (name, source_path, text, sha256, byte_count, char_count, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id, created_at",
        )
        .bind(&name)
        .bind(&source_path)
        .bind(text)
        .bind(&sha256)
        .bind(text.len() as i64)
        .bind(text.chars().count() as i64)
        .bind(clock::now_ms())
        .fetch_one(&mut *tx)
        .await
        .map_err(self.err(op))?;
        tx.commit().await.map_err(self.err(op))?;
        Ok(Document {
            summary: DocumentSummary {
                id,
                name,
                source_path,
                sha256,
                byte_count: text.len() as u64,
                char_count: text.chars().count() as u64,
                created_at: clock::rfc3339(created_at),
                conversation_ids: Vec::new(),
            },
            text: text.to_string(),
            warnings: Vec::new(),
        })
    }

    /// The document with its text; stored values that disagree with the text are recomputed
    /// and listed in `warnings`.
    pub async fn document(&self, id: i64) -> Result<Document, StoreError> {
        let op = "reading a document";
        let mut tx = self.pool.begin().await.map_err(self.err(op))?;
        let document = self.document_in(&mut tx, id).await?;
        tx.commit().await.map_err(self.err(op))?;
        Ok(document)
    }

    async fn document_in(
        &self,
        conn: &mut SqliteConnection,
        id: i64,
    ) -> Result<Document, StoreError> {
        let op = "reading a document";
        let row = sqlx::query(GET_WITH_TEXT)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(self.err(op))?
            .ok_or(StoreError::DocumentNotFound { id })?;
        let conversation_ids: Vec<i64> = sqlx::query_scalar(
            "SELECT conversation_id FROM conversation_documents
             WHERE document_id = ?1 ORDER BY attached_at, conversation_id",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .map_err(self.err(op))?;
        decode_document(&row, conversation_ids).map_err(|problem| StoreError::InvalidDocument {
            reason: format!("stored document {id} cannot be read: {problem}"),
        })
    }

    /// Every document, newest first, each with the conversations using it; damaged rows are
    /// skipped and listed in `warnings`.
    pub async fn list_documents(&self) -> Result<LoadedDocuments, StoreError> {
        let op = "listing documents";
        let mut tx = self.pool.begin().await.map_err(self.err(op))?;
        let rows = sqlx::query(LIST_ALL)
            .fetch_all(&mut *tx)
            .await
            .map_err(self.err(op))?;
        let links = self
            .links_in(
                &mut tx,
                "SELECT document_id, conversation_id FROM conversation_documents
                 ORDER BY attached_at, conversation_id",
                None,
            )
            .await?;
        tx.commit().await.map_err(self.err(op))?;
        Ok(decode_summaries(rows, links))
    }

    /// The documents attached to the conversation, in attachment order.
    pub async fn conversation_documents(
        &self,
        conversation_id: i64,
    ) -> Result<LoadedDocuments, StoreError> {
        let op = "listing a conversation's documents";
        let mut tx = self.pool.begin().await.map_err(self.err(op))?;
        self.require_conversation(&mut tx, conversation_id, op)
            .await?;
        let rows = sqlx::query(LIST_FOR_CONVERSATION)
            .bind(conversation_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(self.err(op))?;
        let links = self
            .links_in(
                &mut tx,
                "SELECT document_id, conversation_id FROM conversation_documents
                 WHERE document_id IN (SELECT document_id FROM conversation_documents
                                       WHERE conversation_id = ?1)
                 ORDER BY attached_at, conversation_id",
                Some(conversation_id),
            )
            .await?;
        tx.commit().await.map_err(self.err(op))?;
        Ok(decode_summaries(rows, links))
    }

    /// Conversation ids by document id, from `sql` (binding `param` as ?1 when given).
    async fn links_in(
        &self,
        conn: &mut SqliteConnection,
        sql: &'static str,
        param: Option<i64>,
    ) -> Result<HashMap<i64, Vec<i64>>, StoreError> {
        let mut query = sqlx::query_as::<_, (i64, i64)>(sql);
        if let Some(param) = param {
            query = query.bind(param);
        }
        let pairs = query
            .fetch_all(conn)
            .await
            .map_err(self.err("reading document links"))?;
        let mut links: HashMap<i64, Vec<i64>> = HashMap::new();
        for (document_id, conversation_id) in pairs {
            links.entry(document_id).or_default().push(conversation_id);
        }
        Ok(links)
    }

    /// Sets the name (validated as in [`validate_document_name`]).
    pub async fn rename_document(
        &self,
        id: i64,
        name: &str,
    ) -> Result<DocumentSummary, StoreError> {
        let name = validate_document_name(name)?;
        let op = "renaming a document";
        let mut tx = self.begin_write(op).await?;
        let done = sqlx::query("UPDATE documents SET name = ?1 WHERE id = ?2")
            .bind(&name)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(self.err(op))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::DocumentNotFound { id });
        }
        let document = self.document_in(&mut tx, id).await?;
        tx.commit().await.map_err(self.err(op))?;
        Ok(document.summary)
    }

    /// Deletes the document and (by cascade) its chunks, their index rows, its token counts and
    /// its links to conversations; the conversations stay.
    pub async fn delete_document(&self, id: i64) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM documents WHERE id = ?1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(self.err("deleting a document"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::DocumentNotFound { id });
        }
        Ok(())
    }

    /// Attaches the document to the conversation (again: no change) and marks the conversation
    /// most recently active.
    pub async fn attach(&self, conversation_id: i64, document_id: i64) -> Result<(), StoreError> {
        let op = "attaching a document";
        let mut tx = self.begin_write(op).await?;
        self.require_document(&mut tx, document_id, op).await?;
        if !clock::touch(&mut tx, conversation_id)
            .await
            .map_err(self.err(op))?
        {
            return Err(StoreError::ConversationNotFound {
                id: conversation_id,
            });
        }
        sqlx::query(
            "INSERT OR IGNORE INTO conversation_documents (conversation_id, document_id, attached_at)
             VALUES (?1, ?2, ?3)",
        )
        .bind(conversation_id)
        .bind(document_id)
        .bind(clock::now_ms())
        .execute(&mut *tx)
        .await
        .map_err(self.err(op))?;
        tx.commit().await.map_err(self.err(op))
    }

    /// Detaches the document from the conversation; returns whether it was attached. The
    /// document itself stays.
    pub async fn detach(&self, conversation_id: i64, document_id: i64) -> Result<bool, StoreError> {
        let op = "detaching a document";
        let mut tx = self.begin_write(op).await?;
        self.require_conversation(&mut tx, conversation_id, op)
            .await?;
        let done = sqlx::query(
            "DELETE FROM conversation_documents WHERE conversation_id = ?1 AND document_id = ?2",
        )
        .bind(conversation_id)
        .bind(document_id)
        .execute(&mut *tx)
        .await
        .map_err(self.err(op))?;
        let detached = done.rows_affected() == 1;
        if detached {
            clock::touch(&mut tx, conversation_id)
                .await
                .map_err(self.err(op))?;
        }
        tx.commit().await.map_err(self.err(op))?;
        Ok(detached)
    }

    /// Records that the document's text is `token_count` tokens for the model with this
    /// fingerprint (replacing an earlier count).
    pub async fn set_token_count(
        &self,
        document_id: i64,
        model_fingerprint: &str,
        token_count: u64,
    ) -> Result<(), StoreError> {
        validate_fingerprint(model_fingerprint)?;
        let count = i64::try_from(token_count).map_err(|_| StoreError::InvalidDocument {
            reason: format!("token count {token_count} is too large"),
        })?;
        let op = "saving a token count";
        let mut tx = self.begin_write(op).await?;
        self.require_document(&mut tx, document_id, op).await?;
        sqlx::query(
            "INSERT INTO document_tokens (document_id, model_fingerprint, token_count)
             VALUES (?1, ?2, ?3)
             ON CONFLICT (document_id, model_fingerprint)
             DO UPDATE SET token_count = excluded.token_count",
        )
        .bind(document_id)
        .bind(model_fingerprint)
        .bind(count)
        .execute(&mut *tx)
        .await
        .map_err(self.err(op))?;
        tx.commit().await.map_err(self.err(op))
    }

    /// The document's token count for the model, if one was recorded. A damaged (negative)
    /// stored count reads as none, so the caller counts again and overwrites it.
    pub async fn token_count(
        &self,
        document_id: i64,
        model_fingerprint: &str,
    ) -> Result<Option<u64>, StoreError> {
        let count: Option<i64> = sqlx::query_scalar(
            "SELECT token_count FROM document_tokens
             WHERE document_id = ?1 AND model_fingerprint = ?2",
        )
        .bind(document_id)
        .bind(model_fingerprint)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err("reading a token count"))?;
        Ok(count.and_then(|n| u64::try_from(n).ok()))
    }

    /// Fails with `DocumentNotFound` unless document `id` exists.
    pub(crate) async fn require_document(
        &self,
        conn: &mut SqliteConnection,
        id: i64,
        op: &'static str,
    ) -> Result<(), StoreError> {
        let sql = "SELECT id FROM documents WHERE id = ?1";
        match self.row_exists(conn, sql, id, op).await? {
            true => Ok(()),
            false => Err(StoreError::DocumentNotFound { id }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_lowercase_hex_of_the_utf8_bytes() {
        assert_eq!(
            text_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_sha256_hex(&text_sha256("é")));
        assert!(!is_sha256_hex(&"A".repeat(64)));
        assert!(!is_sha256_hex("abc"));
    }

    #[test]
    fn names_and_texts_are_validated() {
        assert_eq!(validate_document_name("  notes.md ").unwrap(), "notes.md");
        assert!(validate_document_name(" ").is_err());
        assert!(validate_document_name("a\nb").is_err());
        assert!(validate_document_name(&"é".repeat(MAX_DOCUMENT_NAME_CHARS)).is_ok());
        assert!(validate_document_name(&"é".repeat(MAX_DOCUMENT_NAME_CHARS + 1)).is_err());
        assert!(validate_text(" \n\t").is_err());
        assert!(validate_text("a\0b").is_err());
        assert!(validate_text("fine").is_ok());
        assert!(validate_fingerprint("").is_err());
        assert!(validate_fingerprint("m\n").is_err());
        assert!(validate_fingerprint("llama-7b:f16:16").is_ok());
    }
}
