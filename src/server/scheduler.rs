//! The engine thread's scheduler: up to `parallel` requests run at once, each in a sequence of
//! its own in the one KV pool, and every running decode advances in one batched step.
//!
//! A loop iteration: admit queued jobs while a slot is free and the KV pool has room for their
//! prompt and token budget (a job that cannot fit waits for running ones to end; alone it
//! always runs, as before); run one prefill chunk (at most `max_batch` tokens) of the oldest
//! request still prefilling; then one [`GpuForward::step_batch`] for every request that is
//! decoding. So a long prompt delays running streams by one chunk per step, never by its whole
//! prefill. A request takes its sequence — the longest cached prefix from any tier
//! ([`engine::admit`]) — when its first prefill chunk is due, so requests admitted together
//! that share a prefix share its blocks (the earlier one's prefill has registered them by
//! then); a finished request's new blocks are written behind ([`engine::release`]). Sampling, streaming and stop strings
//! are each request's own ([`TokenLoop`]); a client that went away (its receiver dropped) or a
//! shutdown past its grace ends the request at its next step and frees its sequence.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

use crate::engine::gpu_forward::GpuForward;
use crate::engine::{self, CacheUse, CachedRun, Sampler, TokenLoop};
use crate::kv::{Found, Owner, SeqId, Tiers};
use crate::tokenizer::Tokenizer;

use super::error::ApiError;
use super::worker::{EngineParts, Event, Job, Shared, done_event, publish_gauges};

/// A request holding a sequence.
struct Active<'t> {
    job: Job,
    /// None until its first prefill chunk is due (see the module doc).
    seq: Option<SeqId>,
    run: TokenLoop<'t>,
    /// Prompt tokens in the sequence (its prefill is done when this is the prompt's length).
    filled: usize,
    /// The token the next decode step feeds (None while prefilling, or once finished).
    next: Option<u32>,
    finished: bool,
    /// Ended by an error (already sent).
    failed: bool,
    reused: Found,
    lookup_ms: f64,
    queue_ms: f64,
}

impl Active<'_> {
    fn cancelled(&self, shared: &Shared) -> bool {
        self.job.events.is_closed() || shared.cancel_all.load(Ordering::Relaxed)
    }

    fn prefilling(&self) -> bool {
        !self.finished && self.filled < self.job.prompt.len()
    }

    /// Samples from `logits` and streams the text; marks the request finished when it ends.
    fn advance(&mut self, logits: &[f32], shared: &Shared) -> Result<(), String> {
        let cancelled = self.cancelled(shared);
        let events = &self.job.events;
        let mut on_text = |text: &str| {
            if !text.is_empty() {
                let _ = events.send(Event::Text(text.to_string()));
            }
        };
        match self.run.next(logits, cancelled, &mut on_text) {
            Ok(Some(t)) => self.next = Some(t),
            Ok(None) => {
                self.next = None;
                self.finished = true;
            }
            Err(e) => return Err(format!("decoding generated tokens failed: {e}")),
        }
        Ok(())
    }
}

/// Tokens of KV a job may still need: its prompt and budget, plus a block of slack.
fn need(job: &Job, block_size: usize) -> usize {
    job.prompt.len() + job.max_tokens + block_size
}

/// Whether the pool has room for `job` beside what the running requests may still add.
fn fits(forward: &GpuForward, active: &[Active], job: &Job) -> bool {
    let bs = forward.options().block_size;
    let pending: usize = active
        .iter()
        .map(|a| {
            let len = a.seq.and_then(|s| forward.len_of(s).ok()).unwrap_or(0);
            need(&a.job, bs).saturating_sub(len)
        })
        .sum();
    forward.free_tokens() >= pending + need(job, bs)
}

enum Recv {
    Job(Job),
    Empty,
    Closed,
}

fn receive(rx: &Receiver<Job>, block: bool) -> Recv {
    if block {
        return rx.recv().map_or(Recv::Closed, Recv::Job);
    }
    match rx.try_recv() {
        Ok(j) => Recv::Job(j),
        Err(TryRecvError::Empty) => Recv::Empty,
        Err(TryRecvError::Disconnected) => Recv::Closed,
    }
}

/// The engine's loop until every handle is gone and the running requests are done; then the
/// tiers are flushed.
pub(super) fn run(
    parts: EngineParts,
    rx: Receiver<Job>,
    shared: &Shared,
    parallel: usize,
) -> Result<(), String> {
    // One owner for every API request: blocks are accounted as anonymous requests without an
    // owner list that grows with each request.
    let owner = Owner::Request(u64::from(std::process::id()));
    let EngineParts {
        mut forward,
        mut tiers,
        tokenizer,
    } = parts;
    let tokenizer: &Tokenizer = &tokenizer;
    let parallel = parallel.clamp(1, forward.max_step_sequences());
    let mut active: Vec<Active> = Vec::new();
    let mut held: Option<Job> = None;
    let mut open = true;
    loop {
        // Admit while a slot is free.
        while active.len() < parallel {
            let job = match held.take() {
                Some(j) => j,
                None if !open => break,
                None => match receive(&rx, active.is_empty()) {
                    Recv::Job(j) => j,
                    Recv::Empty => break,
                    Recv::Closed => {
                        open = false;
                        break;
                    }
                },
            };
            if !active.is_empty() && !fits(&forward, &active, &job) {
                held = Some(job);
                break;
            }
            shared.waiting.fetch_sub(1, Ordering::SeqCst);
            if job.events.is_closed() {
                publish_gauges(shared);
                continue;
            }
            active.push(start(tokenizer, job));
            shared.running.store(active.len(), Ordering::SeqCst);
            publish_gauges(shared);
        }
        if active.is_empty() {
            if !open && held.is_none() {
                break;
            }
            continue;
        }
        step(&mut forward, &mut tiers, &mut active, shared, owner);
        // Finished requests leave: blocks written behind, sequence freed, summary sent.
        let mut i = 0;
        while i < active.len() {
            if active[i].finished {
                let a = active.swap_remove(i);
                finish(&mut forward, &mut tiers, a, owner, shared, active.len());
            } else {
                i += 1;
            }
        }
    }
    tiers
        .flush()
        .map_err(|e| format!("cannot flush the KV cache to disk: {e}"))
}

/// Admits `job`: its token loop (its sequence comes with its first prefill chunk).
fn start<'t>(tokenizer: &'t Tokenizer, mut job: Job) -> Active<'t> {
    let queue_ms = job.queued_at.elapsed().as_secs_f64() * 1000.0;
    let run = TokenLoop::new(
        tokenizer,
        Sampler::new(job.sampler.clone()),
        job.max_tokens,
        std::mem::take(&mut job.stop),
        &job.prompt,
        0,
        Instant::now(),
    );
    Active {
        job,
        seq: None,
        run,
        filled: 0,
        next: None,
        finished: false,
        failed: false,
        reused: Found::default(),
        lookup_ms: 0.0,
        queue_ms,
    }
}

/// Gives `a` its sequence: the longest prefix of its prompt any tier holds.
fn take_sequence(
    forward: &mut GpuForward,
    tiers: &mut Tiers,
    a: &mut Active,
    owner: Owner,
) -> Result<SeqId, String> {
    let begin = Instant::now();
    let admitted = engine::admit(forward, tiers, &a.job.prompt, CacheUse::ReadWrite, owner)
        .map_err(|e| format!("generation failed: {e}"))?;
    a.lookup_ms = begin.elapsed().as_secs_f64() * 1000.0;
    a.seq = Some(admitted.seq);
    a.filled = admitted.keep;
    a.reused = admitted.reused;
    a.run.set_cached(admitted.keep);
    Ok(admitted.seq)
}

/// One scheduler step: a prefill chunk of the oldest prefilling request, then one batched
/// decode step of every decoding request. Cancelled requests end here.
fn step(
    forward: &mut GpuForward,
    tiers: &mut Tiers,
    active: &mut [Active],
    shared: &Shared,
    owner: Owner,
) {
    for a in active.iter_mut() {
        if !a.finished && a.cancelled(shared) {
            // The token loop records the cancellation.
            let _ = a.advance(&[], shared);
        }
    }
    if let Some(a) = active.iter_mut().find(|a| a.prefilling()) {
        let seq = match a.seq {
            Some(s) => Ok(s),
            None => take_sequence(forward, tiers, a, owner),
        };
        let end = (a.filled + forward.max_batch()).min(a.job.prompt.len());
        let result = seq.and_then(|s| {
            forward
                .select_sequence(s)
                .and_then(|_| forward.step(&a.job.prompt[a.filled..end], false))
                .map_err(|e| format!("generation failed: {e}"))
        });
        match result {
            Ok(logits) => {
                a.filled = end;
                if end == a.job.prompt.len() {
                    a.run.prefilled();
                    if let Err(e) = a.advance(&logits, shared) {
                        fail(a, e);
                    }
                }
            }
            Err(e) => fail(a, e),
        }
    }
    let decoding: Vec<usize> = (0..active.len())
        .filter(|&i| !active[i].finished && active[i].next.is_some() && active[i].seq.is_some())
        .collect();
    if decoding.is_empty() {
        return;
    }
    let items: Vec<(SeqId, u32)> = decoding
        .iter()
        .map(|&i| {
            (
                active[i].seq.unwrap_or_default(),
                active[i].next.unwrap_or(0),
            )
        })
        .collect();
    match forward.step_batch(&items) {
        Ok(rows) => {
            for (&i, logits) in decoding.iter().zip(&rows) {
                if let Err(e) = active[i].advance(logits, shared) {
                    fail(&mut active[i], e);
                }
            }
        }
        Err(e) => {
            for &i in &decoding {
                fail(&mut active[i], format!("generation failed: {e}"));
            }
        }
    }
}

/// Ends a request with an error (sent when it leaves).
fn fail(a: &mut Active, message: String) {
    a.finished = true;
    a.failed = true;
    a.next = None;
    let _ = a
        .job
        .events
        .send(Event::Failed(ApiError::internal(message)));
}

/// A finished request leaves: its blocks are written behind, its sequence freed, its figures
/// recorded and sent (after the running gauge drops, so a client never sees itself running).
fn finish(
    forward: &mut GpuForward,
    tiers: &mut Tiers,
    a: Active,
    owner: Owner,
    shared: &Shared,
    still_running: usize,
) {
    let failed = a.failed;
    let events = a.job.events;
    let mut on_text = |text: &str| {
        if !failed && !text.is_empty() {
            let _ = events.send(Event::Text(text.to_string()));
        }
    };
    let stats = a.run.finish(&mut on_text);
    let released = match a.seq {
        Some(seq) => engine::release(forward, tiers, seq, CacheUse::ReadWrite, owner),
        None => Ok(()),
    };
    shared.running.store(still_running, Ordering::SeqCst);
    publish_gauges(shared);
    if failed {
        return;
    }
    let event = match released {
        Ok(()) => {
            let run = CachedRun {
                stats,
                reused: a.reused,
                lookup_ms: a.lookup_ms,
            };
            done_event(&shared.metrics, &run, a.queue_ms)
        }
        Err(e) => Event::Failed(ApiError::internal(format!("generation failed: {e}"))),
    };
    let _ = events.send(event);
}
