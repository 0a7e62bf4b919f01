//! One step of the current sequence: tokens and positions uploaded, the cached plan for (tokens,
//! output) recorded after the sequence's block table is synced, one submit, the output read back.

use super::{GpuForward, GpuForwardError, StepOutput};

impl GpuForward {
    pub(super) fn run(
        &mut self,
        tokens: &[u32],
        mode: StepOutput,
    ) -> Result<Vec<u8>, GpuForwardError> {
        let n = tokens.len();
        let len = self.len();
        if n == 0 || n > self.opts.max_batch || len + n > self.opts.max_ctx {
            return Err(GpuForwardError::DoesNotFit {
                n,
                len,
                max_batch: self.opts.max_batch,
                max_ctx: self.opts.max_ctx,
            });
        }
        if mode == StepOutput::AllLogits && n > self.logit_rows {
            return Err(GpuForwardError::TooManyLogitRows {
                n,
                max: self.logit_rows,
            });
        }
        if let Some((index, &token)) = tokens
            .iter()
            .enumerate()
            .find(|(_, t)| **t as usize >= self.cfg.n_vocab)
        {
            return Err(GpuForwardError::TokenOutOfRange {
                token,
                index,
                n_vocab: self.cfg.n_vocab,
            });
        }
        let positions: Vec<u32> = (len as u32..(len + n) as u32).collect();
        let key = self.stage_step(tokens, &positions, mode)?;
        let (src, bytes) = match mode {
            StepOutput::AllLogits | StepOutput::BatchLogits => {
                (&self.act.logits, (n * self.cfg.n_vocab * 4) as u64)
            }
            StepOutput::LastLogits => (&self.act.logits, (self.cfg.n_vocab * 4) as u64),
            StepOutput::Greedy => (&self.act.best, 4),
            StepOutput::BatchGreedy => (&self.act.best, (n * 4) as u64),
        };
        self.kv.append(self.seq, tokens)?;
        let mut enc = self.ctx.encoder("forward-step");
        self.kv.sync(&mut enc, self.seq)?;
        let src = src.buffer.clone();
        match self.submit_plan(enc, key, &src, bytes) {
            Ok(out) => {
                self.kv.commit(self.seq)?;
                Ok(out)
            }
            Err(e) => {
                let _ = self.kv.truncate(self.seq, len);
                Err(e)
            }
        }
    }

    /// Uploads a step's tokens and their positions and builds the plan for (tokens, `mode`) on
    /// first use; returns its key.
    pub(super) fn stage_step(
        &mut self,
        tokens: &[u32],
        positions: &[u32],
        mode: StepOutput,
    ) -> Result<(usize, StepOutput), GpuForwardError> {
        self.ctx
            .write(&self.act.tokens.buffer, 0, bytemuck::cast_slice(tokens));
        self.ctx.write(
            &self.act.positions.buffer,
            0,
            bytemuck::cast_slice(positions),
        );
        let key = (tokens.len(), mode);
        if !self.plans.contains_key(&key) {
            let plan = self.build_plan(tokens.len(), mode)?;
            self.plans.insert(key, plan);
        }
        Ok(key)
    }

    /// Records the plan for `key` after what `enc` holds — each dispatch in a timed pass of its
    /// own while profiling — copies `bytes` of `src` to the staging buffer, submits once and
    /// reads them back; while profiling, the step's kernel times are kept for `take_profile`.
    pub(super) fn submit_plan(
        &mut self,
        mut enc: wgpu::CommandEncoder,
        key: (usize, StepOutput),
        src: &wgpu::Buffer,
        bytes: u64,
    ) -> Result<Vec<u8>, GpuForwardError> {
        let plan = &self.plans[&key];
        if let Some(profiler) = &mut self.profiler {
            profiler.record(&self.ctx, &mut enc, plan);
        } else {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("forward"),
                ..Default::default()
            });
            for d in plan {
                d.record(&mut pass);
            }
        }
        self.ctx
            .counters()
            .count_dispatches(plan.iter().filter(|d| d.is_live()).count() as u64);
        enc.copy_buffer_to_buffer(src, 0, &self.act.staging, 0, bytes);
        self.ctx.submit([enc.finish()]);
        let out = self.ctx.map_and_copy_range(&self.act.staging, bytes)?;
        if let Some(profiler) = &mut self.profiler {
            self.last_profile = Some(profiler.read(&self.ctx)?);
        }
        Ok(out)
    }
}
