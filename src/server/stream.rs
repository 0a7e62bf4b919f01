//! A job's events → the response: SSE chunks (`chat.completion.chunk` or `text_completion`,
//! then `data: [DONE]`), or the whole text for a non-streaming answer.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::response::sse::Event as SseEvent;
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedReceiver;

use super::error::ApiError;
use super::types::{
    ChatChunkChoice, ChatCompletionChunk, Completion, CompletionChoice, Delta, HearthUsage,
    PromptTokensDetails, TierCounts, Usage,
};
use super::worker::{Event, Finished};

/// What every response of one request carries.
#[derive(Debug, Clone)]
pub struct ResponseMeta {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub fingerprint: String,
}

/// `usage` of a finished job.
pub fn usage(f: &Finished) -> Usage {
    let cached = f.reused.total() as u64;
    Usage {
        prompt_tokens: f.prompt_tokens as u64,
        completion_tokens: f.completion_tokens as u64,
        total_tokens: (f.prompt_tokens + f.completion_tokens) as u64,
        prompt_tokens_details: PromptTokensDetails {
            cached_tokens: cached,
        },
        hearth: HearthUsage {
            cached_by_tier: TierCounts {
                gpu: f.reused.gpu as u64,
                ram: f.reused.ram as u64,
                disk: f.reused.disk as u64,
                redis: f.reused.redis as u64,
            },
            queue_ms: finite(f.queue_ms),
            ttft_ms: finite(f.ttft_ms),
            prefill_ms: finite(f.prefill_ms),
            decode_tok_s: finite(f.decode_tok_s),
            stop_reason: f.stop_reason.as_str(),
        },
    }
}

fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// Waits for the whole reply (non-streaming requests).
pub async fn collect(mut rx: UnboundedReceiver<Event>) -> Result<(String, Finished), ApiError> {
    let mut text = String::new();
    while let Some(event) = rx.recv().await {
        match event {
            Event::Text(t) => text.push_str(&t),
            Event::Done(f) => return Ok((text, *f)),
            Event::Failed(e) => return Err(e),
        }
    }
    Err(ApiError::internal(
        "the engine stopped before the reply was finished",
    ))
}

/// Which kind of chunks a stream sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Chat,
    Completion,
}

struct State {
    rx: UnboundedReceiver<Event>,
    meta: ResponseMeta,
    kind: Kind,
    include_usage: bool,
    pending: VecDeque<SseEvent>,
    done: bool,
}

fn data<T: Serialize>(value: &T) -> SseEvent {
    // Our response types always serialize.
    SseEvent::default().data(serde_json::to_string(value).unwrap_or_default())
}

impl State {
    fn chunk(&self, text: Option<String>, finish: Option<&'static str>, first: bool) -> SseEvent {
        let m = &self.meta;
        match self.kind {
            Kind::Chat => data(&ChatCompletionChunk {
                id: m.id.clone(),
                object: "chat.completion.chunk",
                created: m.created,
                model: m.model.clone(),
                system_fingerprint: m.fingerprint.clone(),
                choices: vec![ChatChunkChoice {
                    index: 0,
                    delta: Delta {
                        role: first.then_some("assistant"),
                        content: text,
                    },
                    logprobs: None,
                    finish_reason: finish,
                }],
                usage: None,
            }),
            Kind::Completion => data(&Completion {
                id: m.id.clone(),
                object: "text_completion",
                created: m.created,
                model: m.model.clone(),
                system_fingerprint: m.fingerprint.clone(),
                choices: vec![CompletionChoice {
                    index: 0,
                    text: text.unwrap_or_default(),
                    logprobs: None,
                    finish_reason: finish,
                }],
                usage: None,
            }),
        }
    }

    /// The last chunk with usage and no choices (`stream_options.include_usage`).
    fn usage_chunk(&self, f: &Finished) -> SseEvent {
        let m = &self.meta;
        match self.kind {
            Kind::Chat => data(&ChatCompletionChunk {
                id: m.id.clone(),
                object: "chat.completion.chunk",
                created: m.created,
                model: m.model.clone(),
                system_fingerprint: m.fingerprint.clone(),
                choices: Vec::new(),
                usage: Some(usage(f)),
            }),
            Kind::Completion => data(&Completion {
                id: m.id.clone(),
                object: "text_completion",
                created: m.created,
                model: m.model.clone(),
                system_fingerprint: m.fingerprint.clone(),
                choices: Vec::new(),
                usage: Some(usage(f)),
            }),
        }
    }

    fn on(&mut self, event: Option<Event>) {
        match event {
            Some(Event::Text(t)) => {
                let c = self.chunk(Some(t), None, false);
                self.pending.push_back(c);
            }
            Some(Event::Done(f)) => {
                let c = self.chunk(
                    (self.kind == Kind::Completion).then(String::new),
                    Some(f.finish_reason()),
                    false,
                );
                self.pending.push_back(c);
                if self.include_usage {
                    let u = self.usage_chunk(&f);
                    self.pending.push_back(u);
                }
                self.pending.push_back(SseEvent::default().data("[DONE]"));
                self.done = true;
            }
            Some(Event::Failed(e)) => {
                self.pending.push_back(data(&e.body()));
                self.done = true;
            }
            None => {
                let e = ApiError::internal("the engine stopped before the reply was finished");
                self.pending.push_back(data(&e.body()));
                self.done = true;
            }
        }
    }
}

/// The SSE stream of one job. Dropping it (the client went away) drops the receiver, which
/// the engine notices at the next token and cancels the generation.
pub fn sse(
    rx: UnboundedReceiver<Event>,
    meta: ResponseMeta,
    kind: Kind,
    include_usage: bool,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static {
    let mut state = State {
        rx,
        meta,
        kind,
        include_usage,
        pending: VecDeque::new(),
        done: false,
    };
    if kind == Kind::Chat {
        let first = state.chunk(Some(String::new()), None, true);
        state.pending.push_back(first);
    }
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(e) = st.pending.pop_front() {
                return Some((Ok(e), st));
            }
            if st.done {
                return None;
            }
            let event = st.rx.recv().await;
            st.on(event);
        }
    })
}
