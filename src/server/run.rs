//! Loading the model, binding, serving until a shutdown signal, and a clean stop: no new
//! connections, in-flight requests finish (or end at their next token once the grace period is
//! over), the engine thread drains and flushes the KV tiers to disk.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::chat::{effective_context, file_content_hash, open_model_file, planned_options};
use crate::engine::gpu_forward::{GpuForward, GpuForwardOptions};
use crate::gpu::GpuContext;
use crate::kv::{DEFAULT_RAM_BUDGET_BYTES, Tiers};
use crate::metrics::Metrics;
use crate::model::ModelConfig;
use crate::store::kv_blocks::{KvBlockStore, KvStoreOptions};
use crate::store::kv_redis::{RedisOptions, RedisTier};
use crate::tokenizer::{ChatTemplate, Tokenizer};

use super::config::{DEFAULT_CONTEXT, ServerConfig};
use super::error::ServerError;
use super::prompt::{ServedModel, unix_now};
use super::routes::{AppState, router};
use super::worker::{self, EngineHandle, EngineParts, EngineThread};

/// The KV cache's database file in a data dir (the CLI and the app use the same name).
pub const KV_DATABASE_FILE: &str = "kv.sqlite";

/// A loaded model with its engine thread, ready to serve.
pub struct Server {
    config: ServerConfig,
    state: Arc<AppState>,
    engine: EngineHandle,
    thread: EngineThread,
}

impl Server {
    /// Checks the configuration, reads the model, opens the GPU and the disk tier, and starts
    /// the engine thread with the model uploaded. Blocking (seconds for a large model).
    pub fn load(config: ServerConfig) -> Result<Server, ServerError> {
        config.validate()?;
        let gpu = Arc::new(GpuContext::new().map_err(|e| ServerError::NoGpu(e.to_string()))?);
        Server::load_checked(config, gpu)
    }

    /// [`Server::load`] on a GPU context the caller already has (the desktop app's).
    pub fn load_on(config: ServerConfig, gpu: Arc<GpuContext>) -> Result<Server, ServerError> {
        config.validate()?;
        Server::load_checked(config, gpu)
    }

    fn load_checked(config: ServerConfig, gpu: Arc<GpuContext>) -> Result<Server, ServerError> {
        let path = config.model.clone();
        let model_err = |e: &dyn std::fmt::Display| ServerError::Model(format!("{e}"));
        let file = open_model_file(&path).map_err(|e| model_err(&e))?;
        let cfg = ModelConfig::from_gguf(&file).map_err(|e| model_err(&e))?;
        let context = effective_context(&cfg, config.ctx.unwrap_or(DEFAULT_CONTEXT));
        let tokenizer = Arc::new(Tokenizer::from_gguf(&file).map_err(|e| model_err(&e))?);
        let template = ChatTemplate::from_gguf(&file).map_err(|e| model_err(&e))?;
        let disk = match &config.data_dir {
            Some(dir) => Some(open_disk(dir, config.cache_ttl)?),
            None => None,
        };
        let redis = match &config.redis {
            Some(url) => Some(
                RedisTier::open(RedisOptions {
                    ttl: config.cache_ttl,
                    ..RedisOptions::new(url.as_str())
                })
                .map_err(|e| ServerError::Config(format!("--redis: {e}")))?,
            ),
            None => None,
        };
        let model_hash = match &disk {
            Some(d) => d.model_hash(&path).map_err(|e| model_err(&e))?,
            None => file_content_hash(&path).map_err(|e| model_err(&e))?,
        };
        let (opts, plan) =
            planned_options(gpu.info(), &file, context, None).map_err(|e| model_err(&e))?;
        if !plan.fits {
            let problem = plan.problem.unwrap_or_default();
            let hint = plan
                .suggestion
                .map(|s| format!("; {s}"))
                .unwrap_or_default();
            return Err(ServerError::Model(format!(
                "it does not fit this GPU at a context of {context}: {problem}{hint} (try a smaller --ctx)"
            )));
        }
        let parallel = config.parallel.min(opts.max_batch);
        let opts = GpuForwardOptions {
            model_hash: Some(model_hash),
            max_step_sequences: parallel,
            max_sequences: opts.max_sequences.max(parallel),
            ..opts
        };
        let metrics = Metrics::new();
        let engine_metrics = metrics.clone();
        let engine_tokenizer = tokenizer.clone();
        let (engine, thread) =
            worker::start(config.max_queue, parallel, metrics.clone(), move || {
                let forward = GpuForward::load(gpu, &file, opts)
                    .map_err(|e| format!("cannot load the model on the GPU: {e}"))?;
                let mut tiers = Tiers::new(DEFAULT_RAM_BUDGET_BYTES, disk, engine_metrics);
                if let Some(redis) = redis {
                    tiers = tiers.with_redis(redis);
                }
                Ok(EngineParts {
                    forward,
                    tiers,
                    tokenizer: engine_tokenizer,
                })
            })
            .map_err(ServerError::Engine)?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = file_name
            .strip_suffix(".gguf")
            .unwrap_or(&file_name)
            .to_string();
        let served = ServedModel {
            id,
            file_name,
            context: context as usize,
            tokenizer,
            template,
            created: unix_now(),
        };
        let state = Arc::new(AppState::new(
            served,
            engine.clone(),
            metrics,
            config.api_key.clone(),
            config.body_limit_bytes,
        ));
        Ok(Server {
            config,
            state,
            engine,
            thread,
        })
    }

    /// The served model's API id.
    pub fn model_id(&self) -> &str {
        &self.state.model.id
    }

    /// The context the model is served with.
    pub fn context(&self) -> usize {
        self.state.model.context
    }

    /// Binds and serves until `shutdown` resolves, then stops cleanly. `on_listening` gets the
    /// bound address (port 0 picks a free one).
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        on_listening: impl FnOnce(SocketAddr),
    ) -> Result<(), ServerError> {
        let addr = self.config.addr();
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        on_listening(listener.local_addr()?);
        let grace = self.config.shutdown_grace;
        let canceller = self.engine.canceller();
        let (timer_tx, timer_rx) = tokio::sync::oneshot::channel();
        let signal = async move {
            shutdown.await;
            // In-flight requests get `grace` to finish; then they end at their next token.
            let timer = tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                canceller.cancel_all();
            });
            let _ = timer_tx.send(timer);
        };
        let app = router(self.state.clone());
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .await;
        // Every request is answered; cancel what might still be queued, let the engine drain
        // and flush the tiers to disk.
        if let Ok(timer) = timer_rx.await {
            timer.abort();
        }
        self.engine.cancel_all();
        drop(self.state);
        drop(self.engine);
        let thread = self.thread;
        let flushed = tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|e| ServerError::Engine(e.to_string()))?;
        served?;
        flushed.map_err(ServerError::Engine)
    }
}

fn open_disk(
    dir: &std::path::Path,
    ttl: Option<std::time::Duration>,
) -> Result<KvBlockStore, ServerError> {
    let err = |detail: String| ServerError::Disk {
        path: dir.display().to_string(),
        detail,
    };
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    let opts = KvStoreOptions {
        ttl,
        ..KvStoreOptions::default()
    };
    KvBlockStore::open(&dir.join(KV_DATABASE_FILE), opts).map_err(|e| err(e.to_string()))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
