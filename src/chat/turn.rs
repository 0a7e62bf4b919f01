//! One conversation turn from end to end, shared by the desktop app and the CLI chat: load the
//! conversation's history and attached documents (with the question's hits), append the user's
//! message, run the engine, append the reply with its stats and save the exact token segments
//! so the next turn extends them.
//!
//! The engine itself runs wherever the caller wants it, never inside the async runtime that
//! drives the store (the disk tier blocks on a runtime of its own): the app holds `ChatEngine`
//! behind a lock and generates on a blocking thread through [`run_turn`], whose engine step is a
//! closure that receives a [`TurnRequest`] (owned, `Send`) and returns its [`TurnOutcome`]; the
//! CLI, single-threaded, calls the same halves in order: [`prepare_turn`], [`TurnRequest::run`],
//! [`finish_turn`].

use std::future::Future;
use std::sync::atomic::AtomicBool;

use crate::store::{Message, Role, Settings, Store};

use super::documents::TurnDocument;
use super::engine::{ChatEngine, TurnOutcome};
use super::error::ChatError;
use super::library::turn_documents;
use super::types::TurnEvent;

/// What the engine needs for one turn, gathered from the store.
#[derive(Debug, Clone)]
pub struct TurnRequest {
    pub conversation_id: i64,
    /// The conversation's messages before this turn, oldest first.
    pub history: Vec<Message>,
    /// The question as the user typed it.
    pub text: String,
    /// The conversation's attached documents with the question's hits, oldest attachment first.
    pub documents: Vec<TurnDocument>,
    pub settings: Settings,
    /// The user's message, already saved.
    pub user_message: Message,
}

impl TurnRequest {
    /// Runs the turn on `engine` (blocking: call it where blocking is allowed).
    pub fn run(
        &self,
        engine: &mut ChatEngine,
        on_event: &mut dyn FnMut(TurnEvent),
        cancel: &AtomicBool,
    ) -> Result<TurnOutcome, ChatError> {
        engine.send_with_documents(
            self.conversation_id,
            &self.history,
            &self.text,
            &self.documents,
            &self.settings,
            on_event,
            cancel,
        )
    }
}

/// A finished turn: both saved messages and what the engine reported.
#[derive(Debug, Clone)]
pub struct TurnResult {
    pub user_message: Message,
    /// The reply as saved, its stats included.
    pub reply: Message,
    pub outcome: TurnOutcome,
}

/// Runs one turn of `conversation_id`: `text` is the user's message; `engine_step` runs the
/// engine on the request (see the module doc). The user's message is saved before the engine
/// runs, so a failed turn keeps the question (as the app always did); the reply is saved only
/// when the engine returns one. Saving the token segments is best effort: a failure costs the
/// next turn a re-render, never the conversation.
///
/// The error type is the engine step's (`ChatError` or anything a `ChatError` converts into,
/// such as the app's readable strings), so a caller can add its own failures (a lost thread).
///
/// The engine step must not block inside the runtime that polls this future (the disk tier
/// runs its own): hand it to a blocking thread, or call [`prepare_turn`], [`TurnRequest::run`]
/// and [`finish_turn`] one after the other as the CLI does.
pub async fn run_turn<F, Fut, E>(
    store: &Store,
    conversation_id: i64,
    text: &str,
    settings: &Settings,
    engine_step: F,
) -> Result<TurnResult, E>
where
    F: FnOnce(TurnRequest) -> Fut,
    Fut: Future<Output = Result<TurnOutcome, E>>,
    E: From<ChatError>,
{
    let request = prepare_turn(store, conversation_id, text, settings).await?;
    let user_message = request.user_message.clone();
    let outcome = engine_step(request).await?;
    finish_turn(store, user_message, outcome)
        .await
        .map_err(E::from)
}

/// The first half of a turn: loads the history and the attached documents (with the question's
/// hits) and saves the user's message.
pub async fn prepare_turn(
    store: &Store,
    conversation_id: i64,
    text: &str,
    settings: &Settings,
) -> Result<TurnRequest, ChatError> {
    if text.trim().is_empty() {
        return Err(ChatError::EmptyMessage);
    }
    let history = store.get_conversation(conversation_id).await?.messages;
    let documents = turn_documents(store, conversation_id, text).await?;
    let user_message = store
        .append_message(conversation_id, Role::User, text, None)
        .await?;
    Ok(TurnRequest {
        conversation_id,
        history,
        text: text.to_string(),
        documents,
        settings: settings.clone(),
        user_message,
    })
}

/// The second half: saves the reply with its stats, then (best effort) the exact token
/// segments of both messages.
pub async fn finish_turn(
    store: &Store,
    user_message: Message,
    outcome: TurnOutcome,
) -> Result<TurnResult, ChatError> {
    let reply = store
        .append_message(
            user_message.conversation_id,
            Role::Assistant,
            &outcome.text,
            Some(&outcome.stats),
        )
        .await?;
    let _ = store
        .set_message_tokens(user_message.id, &outcome.user_tokens)
        .await;
    if let Some(tokens) = &outcome.reply_tokens {
        let _ = store.set_message_tokens(reply.id, tokens).await;
    }
    Ok(TurnResult {
        user_message,
        reply,
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn never(_: TurnRequest) -> Result<TurnOutcome, ChatError> {
        panic!("the engine must not run")
    }

    #[tokio::test]
    async fn an_empty_message_saves_nothing_and_never_runs_the_engine() {
        let store = Store::open_in_memory().await.unwrap();
        let conv = store.create_conversation(None).await.unwrap();
        let settings = Settings::default();
        let err = run_turn(&store, conv.id, "   ", &settings, never)
            .await
            .unwrap_err();
        assert!(matches!(err, ChatError::EmptyMessage));
        let after = store.get_conversation(conv.id).await.unwrap();
        assert!(after.messages.is_empty());
    }

    #[tokio::test]
    async fn a_failed_engine_step_keeps_the_question_and_saves_no_reply() {
        let store = Store::open_in_memory().await.unwrap();
        let conv = store.create_conversation(None).await.unwrap();
        let settings = Settings::default();
        let err = run_turn(&store, conv.id, "hello", &settings, |req| async move {
            assert_eq!(req.text, "hello");
            assert!(req.history.is_empty());
            assert!(req.documents.is_empty());
            assert_eq!(req.user_message.content, "hello");
            Err::<TurnOutcome, _>(ChatError::NoModel)
        })
        .await
        .unwrap_err();
        assert!(matches!(err, ChatError::NoModel));
        let after = store.get_conversation(conv.id).await.unwrap();
        assert_eq!(after.messages.len(), 1);
        assert_eq!(after.messages[0].role, Role::User);
    }

    #[tokio::test]
    async fn an_unknown_conversation_fails_before_anything_is_saved() {
        let store = Store::open_in_memory().await.unwrap();
        let settings = Settings::default();
        let err = run_turn(&store, 4242, "hello", &settings, never).await;
        assert!(err.is_err());
    }
}
