//! The router: OpenAI's endpoints, `/health`, `/metrics`, the API key check, the body limit,
//! and OpenAI-shaped errors for everything that goes wrong (unknown routes included).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::sse::Sse;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::mpsc::unbounded_channel;

use crate::metrics::{Metrics, PROMETHEUS_CONTENT_TYPE};

use super::error::ApiError;
use super::prompt::{Prepared, ServedModel, prepare_chat, prepare_completion, unix_now};
use super::stream::{Kind, ResponseMeta, collect, sse, usage};
use super::types::{
    AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionRequest, Completion,
    CompletionChoice, CompletionRequest, ModelList, ModelObject,
};
use super::worker::{EngineHandle, Job, SubmitError};

/// What every handler shares.
pub struct AppState {
    pub model: ServedModel,
    pub engine: EngineHandle,
    pub metrics: Metrics,
    pub api_key: Option<String>,
    pub body_limit_bytes: usize,
    pub fingerprint: String,
    next_id: AtomicU64,
}

impl AppState {
    pub fn new(
        model: ServedModel,
        engine: EngineHandle,
        metrics: Metrics,
        api_key: Option<String>,
        body_limit_bytes: usize,
    ) -> AppState {
        AppState {
            fingerprint: format!("hearth-{}", env!("CARGO_PKG_VERSION")),
            model,
            engine,
            metrics,
            api_key,
            body_limit_bytes,
            next_id: AtomicU64::new(1),
        }
    }

    fn meta(&self, prefix: &str) -> ResponseMeta {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        ResponseMeta {
            id: format!("{prefix}-{:x}{n:08x}", std::process::id()),
            created: unix_now(),
            model: self.model.id.clone(),
            fingerprint: self.fingerprint.clone(),
        }
    }
}

type Shared = Arc<AppState>;

pub fn router(state: Shared) -> Router {
    let limit = state.body_limit_bytes;
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/models", get(models))
        .route("/v1/models/{id}", get(model))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .fallback(|uri: Uri| async move { ApiError::not_found(uri.path()) })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            refuse_large_bodies,
        ))
        .with_state(state)
}

/// A body whose `Content-Length` is over the limit is refused before any of it is read (the
/// body extractor still counts bodies sent without a length).
async fn refuse_large_bodies(State(s): State<Shared>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.body_limit_bytes as u64) {
        return ApiError::too_large(s.body_limit_bytes).into_response();
    }
    next.run(request).await
}

/// Constant-time comparison, so the key cannot be guessed byte by byte from timings.
fn same_key(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorize(s: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &s.api_key else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        None => Err(ApiError::unauthorized(
            "Missing API key: send it as `Authorization: Bearer KEY`.",
        )),
        Some(g) if same_key(g.as_bytes(), key.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::unauthorized("Incorrect API key provided.")),
    }
}

/// The body as JSON of type `T`: malformed JSON and wrong types are 400s (wrong types name the
/// field), an oversized body is a 413.
fn parse_body<T: DeserializeOwned>(
    s: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(s.body_limit_bytes)
        } else {
            ApiError::invalid(format!("cannot read the request body: {}", r.body_text()))
        }
    })?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        json_error(&path, &inner)
    })?;
    de.end().map_err(|e| json_error(".", &e))?;
    Ok(value)
}

fn json_error(path: &str, e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            let param = if path == "." { "" } else { path };
            let at = if param.is_empty() {
                String::new()
            } else {
                format!(" at `{param}`")
            };
            ApiError::invalid(format!("Invalid request body{at}: {e}"))
                .with_param(param)
                .with_code("invalid_type")
        }
        _ => ApiError::invalid(format!("The request body is not valid JSON: {e}"))
            .with_code("invalid_json"),
    }
}

async fn health(State(s): State<Shared>) -> Response {
    Json(json!({
        "status": "ok",
        "model": s.model.id,
        "context_length": s.model.context,
        "queue": {
            "waiting": s.engine.waiting(),
            "running": s.engine.running(),
            "capacity": s.engine.capacity(),
        },
    }))
    .into_response()
}

async fn metrics(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&s, &headers) {
        return e.into_response();
    }
    (
        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        s.metrics.encode_prometheus(),
    )
        .into_response()
}

fn model_object(s: &AppState) -> ModelObject {
    ModelObject {
        id: s.model.id.clone(),
        object: "model",
        created: s.model.created,
        owned_by: "hearth",
        context_length: s.model.context,
    }
}

async fn models(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&s, &headers) {
        return e.into_response();
    }
    Json(ModelList {
        object: "list",
        data: vec![model_object(&s)],
    })
    .into_response()
}

async fn model(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(e) = authorize(&s, &headers) {
        return e.into_response();
    }
    match s.model.check_name(&id) {
        Ok(()) => Json(model_object(&s)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Runs `prepare` (template, tokenizer: CPU work) off the async executor.
async fn prepare<R: Send + 'static>(
    s: &Shared,
    req: R,
    prepare: fn(&ServedModel, &R) -> Result<Prepared, ApiError>,
) -> Result<Prepared, ApiError> {
    let s = s.clone();
    tokio::task::spawn_blocking(move || prepare(&s.model, &req))
        .await
        .map_err(|_| ApiError::internal("preparing the prompt failed"))?
}

fn refuse_if_full(s: &AppState) -> Result<(), ApiError> {
    if s.engine.is_full() {
        return Err(ApiError::queue_full(s.engine.capacity()));
    }
    Ok(())
}

/// Queues the job; the receiver gets its events.
fn submit(
    s: &AppState,
    p: &Prepared,
) -> Result<tokio::sync::mpsc::UnboundedReceiver<super::worker::Event>, ApiError> {
    let (tx, rx) = unbounded_channel();
    let job = Job {
        prompt: p.prompt.clone(),
        max_tokens: p.max_tokens,
        sampler: p.sampler.clone(),
        stop: p.stop.clone(),
        events: tx,
        queued_at: Instant::now(),
    };
    match s.engine.submit(job) {
        Ok(()) => Ok(rx),
        Err(SubmitError::Full) => Err(ApiError::queue_full(s.engine.capacity())),
        Err(SubmitError::Closed) => Err(ApiError::shutting_down()),
    }
}

async fn chat_completions(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match chat_inner(s, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn chat_inner(
    s: Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let req: ChatCompletionRequest = parse_body(&s, body)?;
    refuse_if_full(&s)?;
    let p = prepare(&s, req, prepare_chat).await?;
    let rx = submit(&s, &p)?;
    let meta = s.meta("chatcmpl");
    if p.stream {
        return Ok(Sse::new(sse(rx, meta, Kind::Chat, p.include_usage)).into_response());
    }
    let (text, finished) = collect(rx).await?;
    Ok(Json(ChatCompletion {
        id: meta.id,
        object: "chat.completion",
        created: meta.created,
        model: meta.model,
        choices: vec![ChatChoice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: text,
            },
            logprobs: None,
            finish_reason: finished.finish_reason(),
        }],
        usage: usage(&finished),
        system_fingerprint: meta.fingerprint,
    })
    .into_response())
}

async fn completions(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match completion_inner(s, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn completion_inner(
    s: Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let req: CompletionRequest = parse_body(&s, body)?;
    refuse_if_full(&s)?;
    let p = prepare(&s, req, prepare_completion).await?;
    let rx = submit(&s, &p)?;
    let meta = s.meta("cmpl");
    if p.stream {
        return Ok(Sse::new(sse(rx, meta, Kind::Completion, p.include_usage)).into_response());
    }
    let (text, finished) = collect(rx).await?;
    Ok(Json(Completion {
        id: meta.id,
        object: "text_completion",
        created: meta.created,
        model: meta.model,
        system_fingerprint: meta.fingerprint,
        choices: vec![CompletionChoice {
            index: 0,
            text,
            logprobs: None,
            finish_reason: Some(finished.finish_reason()),
        }],
        usage: Some(usage(&finished)),
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_whole() {
        assert!(same_key(b"abc", b"abc"));
        assert!(!same_key(b"abc", b"abd"));
        assert!(!same_key(b"abc", b"abcd"));
        assert!(!same_key(b"", b"a"));
    }

    #[test]
    fn json_errors_name_the_field_or_say_malformed() {
        let parse = |text: &str| -> ApiError {
            let mut de = serde_json::Deserializer::from_str(text);
            let e =
                serde_path_to_error::deserialize::<_, ChatCompletionRequest>(&mut de).unwrap_err();
            let path = e.path().to_string();
            json_error(&path, &e.into_inner())
        };
        let e = parse(r#"{"model": "m", "messages": [], "temperature": "hot"}"#);
        assert_eq!(e.param.as_deref(), Some("temperature"), "{e:?}");
        assert_eq!(e.code, Some("invalid_type"));
        let e = parse(r#"{"model": "m", "messages": [{"role": 5, "content": "x"}]}"#);
        assert_eq!(e.param.as_deref(), Some("messages[0].role"), "{e:?}");
        let e = parse(r#"{"model": "m", "messages": ["#);
        assert_eq!(e.code, Some("invalid_json"), "{e:?}");
        let e = parse(r#"{"messages": []}"#);
        assert!(e.message.contains("model"), "{e:?}");
    }
}
