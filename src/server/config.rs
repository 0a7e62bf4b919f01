//! What `hearth serve` is started with, and the checks made before anything is loaded.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::error::ServerError;

/// Request bodies larger than this are refused with 413.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 4 << 20;
/// Requests waiting for the engine before new ones get 429.
pub const DEFAULT_MAX_QUEUE: usize = 16;
/// The context a model is served with unless `--ctx` says otherwise (clamped to what the
/// model was trained for).
pub const DEFAULT_CONTEXT: u32 = 4096;
/// Requests running at once unless `--parallel` says otherwise.
pub const DEFAULT_PARALLEL: usize = 4;
/// The most requests that may run at once (each holds a sequence; their decodes share a step).
pub const MAX_PARALLEL: usize = 16;
/// How long in-flight requests may run on after a shutdown signal before they are ended.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub model: PathBuf,
    pub host: IpAddr,
    pub port: u16,
    /// The KV cache's disk tier (`kv.sqlite`) lives here; none: GPU and RAM tiers only.
    pub data_dir: Option<PathBuf>,
    /// Blocks on disk and in Redis not used for this long expire (None: only the disk budget,
    /// or Redis's own eviction, removes them).
    pub cache_ttl: Option<Duration>,
    /// A Redis server shared by several servers (`redis://host:port`): a lower tier asked
    /// after the disk; skipped, never an error, when it is down or slow.
    pub redis: Option<String>,
    /// Required as `Authorization: Bearer KEY` on every route but `/health`.
    pub api_key: Option<String>,
    /// Requests running at once, their decodes batched into one step (1 ..= [`MAX_PARALLEL`]).
    pub parallel: usize,
    /// Context length in tokens; None: [`DEFAULT_CONTEXT`]. Clamped to the model's.
    pub ctx: Option<u32>,
    pub max_queue: usize,
    pub body_limit_bytes: usize,
    pub shutdown_grace: Duration,
}

impl ServerConfig {
    pub fn new(model: PathBuf) -> ServerConfig {
        ServerConfig {
            model,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            data_dir: None,
            cache_ttl: None,
            redis: None,
            api_key: None,
            parallel: DEFAULT_PARALLEL,
            ctx: None,
            max_queue: DEFAULT_MAX_QUEUE,
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// Refuses settings the server cannot honour, before the model is loaded.
    pub fn validate(&self) -> Result<(), ServerError> {
        if self.api_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
            return Err(ServerError::Config("--api-key must not be empty".into()));
        }
        if !self.host.is_loopback() && self.api_key.is_none() {
            return Err(ServerError::Config(format!(
                "refusing to listen on {} without --api-key: anyone who can reach that address \
                 could use the model. Pass --api-key KEY, or bind a loopback address \
                 (127.0.0.1, the default)",
                self.host
            )));
        }
        if self.parallel == 0 || self.parallel > MAX_PARALLEL {
            return Err(ServerError::Config(format!(
                "--parallel {} is out of range: 1 to {MAX_PARALLEL} requests may run at once",
                self.parallel
            )));
        }
        if self.max_queue == 0 {
            return Err(ServerError::Config("--max-queue must be at least 1".into()));
        }
        if let Some(url) = &self.redis {
            crate::store::kv_redis::check_url(url)
                .map_err(|e| ServerError::Config(format!("--redis: {e}")))?;
        }
        if self.ctx == Some(0) {
            return Err(ServerError::Config("--ctx must be at least 1".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_needs_a_key_and_loopback_does_not() {
        let mut c = ServerConfig::new("m.gguf".into());
        assert!(c.validate().is_ok());
        c.host = "0.0.0.0".parse().unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("--api-key"), "{err}");
        c.api_key = Some("k".into());
        assert!(c.validate().is_ok());
        c.api_key = Some(" ".into());
        assert!(c.validate().is_err());
        c.host = "::1".parse().unwrap();
        c.api_key = None;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn parallel_out_of_range_and_empty_queue_are_refused() {
        let mut c = ServerConfig::new("m.gguf".into());
        c.parallel = 0;
        assert!(c.validate().unwrap_err().to_string().contains("--parallel"));
        c.parallel = MAX_PARALLEL + 1;
        assert!(c.validate().unwrap_err().to_string().contains("--parallel"));
        c.parallel = MAX_PARALLEL;
        assert!(c.validate().is_ok());
        c.parallel = 1;
        c.max_queue = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn a_redis_url_that_does_not_parse_is_refused_before_loading() {
        let mut c = ServerConfig::new("m.gguf".into());
        c.redis = Some("redis://127.0.0.1:6379".into());
        assert!(c.validate().is_ok(), "parsed, not connected");
        c.redis = Some("not a url".into());
        assert!(c.validate().unwrap_err().to_string().contains("--redis"));
    }
}
