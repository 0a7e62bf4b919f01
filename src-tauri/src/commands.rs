//! One `#[tauri::command]` per command of the app contract (JSON shapes: ui/src/lib/types.ts). Errors
//! reach the page as readable strings; long work (loading, generating) runs on blocking
//! threads and streams through `Channel`s.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hearth::chat::{
    ChatError, ChatEvent, LoadEvent, MemoryPlan, ModelInfo, StatsSnapshot, TurnEvent, plan_file,
    run_turn,
};
use hearth::store::{Conversation, ConversationSummary, Message, Settings};
use serde::Serialize;
use tauri::State;
use tauri::ipc::Channel;

use crate::download::{self, DownloadEvent};
use crate::state::AppData;

type CmdResult<T> = Result<T, String>;

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStateDto {
    model: Option<ModelInfo>,
    adapter: Option<hearth::chat::AdapterInfo>,
    adapter_error: Option<String>,
    settings: Settings,
    version: String,
    /// The model bundled with the app (none in a build without it).
    builtin_model: Option<crate::builtin::BuiltinModel>,
}

#[tauri::command]
pub async fn app_state(state: State<'_, AppData>) -> CmdResult<AppStateDto> {
    if state.status().loading {
        // A load started at launch: answer once it is over, so the page sees the model.
        drop(state.engine.lock().await);
    }
    let status = state.status();
    let settings = load_settings(&state).await?;
    Ok(AppStateDto {
        model: status.model,
        adapter: status.adapter,
        adapter_error: status.adapter_error,
        settings,
        version: env!("CARGO_PKG_VERSION").to_string(),
        builtin_model: state.builtin_model.clone(),
    })
}

async fn load_settings(state: &AppData) -> CmdResult<Settings> {
    let loaded = state.store.load_settings().await.map_err(text)?;
    for w in &loaded.warnings {
        eprintln!("hearth: {w}");
    }
    Ok(loaded.settings)
}

#[tauri::command]
pub async fn list_conversations(
    state: State<'_, AppData>,
    query: Option<String>,
) -> CmdResult<Vec<ConversationSummary>> {
    match query.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) => state.store.search_conversations(q).await.map_err(text),
        None => state.store.list_conversations().await.map_err(text),
    }
}

#[tauri::command]
pub async fn create_conversation(
    state: State<'_, AppData>,
    title: Option<String>,
) -> CmdResult<ConversationSummary> {
    state
        .store
        .create_conversation(title.as_deref())
        .await
        .map_err(text)
}

#[tauri::command]
pub async fn get_conversation(state: State<'_, AppData>, id: i64) -> CmdResult<Conversation> {
    state.store.get_conversation(id).await.map_err(text)
}

#[tauri::command]
pub async fn rename_conversation(
    state: State<'_, AppData>,
    id: i64,
    title: String,
) -> CmdResult<ConversationSummary> {
    state
        .store
        .rename_conversation(id, &title)
        .await
        .map_err(text)
}

#[tauri::command]
pub async fn delete_conversation(state: State<'_, AppData>, id: i64) -> CmdResult<()> {
    state.store.delete_conversation(id).await.map_err(text)?;
    let _ = state
        .store
        .set_cache_pin(&format!("conversation:{id}"), false)
        .await;
    // Free its KV cache now (GPU, RAM and disk), unless a reply holds the engine (then LRU
    // eviction frees it). Off the async runtime: the disk tier blocks.
    if let Ok(mut engine) = Arc::clone(&state.engine).try_lock_owned() {
        let _ = tauri::async_runtime::spawn_blocking(move || engine.forget_conversation(id)).await;
    }
    Ok(())
}

#[tauri::command]
pub async fn send_message(
    state: State<'_, AppData>,
    conversation_id: i64,
    content: String,
    on_event: Channel<ChatEvent>,
) -> CmdResult<()> {
    let result = send(&state, conversation_id, content, &on_event).await;
    if let Err(message) = &result {
        let _ = on_event.send(ChatEvent::Error {
            message: message.clone(),
        });
    }
    result
}

async fn send(
    state: &AppData,
    conversation_id: i64,
    content: String,
    events: &Channel<ChatEvent>,
) -> CmdResult<()> {
    if content.trim().is_empty() {
        return Err("The message is empty.".into());
    }
    if state.status().model.is_none() {
        return Err("No model is loaded. Open a GGUF model first.".into());
    }
    let settings = load_settings(state).await?;
    let cancel = Arc::new(AtomicBool::new(false));
    let engine = Arc::clone(&state.engine).lock_owned().await;
    if let Ok(mut g) = state.generation.lock() {
        *g = Some((conversation_id, Arc::clone(&cancel)));
    }
    let channel = events.clone();
    // The turn (history, documents, saving both messages and their tokens) is the core's
    // `run_turn`; the shell only runs the engine step on a blocking thread and streams events.
    let turn = run_turn(
        &state.store,
        conversation_id,
        &content,
        &settings,
        move |request| async move {
            tauri::async_runtime::spawn_blocking(move || {
                let mut engine = engine;
                let user_message = request.user_message.clone();
                let mut on_event = |e: TurnEvent| {
                    let _ = channel.send(chat_event(e, &user_message));
                };
                request.run(&mut engine, &mut on_event, &cancel)
            })
            .await
            .map_err(|e| Failure(format!("the reply stopped unexpectedly: {e}")))?
            .map_err(Failure::from)
        },
    )
    .await;
    if let Ok(mut g) = state.generation.lock() {
        *g = None;
    }
    let message = turn.map_err(|Failure(m)| m)?.reply;
    let _ = events.send(ChatEvent::Done { message });
    Ok(())
}

/// A turn's failure as the page reads it: the core's error or the shell's own (a lost thread).
struct Failure(String);

impl From<ChatError> for Failure {
    fn from(e: ChatError) -> Failure {
        Failure(e.to_string())
    }
}

/// A turn event as the page's channel carries it.
fn chat_event(e: TurnEvent, user_message: &Message) -> ChatEvent {
    match e {
        TurnEvent::Started {
            prompt_tokens,
            reused_tokens,
        } => ChatEvent::Started {
            user_message: user_message.clone(),
            prompt_tokens: prompt_tokens as u32,
            reused_tokens: reused_tokens as u32,
        },
        TurnEvent::Prefill { done, total } => ChatEvent::Prefill {
            done: done as u32,
            total: total as u32,
        },
        TurnEvent::Token { text } => ChatEvent::Token { text },
    }
}

#[tauri::command]
pub fn stop_generation(state: State<'_, AppData>, conversation_id: i64) -> CmdResult<()> {
    if let Ok(g) = state.generation.lock()
        && let Some((id, flag)) = g.as_ref()
        && *id == conversation_id
    {
        flag.store(true, Ordering::Relaxed);
    }
    Ok(())
}

/// Set by the end-to-end tests (which cannot drive the native dialog): the file named by this
/// variable holds the path the next "Open" returns, as if picked in the dialog; it is consumed.
/// Only whoever starts the process sets it, so it gives the page nothing it did not have.
pub const TEST_PICK_FILE_ENV: &str = "HEARTH_TEST_PICK_FILE";

/// The system's open-file dialog (GGUF files); the chosen file is granted to the core. None
/// when the person cancels.
#[tauri::command]
pub async fn pick_model_file(
    app: tauri::AppHandle,
    state: State<'_, AppData>,
) -> CmdResult<Option<String>> {
    pick_and_grant(&app, &state, "Open a GGUF model", "GGUF model", &["gguf"]).await
}

/// The system's open-file dialog (or the answer a test queued, see [`TEST_PICK_FILE_ENV`]);
/// the chosen file is granted to the core. None when the person cancels.
pub async fn pick_and_grant(
    app: &tauri::AppHandle,
    state: &AppData,
    title: &str,
    filter_name: &str,
    extensions: &[&str],
) -> CmdResult<Option<String>> {
    let picked = match std::env::var_os(TEST_PICK_FILE_ENV) {
        Some(script) => scripted_pick(Path::new(&script)),
        None => {
            use tauri_plugin_dialog::DialogExt;
            let (tx, rx) = tokio::sync::oneshot::channel();
            app.dialog()
                .file()
                .set_title(title)
                .add_filter(filter_name, extensions)
                .pick_file(move |file| {
                    let _ = tx.send(file);
                });
            let file = rx
                .await
                .map_err(|_| "the file dialog closed unexpectedly".to_string())?;
            file.map(|f| f.into_path().map_err(text)).transpose()?
        }
    };
    Ok(picked.map(|path| {
        state.granted.grant(&path);
        path.to_string_lossy().into_owned()
    }))
}

/// The path a test queued in `script` (see [`TEST_PICK_FILE_ENV`]); None (a cancelled dialog)
/// when nothing is queued.
pub fn scripted_pick(script: &Path) -> Option<PathBuf> {
    let queued = std::fs::read_to_string(script).ok()?;
    let _ = std::fs::remove_file(script);
    let path = queued.trim();
    (!path.is_empty()).then(|| PathBuf::from(path))
}

#[tauri::command]
pub async fn plan_model(
    state: State<'_, AppData>,
    path: String,
    context_length: Option<u32>,
) -> CmdResult<MemoryPlan> {
    let context = match context_length {
        Some(c) => c,
        None => load_settings(&state).await?.context_length,
    };
    let path = state.granted.check(Path::new(&path)).map_err(text)?;
    let gpu = state.status().gpu_info;
    tauri::async_runtime::spawn_blocking(move || plan_file(&path, context, gpu.as_ref()))
        .await
        .map_err(text)?
        .map_err(text)
}

#[tauri::command]
pub async fn load_model(
    state: State<'_, AppData>,
    path: String,
    on_event: Channel<LoadEvent>,
) -> CmdResult<ModelInfo> {
    let result = match state.granted.check(Path::new(&path)) {
        Ok(path) => crate::load_model(&state, path, &on_event).await,
        Err(e) => Err(e.to_string()),
    };
    match &result {
        Ok(model) => {
            let _ = on_event.send(LoadEvent::Done {
                model: model.clone(),
            });
        }
        Err(message) => {
            let _ = on_event.send(LoadEvent::Error {
                message: message.clone(),
            });
        }
    }
    result
}

#[tauri::command]
pub async fn unload_model(state: State<'_, AppData>) -> CmdResult<()> {
    // The API server serves the loaded model: it goes with it.
    crate::api_server::stop(&state).await;
    state.engine.lock().await.unload();
    state.set_model(None);
    let mut settings = load_settings(&state).await?;
    settings.last_model_path = None;
    state.store.save_settings(&settings).await.map_err(text)?;
    Ok(())
}

#[tauri::command]
pub async fn download_model(
    state: State<'_, AppData>,
    url: String,
    sha256: Option<String>,
    on_event: Channel<DownloadEvent>,
) -> CmdResult<String> {
    let target = download::target(&url, &state.models_dir).map_err(text)?;
    let cancel = Arc::new(AtomicBool::new(false));
    if let Ok(mut c) = state.download_cancel.lock() {
        *c = Some(Arc::clone(&cancel));
    }
    let client = download::client().map_err(text)?;
    let channel = on_event.clone();
    let mut progress = move |received_bytes: u64, total_bytes: Option<u64>| {
        let _ = channel.send(DownloadEvent::Progress {
            received_bytes,
            total_bytes,
        });
    };
    let result = download::download(
        &client,
        &target,
        sha256.as_deref().filter(|s| !s.trim().is_empty()),
        &cancel,
        &mut progress,
    )
    .await
    .map(|p| {
        state.granted.grant(&p);
        p.to_string_lossy().into_owned()
    })
    .map_err(text);
    if let Ok(mut c) = state.download_cancel.lock() {
        *c = None;
    }
    let _ = on_event.send(match &result {
        Ok(path) => DownloadEvent::Done { path: path.clone() },
        Err(message) => DownloadEvent::Error {
            message: message.clone(),
        },
    });
    result
}

#[tauri::command]
pub fn cancel_download(state: State<'_, AppData>) -> CmdResult<()> {
    if let Ok(c) = state.download_cancel.lock()
        && let Some(flag) = c.as_ref()
    {
        flag.store(true, Ordering::Relaxed);
    }
    Ok(())
}

#[tauri::command]
pub async fn get_settings(state: State<'_, AppData>) -> CmdResult<Settings> {
    load_settings(&state).await
}

#[tauri::command]
pub async fn save_settings(state: State<'_, AppData>, settings: Settings) -> CmdResult<Settings> {
    let saved = state.store.save_settings(&settings).await.map_err(text)?;
    // The disk budget applies now (the disk tier trims to it after its next write); the
    // GPU and RAM budgets and the KV type at the next model load.
    if let Some(disk) = &state.kv_disk {
        disk.set_budget(crate::cache_controls::disk_budget_bytes(&saved));
    }
    Ok(saved)
}

#[tauri::command]
pub fn get_stats(state: State<'_, AppData>) -> CmdResult<StatsSnapshot> {
    Ok(state.stats.lock().map(|s| s.snapshot()).unwrap_or_default())
}
