//! Conversations: create, list newest first, search, get with messages, rename, delete, touch.

use sqlx::{FromRow, SqliteConnection};

use super::types::{Conversation, ConversationSummary};
use super::{Store, StoreError, clock, search};

/// Title of a conversation created without one.
pub const DEFAULT_TITLE: &str = "New chat";
/// Longest title, in characters, after trimming.
pub const MAX_TITLE_CHARS: usize = 200;
/// Characters of the latest message shown as a conversation's preview.
const PREVIEW_CHARS: usize = 120;

/// One summary row per conversation; `preview_source` is the head of its latest non-system
/// message (cut to a bounded length in SQL; tidied in Rust).
macro_rules! summary_select {
    () => {
        "SELECT c.id, c.title, c.created_at, c.updated_at,
                (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS message_count,
                (SELECT substr(m.content, 1, 4 * 120) FROM messages m
                 WHERE m.conversation_id = c.id AND m.role <> 'system'
                 ORDER BY m.id DESC LIMIT 1) AS preview_source
         FROM conversations c "
    };
}
const LIST_ALL: &str = concat!(summary_select!(), " ORDER BY c.updated_at DESC, c.id DESC");
/// ?1: LIKE pattern for the title; ?2: FTS5 phrase for message content.
const SEARCH_FTS: &str = concat!(
    summary_select!(),
    "WHERE c.title LIKE ?1 ESCAPE '\\'
        OR c.id IN (SELECT m.conversation_id FROM messages_fts f JOIN messages m ON m.id = f.rowid
                    WHERE messages_fts MATCH ?2)",
    " ORDER BY c.updated_at DESC, c.id DESC"
);
/// ?1: LIKE pattern for title and message content.
const SEARCH_LIKE: &str = concat!(
    summary_select!(),
    "WHERE c.title LIKE ?1 ESCAPE '\\'
        OR EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id
                   AND m.content LIKE ?1 ESCAPE '\\')",
    " ORDER BY c.updated_at DESC, c.id DESC"
);
const GET_ONE: &str = concat!(summary_select!(), "WHERE c.id = ?1");

#[derive(FromRow)]
struct SummaryRow {
    id: i64,
    title: String,
    created_at: i64,
    updated_at: i64,
    message_count: i64,
    preview_source: Option<String>,
}

impl From<SummaryRow> for ConversationSummary {
    fn from(row: SummaryRow) -> ConversationSummary {
        ConversationSummary {
            id: row.id,
            title: row.title,
            created_at: clock::rfc3339(row.created_at),
            updated_at: clock::rfc3339(row.updated_at),
            message_count: u64::try_from(row.message_count).unwrap_or(0),
            preview: preview(row.preview_source.as_deref().unwrap_or("")),
        }
    }
}

/// The first `PREVIEW_CHARS` characters of `text` on one line, with "…" when cut.
fn preview(text: &str) -> String {
    let one_line = text.split_whitespace().flat_map(|word| std::iter::once(' ').chain(word.chars())).skip(1);
    let mut out = String::new();
    for (n, c) in one_line.enumerate() {
        if n == PREVIEW_CHARS {
            out.truncate(out.trim_end().len());
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

/// The title as stored: trimmed, 1 to `MAX_TITLE_CHARS` characters, no control characters.
pub fn validate_title(title: &str) -> Result<String, StoreError> {
    let title = title.trim();
    let invalid = |reason: String| Err(StoreError::InvalidTitle { reason });
    if title.is_empty() {
        return invalid("it is empty".into());
    }
    let chars = title.chars().count();
    if chars > MAX_TITLE_CHARS {
        return invalid(format!("it is {chars} characters long; the limit is {MAX_TITLE_CHARS}"));
    }
    if title.chars().any(char::is_control) {
        return invalid("it contains control characters such as line breaks".into());
    }
    Ok(title.to_string())
}

impl Store {
    /// Creates an empty conversation titled `title` (validated) or "New chat".
    pub async fn create_conversation(&self, title: Option<&str>) -> Result<ConversationSummary, StoreError> {
        let title = match title {
            Some(t) => validate_title(t)?,
            None => DEFAULT_TITLE.to_string(),
        };
        let op = "creating a conversation";
        let mut tx = self.begin_write(op).await?;
        let (id, created_at, updated_at): (i64, i64, i64) = sqlx::query_as(
            "INSERT INTO conversations (title, created_at, updated_at)
             VALUES (?1, ?2, MAX(?2, COALESCE((SELECT MAX(updated_at) FROM conversations), 0) + 1))
             RETURNING id, created_at, updated_at",
        )
        .bind(&title)
        .bind(clock::now_ms())
        .fetch_one(&mut *tx)
        .await
        .map_err(self.err(op))?;
        tx.commit().await.map_err(self.err(op))?;
        Ok(ConversationSummary {
            id,
            title,
            created_at: clock::rfc3339(created_at),
            updated_at: clock::rfc3339(updated_at),
            message_count: 0,
            preview: String::new(),
        })
    }

    /// Every conversation, most recently active first.
    pub async fn list_conversations(&self) -> Result<Vec<ConversationSummary>, StoreError> {
        let rows: Vec<SummaryRow> = sqlx::query_as(LIST_ALL)
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("listing conversations"))?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Conversations whose title or any message contains `query` (case-insensitive substring;
    /// `%`, `_` and quotes match themselves), most recently active first. A blank query lists all.
    pub async fn search_conversations(&self, query: &str) -> Result<Vec<ConversationSummary>, StoreError> {
        let query = query.trim();
        if query.is_empty() {
            return self.list_conversations().await;
        }
        let op = "searching conversations";
        let like = search::like_pattern(query);
        let rows: Vec<SummaryRow> = match search::fts_phrase(query) {
            Some(phrase) => sqlx::query_as(SEARCH_FTS).bind(like).bind(phrase).fetch_all(&self.pool).await,
            None => sqlx::query_as(SEARCH_LIKE).bind(like).fetch_all(&self.pool).await,
        }
        .map_err(self.err(op))?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The conversation's summary.
    pub async fn conversation_summary(&self, id: i64) -> Result<ConversationSummary, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(self.err("reading a conversation"))?;
        self.summary_in(&mut conn, id).await
    }

    pub(crate) async fn summary_in(
        &self,
        conn: &mut SqliteConnection,
        id: i64,
    ) -> Result<ConversationSummary, StoreError> {
        let row: Option<SummaryRow> = sqlx::query_as(GET_ONE)
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(self.err("reading a conversation"))?;
        row.map(Into::into).ok_or(StoreError::ConversationNotFound { id })
    }

    /// The conversation with its messages in order (bad rows skipped and listed in `warnings`).
    pub async fn get_conversation(&self, id: i64) -> Result<Conversation, StoreError> {
        let op = "reading a conversation";
        // One read transaction: the summary and the messages come from the same snapshot.
        let mut tx = self.pool.begin().await.map_err(self.err(op))?;
        let summary = self.summary_in(&mut tx, id).await?;
        let loaded = self.messages_in(&mut tx, id).await?;
        tx.commit().await.map_err(self.err(op))?;
        Ok(Conversation { summary, messages: loaded.messages, warnings: loaded.warnings })
    }

    /// Sets the title (validated as in [`validate_title`]); does not change the order.
    pub async fn rename_conversation(&self, id: i64, title: &str) -> Result<ConversationSummary, StoreError> {
        let title = validate_title(title)?;
        let op = "renaming a conversation";
        let mut tx = self.begin_write(op).await?;
        let done = sqlx::query("UPDATE conversations SET title = ?1 WHERE id = ?2")
            .bind(&title)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(self.err(op))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::ConversationNotFound { id });
        }
        let summary = self.summary_in(&mut tx, id).await?;
        tx.commit().await.map_err(self.err(op))?;
        Ok(summary)
    }

    /// Deletes the conversation and (by cascade) all its messages.
    pub async fn delete_conversation(&self, id: i64) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM conversations WHERE id = ?1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(self.err("deleting a conversation"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::ConversationNotFound { id });
        }
        Ok(())
    }

    /// Marks the conversation as the most recently active one.
    pub async fn touch_conversation(&self, id: i64) -> Result<(), StoreError> {
        let op = "updating a conversation's activity time";
        let mut tx = self.begin_write(op).await?;
        if !clock::touch(&mut tx, id).await.map_err(self.err(op))? {
            return Err(StoreError::ConversationNotFound { id });
        }
        tx.commit().await.map_err(self.err(op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_is_one_line_and_cut_with_an_ellipsis() {
        assert_eq!(preview("  Hello,\n\n  world\t! "), "Hello, world !");
        let long = "x".repeat(PREVIEW_CHARS + 5);
        let p = preview(&long);
        assert_eq!(p.chars().count(), PREVIEW_CHARS + 1);
        assert!(p.ends_with('…'));
        assert_eq!(preview(&"y".repeat(PREVIEW_CHARS)), "y".repeat(PREVIEW_CHARS));
        let words = format!("{} tail", "z".repeat(PREVIEW_CHARS));
        assert_eq!(preview(&words), format!("{}…", "z".repeat(PREVIEW_CHARS)));
    }

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(validate_title("  Trip plans ").unwrap(), "Trip plans");
        assert!(matches!(validate_title(" \t "), Err(StoreError::InvalidTitle { .. })));
        assert!(validate_title(&"é".repeat(MAX_TITLE_CHARS)).is_ok());
        assert!(validate_title(&"é".repeat(MAX_TITLE_CHARS + 1)).is_err());
        assert!(validate_title("two\nlines").is_err());
    }
}
