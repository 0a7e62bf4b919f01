-- The KV block database (hearth::store::kv_blocks): a file of its own, separate from the app
-- database. Page size and auto_vacuum are set by the connection before this runs (they only
-- take effect before the first table exists).
--
-- IF NOT EXISTS: two processes opening a fresh file at once may both start this migration; the
-- loser retries and must find the tables already there (see `KvBlockStore::open`).

-- One row per full KV block, addressed by its chain hash. `data` is last so that the small
-- columns sit at the front of the record and queries that skip `data` never read its pages.
CREATE TABLE IF NOT EXISTS blocks (
    hash        BLOB PRIMARY KEY NOT NULL, -- 32 bytes: chain_hash(parent, tokens)
    parent      BLOB NOT NULL,             -- 32 bytes: h_{i-1}
    fingerprint BLOB NOT NULL,             -- 32 bytes: the model fingerprint (h_0 derives from it)
    n_tokens    INTEGER NOT NULL,
    tokens      BLOB NOT NULL,             -- n_tokens u32, little endian
    byte_len    INTEGER NOT NULL,          -- length of data
    checksum    BLOB NOT NULL,             -- blake3(data)
    last_use    INTEGER NOT NULL,          -- unix ms
    created     INTEGER NOT NULL,          -- unix ms
    data        BLOB NOT NULL              -- K and V of every layer, opaque
);
CREATE INDEX IF NOT EXISTS blocks_last_use ON blocks(last_use);
-- Covers the per-fingerprint totals of `stats` (no table pages read).
CREATE INDEX IF NOT EXISTS blocks_fingerprint ON blocks(fingerprint, byte_len);

CREATE TABLE IF NOT EXISTS block_owners (
    hash  BLOB NOT NULL REFERENCES blocks(hash) ON DELETE CASCADE,
    owner TEXT NOT NULL, -- "conversation:12", "document:3", "request", "pin:document:3", ...
    PRIMARY KEY (hash, owner)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS block_owners_owner ON block_owners(owner);

-- Running totals kept by triggers, so the writer checks the disk budget after every batch
-- without summing the table.
CREATE TABLE IF NOT EXISTS kv_totals (
    id     INTEGER PRIMARY KEY CHECK (id = 0),
    blocks INTEGER NOT NULL,
    bytes  INTEGER NOT NULL
);
INSERT OR IGNORE INTO kv_totals (id, blocks, bytes) VALUES (0, 0, 0);

CREATE TRIGGER IF NOT EXISTS blocks_totals_insert AFTER INSERT ON blocks BEGIN
    UPDATE kv_totals SET blocks = blocks + 1, bytes = bytes + NEW.byte_len WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS blocks_totals_delete AFTER DELETE ON blocks BEGIN
    UPDATE kv_totals SET blocks = blocks - 1, bytes = bytes - OLD.byte_len WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS blocks_totals_update AFTER UPDATE OF byte_len ON blocks BEGIN
    UPDATE kv_totals SET bytes = bytes - OLD.byte_len + NEW.byte_len WHERE id = 0;
END;

-- A model file's content hash, remembered while its path, size and mtime stay the same.
CREATE TABLE IF NOT EXISTS model_fingerprints (
    path         TEXT PRIMARY KEY NOT NULL,
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    content_hash BLOB NOT NULL, -- blake3 of the whole file
    computed     INTEGER NOT NULL -- unix ms
);
