//! Batched decode: several sequences, one token each, in one forward step and one submit.
//!
//! Token t of the step belongs to `items[t].0`: it sits at that sequence's next position (the
//! positions buffer), writes its K/V and reads its keys through block-table row t
//! ([`KvPool::sync_batch`](crate::kv::KvPool::sync_batch) fills row t with that sequence's
//! table; `rope_kv` and the split-K attention take the row stride), so sequences of any
//! lengths, sharing prefix blocks or not, run together. The projections are the multi-column
//! path of a prefill step over the B token columns. Plans are cached per (B, output) and bind
//! the pool's one table buffer, so a plan serves any set of B sequences.

use std::collections::HashSet;

use crate::kv::SeqId;

use super::{GpuForward, GpuForwardError, StepOutput};

impl GpuForward {
    /// Most sequences one [`GpuForward::step_batch`] takes.
    pub fn max_step_sequences(&self) -> usize {
        self.opts.max_step_sequences
    }

    /// Tokens in sequence `s`.
    pub fn len_of(&self, s: SeqId) -> Result<usize, GpuForwardError> {
        Ok(self.kv.len(s)?)
    }

    /// Runs one token for each `(sequence, token)` of `items` (distinct sequences, at most
    /// [`GpuForward::max_step_sequences`]) in one submit: each token goes at its sequence's
    /// next position and attends over that sequence alone. Returns each item's logits (in
    /// `items` order). One item is an ordinary decode step of that sequence.
    pub fn step_batch(&mut self, items: &[(SeqId, u32)]) -> Result<Vec<Vec<f32>>, GpuForwardError> {
        if let [(s, token)] = items {
            return Ok(vec![self.step_on(*s, *token, StepOutput::LastLogits)?]);
        }
        let bytes = self.run_batch(items, StepOutput::BatchLogits)?;
        let logits: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
        Ok(logits
            .chunks_exact(self.cfg.n_vocab)
            .map(<[f32]>::to_vec)
            .collect())
    }

    /// [`GpuForward::step_batch`] returning each item's greedy next token (argmax on the GPU;
    /// the lowest id on ties), reading back 4 bytes per sequence.
    pub fn step_batch_greedy(
        &mut self,
        items: &[(SeqId, u32)],
    ) -> Result<Vec<u32>, GpuForwardError> {
        if let [(s, token)] = items {
            let bytes = self.step_bytes_on(*s, *token, StepOutput::Greedy)?;
            return Ok(bytemuck::pod_collect_to_vec(&bytes[..4.min(bytes.len())]));
        }
        let bytes = self.run_batch(items, StepOutput::BatchGreedy)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// One token on sequence `s` through the single-sequence path; the current sequence is
    /// left as it was.
    fn step_on(
        &mut self,
        s: SeqId,
        token: u32,
        mode: StepOutput,
    ) -> Result<Vec<f32>, GpuForwardError> {
        let bytes = self.step_bytes_on(s, token, mode)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    fn step_bytes_on(
        &mut self,
        s: SeqId,
        token: u32,
        mode: StepOutput,
    ) -> Result<Vec<u8>, GpuForwardError> {
        self.kv.len(s)?;
        let current = std::mem::replace(&mut self.seq, s);
        let out = self.run(&[token], mode);
        self.seq = current;
        out
    }

    fn run_batch(
        &mut self,
        items: &[(SeqId, u32)],
        mode: StepOutput,
    ) -> Result<Vec<u8>, GpuForwardError> {
        let n = items.len();
        if n == 0 || n > self.opts.max_step_sequences || n > self.logit_rows {
            return Err(GpuForwardError::Batch(format!(
                "{n} sequences in one step (1 ..= {} allowed)",
                self.opts.max_step_sequences.min(self.logit_rows)
            )));
        }
        let mut seen = HashSet::new();
        let mut positions = Vec::with_capacity(n);
        let mut tokens = Vec::with_capacity(n);
        for (index, &(s, token)) in items.iter().enumerate() {
            if !seen.insert(s) {
                return Err(GpuForwardError::Batch(format!(
                    "sequence {s} appears twice in one step"
                )));
            }
            let len = self.kv.len(s)?;
            if len + 1 > self.opts.max_ctx {
                return Err(GpuForwardError::DoesNotFit {
                    n: 1,
                    len,
                    max_batch: self.opts.max_batch,
                    max_ctx: self.opts.max_ctx,
                });
            }
            if token as usize >= self.cfg.n_vocab {
                return Err(GpuForwardError::TokenOutOfRange {
                    token,
                    index,
                    n_vocab: self.cfg.n_vocab,
                });
            }
            positions.push(len as u32);
            tokens.push(token);
        }
        let key = self.stage_step(&tokens, &positions, mode)?;
        let (src, bytes) = match mode {
            StepOutput::BatchGreedy => (&self.act.best, (n * 4) as u64),
            _ => (&self.act.logits, (n * self.cfg.n_vocab * 4) as u64),
        };
        // Room for each token; on failure, undo the ones already made.
        let seqs: Vec<SeqId> = items.iter().map(|&(s, _)| s).collect();
        for (i, &(s, token)) in items.iter().enumerate() {
            if let Err(e) = self.kv.append(s, &[token]) {
                for (&s, &len) in seqs[..i].iter().zip(&positions) {
                    let _ = self.kv.truncate(s, len as usize);
                }
                return Err(e.into());
            }
        }
        let mut enc = self.ctx.encoder("forward-batch-step");
        if let Err(e) = self.kv.sync_batch(&mut enc, &seqs) {
            for (&s, &len) in seqs.iter().zip(&positions) {
                let _ = self.kv.truncate(s, len as usize);
            }
            return Err(e.into());
        }
        let src = src.buffer.clone();
        match self.submit_plan(enc, key, &src, bytes) {
            Ok(out) => {
                for &s in &seqs {
                    self.kv.commit(s)?;
                }
                Ok(out)
            }
            Err(e) => {
                for (&s, &len) in seqs.iter().zip(&positions) {
                    let _ = self.kv.truncate(s, len as usize);
                }
                Err(e)
            }
        }
    }
}
