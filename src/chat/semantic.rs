//! Retrieval by meaning: a document's chunks embedded once per embedding model and kept in the
//! store (`chunk_embeddings`), and the cosine of a question to each of them. The embedding model
//! is found once per process (`embed::find_model_dir`); without one, documents are routed by
//! their words alone.

use std::sync::{Arc, OnceLock};

use crate::documents::chunk;
use crate::embed::{EmbedModel, Embedder, Prefer, find_model_dir};
use crate::store::{MAX_CHUNK_PIECES, RowWarning, Store};

use super::error::ChatError;
use super::retrieval::ChunkCosine;

/// Chunks embedded per blocking task (and per transaction).
const BATCH: usize = 8;
/// Characters per embedded piece of a chunk, and their overlap: two or three sentences (~70
/// English tokens). Well inside the model's 256-token input, so no part of a search chunk
/// (~1,500 characters) goes unseen; and short, so a one-sentence fact is not averaged away by
/// its neighbours (mean pooling). The cost is about the same as whole chunks: the forward pass is
/// close to linear in tokens at these lengths, and the overlap adds ~20%.
const PIECE_CHARS: usize = 300;
const PIECE_OVERLAP_CHARS: usize = 60;

/// The texts a chunk is embedded as (cut at paragraph, sentence or word boundaries), at most
/// `MAX_CHUNK_PIECES` (~45,000 characters; the chunker's chunks are ~1,500).
fn pieces(text: &str) -> Vec<String> {
    let mut p: Vec<String> = chunk(text, PIECE_CHARS, PIECE_OVERLAP_CHARS)
        .into_iter()
        .map(|c| c.text)
        .collect();
    if p.is_empty() {
        p.push(text.to_string());
    }
    p.truncate(MAX_CHUNK_PIECES);
    p
}

static SHARED: OnceLock<Option<Arc<Embedder>>> = OnceLock::new();

/// The process's embedder: the model [`find_model_dir`] finds, on the GPU through burn unless
/// the only adapter is a CPU (`Prefer::Auto`); `HEARTH_EMBED_DEVICE=cpu` or `gpu` forces one.
/// None, said once on stderr, when no model is found or it cannot be read.
pub fn shared_embedder() -> Option<Arc<Embedder>> {
    SHARED
        .get_or_init(|| {
            let loaded = find_model_dir().and_then(|dir| EmbedModel::load(&dir));
            match loaded {
                Ok(model) => {
                    let prefer = match std::env::var("HEARTH_EMBED_DEVICE").as_deref() {
                        Ok("cpu") => Prefer::Cpu,
                        Ok("gpu") => Prefer::Gpu,
                        _ => Prefer::Auto,
                    };
                    Some(Arc::new(Embedder::new(Arc::new(model), prefer)))
                }
                Err(e) => {
                    eprintln!("hearth: documents are routed by their words only: {e}");
                    None
                }
            }
        })
        .clone()
}

/// [`shared_embedder`] from async code: the first call loads the model (and may open a GPU
/// device), so it runs on a blocking thread.
pub async fn shared_embedder_async() -> Option<Arc<Embedder>> {
    if let Some(e) = SHARED.get() {
        return e.clone();
    }
    tokio::task::spawn_blocking(shared_embedder)
        .await
        .ok()
        .flatten()
}

/// What indexing a document did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexReport {
    pub chunks: usize,
    /// Chunks embedded now (the rest had a stored vector for this model).
    pub computed: usize,
    /// Stored rows that were damaged or stale (recomputed).
    pub warnings: Vec<RowWarning>,
}

/// Embeds every chunk of the document that has no usable vector for the embedder's model,
/// saving each batch; `progress(done, to_do)` after each batch.
pub async fn index_document(
    store: &Store,
    embedder: &Arc<Embedder>,
    document_id: i64,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<IndexReport, ChatError> {
    let model = embedder.model();
    let found = store
        .chunk_vectors(document_id, model.fingerprint(), model.dim())
        .await?;
    let to_do = found.missing.len();
    let mut report = IndexReport {
        chunks: found.vectors.len() + to_do,
        computed: 0,
        warnings: found.warnings,
    };
    progress(0, to_do);
    for batch in found.missing.chunks(BATCH) {
        let texts: Vec<String> = batch.iter().map(|c| c.text.clone()).collect();
        let e = Arc::clone(embedder);
        let vectors = tokio::task::spawn_blocking(move || {
            // Every piece of the batch's chunks in one call (one GPU pass), then regrouped.
            let cut: Vec<Vec<String>> = texts.iter().map(|t| pieces(t)).collect();
            let all: Vec<&str> = cut.iter().flatten().map(String::as_str).collect();
            let mut embedded = e.embed_batch(&all)?.into_iter().map(|x| x.vector);
            Ok::<_, crate::embed::EmbedError>(
                cut.iter()
                    .map(|p| embedded.by_ref().take(p.len()).collect::<Vec<_>>())
                    .collect::<Vec<_>>(),
            )
        })
        .await
        .map_err(|e| ChatError::Document(e.to_string()))??;
        let rows: Vec<(i64, &str, &[Vec<f32>])> = batch
            .iter()
            .zip(&vectors)
            .map(|(c, v)| (c.chunk_id, c.text.as_str(), v.as_slice()))
            .collect();
        store.put_chunk_vectors(model.fingerprint(), &rows).await?;
        report.computed += batch.len();
        progress(report.computed, to_do);
    }
    Ok(report)
}

/// The cosine of `question` to each chunk of the document (indexing chunks that lack a vector
/// first). The question is embedded on the CPU: a few tokens, and the GPU stays free for the
/// chat model. Empty for a blank question.
pub async fn question_cosines(
    store: &Store,
    embedder: &Arc<Embedder>,
    document_id: i64,
    question: &str,
) -> Result<Vec<ChunkCosine>, ChatError> {
    if question.trim().is_empty() {
        return Ok(Vec::new());
    }
    let model = embedder.model();
    let mut stored = store
        .chunk_vectors(document_id, model.fingerprint(), model.dim())
        .await?;
    if !stored.missing.is_empty() {
        index_document(store, embedder, document_id, &mut |_, _| {}).await?;
        stored = store
            .chunk_vectors(document_id, model.fingerprint(), model.dim())
            .await?;
    }
    let (m, q) = (Arc::clone(model), question.to_string());
    let query = tokio::task::spawn_blocking(move || m.embed_reference(&q))
        .await
        .map_err(|e| ChatError::Document(e.to_string()))??;
    Ok(stored
        .vectors
        .iter()
        .map(|c| ChunkCosine {
            char_start: c.char_start,
            char_end: c.char_end,
            cosine: c
                .vectors
                .iter()
                .map(|v| crate::embed::cosine(&query.vector, v))
                .fold(f32::NEG_INFINITY, f32::max),
        })
        .collect())
}
