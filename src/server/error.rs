//! Errors: [`ServerError`] stops the server from starting or running; [`ApiError`] answers one
//! request, in OpenAI's shape `{"error": {"message", "type", "param", "code"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    Config(String),
    #[error("cannot load the model: {0}")]
    Model(String),
    #[error("no usable GPU adapter: {0}")]
    NoGpu(String),
    #[error("cannot open the KV cache in {path}: {detail}")]
    Disk { path: String, detail: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the engine thread failed: {0}")]
    Engine(String),
}

/// One request's error, with its HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// OpenAI's `type`: `invalid_request_error`, `authentication_error`, `server_error`, …
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
    /// Seconds, sent as `Retry-After` (a full queue).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
            retry_after: None,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> ApiError {
        let p = param.into();
        self.param = (!p.is_empty()).then_some(p);
        self
    }

    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    /// 400: the request is wrong.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 400 naming a parameter.
    pub fn invalid_param(param: &str, message: impl Into<String>) -> ApiError {
        Self::invalid(message)
            .with_param(param)
            .with_code("invalid_value")
    }

    /// 400: a parameter this server does not implement, set to something other than its
    /// neutral value.
    pub fn unsupported(param: &str, message: impl Into<String>) -> ApiError {
        Self::invalid(message)
            .with_param(param)
            .with_code("unsupported_parameter")
    }

    pub fn model_not_found(requested: &str, served: &str) -> ApiError {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!(
                "The model `{requested}` does not exist on this server; it serves `{served}` \
                 (its file name is accepted too)"
            ),
        )
        .with_param("model")
        .with_code("model_not_found")
    }

    pub fn context_exceeded(prompt_tokens: usize, context: usize) -> ApiError {
        Self::invalid(format!(
            "This model's maximum context length is {context} tokens. However, your prompt \
             resulted in {prompt_tokens} tokens (at least one token must be left for the reply)."
        ))
        .with_param("messages")
        .with_code("context_length_exceeded")
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::UNAUTHORIZED, "authentication_error", message)
            .with_code("invalid_api_key")
    }

    pub fn queue_full(capacity: usize) -> ApiError {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            format!("The server is busy: {capacity} requests are already waiting. Retry shortly."),
        )
        .with_code("queue_full");
        e.retry_after = Some(1);
        e
    }

    pub fn shutting_down() -> ApiError {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "The server is shutting down.",
        )
        .with_code("shutting_down");
        e.retry_after = Some(5);
        e
    }

    pub fn too_large(limit: usize) -> ApiError {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            format!("The request body is larger than the limit of {limit} bytes."),
        )
        .with_code("request_too_large")
    }

    pub fn not_found(path: &str) -> ApiError {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("Unknown endpoint {path}."),
        )
        .with_code("unknown_url")
    }

    pub fn method_not_allowed() -> ApiError {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "This endpoint does not take that method.",
        )
        .with_code("method_not_allowed")
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }

    /// The JSON body (also sent as an SSE `data:` line when a stream fails midway).
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: ErrorDetail {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code,
            },
        }
    }
}

#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

#[derive(Serialize)]
pub struct ErrorDetail<'a> {
    pub message: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub param: Option<&'a str>,
    pub code: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(s) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // Do not read the rest of a refused upload: close the connection after the reply.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for ApiError {}
