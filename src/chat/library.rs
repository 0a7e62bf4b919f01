//! The store side of documents in a chat: importing a file (extract, save, cut into the
//! chunks BM25 searches) and gathering a turn's attached documents with the question's hits.

use std::path::Path;
use std::sync::Arc;

use crate::documents::{DEFAULT_OVERLAP_CHARS, DEFAULT_TARGET_CHARS, chunk, extract};
use crate::store::{Document, Store};

use crate::embed::Embedder;

use super::documents::TurnDocument;
use super::error::ChatError;
use super::semantic::{question_cosines, shared_embedder_async};

/// BM25 hits a turn routes by.
pub const TURN_HITS: usize = 16;

/// Reads `path` (text, Markdown or PDF), saves it as a document named after the file and cuts
/// it into search chunks. The same text added twice is one document.
pub async fn import_document(store: &Store, path: &Path) -> Result<Document, ChatError> {
    let owned = path.to_path_buf();
    let extracted = tokio::task::spawn_blocking(move || extract(&owned))
        .await
        .map_err(|e| ChatError::Document(e.to_string()))?
        .map_err(|e| ChatError::Document(e.to_string()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "document".into());
    let doc = store
        .add_document(&name, Some(path), &extracted.text)
        .await?;
    if store.chunk_count(doc.summary.id).await? == 0 {
        let chunks = chunk(&doc.text, DEFAULT_TARGET_CHARS, DEFAULT_OVERLAP_CHARS);
        store.replace_chunks(doc.summary.id, &chunks).await?;
    }
    Ok(doc)
}

/// `document_id` as a turn sees it: its text, the BM25 hits of `question` over its chunks and,
/// when the process has an embedding model (`shared_embedder`), the question's cosine to each
/// chunk. An embedding failure is reported on stderr and leaves routing to the words.
pub async fn turn_document(
    store: &Store,
    document_id: i64,
    question: &str,
) -> Result<TurnDocument, ChatError> {
    let embedder = if question.trim().is_empty() {
        None
    } else {
        shared_embedder_async().await
    };
    turn_document_with(store, document_id, question, embedder.as_ref()).await
}

/// [`turn_document`] with the embedder given (None: words only).
pub async fn turn_document_with(
    store: &Store,
    document_id: i64,
    question: &str,
    embedder: Option<&Arc<Embedder>>,
) -> Result<TurnDocument, ChatError> {
    let doc = store.document(document_id).await?;
    let chunk_cosines = match embedder {
        Some(e) => question_cosines(store, e, document_id, question)
            .await
            .unwrap_or_else(|err| {
                eprintln!("hearth: routing document {document_id} by its words only: {err}");
                Vec::new()
            }),
        None => Vec::new(),
    };
    let hits = store
        .search_chunks(document_id, question, TURN_HITS)
        .await?
        .hits;
    Ok(TurnDocument {
        id: doc.summary.id,
        name: doc.summary.name,
        text: Arc::from(doc.text),
        sha256: doc.summary.sha256,
        query: question.to_string(),
        hits,
        chunk_cosines,
    })
}

/// Every document attached to `conversation_id`, oldest attachment first, for `question`.
pub async fn turn_documents(
    store: &Store,
    conversation_id: i64,
    question: &str,
) -> Result<Vec<TurnDocument>, ChatError> {
    let attached = store.conversation_documents(conversation_id).await?;
    let mut out = Vec::with_capacity(attached.documents.len());
    for d in attached.documents {
        out.push(turn_document(store, d.id, question).await?);
    }
    Ok(out)
}
