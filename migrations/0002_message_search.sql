-- Full-text index over message content for conversation search.
-- The trigram tokenizer makes MATCH of a quoted phrase a case-insensitive substring search, the
-- same meaning as the LIKE fallback used for queries shorter than three characters, and it
-- treats '%', '_' and every other character literally.
-- External content: the text lives only in `messages`; the triggers keep the index in step
-- (foreign-key cascades fire the delete trigger too).

CREATE VIRTUAL TABLE messages_fts USING fts5 (
    content,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'trigram'
);

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
END;

INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
