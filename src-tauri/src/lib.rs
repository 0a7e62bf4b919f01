//! Hearth's desktop shell (Tauri v2): a thin layer of commands and channels over the core
//! (`hearth::chat`, `hearth::store`). No engine logic lives here.

pub mod api_server;
pub mod builtin;
pub mod cache;
pub mod cache_controls;
pub mod commands;
pub mod documents;
pub mod download;
pub mod grants;
pub mod state;

use std::path::PathBuf;

use hearth::chat::{ChatEngine, LoadEvent, ModelInfo};
use hearth::store::Store;
use hearth::store::kv_blocks::KvStoreOptions;
use tauri::Manager;
use tauri::ipc::Channel;

use crate::state::AppData;

/// The database file inside the platform's app-data folder.
pub const DATABASE_FILE: &str = "hearth.db";

/// The KV cache's own database (blocks by content hash), next to the app's.
pub const KV_DATABASE_FILE: &str = "kv.sqlite";

pub fn run() {
    tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .setup(|app| {
            let data_dir = app.path().app_data_dir()?;
            let store = tauri::async_runtime::block_on(Store::open(data_dir.join(DATABASE_FILE)))?;
            let mut engine = ChatEngine::new();
            if let Some(reason) = engine.adapter_error() {
                eprintln!("hearth: {reason}");
            }
            let settings = tauri::async_runtime::block_on(store.load_settings())
                .map(|l| l.settings)
                .unwrap_or_default();
            // The KV cache's disk tier: conversations resume after a restart without
            // recomputing. Without it the app still works (GPU and RAM tiers only).
            let disk = KvStoreOptions {
                budget_bytes: cache_controls::disk_budget_bytes(&settings),
                ..KvStoreOptions::default()
            };
            if let Err(e) = engine.open_kv_disk(&data_dir.join(KV_DATABASE_FILE), disk) {
                eprintln!("hearth: the KV cache's disk tier is off: {e}");
            }
            // Pinned owners (cache panel) are pinned again as each next runs.
            let pins = tauri::async_runtime::block_on(store.cache_pins()).unwrap_or_default();
            engine.set_pins(pins.iter().filter_map(|k| cache_controls::owner_of_key(k)));
            let last_model = settings
                .last_model_path
                .map(PathBuf::from)
                .filter(|p| p.is_file() && engine.gpu_info().is_some());
            let mut data = AppData::new(store, engine, data_dir.join("models"));
            if let Some(path) = &last_model {
                data.granted.grant(path);
            }
            // The bundled model is Hearth's own file: granted like a file the person chose.
            // Tauri's resource folder, else the executable's own (a build run from a cargo
            // output folder not named `target`, where Tauri does not look).
            let exe_dir = std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(std::path::Path::to_path_buf));
            let roots: Vec<std::path::PathBuf> = app
                .path()
                .resource_dir()
                .ok()
                .into_iter()
                .chain(exe_dir)
                .collect();
            data.builtin_model = roots.iter().find_map(|dir| builtin::find(dir));
            // The bundled embedding model, for routing questions by meaning (else the model
            // cache's, else words only: `hearth::embed::find_model_dir`).
            if let Some(dir) = roots.iter().find_map(|dir| builtin::find_embed_model(dir)) {
                hearth::embed::set_bundled_model_dir(dir);
            }
            if let Some(model) = &data.builtin_model {
                data.granted.grant(std::path::Path::new(&model.path));
            }
            if last_model.is_some() {
                // app_state waits for this load, so the page opens with the model in place.
                if let Ok(mut s) = data.status.lock() {
                    s.loading = true;
                }
            }
            app.manage(data);
            if let Some(path) = last_model {
                let handle = app.handle().clone();
                tauri::async_runtime::spawn(async move { load_last_model(handle, path).await });
            }
            Ok(())
        })
        .on_webview_event(|webview, event| {
            if let tauri::WebviewEvent::DragDrop(tauri::DragDropEvent::Drop { paths, .. }) = event {
                on_files_dropped(webview, paths);
            }
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_state,
            commands::list_conversations,
            commands::create_conversation,
            commands::get_conversation,
            commands::rename_conversation,
            commands::delete_conversation,
            commands::send_message,
            commands::stop_generation,
            commands::pick_model_file,
            commands::plan_model,
            commands::load_model,
            commands::unload_model,
            commands::download_model,
            commands::cancel_download,
            commands::get_settings,
            commands::save_settings,
            commands::get_stats,
            documents::pick_document_file,
            documents::attach_document,
            documents::conversation_documents,
            documents::list_documents,
            documents::detach_document,
            documents::rename_document,
            documents::delete_document,
            cache::cache_snapshot,
            cache::cache_owners,
            cache::clear_cache,
            api_server::api_server_status,
            api_server::start_api_server,
            api_server::stop_api_server,
            cache_controls::clear_cache_tier,
            cache_controls::clear_cache_owner,
            cache_controls::pin_cache_owner,
        ])
        .run(tauri::generate_context!())
        .expect("error while running Hearth");
}

/// The event that tells the page a GGUF file was dropped on the window (payload: its path).
pub const MODEL_DROPPED_EVENT: &str = "model-dropped";

/// The event that tells the page a document (text, Markdown, PDF) was dropped on the window
/// (payload: its path); the page attaches it to the open conversation.
pub const DOCUMENT_DROPPED_EVENT: &str = "document-dropped";

/// Files dropped on the window: the first GGUF among them is granted to the core and announced
/// to the page, which plans it like a file chosen in the dialog; documents are granted and
/// announced for the page to attach. Other files are ignored.
fn on_files_dropped(webview: &tauri::Webview, paths: &[PathBuf]) {
    use tauri::Emitter;
    let model = paths.iter().find(|p| {
        p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
    });
    let state = webview.state::<AppData>();
    if let Some(path) = model {
        state.granted.grant(path);
        if let Err(e) = webview.emit(MODEL_DROPPED_EVENT, path.to_string_lossy()) {
            eprintln!("hearth: could not tell the page about the dropped file: {e}");
        }
        return;
    }
    for path in paths.iter().filter(|p| documents::is_document(p)) {
        state.granted.grant(path);
        if let Err(e) = webview.emit(DOCUMENT_DROPPED_EVENT, path.to_string_lossy()) {
            eprintln!("hearth: could not tell the page about the dropped file: {e}");
        }
    }
}

/// Loads the model used last time, if it is still there; a failure is logged and the app
/// starts without a model.
async fn load_last_model(app: tauri::AppHandle, path: PathBuf) {
    let state = app.state::<AppData>();
    let quiet = Channel::new(|_| Ok(()));
    if let Err(e) = load_model(&state, path, &quiet).await {
        eprintln!("hearth: the last model could not be loaded: {e}");
    }
}

/// Loads `path` with the saved context length on a blocking thread, streaming progress, and
/// remembers it as the model to open next time.
pub async fn load_model(
    state: &AppData,
    path: PathBuf,
    events: &Channel<LoadEvent>,
) -> Result<ModelInfo, String> {
    let settings = state
        .store
        .load_settings()
        .await
        .map_err(|e| e.to_string())?
        .settings;
    // The API server serves the loaded model: a new model stops it (turn it on again to serve
    // the new one).
    api_server::stop(state).await;
    if let Ok(mut s) = state.status.lock() {
        s.loading = true;
    }
    let engine = std::sync::Arc::clone(&state.engine).lock_owned().await;
    let channel = events.clone();
    let load_path = path.clone();
    let result = tauri::async_runtime::spawn_blocking(move || {
        let mut engine = engine;
        let mut progress = |fraction: f32, stage: &str| {
            let _ = channel.send(LoadEvent::Progress {
                fraction,
                stage: stage.to_string(),
            });
        };
        // The cache budgets the person set (Settings → KV cache); None: the defaults.
        const MIB: u64 = 1 << 20;
        engine.set_kv_budget(settings.kv_gpu_budget_mib.map(|m| u64::from(m) * MIB));
        engine.set_ram_budget(
            settings
                .kv_ram_budget_mib
                .map_or(hearth::kv::DEFAULT_RAM_BUDGET_BYTES, |m| u64::from(m) * MIB),
        );
        engine.set_kv_f16(settings.kv_type == hearth::store::KvType::F16);
        let result = engine.load(&load_path, settings.context_length, &mut progress);
        (result, engine.model().cloned(), engine.kv_type())
    })
    .await;
    if let Ok(mut s) = state.status.lock() {
        s.loading = false;
    }
    let (result, model, kv_type) =
        result.map_err(|e| format!("loading stopped unexpectedly: {e}"))?;
    state.set_model(model);
    state.set_kv_type(kv_type);
    // A new model has a new pool: nothing is encoded for it yet.
    state.forget_encoded();
    let info = result.map_err(|e| e.to_string())?;
    let mut settings = state
        .store
        .load_settings()
        .await
        .map_err(|e| e.to_string())?
        .settings;
    settings.last_model_path = Some(path.to_string_lossy().into_owned());
    state
        .store
        .save_settings(&settings)
        .await
        .map_err(|e| e.to_string())?;
    Ok(info)
}
