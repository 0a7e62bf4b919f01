-- Documents attached to conversations: their text, per-model token counts, which conversations
-- use them, and their chunks with a full-text index for routing a question to a chunk (BM25).
-- (0003 is reserved for the KV store's `kv_blocks`; see README.md.)

CREATE TABLE documents (
    -- AUTOINCREMENT: a deleted document's id is never reused, so a stale id held by a KV cache
    -- entry or the UI can never point at another document.
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    -- Where the text came from, for display only (the file may have moved since).
    source_path  TEXT,
    -- The extracted text (UTF-8, LF line ends); the document's KV is encoded from exactly this.
    text         TEXT    NOT NULL,
    -- Lowercase hex SHA-256 of the UTF-8 text. Unique: adding the same text again gives back the
    -- existing document (its KV is the same, so it is one document), whatever its name.
    sha256       TEXT    NOT NULL UNIQUE,
    byte_count   INTEGER NOT NULL,
    char_count   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;

-- How many tokens the text is for one model (the KV cache's model fingerprint).
CREATE TABLE document_tokens (
    document_id        INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    model_fingerprint  TEXT    NOT NULL,
    token_count        INTEGER NOT NULL,
    PRIMARY KEY (document_id, model_fingerprint)
) STRICT, WITHOUT ROWID;

-- Which conversations use which documents. Deleting either side removes the link only.
CREATE TABLE conversation_documents (
    conversation_id  INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    document_id      INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    attached_at      INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, document_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX conversation_documents_by_document ON conversation_documents (document_id);

-- A document's chunks: char ranges [char_start, char_end) of its text (Unicode scalar values),
-- in order, consecutive ones overlapping; `text` is that slice, kept for the index.
CREATE TABLE document_chunks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id  INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal      INTEGER NOT NULL,
    char_start   INTEGER NOT NULL,
    char_end     INTEGER NOT NULL,
    text         TEXT    NOT NULL,
    UNIQUE (document_id, ordinal)
) STRICT;

-- BM25 over chunk text. 'porter unicode61 remove_diacritics 2': words (not the trigram
-- substrings used for message search) so that bm25() ranks by term statistics; case and
-- diacritics folded in every script; Porter stemming so "running" in a question finds "runs"
-- in the text (stemming applies to both sides, so non-English words still match themselves).
-- External content like messages_fts: the text lives only in document_chunks; the triggers
-- keep the index in step (foreign-key cascades fire the delete trigger too).
CREATE VIRTUAL TABLE document_chunks_fts USING fts5 (
    text,
    content = 'document_chunks',
    content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER document_chunks_fts_insert AFTER INSERT ON document_chunks BEGIN
    INSERT INTO document_chunks_fts (rowid, text) VALUES (new.id, new.text);
END;

CREATE TRIGGER document_chunks_fts_delete AFTER DELETE ON document_chunks BEGIN
    INSERT INTO document_chunks_fts (document_chunks_fts, rowid, text)
    VALUES ('delete', old.id, old.text);
END;

CREATE TRIGGER document_chunks_fts_update AFTER UPDATE OF text ON document_chunks BEGIN
    INSERT INTO document_chunks_fts (document_chunks_fts, rowid, text)
    VALUES ('delete', old.id, old.text);
    INSERT INTO document_chunks_fts (rowid, text) VALUES (new.id, new.text);
END;
