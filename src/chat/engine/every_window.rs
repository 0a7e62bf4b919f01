//! "Ask every window": a question that spans a whole document larger than the context is
//! asked of each window in turn (each an exact cached prefix, so a window encoded before
//! costs only the question's tokens), then a short combine turn answers from the notes.

use std::sync::atomic::AtomicBool;

use crate::store::{ChunkHit, Settings};

use super::super::documents::TurnDocument;
use super::super::error::ChatError;
use super::super::types::TurnEvent;
use super::{ChatEngine, TurnOutcome, doc_turn};

/// Conversation ids the one-off turns run under (never stored; forgotten afterwards).
const EVERY_WINDOW_BASE: i64 = -1_000_000;

/// The answers of every window, and the combined answer.
#[derive(Debug, Clone, PartialEq)]
pub struct EveryWindowOutcome {
    pub parts: Vec<TurnOutcome>,
    pub combined: TurnOutcome,
}

impl ChatEngine {
    /// Asks `question` of every window of `document` (notes of at most `settings.max_tokens`
    /// tokens each, streamed as `Part` events), then combines the notes into one answer
    /// (streamed as tokens). Each window is read as a one-turn conversation of its own.
    pub fn ask_every_window(
        &mut self,
        document: &TurnDocument,
        question: &str,
        settings: &Settings,
        on_event: &mut dyn FnMut(TurnEvent),
        cancel: &AtomicBool,
    ) -> Result<EveryWindowOutcome, ChatError> {
        let model = self.model.as_mut().ok_or(ChatError::NoModel)?;
        let budget = doc_turn::text_budget(
            model,
            &settings.system_prompt,
            std::slice::from_ref(document),
        )?;
        let plan = doc_turn::plan(model, document, budget)?;
        let mut parts = Vec::with_capacity(plan.windows.len());
        let mut ids = Vec::new();
        let result = (|| {
            for (k, w) in plan.windows.iter().enumerate() {
                // A hit covering exactly window k routes the turn there.
                let only_k = TurnDocument {
                    hits: vec![ChunkHit {
                        chunk_id: 0,
                        ordinal: k as u64,
                        char_start: w.char_start as u64,
                        char_end: w.char_end as u64,
                        score: 1.0,
                    }],
                    query: String::new(),
                    chunk_cosines: Vec::new(),
                    ..document.clone()
                };
                let id = EVERY_WINDOW_BASE - k as i64;
                ids.push(id);
                let out = self.send_with_documents(
                    id,
                    &[],
                    question,
                    std::slice::from_ref(&only_k),
                    settings,
                    &mut |_| {},
                    cancel,
                )?;
                on_event(TurnEvent::Token {
                    text: format!(
                        "[window {} of {}] {}\n",
                        k + 1,
                        plan.windows.len(),
                        out.text.trim()
                    ),
                });
                parts.push(out);
            }
            let notes: Vec<String> = parts
                .iter()
                .enumerate()
                .map(|(k, p)| format!("Part {}: {}", k + 1, p.text.trim()))
                .collect();
            let combine = format!(
                "Question: {question}\n\nNotes from each part of the document \"{}\":\n{}\n\n\
                 Answer the question from these notes.",
                document.name,
                notes.join("\n")
            );
            let id = EVERY_WINDOW_BASE - plan.windows.len() as i64;
            ids.push(id);
            self.send(id, &[], &combine, settings, on_event, cancel)
        })();
        for id in ids {
            self.forget_conversation(id);
        }
        Ok(EveryWindowOutcome {
            parts,
            combined: result?,
        })
    }
}
