//! A document's chunks: replace them all at once (each checked against the document's text), and
//! find the chunks that best answer a question (BM25 over the `document_chunks_fts` index).

use std::collections::{BTreeMap, BTreeSet};

use sqlx::FromRow;

use super::document_types::{ChunkHit, ChunkHits, ChunkSpec};
use super::types::RowWarning;
use super::{Store, StoreError};

/// Most hits one search returns, whatever limit is asked for.
pub const MAX_CHUNK_HITS: usize = 1000;
/// Distinct words of a query that are searched for; the rest are ignored.
pub const MAX_QUERY_WORDS: usize = 64;

const TABLE: &str = "document_chunks";

/// ?1: FTS5 query; ?2: document id; ?3: limit.
const SEARCH: &str = "SELECT c.id, c.ordinal, c.char_start, c.char_end, c.text,
            bm25(document_chunks_fts) AS rank
     FROM document_chunks_fts JOIN document_chunks c ON c.id = document_chunks_fts.rowid
     WHERE document_chunks_fts MATCH ?1 AND c.document_id = ?2
     ORDER BY rank, c.ordinal
     LIMIT ?3";

/// The query as an FTS5 expression that matches chunks holding any of its words, each word a
/// quoted string: no operator (`AND`, `OR`, `NOT`, `NEAR`), column filter, prefix `*`, `-`,
/// `^`, parenthesis or quote typed by the user has any effect. Words are runs of letters and
/// digits; repeated words count once. `None` when the query has no word.
pub(crate) fn fts_any_word(query: &str) -> Option<String> {
    let mut words: Vec<&str> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() || words.contains(&word) {
            continue;
        }
        words.push(word);
        if words.len() == MAX_QUERY_WORDS {
            break;
        }
    }
    if words.is_empty() {
        return None;
    }
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    Some(quoted.join(" OR "))
}

/// Byte offsets in `text` of the given char offsets; offsets at or past the end map to
/// `text.len()`. One pass over the text.
fn byte_offsets(text: &str, chars: impl Iterator<Item = usize>) -> BTreeMap<usize, usize> {
    let wanted: BTreeSet<usize> = chars.collect();
    let mut offsets = BTreeMap::new();
    let mut pending = wanted.into_iter().peekable();
    for (char_index, (byte_index, _)) in text.char_indices().enumerate() {
        if pending.next_if_eq(&char_index).is_some() {
            offsets.insert(char_index, byte_index);
        }
        if pending.peek().is_none() {
            return offsets;
        }
    }
    offsets.extend(pending.map(|c| (c, text.len())));
    offsets
}

/// Checks every chunk against the document's text: a non-empty range inside it, and exactly
/// that slice of the text.
fn check_chunks(document_id: i64, text: &str, chunks: &[ChunkSpec]) -> Result<(), StoreError> {
    let char_count = text.chars().count();
    let invalid = |ordinal: usize, reason: String| StoreError::InvalidChunk {
        document_id,
        ordinal,
        reason,
    };
    for (ordinal, chunk) in chunks.iter().enumerate() {
        if chunk.char_start >= chunk.char_end || chunk.char_end > char_count {
            return Err(invalid(
                ordinal,
                format!(
                    "range {}..{} is empty or outside the text's {char_count} characters",
                    chunk.char_start, chunk.char_end
                ),
            ));
        }
    }
    let bytes = byte_offsets(text, chunks.iter().flat_map(|c| [c.char_start, c.char_end]));
    for (ordinal, chunk) in chunks.iter().enumerate() {
        let slice = &text[bytes[&chunk.char_start]..bytes[&chunk.char_end]];
        if slice != chunk.text {
            return Err(invalid(
                ordinal,
                format!(
                    "its text is not the document's characters {}..{}",
                    chunk.char_start, chunk.char_end
                ),
            ));
        }
    }
    Ok(())
}

#[derive(FromRow)]
struct HitRow {
    id: i64,
    ordinal: i64,
    char_start: i64,
    char_end: i64,
    text: String,
    rank: f64,
}

impl HitRow {
    /// The hit, or why the stored chunk cannot be trusted.
    fn into_hit(self, char_count: i64) -> Result<ChunkHit, String> {
        let (start, end) = (self.char_start, self.char_end);
        if start < 0 || start >= end || end > char_count {
            return Err(format!(
                "range {start}..{end} is empty or outside the document's {char_count} characters"
            ));
        }
        let text_chars = self.text.chars().count();
        if u64::try_from(end - start).ok() != u64::try_from(text_chars).ok() {
            return Err(format!(
                "range {start}..{end} does not match its {text_chars}-character text"
            ));
        }
        let ordinal = u64::try_from(self.ordinal)
            .map_err(|_| format!("ordinal {} is negative", self.ordinal))?;
        if !self.rank.is_finite() {
            return Err(format!("score {} is not finite", self.rank));
        }
        Ok(ChunkHit {
            chunk_id: self.id,
            ordinal,
            char_start: start as u64,
            char_end: end as u64,
            score: -self.rank,
        })
    }
}

impl Store {
    /// Replaces the document's chunks with `chunks` (ordinal = position in the slice). Each must
    /// be a non-empty char range of the document's text holding exactly that text; otherwise
    /// nothing changes. Returns how many were stored.
    pub async fn replace_chunks(
        &self,
        document_id: i64,
        chunks: &[ChunkSpec],
    ) -> Result<u64, StoreError> {
        let op = "replacing a document's chunks";
        let mut tx = self.begin_write(op).await?;
        let text: Option<String> = sqlx::query_scalar("SELECT text FROM documents WHERE id = ?1")
            .bind(document_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(self.err(op))?;
        let text = text.ok_or(StoreError::DocumentNotFound { id: document_id })?;
        check_chunks(document_id, &text, chunks)?;
        drop(text);
        sqlx::query("DELETE FROM document_chunks WHERE document_id = ?1")
            .bind(document_id)
            .execute(&mut *tx)
            .await
            .map_err(self.err(op))?;
        for (ordinal, chunk) in chunks.iter().enumerate() {
            sqlx::query(
                "INSERT INTO document_chunks (document_id, ordinal, char_start, char_end, text)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(document_id)
            .bind(ordinal as i64)
            .bind(chunk.char_start as i64)
            .bind(chunk.char_end as i64)
            .bind(&chunk.text)
            .execute(&mut *tx)
            .await
            .map_err(self.err(op))?;
        }
        tx.commit().await.map_err(self.err(op))?;
        Ok(chunks.len() as u64)
    }

    /// How many chunks the document has (0 before `replace_chunks`).
    pub async fn chunk_count(&self, document_id: i64) -> Result<u64, StoreError> {
        let op = "counting a document's chunks";
        let mut conn = self.pool.acquire().await.map_err(self.err(op))?;
        self.require_document(&mut conn, document_id, op).await?;
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM document_chunks WHERE document_id = ?1")
                .bind(document_id)
                .fetch_one(&mut *conn)
                .await
                .map_err(self.err(op))?;
        Ok(n as u64)
    }

    /// The document's chunks that best match `query` (BM25, best first; at most `limit`, capped
    /// at [`MAX_CHUNK_HITS`]). The query is the user's text: any of its words matches (stemmed,
    /// case- and accent-folded), and nothing in it is FTS5 syntax. A query without words gives
    /// no hits. Damaged chunk rows are skipped and listed in `warnings`. Term statistics are
    /// those of all documents' chunks together.
    pub async fn search_chunks(
        &self,
        document_id: i64,
        query: &str,
        limit: usize,
    ) -> Result<ChunkHits, StoreError> {
        let op = "searching a document";
        let mut tx = self.pool.begin().await.map_err(self.err(op))?;
        let char_count: Option<i64> =
            sqlx::query_scalar("SELECT char_count FROM documents WHERE id = ?1")
                .bind(document_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(self.err(op))?;
        let char_count = char_count.ok_or(StoreError::DocumentNotFound { id: document_id })?;
        let limit = limit.min(MAX_CHUNK_HITS);
        let Some(fts_query) = fts_any_word(query).filter(|_| limit > 0) else {
            return Ok(ChunkHits::default());
        };
        let rows: Vec<sqlx::sqlite::SqliteRow> = sqlx::query(SEARCH)
            .bind(&fts_query)
            .bind(document_id)
            .bind(limit as i64)
            .fetch_all(&mut *tx)
            .await
            .map_err(self.err(op))?;
        tx.commit().await.map_err(self.err(op))?;
        let mut found = ChunkHits::default();
        for row in rows {
            let id = sqlx::Row::try_get::<i64, _>(&row, "id").unwrap_or(-1);
            let hit = HitRow::from_row(&row)
                .map_err(|e| e.to_string())
                .and_then(|r| r.into_hit(char_count));
            match hit {
                Ok(hit) => found.hits.push(hit),
                Err(problem) => found.warnings.push(RowWarning {
                    table: TABLE.into(),
                    id,
                    problem: format!("skipped: {problem}"),
                }),
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_become_quoted_words_joined_by_or() {
        assert_eq!(fts_any_word(""), None);
        assert_eq!(fts_any_word("  -*()\"^: "), None);
        assert_eq!(
            fts_any_word("NEAR(\"a\" b*) -c OR a").as_deref(),
            Some("\"NEAR\" OR \"a\" OR \"b\" OR \"c\" OR \"OR\"")
        );
        assert_eq!(
            fts_any_word("café  über-größe").as_deref(),
            Some("\"café\" OR \"über\" OR \"größe\"")
        );
        let many: String = (0..200).map(|i| format!("w{i} ")).collect();
        assert_eq!(
            fts_any_word(&many).unwrap().matches(" OR ").count(),
            MAX_QUERY_WORDS - 1
        );
    }

    #[test]
    fn byte_offsets_map_char_offsets_in_multibyte_text() {
        let text = "aé😀b";
        let map = byte_offsets(text, [0, 1, 2, 3, 4].into_iter());
        assert_eq!(map.values().copied().collect::<Vec<_>>(), [0, 1, 3, 7, 8]);
    }

    #[test]
    fn chunks_must_be_exact_slices_of_the_text() {
        let text = "héllo wörld";
        let ok = |s: usize, e: usize| ChunkSpec {
            char_start: s,
            char_end: e,
            text: text.chars().skip(s).take(e - s).collect(),
        };
        assert!(check_chunks(1, text, &[ok(0, 5), ok(4, 11)]).is_ok());
        assert!(check_chunks(1, text, &[ok(3, 3)]).is_err());
        let past_end = ChunkSpec {
            char_start: 5,
            char_end: 12,
            text: String::new(),
        };
        assert!(check_chunks(1, text, &[past_end]).is_err());
        let wrong_text = ChunkSpec {
            text: "hello".into(),
            ..ok(0, 5)
        };
        let err = check_chunks(1, text, &[ok(0, 5), wrong_text]).unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidChunk { ordinal: 1, .. }),
            "{err}"
        );
    }
}
