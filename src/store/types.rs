//! The records the store hands out; they serialize to the app contract's JSON (camelCase).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::StoreError;

/// Who wrote a message. Stored as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

impl FromStr for Role {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Role, StoreError> {
        match s {
            "system" => Ok(Role::System),
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            other => Err(StoreError::InvalidRole {
                role: other.to_string(),
            }),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why generation of a reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopReason {
    /// The model produced an end-of-generation token.
    Eog,
    /// `maxTokens` or the context window was reached.
    Length,
    /// A stop string matched.
    Stop,
    Cancelled,
    Error,
}

/// What one assistant reply cost, shown under the reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplyStats {
    pub prompt_tokens: u32,
    pub reused_tokens: u32,
    pub computed_tokens: u32,
    pub generated_tokens: u32,
    pub ttft_ms: f64,
    pub decode_tok_s: f64,
    pub stop_reason: StopReason,
    /// Why this turn could not reuse the cache; `None` when it did.
    #[serde(default)]
    pub recompute_reason: Option<String>,
    /// Where the reused tokens came from (older rows have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_by_tier: Option<ReusedByTier>,
    /// What the turn read of the conversation's documents (none attached: empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<DocumentRead>,
}

/// What a turn read of an attached document: which window of how many, and where it lies in
/// the document's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentRead {
    pub document_id: i64,
    pub name: String,
    /// 1-based.
    pub window: u32,
    pub windows: u32,
    /// Char range `[char_start, char_end)` of the document's text (Unicode scalar values).
    pub char_start: u64,
    pub char_end: u64,
    /// Tokens of the prompt up to the end of the document block(s).
    pub prefix_tokens: u32,
    /// Of those, the tokens this turn computed (0 when the prefix was cached).
    pub encoded_tokens: u32,
    /// Which ranker chose this window when the document had several: "words" (BM25), "meaning"
    /// (embedding cosine) or "both"; absent when the whole document was read or nothing ranked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found_by: Option<String>,
}

/// Reused prompt tokens by the cache tier they were found in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReusedByTier {
    pub gpu: u32,
    pub ram: u32,
    pub disk: u32,
    /// Only with a Redis tier (the server's); absent from the JSON when zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redis: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ReplyStats {
    /// Rejects values JSON cannot carry (NaN, infinities) and negative times or rates.
    pub fn validate(&self) -> Result<(), StoreError> {
        for (field, value) in [("ttftMs", self.ttft_ms), ("decodeTokS", self.decode_tok_s)] {
            if !value.is_finite() || value < 0.0 {
                return Err(StoreError::InvalidStats {
                    field,
                    reason: format!("must be a finite number >= 0, got {value}"),
                });
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: i64,
    pub conversation_id: i64,
    pub role: Role,
    pub content: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub stats: Option<ReplyStats>,
    /// The token ids this message put into the model's context (not sent to the page).
    #[serde(skip)]
    pub tokens: Option<TokenSegment>,
}

/// The exact token ids a message contributed to a model's context: a user turn's rendered
/// prompt suffix, or an assistant reply's generated ids (with its end-of-turn token).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenSegment {
    /// The model whose tokenizer made the ids (hex content hash of its file).
    pub model: String,
    /// The segment starts the context afresh (else it extends the earlier messages').
    pub base: bool,
    pub ids: Vec<u32>,
}

/// Most ids one stored segment may hold (a whole 1M-token context).
pub const MAX_SEGMENT_TOKENS: usize = 1 << 20;

impl TokenSegment {
    /// The ids as stored: u32 little-endian.
    pub fn to_blob(&self) -> Vec<u8> {
        self.ids.iter().flat_map(|t| t.to_le_bytes()).collect()
    }

    /// Parses a stored BLOB (untrusted: a length that is not a whole number of ids, or too
    /// many of them, is an error naming it).
    pub fn ids_from_blob(blob: &[u8]) -> Result<Vec<u32>, String> {
        if !blob.len().is_multiple_of(4) {
            return Err(format!(
                "{} bytes is not a whole number of token ids",
                blob.len()
            ));
        }
        if blob.len() / 4 > MAX_SEGMENT_TOKENS {
            return Err(format!("{} token ids is over the limit", blob.len() / 4));
        }
        Ok(blob
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummary {
    pub id: i64,
    pub title: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC; the time of the last message change.
    pub updated_at: String,
    pub message_count: u64,
    /// The start of the latest non-system message, whitespace collapsed; "" when there is none.
    pub preview: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    #[serde(flatten)]
    pub summary: ConversationSummary,
    pub messages: Vec<Message>,
    /// Stored rows that could not be shown as they are (skipped, or shown without stats).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<RowWarning>,
}

/// A stored row with bad data, reported instead of failing the whole read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowWarning {
    pub table: String,
    pub id: i64,
    pub problem: String,
}

impl fmt::Display for RowWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} row {}: {}", self.table, self.id, self.problem)
    }
}

/// A conversation's messages in order, plus the rows that were skipped or degraded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadedMessages {
    pub messages: Vec<Message>,
    pub warnings: Vec<RowWarning>,
}
