-- Exact token histories: the token ids a message put into the model's context, so the next turn
-- extends what the model actually saw (and its cached KV blocks) instead of re-tokenizing text.
--   tokens        u32 little-endian ids; NULL when unknown (older rows, a cancelled reply)
--   tokens_model  the model the ids belong to (hex content hash of its GGUF file)
--   tokens_base   1 when the segment starts the context afresh (the whole prompt was rendered at
--                 this message); 0 when it extends the previous messages' segments
ALTER TABLE messages ADD COLUMN tokens BLOB;
ALTER TABLE messages ADD COLUMN tokens_model TEXT;
ALTER TABLE messages ADD COLUMN tokens_base INTEGER NOT NULL DEFAULT 0;
