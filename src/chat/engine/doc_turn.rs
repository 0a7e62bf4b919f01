//! The document half of a turn: which window of which attached document goes into the
//! system message, encoding that prefix once under the document's ownership (so the
//! conversations that share it do not own it, and deleting one of them leaves it cached), and
//! pinning it while attached.

use std::collections::HashMap;
use std::sync::Arc;

use crate::kv::{Found, Owner};
use crate::store::{DocumentRead, Message, Role};
use crate::tokenizer::ChatMessage;

use super::super::documents::{
    TurnDocument, WindowPlan, document_block, plan_windows, system_with_documents, window_budget,
};
use super::super::error::ChatError;
use super::super::prompt::tokenize_rendered;
use super::super::residency::NO_CONVERSATION;
use super::super::retrieval::{FoundBy, WindowScore, rank_windows};
use super::super::reuse::common_prefix;
use super::LoadedModel;

/// Window plans (and system prefixes) kept per model load: each costs a pass of the tokenizer
/// over the text.
const MAX_PLANS: usize = 32;

/// Per loaded model: window plans by (text hash, budget), and the pinned document prefixes.
#[derive(Default)]
pub(super) struct DocumentState {
    plans: HashMap<(String, usize), Arc<WindowPlan>>,
    /// (document, prefix tokens), oldest first.
    pinned: Vec<(i64, Vec<u32>)>,
    /// [`system_prefix`] by the blake3 of the system message: a turn about a document would
    /// otherwise render and tokenize the whole window twice per question.
    prefixes: HashMap<[u8; 32], Arc<[u32]>>,
}

/// A document's windows after [`encode_windows`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeReport {
    /// Tokens of the document's text alone.
    pub doc_tokens: usize,
    pub windows: Vec<EncodedWindow>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodedWindow {
    pub char_start: usize,
    pub char_end: usize,
    /// Tokens of the window's prompt prefix (system message with the window's text).
    pub prefix_tokens: usize,
    /// Of those, the tokens computed by this call (0: they were cached).
    pub encoded_tokens: usize,
}

/// The documents part of one turn's prompt.
pub(super) struct Selection {
    /// The system message: the user's system prompt and the document block(s).
    pub system: String,
    pub reads: Vec<DocumentRead>,
    /// The document whose blocks the encoded prefix belongs to.
    pub owner: i64,
    /// The history was answered from other windows (or without documents): its exact ids
    /// cannot be extended, the conversation is rendered afresh.
    pub changed: bool,
}

fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The (document, window) pairs the last reply of `history` read.
fn previous_reads(history: &[Message]) -> Option<Vec<(i64, u32)>> {
    let last = history.iter().rev().find(|m| m.role == Role::Assistant)?;
    let stats = last.stats.as_ref()?;
    Some(
        stats
            .documents
            .iter()
            .map(|r| (r.document_id, r.window))
            .collect(),
    )
}

fn read(
    doc: &TurnDocument,
    plan: &WindowPlan,
    k: usize,
    found_by: Option<FoundBy>,
) -> DocumentRead {
    let w = &plan.windows[k];
    DocumentRead {
        document_id: doc.id,
        name: doc.name.clone(),
        window: u32_of(k + 1),
        windows: u32_of(plan.windows.len()),
        char_start: w.char_start as u64,
        char_end: w.char_end as u64,
        prefix_tokens: 0,
        encoded_tokens: 0,
        found_by: found_by.map(|f| f.as_str().to_string()),
    }
}

/// Picks what of `documents` this turn reads: every document whole when they fit one window
/// together; else the window (of any of them) the question's hits point at, or the window
/// the last reply read, or the first document's first window.
pub(super) fn select(
    model: &mut LoadedModel,
    system_prompt: &str,
    documents: &[TurnDocument],
    history: &[Message],
) -> Result<Option<Selection>, ChatError> {
    if documents.is_empty() {
        return Ok(None);
    }
    let budget = text_budget(model, system_prompt, documents)?;
    let mut plans = Vec::with_capacity(documents.len());
    for d in documents {
        plans.push(plan(model, d, budget)?);
    }
    let previous = previous_reads(history);
    let total: usize = plans.iter().map(|p| p.doc_tokens).sum();
    let (system, reads) = if total <= budget && plans.iter().all(|p| p.windows.len() == 1) {
        let blocks: Vec<String> = documents
            .iter()
            .map(|d| document_block(&d.name, &d.text))
            .collect();
        let reads = documents
            .iter()
            .zip(&plans)
            .map(|(d, p)| read(d, p, 0, None))
            .collect();
        (system_with_documents(system_prompt, &blocks), reads)
    } else {
        let (di, k, found_by) = choose_window(documents, &plans, previous.as_deref());
        let w = &plans[di].windows[k];
        let block = document_block(&documents[di].name, &w.text);
        (
            system_with_documents(system_prompt, &[block]),
            vec![read(&documents[di], &plans[di], k, found_by)],
        )
    };
    let now: Vec<(i64, u32)> = reads.iter().map(|r| (r.document_id, r.window)).collect();
    let changed = !history.is_empty() && previous.as_deref() != Some(now.as_slice());
    Ok(Some(Selection {
        system,
        owner: reads[0].document_id,
        reads,
        changed,
    }))
}

/// The best window over all documents by the fused ranking (`rank_windows`: words and, with
/// embeddings, meaning), with the ranker that found it; else the last window read, or the first.
fn choose_window(
    documents: &[TurnDocument],
    plans: &[Arc<WindowPlan>],
    previous: Option<&[(i64, u32)]>,
) -> (usize, usize, Option<FoundBy>) {
    let best = documents
        .iter()
        .zip(plans)
        .enumerate()
        .filter_map(|(di, (d, p))| {
            rank_windows(&p.windows, &d.hits, &d.query, &d.chunk_cosines)
                .into_iter()
                .next()
                .map(|w| (di, w))
        })
        .fold(None, |acc: Option<(usize, WindowScore)>, x| match acc {
            Some(a) if a.1.score >= x.1.score => Some(a),
            _ => Some(x),
        });
    if let Some((di, w)) = best {
        return (di, w.window, Some(w.found_by()));
    }
    // No hit: stay where the conversation was, if that window still exists.
    if let Some(&[(id, window)]) = previous
        && let Some(di) = documents.iter().position(|d| d.id == id)
        && (window as usize) >= 1
        && (window as usize) <= plans[di].windows.len()
    {
        return (di, window as usize - 1, None);
    }
    (0, 0, None)
}

pub(super) fn plan(
    model: &mut LoadedModel,
    doc: &TurnDocument,
    budget: usize,
) -> Result<Arc<WindowPlan>, ChatError> {
    let key = (doc.sha256.clone(), budget);
    if let Some(p) = model.documents.plans.get(&key) {
        return Ok(Arc::clone(p));
    }
    let p = Arc::new(plan_windows(&model.tokenizer, &doc.text, budget)?);
    if model.documents.plans.len() >= MAX_PLANS {
        model.documents.plans.clear();
    }
    model.documents.plans.insert(key, Arc::clone(&p));
    Ok(p)
}

/// The ids every prompt with system message `system` starts with, whatever the question:
/// the common prefix of two renderings with different one-letter user messages (so it holds
/// for any template, wherever it puts the system text).
pub(super) fn system_prefix(
    model: &mut LoadedModel,
    system: &str,
) -> Result<Arc<[u32]>, ChatError> {
    let key = *blake3::hash(system.as_bytes()).as_bytes();
    if let Some(p) = model.documents.prefixes.get(&key) {
        return Ok(Arc::clone(p));
    }
    let ids = |q: &str| -> Result<Vec<u32>, ChatError> {
        let text = model.template.render_with_system_fallback(
            &[ChatMessage::system(system), ChatMessage::user(q)],
            true,
        )?;
        tokenize_rendered(&model.tokenizer, &text)
    };
    let (a, b) = (ids("A")?, ids("Z")?);
    let n = common_prefix(&a, &b);
    let prefix: Arc<[u32]> = Arc::from(&a[..n]);
    if model.documents.prefixes.len() >= MAX_PLANS {
        model.documents.prefixes.clear();
    }
    model.documents.prefixes.insert(key, Arc::clone(&prefix));
    Ok(prefix)
}

/// Tokens of `prompt` that are the document prefix of system message `system`.
pub(super) fn prefix_len(
    model: &mut LoadedModel,
    system: &str,
    prompt: &[u32],
) -> Result<usize, ChatError> {
    Ok(common_prefix(&system_prefix(model, system)?, prompt))
}

/// Encodes every window of `doc` (as the system message of a conversation with only it
/// attached): afterwards any question about it prefills only its own tokens.
pub(super) fn encode_windows(
    model: &mut LoadedModel,
    system_prompt: &str,
    doc: &TurnDocument,
) -> Result<EncodeReport, ChatError> {
    let budget = text_budget(model, system_prompt, std::slice::from_ref(doc))?;
    let plan = plan(model, doc, budget)?;
    let mut out = Vec::with_capacity(plan.windows.len());
    for w in &plan.windows {
        let system = system_with_documents(system_prompt, &[document_block(&doc.name, &w.text)]);
        let prefix = system_prefix(model, &system)?;
        let (encoded, _) = encode_prefix(model, doc.id, &prefix)?;
        if plan.windows.len() == 1 {
            pin(model, doc.id, &prefix);
        }
        out.push(EncodedWindow {
            char_start: w.char_start,
            char_end: w.char_end,
            prefix_tokens: prefix.len(),
            encoded_tokens: encoded,
        });
    }
    Ok(EncodeReport {
        doc_tokens: plan.doc_tokens,
        windows: out,
    })
}

/// Tokens of document text one window can hold next to `system_prompt`, the template and the
/// conversation (see `documents::window_budget`).
pub(super) fn text_budget(
    model: &mut LoadedModel,
    system_prompt: &str,
    documents: &[TurnDocument],
) -> Result<usize, ChatError> {
    let empty: Vec<String> = documents
        .iter()
        .map(|d| document_block(&d.name, ""))
        .collect();
    let frame = system_prefix(model, &system_with_documents(system_prompt, &empty))?;
    Ok(window_budget(model.sequence.max_ctx()).saturating_sub(frame.len() + 8))
}

/// Makes sure the whole blocks of `prefix` are cached, computing what is missing in a
/// sequence of its own owned by `document` (then let go: its blocks stay cached and are
/// written behind to RAM and disk). Returns the tokens computed and what was found in which
/// tier (RAM and disk finds were uploaded to the GPU).
pub(super) fn encode_prefix(
    model: &mut LoadedModel,
    document: i64,
    prefix: &[u32],
) -> Result<(usize, Found), ChatError> {
    let seq = &mut *model.sequence;
    let bs = seq.block_size().max(1);
    let whole = prefix.len() / bs * bs;
    if whole == 0 || seq.cached_prefix(&prefix[..whole]) >= whole {
        // Cached by a conversation that read it: still the document's (clearing or deleting
        // the document finds it).
        seq.own_prefix(&prefix[..whole], Owner::Document(document));
        return Ok((0, Found::default()));
    }
    model.residency.make_room(NO_CONVERSATION, whole, seq);
    let (s, found) = model
        .residency
        .acquire_detached(&prefix[..whole], seq)
        .map_err(|_| ChatError::NoSequenceSlot)?;
    seq.set_owner(Owner::Document(document));
    let have = found.total().min(seq.len());
    seq.truncate(have);
    let result = prefix[have..whole]
        .chunks(seq.max_batch().max(1))
        .try_for_each(|chunk| seq.step_last(chunk).map(drop));
    seq.persist();
    seq.free(s);
    result?;
    Ok((whole - have, found))
}

/// Pins `prefix` for `document` (once), keeping at most half a context of pinned document
/// tokens on the GPU: the oldest pins are let go first (their blocks stay in RAM and on disk).
pub(super) fn pin(model: &mut LoadedModel, document: i64, prefix: &[u32]) {
    let state = &mut model.documents;
    if let Some(i) = state
        .pinned
        .iter()
        .position(|(d, p)| *d == document && p.as_slice() == prefix)
    {
        let entry = state.pinned.remove(i);
        state.pinned.push(entry);
        return;
    }
    let cap = model.sequence.max_ctx() / 2;
    while !state.pinned.is_empty()
        && state.pinned.iter().map(|(_, p)| p.len()).sum::<usize>() + prefix.len() > cap
    {
        let (_, old) = state.pinned.remove(0);
        model.sequence.unpin_prefix(&old);
    }
    if prefix.len() <= cap {
        model.sequence.pin_prefix(prefix);
        state.pinned.push((document, prefix.to_vec()));
    }
}

/// The documents with pinned prefixes.
pub(super) fn pinned_documents(model: &LoadedModel) -> Vec<i64> {
    let mut ids: Vec<i64> = model.documents.pinned.iter().map(|(d, _)| *d).collect();
    ids.dedup();
    ids
}

/// Lets go of every pin of `document` (it was detached or deleted).
pub(super) fn unpin_document(model: &mut LoadedModel, document: i64) {
    let state = &mut model.documents;
    let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut state.pinned)
        .into_iter()
        .partition(|(d, _)| *d == document);
    state.pinned = kept;
    for (_, p) in gone {
        model.sequence.unpin_prefix(&p);
    }
}
