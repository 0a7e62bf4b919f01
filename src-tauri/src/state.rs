//! What the commands share: the store, the chat engine behind an async lock (generation holds
//! it on a blocking thread), and what must stay readable while a reply runs (model, adapter,
//! counters, the cancel flags).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use hearth::chat::{AdapterInfo, ChatEngine, ChatStats, ModelInfo};
use hearth::gpu::GpuInfo;
use hearth::metrics::Metrics;
use hearth::store::Store;
use hearth::store::kv_blocks::KvBlockStore;

use crate::api_server::ApiServerSlot;
use crate::builtin::BuiltinModel;
use crate::grants::GrantedPaths;

pub struct AppData {
    pub store: Store,
    pub engine: Arc<tokio::sync::Mutex<ChatEngine>>,
    pub status: Mutex<Status>,
    pub stats: Arc<Mutex<ChatStats>>,
    /// The reply being generated: its conversation and cancel flag.
    pub generation: Mutex<Option<(i64, Arc<AtomicBool>)>>,
    pub download_cancel: Mutex<Option<Arc<AtomicBool>>>,
    /// Where downloaded models go.
    pub models_dir: PathBuf,
    /// Files the person handed over (dialog, drag-and-drop, downloads, the last model).
    pub granted: GrantedPaths,
    /// The engine's metrics (a shared handle): the cache panel reads them while a reply runs.
    pub metrics: Metrics,
    /// The KV cache's disk tier (a shared handle), for its per-owner usage; None when off.
    pub kv_disk: Option<KvBlockStore>,
    /// Documents encoded (and pinned) since the model was loaded: their token count and windows.
    pub encoded: Mutex<HashMap<i64, Encoded>>,
    /// The model bundled with the app, when this build has it (granted at startup).
    pub builtin_model: Option<BuiltinModel>,
    /// Settings → Local API server: the in-process `hearth serve`, when on.
    pub api_server: ApiServerSlot,
    /// The engine's GPU context (None without an adapter): the API server loads on it too.
    pub gpu: Option<Arc<hearth::gpu::GpuContext>>,
}

/// What encoding a document measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    pub tokens: u64,
    pub windows: u32,
}

/// A copy of the engine's state that never waits on a running reply.
#[derive(Clone, Default)]
pub struct Status {
    pub model: Option<ModelInfo>,
    pub adapter: Option<AdapterInfo>,
    pub adapter_error: Option<String>,
    pub gpu_info: Option<GpuInfo>,
    /// A model load (started at launch, or by the user) is running.
    pub loading: bool,
    /// The loaded model's KV cache element type ("f16" or "f32").
    pub kv_type: Option<String>,
}

impl AppData {
    pub fn new(store: Store, engine: ChatEngine, models_dir: PathBuf) -> AppData {
        let gpu = engine.gpu_context();
        let status = Status {
            model: engine.model().cloned(),
            adapter: engine.adapter(),
            adapter_error: engine.adapter_error().map(str::to_owned),
            gpu_info: engine.gpu_info().cloned(),
            loading: false,
            kv_type: engine.kv_type().map(str::to_owned),
        };
        AppData {
            store,
            stats: engine.stats_handle(),
            metrics: engine.metrics().clone(),
            kv_disk: engine.kv_disk().cloned(),
            encoded: Mutex::new(HashMap::new()),
            engine: Arc::new(tokio::sync::Mutex::new(engine)),
            status: Mutex::new(status),
            generation: Mutex::new(None),
            download_cancel: Mutex::new(None),
            models_dir,
            granted: GrantedPaths::default(),
            builtin_model: None,
            api_server: ApiServerSlot::default(),
            gpu,
        }
    }

    pub fn status(&self) -> Status {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn set_model(&self, model: Option<ModelInfo>) {
        if let Ok(mut s) = self.status.lock() {
            if model.is_none() {
                s.kv_type = None;
            }
            s.model = model;
        }
    }

    pub fn set_kv_type(&self, kv_type: Option<&str>) {
        if let Ok(mut s) = self.status.lock() {
            s.kv_type = kv_type.map(str::to_owned);
        }
    }
}

impl AppData {
    /// Forgets what was encoded (a new model, a cleared cache).
    pub fn forget_encoded(&self) {
        if let Ok(mut e) = self.encoded.lock() {
            e.clear();
        }
    }
}
