//! Embeddings of a document's chunks, one per chunk and embedding model (migration 0005). Rows
//! are untrusted on read: a vector whose length, dimension, values or text hash do not check
//! out is reported and handed back as a chunk to recompute, never used.

use sqlx::Row;

use super::types::RowWarning;
use super::{Store, StoreError};

const TABLE: &str = "chunk_embeddings";
/// Widest vector stored or read (all-MiniLM-L6-v2: 384).
pub const MAX_EMBEDDING_DIM: usize = 8192;
/// Most vectors one chunk may have (a chunk longer than the model's input is embedded in pieces).
pub const MAX_CHUNK_PIECES: usize = 64;

/// A chunk of a document as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChunk {
    pub chunk_id: i64,
    pub ordinal: u64,
    pub char_start: u64,
    pub char_end: u64,
    pub text: String,
}

/// A chunk's stored embeddings: one per piece of the chunk (a question's cosine to the chunk
/// is the best of them).
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkVector {
    pub chunk_id: i64,
    pub ordinal: u64,
    pub char_start: u64,
    pub char_end: u64,
    pub vectors: Vec<Vec<f32>>,
}

/// A document's chunk embeddings for one model: the usable ones, the chunks that need one
/// (none stored, or a damaged row), and what was wrong with damaged rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChunkVectors {
    pub vectors: Vec<ChunkVector>,
    pub missing: Vec<StoredChunk>,
    pub warnings: Vec<RowWarning>,
}

/// Lowercase hex blake3 of a chunk's text (what a stored vector was computed from).
pub fn chunk_text_hash(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

/// Vectors as consecutive little-endian f32 bytes.
pub fn vector_bytes(vectors: &[Vec<f32>]) -> Vec<u8> {
    vectors
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// The vectors in a stored row, or why they cannot be used: the dimension must be the model's,
/// the blob 1..=[`MAX_CHUNK_PIECES`] whole vectors of it, every value finite.
fn decode_vectors(dim: i64, blob: &[u8], want_dim: usize) -> Result<Vec<Vec<f32>>, String> {
    if dim != want_dim as i64 || want_dim == 0 {
        return Err(format!("dimension {dim}, the model's is {want_dim}"));
    }
    let row = want_dim * 4;
    if blob.is_empty() || !blob.len().is_multiple_of(row) || blob.len() / row > MAX_CHUNK_PIECES {
        return Err(format!(
            "{} bytes are not 1..={MAX_CHUNK_PIECES} vectors of {want_dim} f32 values",
            blob.len()
        ));
    }
    let values: Vec<f32> = blob
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if values.iter().any(|x| !x.is_finite()) {
        return Err("a value is not finite".into());
    }
    Ok(values.chunks_exact(want_dim).map(<[f32]>::to_vec).collect())
}

fn chunk_of(row: &sqlx::sqlite::SqliteRow) -> Result<StoredChunk, String> {
    let get_u = |name: &str| -> Result<u64, String> {
        let v: i64 = row.try_get(name).map_err(|e| e.to_string())?;
        u64::try_from(v).map_err(|_| format!("{name} {v} is negative"))
    };
    Ok(StoredChunk {
        chunk_id: row.try_get("id").map_err(|e| e.to_string())?,
        ordinal: get_u("ordinal")?,
        char_start: get_u("char_start")?,
        char_end: get_u("char_end")?,
        text: row.try_get("text").map_err(|e| e.to_string())?,
    })
}

impl Store {
    /// The document's chunks in order.
    pub async fn document_chunks(&self, document_id: i64) -> Result<Vec<StoredChunk>, StoreError> {
        let op = "reading a document's chunks";
        let mut conn = self.pool.acquire().await.map_err(self.err(op))?;
        self.require_document(&mut conn, document_id, op).await?;
        let rows = sqlx::query(
            "SELECT id, ordinal, char_start, char_end, text FROM document_chunks
             WHERE document_id = ?1 ORDER BY ordinal",
        )
        .bind(document_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(self.err(op))?;
        rows.iter()
            .map(|r| {
                chunk_of(r).map_err(|reason| StoreError::InvalidChunk {
                    document_id,
                    ordinal: 0,
                    reason,
                })
            })
            .collect()
    }

    /// The document's chunk vectors for embedding model `model` (dimension `dim`), checked:
    /// a row of the wrong size or dimension, with a non-finite value, or computed from other
    /// text is a warning and its chunk is listed in `missing`.
    pub async fn chunk_vectors(
        &self,
        document_id: i64,
        model: &str,
        dim: usize,
    ) -> Result<ChunkVectors, StoreError> {
        let op = "reading chunk embeddings";
        let mut conn = self.pool.acquire().await.map_err(self.err(op))?;
        self.require_document(&mut conn, document_id, op).await?;
        let rows = sqlx::query(
            "SELECT c.id, c.ordinal, c.char_start, c.char_end, c.text,
                    e.text_blake3, e.dim, e.vector
             FROM document_chunks c
             LEFT JOIN chunk_embeddings e ON e.chunk_id = c.id AND e.model = ?2
             WHERE c.document_id = ?1 ORDER BY c.ordinal",
        )
        .bind(document_id)
        .bind(model)
        .fetch_all(&mut *conn)
        .await
        .map_err(self.err(op))?;
        let mut out = ChunkVectors::default();
        for row in rows {
            let chunk = chunk_of(&row).map_err(|reason| StoreError::InvalidChunk {
                document_id,
                ordinal: 0,
                reason,
            })?;
            let stored: Option<(String, i64, Vec<u8>)> = (|| {
                let hash: Option<String> = row.try_get("text_blake3").ok()?;
                Some((hash?, row.try_get("dim").ok()?, row.try_get("vector").ok()?))
            })();
            let Some((hash, stored_dim, blob)) = stored else {
                out.missing.push(chunk);
                continue;
            };
            let checked = if hash != chunk_text_hash(&chunk.text) {
                Err("computed from another text".to_string())
            } else {
                decode_vectors(stored_dim, &blob, dim)
            };
            match checked {
                Ok(vectors) => out.vectors.push(ChunkVector {
                    chunk_id: chunk.chunk_id,
                    ordinal: chunk.ordinal,
                    char_start: chunk.char_start,
                    char_end: chunk.char_end,
                    vectors,
                }),
                Err(problem) => {
                    out.warnings.push(RowWarning {
                        table: TABLE.into(),
                        id: chunk.chunk_id,
                        problem: format!("recomputed: {problem}"),
                    });
                    out.missing.push(chunk);
                }
            }
        }
        Ok(out)
    }

    /// Saves (or replaces) chunk vectors for `model`: `(chunk id, the chunk text they were
    /// computed from, one vector per piece)`. All in one transaction; pieces of different or
    /// out-of-range widths, too many pieces, or a non-finite value are refused.
    pub async fn put_chunk_vectors(
        &self,
        model: &str,
        vectors: &[(i64, &str, &[Vec<f32>])],
    ) -> Result<(), StoreError> {
        let op = "saving chunk embeddings";
        for (id, _, v) in vectors {
            let dim = v.first().map_or(0, Vec::len);
            let ok = (1..=MAX_CHUNK_PIECES).contains(&v.len())
                && (1..=MAX_EMBEDDING_DIM).contains(&dim)
                && v.iter()
                    .all(|p| p.len() == dim && p.iter().all(|x| x.is_finite()));
            if !ok {
                return Err(StoreError::InvalidEmbedding {
                    chunk_id: *id,
                    reason: format!(
                        "{} vectors (1..={MAX_CHUNK_PIECES} of one width in \
                         1..={MAX_EMBEDDING_DIM}, finite values, expected)",
                        v.len()
                    ),
                });
            }
        }
        let mut tx = self.begin_write(op).await?;
        for (id, text, v) in vectors {
            sqlx::query(
                "INSERT INTO chunk_embeddings (chunk_id, model, text_blake3, dim, vector)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (chunk_id, model) DO UPDATE SET text_blake3 = excluded.text_blake3,
                     dim = excluded.dim, vector = excluded.vector",
            )
            .bind(id)
            .bind(model)
            .bind(chunk_text_hash(text))
            .bind(v[0].len() as i64)
            .bind(vector_bytes(v))
            .execute(&mut *tx)
            .await
            .map_err(self.err(op))?;
        }
        tx.commit().await.map_err(self.err(op))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_vectors_are_checked_before_use() {
        let v = vec![vec![1.0f32, -2.5, 0.25], vec![0.0, 1.0, 2.0]];
        assert_eq!(decode_vectors(3, &vector_bytes(&v), 3).unwrap(), v);
        assert!(decode_vectors(4, &vector_bytes(&v), 3).is_err());
        assert!(decode_vectors(3, &vector_bytes(&v)[..11], 3).is_err());
        assert!(decode_vectors(3, &[], 3).is_err());
        assert!(decode_vectors(3, &vector_bytes(&[vec![1.0, f32::NAN, 0.0]]), 3).is_err());
        let many = vec![vec![0.5f32; 3]; MAX_CHUNK_PIECES + 1];
        assert!(decode_vectors(3, &vector_bytes(&many), 3).is_err());
    }
}
