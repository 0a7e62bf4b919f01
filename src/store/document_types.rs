//! The document records the store hands out (JSON camelCase, like the other records) and the
//! chunk description it takes in.

use serde::{Deserialize, Serialize};

use super::types::RowWarning;

/// A document without its text: what a list shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentSummary {
    pub id: i64,
    pub name: String,
    /// The file the text was extracted from, for display (lossy UTF-8 of the path).
    pub source_path: Option<String>,
    /// Lowercase hex SHA-256 of the UTF-8 text.
    pub sha256: String,
    pub byte_count: u64,
    /// Unicode scalar values; chunk ranges count in these.
    pub char_count: u64,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The conversations this document is attached to, oldest attachment first.
    pub conversation_ids: Vec<i64>,
}

/// A document with its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    #[serde(flatten)]
    pub summary: DocumentSummary,
    pub text: String,
    /// Stored values that did not match the text and were recomputed from it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<RowWarning>,
}

/// Documents in a list, plus the rows that were skipped.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadedDocuments {
    pub documents: Vec<DocumentSummary>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<RowWarning>,
}

/// One chunk to store: the char range `[char_start, char_end)` of the document's text (Unicode
/// scalar values) and that slice of the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkSpec {
    pub char_start: usize,
    pub char_end: usize,
    pub text: String,
}

/// A chunk that matched a search, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkHit {
    pub chunk_id: i64,
    /// Position of the chunk in the document (0-based).
    pub ordinal: u64,
    pub char_start: u64,
    pub char_end: u64,
    /// BM25 relevance, higher is better (SQLite's `bm25()` negated).
    pub score: f64,
}

/// The hits of a chunk search, plus the chunk rows that were skipped as damaged.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkHits {
    pub hits: Vec<ChunkHit>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<RowWarning>,
}
