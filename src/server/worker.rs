//! The engine thread: it owns the model on the GPU and the KV tiers, takes jobs from a bounded
//! queue, runs up to `parallel` of them at once (`scheduler`: batched decode steps, chunked
//! prefills between them), and sends each job's text and summary back over the job's channel.
//!
//! [`EngineHandle`] is all the HTTP side sees: `submit` a [`Job`], read [`Event`]s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use crate::engine::gpu_forward::GpuForward;
use crate::engine::{CachedRun, SamplerConfig, StopReason};
use crate::kv::{Found, Tiers};
use crate::metrics::{Metrics, RequestRecord};
use crate::tokenizer::Tokenizer;

use super::error::ApiError;

/// One generation for the engine.
#[derive(Debug)]
pub struct Job {
    pub prompt: Vec<u32>,
    pub max_tokens: usize,
    pub sampler: SamplerConfig,
    pub stop: Vec<String>,
    /// Where the text and the summary go; a dropped receiver cancels the job.
    pub events: UnboundedSender<Event>,
    pub queued_at: Instant,
}

/// What the engine sends back for a job: text pieces, then one `Done` or `Failed`.
#[derive(Debug)]
pub enum Event {
    Text(String),
    Done(Box<Finished>),
    Failed(ApiError),
}

/// A finished job's figures.
#[derive(Debug, Clone)]
pub struct Finished {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub reused: Found,
    pub queue_ms: f64,
    pub ttft_ms: f64,
    pub prefill_ms: f64,
    pub decode_tok_s: f64,
    pub stop_reason: StopReason,
}

impl Finished {
    /// OpenAI's `finish_reason`: `length` when the token budget ran out, else `stop`.
    pub fn finish_reason(&self) -> &'static str {
        match self.stop_reason {
            StopReason::MaxTokens => "length",
            _ => "stop",
        }
    }
}

/// Why a job was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    Full,
    Closed,
}

/// The HTTP side's handle on the engine: cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    tx: SyncSender<Job>,
    shared: Arc<Shared>,
}

pub(super) struct Shared {
    capacity: usize,
    pub(super) waiting: AtomicUsize,
    pub(super) running: AtomicUsize,
    /// Set at shutdown (after the grace period): running and queued jobs end at once.
    pub(super) cancel_all: AtomicBool,
    pub(super) metrics: Metrics,
}

impl EngineHandle {
    /// Queues a job; a full queue is refused at once (the caller answers 429).
    pub fn submit(&self, job: Job) -> Result<(), SubmitError> {
        self.shared.waiting.fetch_add(1, Ordering::SeqCst);
        match self.tx.try_send(job) {
            Ok(()) => {
                self.publish_gauges();
                Ok(())
            }
            Err(e) => {
                self.shared.waiting.fetch_sub(1, Ordering::SeqCst);
                Err(match e {
                    TrySendError::Full(_) => SubmitError::Full,
                    TrySendError::Disconnected(_) => SubmitError::Closed,
                })
            }
        }
    }

    /// Whether a submit now would be refused for a full queue (checked before the prompt is
    /// tokenized, so a flood of large requests costs no tokenizer time).
    pub fn is_full(&self) -> bool {
        self.waiting() >= self.shared.capacity
    }

    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    pub fn waiting(&self) -> usize {
        self.shared.waiting.load(Ordering::SeqCst)
    }

    pub fn running(&self) -> usize {
        self.shared.running.load(Ordering::SeqCst)
    }

    /// Ends the running job before its next token and every queued one before it starts.
    pub fn cancel_all(&self) {
        self.shared.cancel_all.store(true, Ordering::SeqCst);
    }

    /// A handle that can only cancel: it does not keep the queue open, so the engine thread
    /// still ends when every [`EngineHandle`] is gone.
    pub fn canceller(&self) -> Canceller {
        Canceller(self.shared.clone())
    }

    fn publish_gauges(&self) {
        publish_gauges(&self.shared);
    }
}

/// See [`EngineHandle::canceller`].
#[derive(Clone)]
pub struct Canceller(Arc<Shared>);

impl Canceller {
    pub fn cancel_all(&self) {
        self.0.cancel_all.store(true, Ordering::SeqCst);
    }
}

pub(super) fn publish_gauges(s: &Shared) {
    s.metrics
        .set_requests_waiting(s.waiting.load(Ordering::SeqCst) as u64);
    s.metrics
        .set_requests_running(s.running.load(Ordering::SeqCst) as u64);
}

/// What the engine thread owns.
pub struct EngineParts {
    pub forward: GpuForward,
    pub tiers: Tiers,
    pub tokenizer: Arc<Tokenizer>,
}

/// The running engine thread; `join` after every handle is dropped flushes the KV tiers.
pub struct EngineThread {
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl EngineThread {
    /// Waits for the thread to drain its queue and flush the tiers.
    pub fn join(mut self) -> Result<(), String> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err("the engine thread panicked".into()),
            None => Ok(()),
        }
    }
}

/// Starts the engine thread, running up to `parallel` jobs at once (at most the engine's
/// `max_step_sequences`). `load` runs on it (the GPU engine stays on the thread that made
/// it); its error is returned here.
pub fn start(
    capacity: usize,
    parallel: usize,
    metrics: Metrics,
    load: impl FnOnce() -> Result<EngineParts, String> + Send + 'static,
) -> Result<(EngineHandle, EngineThread), String> {
    let (tx, rx) = sync_channel::<Job>(capacity);
    let shared = Arc::new(Shared {
        capacity,
        waiting: AtomicUsize::new(0),
        running: AtomicUsize::new(0),
        cancel_all: AtomicBool::new(false),
        metrics,
    });
    let (ready_tx, ready_rx) = sync_channel::<Result<(), String>>(1);
    let thread_shared = shared.clone();
    let thread = std::thread::Builder::new()
        .name("hearth-engine".into())
        .spawn(move || {
            let parts = match load() {
                Ok(p) => p,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return Ok(());
                }
            };
            let _ = ready_tx.send(Ok(()));
            super::scheduler::run(parts, rx, &thread_shared, parallel)
        })
        .map_err(|e| format!("cannot start the engine thread: {e}"))?;
    let mut engine = EngineThread {
        thread: Some(thread),
    };
    match ready_rx.recv() {
        Ok(Ok(())) => Ok((EngineHandle { tx, shared }, engine)),
        Ok(Err(e)) => {
            let _ = engine.thread.take().map(JoinHandle::join);
            Err(e)
        }
        Err(_) => Err(engine
            .join()
            .err()
            .unwrap_or_else(|| "the engine thread ended while loading".into())),
    }
}

/// The `Done` event of a finished job, its figures recorded in the metrics.
pub(super) fn done_event(metrics: &Metrics, run: &CachedRun, queue_ms: f64) -> Event {
    record(metrics, run);
    let s = &run.stats;
    Event::Done(Box::new(Finished {
        prompt_tokens: s.prompt_tokens,
        completion_tokens: s.generated.len(),
        reused: run.reused,
        queue_ms,
        ttft_ms: run.ttft_ms(),
        prefill_ms: s.prefill_ms,
        decode_tok_s: s.decode_tok_s(),
        stop_reason: s.stop_reason,
    }))
}

/// One finished request into the metrics, as the chat engine records a turn.
fn record(metrics: &Metrics, run: &CachedRun) {
    let s = &run.stats;
    let generated = s.generated.len() as u64;
    let record = RequestRecord {
        prompt_tokens: s.prompt_tokens as u64,
        cached: run.reused.as_tier_tokens(),
        prefill_ms: s.prefill_ms,
        ttft_ms: (generated > 0).then_some(run.ttft_ms()),
        generated_tokens: generated,
        decode_tok_s: (generated > 1).then_some(s.decode_tok_s()),
        recompute: None,
    };
    let _ = metrics.record_request(&record);
}
