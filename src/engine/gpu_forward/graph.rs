//! The dispatch list of one forward step (every layer), built once per step shape.

use crate::gpu::ops::{self, RopeParams};
use crate::gpu::{Dispatch, GpuBuffer, GpuError, GpuWeight};
use crate::model::RopeStyle;

use super::{GpuForward, PrefillKernel, StepOutput};

impl GpuForward {
    /// A projection of `n` token rows of `x` through `w` into `y`.
    pub(super) fn project(
        &self,
        d: &mut Vec<Dispatch>,
        w: &GpuWeight,
        x: &GpuBuffer,
        y: &GpuBuffer,
        n: usize,
    ) -> Result<(), GpuError> {
        self.project_into(d, w, x, y, n, false)
    }

    /// As [`GpuForward::project`], with `accumulate`: y += the product (the residual add folded
    /// into the matvec; the tiled matmul path adds in a dispatch of its own, into `scratch`
    /// first).
    fn project_add(
        &self,
        d: &mut Vec<Dispatch>,
        w: &GpuWeight,
        x: &GpuBuffer,
        y: &GpuBuffer,
        scratch: &GpuBuffer,
        n: usize,
    ) -> Result<(), GpuError> {
        if n == 1 || self.matvec_prefill(n) {
            self.project_into(d, w, x, y, n, true)
        } else {
            self.project_into(d, w, x, scratch, n, false)?;
            d.push(ops::prepare_add(
                &self.ctx,
                &y.buffer,
                0,
                &scratch.buffer,
                0,
                n * w.rows as usize,
            )?);
            Ok(())
        }
    }

    fn project_into(
        &self,
        d: &mut Vec<Dispatch>,
        w: &GpuWeight,
        x: &GpuBuffer,
        y: &GpuBuffer,
        n: usize,
        accumulate: bool,
    ) -> Result<(), GpuError> {
        if n == 1 {
            d.extend(if accumulate {
                ops::prepare_matvec_add(&self.ctx, w, &x.buffer, 0, &y.buffer, 0)?
            } else {
                ops::prepare_matvec(&self.ctx, w, &x.buffer, 0, &y.buffer, 0, 64, true)?
            });
        } else if self.matvec_prefill(n) {
            // Short prefills: one pass over the weights for up to 16 tokens at a time beats
            // 16×16 tiles that are mostly empty. On a CPU adapter it beats the tiles at any
            // length (their workgroup barriers are expensive there): lavapipe, Llama-shaped
            // layers at k = 2048, Q4_K prefill of 64 tokens 6.3 tok/s against 3.1 tiled.
            for t0 in (0..n).step_by(ops::MATVEC_MAX_COLS) {
                let cols = ops::Columns {
                    m: (n - t0).min(ops::MATVEC_MAX_COLS),
                    x_offset: t0 * w.k as usize,
                    x_stride: w.k as usize,
                    y_offset: t0 * w.rows as usize,
                    y_stride: w.rows as usize,
                };
                d.extend(if accumulate {
                    ops::prepare_matvec_cols_add(&self.ctx, w, &x.buffer, &y.buffer, &cols)?
                } else {
                    ops::prepare_matvec_cols(&self.ctx, w, &x.buffer, &y.buffer, &cols, 64)?
                });
            }
        } else {
            d.extend(ops::prepare_matmul(&self.ctx, w, &x.buffer, &y.buffer, n)?);
        }
        Ok(())
    }

    /// Whether a step of `n` > 1 tokens runs as matvec passes rather than tiled matmul.
    fn matvec_prefill(&self, n: usize) -> bool {
        match self.opts.prefill {
            PrefillKernel::Auto => n <= ops::MATVEC_SHORT_STEP || self.ctx.info().loops_limited(),
            PrefillKernel::Tiled => false,
            PrefillKernel::MatVec => true,
        }
    }

    pub(super) fn build_plan(&self, n: usize, mode: StepOutput) -> Result<Vec<Dispatch>, GpuError> {
        let (ctx, cfg, a) = (&*self.ctx, &self.cfg, &self.act);
        let style = match cfg.rope.style {
            RopeStyle::Normal => ops::RopeStyle::Normal,
            RopeStyle::Neox => ops::RopeStyle::Neox,
        };
        let rope = |heads: usize| RopeParams {
            n_tokens: n,
            n_heads: heads,
            head_dim: cfg.head_dim,
            n_rot: cfg.rope.n_dims,
            style,
            freq_base: cfg.rope.freq_base,
            freq_scale: cfg.rope.freq_scale(),
        };
        let layout = Self::layout_of(cfg, &self.opts);
        let scale = 1.0 / (cfg.head_dim as f32).sqrt();
        let (qd, kvd, e) = (cfg.q_dim(), cfg.kv_dim(), cfg.n_embd);
        let mut d = ops::prepare_embed(ctx, &self.embd, &a.tokens.buffer, &a.x.buffer, n)?;
        let bt = self.kv.table_buffer();
        // A batched step's token t reads and writes through block-table row t.
        let batched = mode.is_batch();
        let stride = if batched { self.kv.table_stride() } else { 0 };
        for (l, layer) in self.layers.iter().enumerate() {
            let (kp, vp) = self.kv.layer(l).ok_or_else(|| GpuError::Shape {
                what: "kv",
                detail: format!("no pool for layer {l}"),
            })?;
            let attn_norm = ops::FoldedNorm {
                weight: &layer.attn_norm.buffer,
                eps: cfg.rms_eps,
            };
            let rmsnorm = |g: &GpuBuffer| {
                ops::prepare_rmsnorm(
                    ctx,
                    &a.x.buffer,
                    &g.buffer,
                    &a.normed.buffer,
                    n,
                    e,
                    cfg.rms_eps,
                    true,
                )
            };
            // q, k, v (and biases): one dispatch in decode, with the norm folded in where the
            // fused kernel takes it; else the norm and three projections.
            let qkv_w = [&layer.wq, &layer.wk, &layer.wv];
            let qkv_out = [&a.q.buffer, &a.k.buffer, &a.v.buffer];
            let bias = layer.qkv_bias_cat.as_ref().map(|b| &b.buffer);
            if n == 1 && ops::fused_matvec_supported(ctx, &qkv_w, true) {
                d.push(ops::prepare_matvec_qkv(
                    ctx,
                    qkv_w,
                    &a.x.buffer,
                    Some(attn_norm),
                    bias,
                    qkv_out,
                )?);
            } else if n == 1 && ops::fused_matvec_supported(ctx, &qkv_w, false) {
                d.push(rmsnorm(&layer.attn_norm)?);
                d.push(ops::prepare_matvec_qkv(
                    ctx,
                    qkv_w,
                    &a.normed.buffer,
                    None,
                    bias,
                    qkv_out,
                )?);
            } else {
                d.push(rmsnorm(&layer.attn_norm)?);
                self.project(&mut d, &layer.wq, &a.normed, &a.q, n)?;
                self.project(&mut d, &layer.wk, &a.normed, &a.k, n)?;
                self.project(&mut d, &layer.wv, &a.normed, &a.v, n)?;
                if let Some([bq, bk, bv]) = &layer.qkv_bias {
                    for (y, b, period) in [(&a.q, bq, qd), (&a.k, bk, kvd), (&a.v, bv, kvd)] {
                        d.push(ops::prepare_add_bias(
                            ctx,
                            &y.buffer,
                            0,
                            &b.buffer,
                            period,
                            n * period,
                        )?);
                    }
                }
            }
            d.push(ops::prepare_rope_kv_rows(
                ctx,
                &layout,
                &rope(cfg.n_head),
                &ops::RopeKvBuffers {
                    q: &a.q.buffer,
                    k: &a.k.buffer,
                    v: &a.v.buffer,
                    k_pool: kp,
                    v_pool: vp,
                    positions: &a.positions.buffer,
                    block_table: bt,
                    freq_factors: &self.freq_factors.buffer,
                },
                stride,
            )?);
            if !batched && n > 1 && ops::prefill_attention_supports(cfg.head_dim) {
                let split_keys = ops::prefill_split_keys(
                    cfg.head_dim,
                    self.opts.max_ctx,
                    ctx.info().loops_limited(),
                );
                d.extend(ops::prepare_prefill_attention(
                    ctx,
                    &layout,
                    cfg.n_head,
                    &a.q.buffer,
                    kp,
                    vp,
                    bt,
                    &a.positions.buffer,
                    &a.attn.buffer,
                    &self.attn_scratch.buffer,
                    n,
                    self.opts.max_ctx,
                    split_keys,
                    scale,
                )?);
            } else {
                let buffers = [
                    &a.q.buffer,
                    kp,
                    vp,
                    bt,
                    &a.positions.buffer,
                    &a.attn.buffer,
                    &self.attn_scratch.buffer,
                ];
                d.extend(ops::prepare_attention_rows(
                    ctx,
                    &layout,
                    cfg.n_head,
                    buffers,
                    n,
                    self.opts.max_ctx,
                    scale,
                    stride,
                )?);
            }
            // x += o · attn (the residual add folded into the matvec).
            self.project_add(&mut d, &layer.wo, &a.attn, &a.x, &a.normed, n)?;
            // gate, up and SwiGLU: one dispatch in decode (norm folded in where it fits).
            let glu_w = [&layer.gate, &layer.up];
            let ffn_norm = ops::FoldedNorm {
                weight: &layer.ffn_norm.buffer,
                eps: cfg.rms_eps,
            };
            if n == 1 && ops::fused_matvec_supported(ctx, &glu_w, true) {
                d.push(ops::prepare_matvec_glu(
                    ctx,
                    &layer.gate,
                    &layer.up,
                    &a.x.buffer,
                    Some(ffn_norm),
                    &a.gate.buffer,
                )?);
            } else if n == 1 && ops::fused_matvec_supported(ctx, &glu_w, false) {
                d.push(rmsnorm(&layer.ffn_norm)?);
                d.push(ops::prepare_matvec_glu(
                    ctx,
                    &layer.gate,
                    &layer.up,
                    &a.normed.buffer,
                    None,
                    &a.gate.buffer,
                )?);
            } else {
                d.push(rmsnorm(&layer.ffn_norm)?);
                self.project(&mut d, &layer.gate, &a.normed, &a.gate, n)?;
                self.project(&mut d, &layer.up, &a.normed, &a.up, n)?;
                d.push(ops::prepare_swiglu(
                    ctx,
                    &a.gate.buffer,
                    0,
                    &a.up.buffer,
                    0,
                    n * cfg.n_ff,
                )?);
            }
            // x += down · swiglu.
            self.project_add(&mut d, &layer.down, &a.gate, &a.x, &a.normed, n)?;
        }
        d.push(ops::prepare_rmsnorm(
            ctx,
            &a.x.buffer,
            &self.output_norm.buffer,
            &a.normed.buffer,
            n,
            e,
            cfg.rms_eps,
            true,
        )?);
        let output = self.output.as_ref().unwrap_or(&self.embd);
        if mode == StepOutput::AllLogits || batched {
            self.project(&mut d, output, &a.normed, &a.logits, n)?;
        } else {
            d.extend(ops::prepare_matvec(
                ctx,
                output,
                &a.normed.buffer,
                (n - 1) * e,
                &a.logits.buffer,
                0,
                64,
                true,
            )?);
        }
        if mode == StepOutput::BatchGreedy {
            for t in 0..n {
                d.push(ops::prepare_argmax(
                    ctx,
                    &a.logits.buffer,
                    t * cfg.n_vocab,
                    cfg.n_vocab,
                    &a.best.buffer,
                    t,
                )?);
            }
        }
        if mode == StepOutput::Greedy {
            let best = &a.best.buffer;
            d.push(ops::prepare_argmax(
                ctx,
                &a.logits.buffer,
                0,
                cfg.n_vocab,
                best,
                0,
            )?);
        }
        Ok(d)
    }
}
