//! Documents in the chat: attach a file the person handed over (open dialog or drop) to a
//! conversation, encode it on the engine's thread so questions prefill only their own tokens,
//! list, detach, rename and delete. The core does the work (`hearth::chat::import_document`,
//! `ChatEngine::encode_document`, the store's document tables); this file is commands and
//! channels. JSON shapes: ui/src/lib/types.ts.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use hearth::chat::{import_document, index_document, shared_embedder_async, turn_document};
use hearth::store::DocumentSummary;
use serde::Serialize;
use tauri::State;
use tauri::ipc::Channel;

use crate::commands::pick_and_grant;
use crate::state::{AppData, Encoded};

type CmdResult<T> = Result<T, String>;

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Extensions a document may have (what `hearth::documents::extract` reads).
pub const DOCUMENT_EXTENSIONS: &[&str] = &["txt", "md", "markdown", "text", "pdf"];

pub fn is_document(path: &Path) -> bool {
    path.extension().is_some_and(|e| {
        DOCUMENT_EXTENSIONS
            .iter()
            .any(|d| e.eq_ignore_ascii_case(d))
    })
}

/// Where a document's KV cache is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheState {
    /// Encoded since the model was loaded: pinned in the GPU pool.
    Gpu,
    /// Blocks of it are in the disk tier (restored on the next question instead of recomputed).
    Disk,
    /// Not encoded yet: the next question (or attaching it again) encodes it.
    None,
}

/// A document as the app shows it (a chip, a row of the Documents list).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentInfo {
    pub id: i64,
    pub name: String,
    pub source_path: Option<String>,
    pub byte_count: u64,
    pub char_count: u64,
    pub created_at: String,
    /// The conversations it is attached to, oldest attachment first.
    pub conversation_ids: Vec<i64>,
    /// Tokens of its text for the loaded model, once encoded.
    pub tokens: Option<u64>,
    /// Windows it is cut into (1 when it fits the context whole), once encoded.
    pub windows: Option<u32>,
    pub cache: CacheState,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum DocumentEvent {
    /// Read, saved and attached; encoding follows when a model is loaded.
    Imported {
        document: DocumentInfo,
    },
    /// The model is reading the document (this can take a while for a long one).
    Encoding,
    Done {
        document: DocumentInfo,
    },
    Error {
        message: String,
    },
}

/// Document ids with blocks in the disk tier (empty when the tier is off or unreadable).
async fn on_disk(state: &AppData) -> HashSet<i64> {
    let Some(disk) = state.kv_disk.clone() else {
        return HashSet::new();
    };
    let stats = tauri::async_runtime::spawn_blocking(move || disk.stats()).await;
    match stats {
        Ok(Ok(stats)) => stats
            .per_owner
            .iter()
            .filter(|u| u.blocks > 0)
            .filter_map(|u| u.key.strip_prefix("document:")?.parse().ok())
            .collect(),
        _ => HashSet::new(),
    }
}

fn info(state: &AppData, d: DocumentSummary, disk: &HashSet<i64>) -> DocumentInfo {
    let encoded = state
        .encoded
        .lock()
        .ok()
        .and_then(|e| e.get(&d.id).copied());
    let cache = if encoded.is_some() {
        CacheState::Gpu
    } else if disk.contains(&d.id) {
        CacheState::Disk
    } else {
        CacheState::None
    };
    DocumentInfo {
        id: d.id,
        name: d.name,
        source_path: d.source_path,
        byte_count: d.byte_count,
        char_count: d.char_count,
        created_at: d.created_at,
        conversation_ids: d.conversation_ids,
        tokens: encoded.map(|e| e.tokens),
        windows: encoded.map(|e| e.windows),
        cache,
    }
}

/// The system's open-file dialog (text, Markdown, PDF); the chosen file is granted. None when
/// the person cancels. The end-to-end tests queue the answer like `pick_model_file`'s.
#[tauri::command]
pub async fn pick_document_file(
    app: tauri::AppHandle,
    state: State<'_, AppData>,
) -> CmdResult<Option<String>> {
    pick_and_grant(
        &app,
        &state,
        "Attach a document",
        "Text, Markdown or PDF",
        DOCUMENT_EXTENSIONS,
    )
    .await
}

/// Reads a granted file into a document, attaches it to `conversation_id` and, when a model is
/// loaded, encodes it now (streaming `Encoding`), so the first question about it is fast.
#[tauri::command]
pub async fn attach_document(
    state: State<'_, AppData>,
    conversation_id: i64,
    path: String,
    on_event: Channel<DocumentEvent>,
) -> CmdResult<DocumentInfo> {
    let result = attach(&state, conversation_id, &path, &on_event).await;
    let _ = on_event.send(match &result {
        Ok(document) => DocumentEvent::Done {
            document: document.clone(),
        },
        Err(message) => DocumentEvent::Error {
            message: message.clone(),
        },
    });
    result
}

async fn attach(
    state: &AppData,
    conversation_id: i64,
    path: &str,
    events: &Channel<DocumentEvent>,
) -> CmdResult<DocumentInfo> {
    let path = state
        .granted
        .check(Path::new(path))
        .map_err(|e| e.to_string())?;
    state
        .store
        .get_conversation(conversation_id)
        .await
        .map_err(text)?;
    let doc = import_document(&state.store, &path).await.map_err(text)?;
    let id = doc.summary.id;
    state
        .store
        .attach(conversation_id, id)
        .await
        .map_err(text)?;
    let disk = on_disk(state).await;
    let summary = state.store.document(id).await.map_err(text)?.summary;
    let _ = events.send(DocumentEvent::Imported {
        document: info(state, summary, &disk),
    });
    let encoding = state.status().model.is_some();
    if encoding {
        let _ = events.send(DocumentEvent::Encoding);
    }
    // The chunks' embeddings for routing by meaning, now rather than on the first question;
    // a failure leaves routing to the words (the first question tries again).
    if let Some(embedder) = shared_embedder_async().await
        && let Err(e) = index_document(&state.store, &embedder, id, &mut |_, _| {}).await
    {
        eprintln!("hearth: embedding document {id}: {e}");
    }
    if encoding {
        encode(state, id).await?;
    }
    let summary = state.store.document(id).await.map_err(text)?.summary;
    Ok(info(state, summary, &on_disk(state).await))
}

/// Encodes every window of document `id` on the engine's thread and remembers its size.
async fn encode(state: &AppData, id: i64) -> CmdResult<()> {
    let settings = state.store.load_settings().await.map_err(text)?.settings;
    // No question yet: the windows are all encoded, none is routed.
    let document = turn_document(&state.store, id, "").await.map_err(text)?;
    let engine = Arc::clone(&state.engine).lock_owned().await;
    let report = tauri::async_runtime::spawn_blocking(move || {
        let mut engine = engine;
        engine.encode_document(&document, &settings)
    })
    .await
    .map_err(|e| format!("encoding stopped unexpectedly: {e}"))?
    .map_err(text)?;
    if let Ok(mut e) = state.encoded.lock() {
        e.insert(
            id,
            Encoded {
                tokens: report.doc_tokens as u64,
                windows: report.windows.len() as u32,
            },
        );
    }
    Ok(())
}

/// The documents attached to `conversation_id`, oldest attachment first.
#[tauri::command]
pub async fn conversation_documents(
    state: State<'_, AppData>,
    conversation_id: i64,
) -> CmdResult<Vec<DocumentInfo>> {
    let loaded = state
        .store
        .conversation_documents(conversation_id)
        .await
        .map_err(text)?;
    let disk = on_disk(&state).await;
    Ok(loaded
        .documents
        .into_iter()
        .map(|d| info(&state, d, &disk))
        .collect())
}

/// Every document, newest first, with the conversations using it.
#[tauri::command]
pub async fn list_documents(state: State<'_, AppData>) -> CmdResult<Vec<DocumentInfo>> {
    let loaded = state.store.list_documents().await.map_err(text)?;
    for w in &loaded.warnings {
        eprintln!("hearth: a document was skipped: {w:?}");
    }
    let disk = on_disk(&state).await;
    Ok(loaded
        .documents
        .into_iter()
        .map(|d| info(&state, d, &disk))
        .collect())
}

/// Detaches the document from the conversation; when no conversation uses it any more its
/// pinned prefixes are let go (its blocks stay cached until evicted).
#[tauri::command]
pub async fn detach_document(
    state: State<'_, AppData>,
    conversation_id: i64,
    document_id: i64,
) -> CmdResult<()> {
    state
        .store
        .detach(conversation_id, document_id)
        .await
        .map_err(text)?;
    let still_used = !state
        .store
        .document(document_id)
        .await
        .map_err(text)?
        .summary
        .conversation_ids
        .is_empty();
    if !still_used {
        let engine = Arc::clone(&state.engine).lock_owned().await;
        let _ = tauri::async_runtime::spawn_blocking(move || {
            let mut engine = engine;
            engine.unpin_document(document_id)
        })
        .await;
        if let Ok(mut e) = state.encoded.lock() {
            e.remove(&document_id);
        }
    }
    Ok(())
}

#[tauri::command]
pub async fn rename_document(
    state: State<'_, AppData>,
    id: i64,
    name: String,
) -> CmdResult<DocumentInfo> {
    let summary = state.store.rename_document(id, &name).await.map_err(text)?;
    Ok(info(&state, summary, &on_disk(&state).await))
}

/// Deletes the document (detaching it everywhere) and frees its KV cache on every tier.
#[tauri::command]
pub async fn delete_document(state: State<'_, AppData>, id: i64) -> CmdResult<()> {
    let engine = Arc::clone(&state.engine).lock_owned().await;
    let _ = tauri::async_runtime::spawn_blocking(move || {
        let mut engine = engine;
        engine.forget_document(id)
    })
    .await;
    if let Ok(mut e) = state.encoded.lock() {
        e.remove(&id);
    }
    let _ = state
        .store
        .set_cache_pin(&format!("document:{id}"), false)
        .await;
    state.store.delete_document(id).await.map_err(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_text_markdown_and_pdf_files() {
        assert!(is_document(Path::new("/a/notes.md")));
        assert!(is_document(Path::new("/a/REPORT.PDF")));
        assert!(is_document(Path::new("facts.txt")));
        assert!(!is_document(Path::new("model.gguf")));
        assert!(!is_document(Path::new("README")));
    }
}
