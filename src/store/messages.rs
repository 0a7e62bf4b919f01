//! Messages: append, list in order, finish an assistant reply, delete after (regenerate).
//!
//! Every write is one transaction that also touches the conversation, so a crash leaves either
//! the old state or the new one. A streamed reply is written once when it is done (or, if the
//! caller saves partial text, each save replaces the whole content and stats atomically): a reply
//! cut by a crash never leaves a half-written row.

use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, Row, SqliteConnection};

use super::types::{
    LoadedMessages, MAX_SEGMENT_TOKENS, Message, ReplyStats, Role, RowWarning, TokenSegment,
};
use super::{Store, StoreError, clock};

/// Largest message content accepted, in bytes (a long reply is a few tens of KiB).
pub const MAX_CONTENT_BYTES: usize = 16 * 1024 * 1024;

macro_rules! select_message {
    () => {
        "SELECT id, conversation_id, role, content, stats, created_at, tokens, tokens_model,
                tokens_base FROM messages"
    };
}

#[derive(FromRow)]
struct MessageRow {
    id: i64,
    conversation_id: i64,
    role: String,
    content: String,
    stats: Option<String>,
    created_at: i64,
    tokens: Option<Vec<u8>>,
    tokens_model: Option<String>,
    tokens_base: i64,
}

impl MessageRow {
    /// The message, or `None` (with a warning) when the row cannot be shown. Stats that do not
    /// parse are dropped with a warning; the text is kept.
    fn into_message(self, warnings: &mut Vec<RowWarning>) -> Option<Message> {
        let warn = |problem: String| RowWarning {
            table: "messages".into(),
            id: self.id,
            problem,
        };
        let role = match self.role.parse::<Role>() {
            Ok(role) => role,
            Err(err) => {
                warnings.push(warn(format!("skipped: {err}")));
                return None;
            }
        };
        let stats = match self.stats.as_deref().map(parse_stats) {
            None => None,
            Some(Ok(stats)) => Some(stats),
            Some(Err(problem)) => {
                warnings.push(warn(format!("reply stats ignored: {problem}")));
                None
            }
        };
        let tokens = match (self.tokens, self.tokens_model) {
            (Some(blob), Some(model)) => match TokenSegment::ids_from_blob(&blob) {
                Ok(ids) => Some(TokenSegment {
                    model,
                    base: self.tokens_base != 0,
                    ids,
                }),
                Err(problem) => {
                    warnings.push(warn(format!("token ids ignored: {problem}")));
                    None
                }
            },
            _ => None,
        };
        Some(Message {
            id: self.id,
            conversation_id: self.conversation_id,
            role,
            content: self.content,
            created_at: clock::rfc3339(self.created_at),
            stats,
            tokens,
        })
    }
}

fn parse_stats(json: &str) -> Result<ReplyStats, String> {
    let stats: ReplyStats = serde_json::from_str(json).map_err(|e| format!("invalid JSON: {e}"))?;
    stats.validate().map_err(|e| e.to_string())?;
    Ok(stats)
}

/// Decodes rows one by one so a bad row is reported and skipped instead of failing the read.
fn decode_rows(rows: Vec<SqliteRow>) -> LoadedMessages {
    let mut loaded = LoadedMessages::default();
    for row in rows {
        match MessageRow::from_row(&row) {
            Ok(r) => {
                if let Some(message) = r.into_message(&mut loaded.warnings) {
                    loaded.messages.push(message);
                }
            }
            Err(err) => loaded.warnings.push(RowWarning {
                table: "messages".into(),
                id: row.try_get("id").unwrap_or(-1),
                problem: format!("skipped: {err}"),
            }),
        }
    }
    loaded
}

fn validate_content(content: &str) -> Result<(), StoreError> {
    if content.len() > MAX_CONTENT_BYTES {
        return Err(StoreError::InvalidMessage {
            reason: format!(
                "content is {} bytes; the limit is {MAX_CONTENT_BYTES}",
                content.len()
            ),
        });
    }
    Ok(())
}

/// Stats as stored: validated JSON.
fn stats_json(stats: Option<&ReplyStats>) -> Result<Option<String>, StoreError> {
    let Some(stats) = stats else { return Ok(None) };
    stats.validate()?;
    serde_json::to_string(stats)
        .map(Some)
        .map_err(|e| StoreError::InvalidStats {
            field: "stats",
            reason: e.to_string(),
        })
}

impl Store {
    /// Appends a message at the end of the conversation and marks it most recently active.
    /// Only assistant messages may carry `stats`.
    pub async fn append_message(
        &self,
        conversation_id: i64,
        role: Role,
        content: &str,
        stats: Option<&ReplyStats>,
    ) -> Result<Message, StoreError> {
        validate_content(content)?;
        if stats.is_some() && role != Role::Assistant {
            return Err(StoreError::InvalidMessage {
                reason: format!("a {role} message cannot carry reply stats"),
            });
        }
        let stats_text = stats_json(stats)?;
        let op = "appending a message";
        let mut tx = self.begin_write(op).await?;
        if !clock::touch(&mut tx, conversation_id)
            .await
            .map_err(self.err(op))?
        {
            return Err(StoreError::ConversationNotFound {
                id: conversation_id,
            });
        }
        let (id, created_at): (i64, i64) = sqlx::query_as(
            "INSERT INTO messages (conversation_id, role, content, stats, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id, created_at",
        )
        .bind(conversation_id)
        .bind(role.as_str())
        .bind(content)
        .bind(&stats_text)
        .bind(clock::now_ms())
        .fetch_one(&mut *tx)
        .await
        .map_err(self.err(op))?;
        tx.commit().await.map_err(self.err(op))?;
        Ok(Message {
            id,
            conversation_id,
            role,
            content: content.to_string(),
            created_at: clock::rfc3339(created_at),
            stats: stats.cloned(),
            tokens: None,
        })
    }

    /// Records the token ids `message_id` put into the model's context (see
    /// [`TokenSegment`]). Too many ids or an empty model name is refused.
    pub async fn set_message_tokens(
        &self,
        message_id: i64,
        segment: &TokenSegment,
    ) -> Result<(), StoreError> {
        if segment.ids.len() > MAX_SEGMENT_TOKENS || segment.model.is_empty() {
            return Err(StoreError::InvalidMessage {
                reason: format!(
                    "a token segment needs a model and at most {MAX_SEGMENT_TOKENS} ids ({} given)",
                    segment.ids.len()
                ),
            });
        }
        let op = "saving a message's token ids";
        let done = sqlx::query(
            "UPDATE messages SET tokens = ?1, tokens_model = ?2, tokens_base = ?3 WHERE id = ?4",
        )
        .bind(segment.to_blob())
        .bind(&segment.model)
        .bind(i64::from(segment.base))
        .bind(message_id)
        .execute(&self.pool)
        .await
        .map_err(self.err(op))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::MessageNotFound { id: message_id });
        }
        Ok(())
    }

    /// The conversation's messages in order; rows that cannot be shown are in `warnings`.
    pub async fn list_messages(&self, conversation_id: i64) -> Result<LoadedMessages, StoreError> {
        let op = "listing messages";
        let mut tx = self.pool.begin().await.map_err(self.err(op))?;
        self.require_conversation(&mut tx, conversation_id, op)
            .await?;
        let loaded = self.messages_in(&mut tx, conversation_id).await?;
        tx.commit().await.map_err(self.err(op))?;
        Ok(loaded)
    }

    pub(crate) async fn messages_in(
        &self,
        conn: &mut SqliteConnection,
        conversation_id: i64,
    ) -> Result<LoadedMessages, StoreError> {
        let rows = sqlx::query(concat!(
            select_message!(),
            " WHERE conversation_id = ?1 ORDER BY id"
        ))
        .bind(conversation_id)
        .fetch_all(conn)
        .await
        .map_err(self.err("listing messages"))?;
        Ok(decode_rows(rows))
    }

    /// Replaces the text and stats of assistant message `id` (a finished or partially saved
    /// reply) and marks its conversation most recently active.
    pub async fn update_assistant_message(
        &self,
        id: i64,
        content: &str,
        stats: Option<&ReplyStats>,
    ) -> Result<Message, StoreError> {
        validate_content(content)?;
        let stats = stats_json(stats)?;
        let op = "updating a reply";
        let mut tx = self.begin_write(op).await?;
        let found: Option<(i64, String)> =
            sqlx::query_as("SELECT conversation_id, role FROM messages WHERE id = ?1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(self.err(op))?;
        let Some((conversation_id, role)) = found else {
            return Err(StoreError::MessageNotFound { id });
        };
        if role != Role::Assistant.as_str() {
            return Err(StoreError::NotAssistant { id, role });
        }
        sqlx::query("UPDATE messages SET content = ?1, stats = ?2 WHERE id = ?3")
            .bind(content)
            .bind(&stats)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(self.err(op))?;
        clock::touch(&mut tx, conversation_id)
            .await
            .map_err(self.err(op))?;
        let row = sqlx::query(concat!(select_message!(), " WHERE id = ?1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(self.err(op))?;
        tx.commit().await.map_err(self.err(op))?;
        decode_rows(vec![row])
            .messages
            .pop()
            .ok_or(StoreError::MessageNotFound { id })
    }

    /// Deletes every message after `message_id` in the conversation (to regenerate a reply,
    /// pass the user message it answered). Returns how many were deleted.
    pub async fn delete_messages_after(
        &self,
        conversation_id: i64,
        message_id: i64,
    ) -> Result<u64, StoreError> {
        let op = "deleting messages";
        let mut tx = self.begin_write(op).await?;
        if !clock::touch(&mut tx, conversation_id)
            .await
            .map_err(self.err(op))?
        {
            return Err(StoreError::ConversationNotFound {
                id: conversation_id,
            });
        }
        let anchor: Option<i64> =
            sqlx::query_scalar("SELECT id FROM messages WHERE id = ?1 AND conversation_id = ?2")
                .bind(message_id)
                .bind(conversation_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(self.err(op))?;
        if anchor.is_none() {
            return Err(StoreError::MessageNotInConversation {
                id: message_id,
                conversation_id,
            });
        }
        let done = sqlx::query("DELETE FROM messages WHERE conversation_id = ?1 AND id > ?2")
            .bind(conversation_id)
            .bind(message_id)
            .execute(&mut *tx)
            .await
            .map_err(self.err(op))?;
        tx.commit().await.map_err(self.err(op))?;
        Ok(done.rows_affected())
    }
}
