//! OpenAI's request and response bodies, as far as this server implements them. Unknown
//! fields are ignored (clients send many); known fields of the wrong type are a 400.

use serde::{Deserialize, Serialize};

/// `stop`: one string or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// The sampling and length parameters both endpoints share.
#[derive(Debug, Clone, Default)]
pub struct SamplingParams {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub max_tokens: Option<u64>,
    pub max_completion_tokens: Option<u64>,
    pub stop: Option<Stop>,
    pub seed: Option<i64>,
    pub frequency_penalty: Option<f32>,
    pub presence_penalty: Option<f32>,
    pub n: Option<u64>,
    pub logprobs: Option<serde_json::Value>,
    pub top_k: Option<u64>,
    pub min_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
}

/// Declares a request struct with the [`SamplingParams`] fields inline (not `#[serde(flatten)]`,
/// which loses the field name a type error should report) and a `sampling()` to take them.
macro_rules! with_sampling {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty,)* }) => {
        $(#[$m])*
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
            #[serde(default)] pub temperature: Option<f32>,
            #[serde(default)] pub top_p: Option<f32>,
            #[serde(default)] pub max_tokens: Option<u64>,
            #[serde(default)] pub max_completion_tokens: Option<u64>,
            #[serde(default)] pub stop: Option<Stop>,
            #[serde(default)] pub seed: Option<i64>,
            #[serde(default)] pub frequency_penalty: Option<f32>,
            #[serde(default)] pub presence_penalty: Option<f32>,
            #[serde(default)] pub n: Option<u64>,
            #[serde(default)] pub logprobs: Option<serde_json::Value>,
            /// Extensions, as llama.cpp's server takes them.
            #[serde(default)] pub top_k: Option<u64>,
            #[serde(default)] pub min_p: Option<f32>,
            #[serde(default)] pub repeat_penalty: Option<f32>,
        }

        impl $name {
            pub fn sampling(&self) -> SamplingParams {
                SamplingParams {
                    temperature: self.temperature,
                    top_p: self.top_p,
                    max_tokens: self.max_tokens,
                    max_completion_tokens: self.max_completion_tokens,
                    stop: self.stop.clone(),
                    seed: self.seed,
                    frequency_penalty: self.frequency_penalty,
                    presence_penalty: self.presence_penalty,
                    n: self.n,
                    logprobs: self.logprobs.clone(),
                    top_k: self.top_k,
                    min_p: self.min_p,
                    repeat_penalty: self.repeat_penalty,
                }
            }
        }
    };
}

/// A message's `content`: a string, or a list of parts of which only `text` ones are taken.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
}

with_sampling! {
#[derive(Debug, Clone, Deserialize)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub tools: Option<serde_json::Value>,
}
}

/// `prompt`: a string, or a list holding one string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PromptInput {
    Text(String),
    Texts(Vec<String>),
}

with_sampling! {
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    pub model: String,
    pub prompt: PromptInput,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub echo: Option<bool>,
    #[serde(default)]
    pub best_of: Option<u64>,
    #[serde(default)]
    pub suffix: Option<String>,
}
}

// ---- responses ----

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TierCounts {
    pub gpu: u64,
    pub ram: u64,
    pub disk: u64,
    pub redis: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PromptTokensDetails {
    pub cached_tokens: u64,
}

/// Hearth's own figures for one request (`usage.hearth`).
#[derive(Debug, Clone, Serialize)]
pub struct HearthUsage {
    /// Cached prompt tokens by the tier they came from (they sum to `cached_tokens`).
    pub cached_by_tier: TierCounts,
    /// Time waiting in the queue for the engine.
    pub queue_ms: f64,
    /// Lookup and restore of the cached prefix, prefill, first sample (queue time excluded).
    pub ttft_ms: f64,
    pub prefill_ms: f64,
    pub decode_tok_s: f64,
    /// `eog`, `stop`, `length` or `cancelled`.
    pub stop_reason: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub prompt_tokens_details: PromptTokensDetails,
    pub hearth: HearthUsage,
}

#[derive(Debug, Clone, Serialize)]
pub struct AssistantMessage {
    pub role: &'static str,
    pub content: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatChoice {
    pub index: u32,
    pub message: AssistantMessage,
    pub logprobs: Option<()>,
    pub finish_reason: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatCompletion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChatChoice>,
    pub usage: Usage,
    pub system_fingerprint: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub logprobs: Option<()>,
    pub finish_reason: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatCompletionChunk {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: String,
    pub choices: Vec<ChatChunkChoice>,
    /// Only on the last chunk, when `stream_options.include_usage` asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompletionChoice {
    pub index: u32,
    pub text: String,
    pub logprobs: Option<()>,
    pub finish_reason: Option<&'static str>,
}

/// A text completion, and (with `finish_reason` null until the end) each of its stream chunks.
#[derive(Debug, Clone, Serialize)]
pub struct Completion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: String,
    pub choices: Vec<CompletionChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelObject {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
    /// Extension: the context the model is served with.
    pub context_length: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<ModelObject>,
}
