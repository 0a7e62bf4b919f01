-- Sentence embeddings of document chunks, for retrieval by meaning beside BM25. One row per
-- chunk and embedding model (its fingerprint: blake3 of weights, tokenizer, config and pooling),
-- so a new model or a changed chunk text means a recompute, never a stale vector.

CREATE TABLE chunk_embeddings (
    chunk_id     INTEGER NOT NULL REFERENCES document_chunks (id) ON DELETE CASCADE,
    -- The embedding model's fingerprint (lowercase hex).
    model        TEXT    NOT NULL,
    -- Lowercase hex blake3 of the chunk text the vector was computed from.
    text_blake3  TEXT    NOT NULL,
    dim          INTEGER NOT NULL,
    -- One or more vectors of `dim` little-endian f32 values: a chunk longer than the model's
    -- input is embedded in pieces, and a question's cosine to the chunk is the best piece's.
    vector       BLOB    NOT NULL,
    PRIMARY KEY (chunk_id, model)
) STRICT, WITHOUT ROWID;
