-- Hearth core store: conversations, their messages, and the settings key/value rows.
-- Times are Unix milliseconds (UTC); STRICT makes SQLite enforce the column types, so a row can
-- only be wrong in meaning (unknown role, bad stats JSON, out-of-range setting), never in type.

CREATE TABLE conversations (
    -- AUTOINCREMENT: ids of deleted conversations are never reused, so a stale id held by the
    -- UI or a cache can never point at someone else's chat.
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    title       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    -- Strictly increasing across the table (see store::clock), so newest-first is a total order.
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX conversations_by_activity ON conversations (updated_at DESC, id DESC);

CREATE TABLE messages (
    -- Message order within a conversation is id order.
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    -- 'system' | 'user' | 'assistant', checked by the store on write and on read (no CHECK
    -- constraint, so a later role needs no table rebuild).
    role             TEXT    NOT NULL,
    content          TEXT    NOT NULL,
    -- ReplyStats as JSON (camelCase, as the app shows it); NULL for user/system messages.
    stats            TEXT,
    created_at       INTEGER NOT NULL
) STRICT;

CREATE INDEX messages_by_conversation ON messages (conversation_id, id);

-- One row per Settings field; value is the field's JSON encoding. Validated on every read.
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) STRICT, WITHOUT ROWID;
