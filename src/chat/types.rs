//! The app contract's JSON shapes that the chat layer produces (camelCase; see
//! ui/src/lib/types.ts). Conversations, messages, reply stats and settings are
//! `hearth::store` types.

use serde::Serialize;

use crate::store::Message;

/// The GPU adapter in use.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdapterInfo {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    /// wgpu does not report device memory; None unless it is known.
    pub memory_bytes: Option<u64>,
    pub f16: bool,
    pub subgroups: bool,
}

/// The loaded (or inspected) model.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    pub path: String,
    pub name: String,
    pub architecture: String,
    /// "7B", "260K", ...
    pub parameter_label: String,
    /// The weight format holding most of the bytes ("Q4_K", "F32", ...).
    pub quantization: String,
    /// The context the model is (or would be) loaded with.
    pub context_length: u32,
    pub file_bytes: u64,
}

/// The memory planner's estimate, before a load.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryPlan {
    pub weights_bytes: u64,
    /// "f16" or "f32": the KV cache's element type.
    pub kv_type: String,
    /// Tokens the KV pool holds (every conversation and cached prefix together; at least
    /// one context).
    pub kv_tokens: u64,
    pub kv_bytes: u64,
    pub scratch_bytes: u64,
    pub total_bytes: u64,
    pub adapter_limit_bytes: Option<u64>,
    pub fits: bool,
    pub suggestion: Option<String>,
    pub context_length: u32,
}

/// The counters the settings pane shows.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StatsSnapshot {
    pub prompt_tokens_total: u64,
    pub reused_tokens_total: u64,
    pub computed_tokens_total: u64,
    pub generated_tokens_total: u64,
    pub replies_total: u64,
    pub kv_bytes_held: u64,
    pub kv_tokens_held: u64,
    /// Conversations whose KV cache is held (each resumes without recomputing).
    pub kv_conversations_held: u64,
    pub ttft_ms_p50: Option<f64>,
    pub decode_tok_s_mean: Option<f64>,
}

/// What the engine reports while it answers (the shell adds the saved messages).
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEvent {
    Started {
        prompt_tokens: usize,
        reused_tokens: usize,
    },
    Prefill {
        done: usize,
        total: usize,
    },
    Token {
        text: String,
    },
}

/// The `send_message` channel's events.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ChatEvent {
    Started {
        user_message: Message,
        prompt_tokens: u32,
        reused_tokens: u32,
    },
    Prefill {
        done: u32,
        total: u32,
    },
    Token {
        text: String,
    },
    Done {
        message: Message,
    },
    Error {
        message: String,
    },
}

/// The `load_model` channel's events.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum LoadEvent {
    Progress { fraction: f32, stage: String },
    Done { model: ModelInfo },
    Error { message: String },
}

/// Saturating conversion for token counts in JSON.
pub(crate) fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Role;

    #[test]
    fn events_serialize_as_the_contract_says() {
        let msg = Message {
            id: 3,
            conversation_id: 1,
            role: Role::User,
            content: "Hi".into(),
            created_at: "2025-01-01T00:00:00.000Z".into(),
            stats: None,
            tokens: None,
        };
        let started = ChatEvent::Started {
            user_message: msg,
            prompt_tokens: 12,
            reused_tokens: 4,
        };
        let v = serde_json::to_value(&started).unwrap();
        assert_eq!(v["type"], "started");
        assert_eq!(v["promptTokens"], 12);
        assert_eq!(v["reusedTokens"], 4);
        assert_eq!(v["userMessage"]["conversationId"], 1);
        let v = serde_json::to_value(ChatEvent::Prefill { done: 1, total: 2 }).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "prefill", "done": 1, "total": 2})
        );
        let v = serde_json::to_value(LoadEvent::Progress {
            fraction: 0.5,
            stage: "x".into(),
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "progress", "fraction": 0.5, "stage": "x"})
        );
        let plan = serde_json::to_value(MemoryPlan {
            weights_bytes: 1,
            kv_type: "f16".into(),
            kv_tokens: 512,
            kv_bytes: 2,
            scratch_bytes: 3,
            total_bytes: 6,
            adapter_limit_bytes: None,
            fits: true,
            suggestion: None,
            context_length: 512,
        })
        .unwrap();
        assert_eq!(plan["adapterLimitBytes"], serde_json::Value::Null);
        assert_eq!(plan["contextLength"], 512);
        assert_eq!(plan["kvType"], "f16");
    }
}
