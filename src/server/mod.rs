//! `hearth serve`: an OpenAI-compatible HTTP API (axum + tokio) over the GPU engine and the
//! tiered KV cache, so requests that share a prefix share its blocks by content hash.
//!
//! One job per file:
//! - [`config`]: what the server is started with, and the checks made before it binds;
//! - [`error`]: startup errors ([`ServerError`]) and API errors in OpenAI's shape ([`ApiError`]);
//! - [`types`]: the OpenAI request and response bodies;
//! - [`prompt`]: a request → validated sampling settings and prompt token ids;
//! - [`worker`]: the engine thread that owns the model, fed by a bounded queue ([`EngineHandle`]);
//! - `scheduler`: that thread's loop — up to `--parallel` requests at once, their decodes in one
//!   batched step, prefills in chunks between steps;
//! - [`stream`]: SSE chunks out of a request's event channel;
//! - [`routes`]: the router, the handlers and the API key check;
//! - [`run`]: loading, binding, graceful shutdown.
//!
//! The request path is: handler → [`prompt`] (parse, validate, render, tokenize, check the
//! context) → [`EngineHandle::submit`] (a full queue is a 429) → the engine runs the job and
//! sends [`worker::Event`]s back → the handler streams them (SSE) or collects them. Handlers
//! only see [`EngineHandle`].
//!
//! Layering: uses `chat`, `engine`, `kv`, `metrics`, `store`, `tokenizer`; nothing imports it.

pub mod config;
pub mod error;
pub mod prompt;
pub mod routes;
pub mod run;
mod scheduler;
pub mod stream;
pub mod types;
pub mod worker;

pub use config::{DEFAULT_BODY_LIMIT_BYTES, DEFAULT_CONTEXT, DEFAULT_MAX_QUEUE, ServerConfig};
pub use error::{ApiError, ServerError};
pub use run::{Server, shutdown_signal};
pub use worker::EngineHandle;
