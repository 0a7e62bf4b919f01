//! A whole llama/qwen2 forward step on the GPU: every layer recorded into one compute pass,
//! the logits copied to a staging buffer in the same encoder, one `queue.submit` per step.
//!
//! One sequence over the paged KV pool of `hearth::kv` (its block table is a GPU buffer, so
//! shared or reordered blocks need no kernel change; `truncate` frees whole blocks).
//! Dispatches, uniform buffers and bind groups are built once per distinct (tokens in the
//! step, output) and cached, so decode creates nothing after its first step. Weights stay in
//! their GGUF block layout. Steps of one token use split-K attention (scratch sized for one
//! query); steps of several use the tiled causal kernel (no scratch).
//!
//! Logits: steps that feed generation (prefill, decode, greedy) run the output head for the
//! last token only, so the logits buffer needs one row; steps that return every token's
//! logits (`score`) hold at most [`GpuForward::max_logit_rows`] tokens, capped so the rows
//! fit one storage binding at any vocabulary size — callers split longer sequences. Nothing
//! else reads more than the last row (per-token log-probabilities of a reply are the last
//! row of each decode step), so no path keeps a batch × vocabulary buffer.
//!
//! Before anything is uploaded, `load` checks the memory plan (`plan.rs`) and refuses with
//! [`GpuForwardError::ModelDoesNotFit`] and a suggestion when the model cannot fit.

mod batch;
mod graph;
mod plan;
mod profiling;
mod step;

use std::collections::HashMap;
use std::sync::Arc;

use crate::gguf::GgufFile;
use crate::gpu::ops::KvLayout;
use crate::gpu::{
    Dispatch, GpuBuffer, GpuContext, GpuError, GpuWeight, KernelProfiler, StepProfile,
};
use crate::kv::{KV_LAYOUT_VERSION, KvError, KvPool, ModelFingerprint, SeqId};
use crate::model::tensor_names::*;
use crate::model::{ModelConfig, ModelError};
use crate::quant::{self, QuantError};

pub use plan::{MemoryPlan, plan};

#[derive(Debug, thiserror::Error)]
pub enum GpuForwardError {
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Quant(#[from] QuantError),
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error("tensor {name} is missing")]
    MissingTensor { name: String },
    #[error("token {token} at index {index} is outside the vocabulary ({n_vocab})")]
    TokenOutOfRange {
        token: u32,
        index: usize,
        n_vocab: usize,
    },
    #[error(
        "a step of {n} tokens at position {len} does not fit (batch ≤ {max_batch}, context {max_ctx})"
    )]
    DoesNotFit {
        n: usize,
        len: usize,
        max_batch: usize,
        max_ctx: usize,
    },
    /// The memory plan says the model cannot run with these options on this adapter.
    #[error("the model does not fit this GPU: {problem}{}", suggestion.as_ref().map(|s| format!("; {s}")).unwrap_or_default())]
    ModelDoesNotFit {
        problem: String,
        suggestion: Option<String>,
        plan: Box<MemoryPlan>,
    },
    #[error(
        "a step of {n} tokens cannot return every token's logits: at most {max} rows of logits fit (score in steps of at most {max} tokens)"
    )]
    TooManyLogitRows { n: usize, max: usize },
    /// A batched step asked for something it cannot do (see [`GpuForward::step_batch`]).
    #[error("batched step: {0}")]
    Batch(String),
    #[error(
        "{what} needs {bytes} bytes, over the adapter's limit of {limit}; use a smaller batch or context"
    )]
    TooLarge {
        what: &'static str,
        bytes: u64,
        limit: u64,
    },
}

#[derive(Clone, Copy, Debug)]
pub struct GpuForwardOptions {
    /// Context length (KV capacity) in tokens.
    pub max_ctx: usize,
    /// Most tokens one step may take.
    pub max_batch: usize,
    /// Tokens per KV block.
    pub block_size: usize,
    /// f16 K/V (else f32, as the fixtures' llama.cpp runs use).
    pub kv_f16: bool,
    /// Cap on the bytes of one weight chunk below the adapter's binding limit (tests use it
    /// to split small models' tensors as a 7B model's are split on lavapipe).
    pub max_weight_chunk_bytes: Option<u64>,
    /// The memory the adapter offers, when the caller knows it better than the plan's
    /// default (see [`MemoryPlan`]).
    pub memory_limit_bytes: Option<u64>,
    /// How steps of several tokens multiply by the weights.
    pub prefill: PrefillKernel,
    /// Sequences the KV pool can hold at once (they share its blocks).
    pub max_sequences: usize,
    /// Bytes of GPU memory for the KV pool (all layers, K and V). None: one context's worth
    /// (`max_ctx` tokens). Never less than one context, never more than one layer's pool
    /// per storage binding allows.
    pub kv_budget_bytes: Option<u64>,
    /// blake3 of the model file, which roots every block hash (see `kv::ModelFingerprint`);
    /// None roots them at zeros, which is enough while blocks never leave this process.
    pub model_hash: Option<[u8; 32]>,
    /// Most tokens of one step whose logits can be read back (steps that want every token's
    /// logits take at most this many tokens). None: as many as `max_batch`, capped so the
    /// logits fit one storage binding (a 152k vocabulary fits ~220 rows in 128 MiB). Steps
    /// that read only the last token need 1; generation and chat use that.
    pub max_logit_rows: Option<usize>,
    /// Most sequences one batched step ([`GpuForward::step_batch`]) runs together, one token
    /// each (≤ `max_batch` and ≤ `max_sequences`). Sizes the attention scratch, the logits
    /// rows and the block-table rows a batched step binds; 1: no batched steps.
    pub max_step_sequences: usize,
}

/// The weight kernel of a step of several tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrefillKernel {
    /// Matvec passes of up to 8 tokens for short steps and on CPU adapters, tiled matmul
    /// otherwise.
    #[default]
    Auto,
    /// Always the 16×16 tiled matmul.
    Tiled,
    /// Always matvec passes of up to 8 tokens.
    MatVec,
}

impl Default for GpuForwardOptions {
    fn default() -> Self {
        GpuForwardOptions {
            max_ctx: 512,
            max_batch: 64,
            block_size: 16,
            kv_f16: false,
            max_weight_chunk_bytes: None,
            memory_limit_bytes: None,
            prefill: PrefillKernel::Auto,
            max_sequences: 1,
            max_logit_rows: None,
            kv_budget_bytes: None,
            model_hash: None,
            max_step_sequences: 1,
        }
    }
}

/// What a step leaves for the host to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum StepOutput {
    /// Logits of every token of the step.
    AllLogits,
    /// Logits of the last token.
    LastLogits,
    /// The argmax of the last token's logits (4 bytes read back).
    Greedy,
    /// A batched step (token t of sequence row t): every token's logits.
    BatchLogits,
    /// A batched step: every token's argmax (4 bytes each).
    BatchGreedy,
}

impl StepOutput {
    fn is_batch(self) -> bool {
        matches!(self, StepOutput::BatchLogits | StepOutput::BatchGreedy)
    }
}

struct LayerWeights {
    attn_norm: GpuBuffer,
    wq: GpuWeight,
    wk: GpuWeight,
    wv: GpuWeight,
    qkv_bias: Option<[GpuBuffer; 3]>,
    /// The three biases concatenated (q | k | v), as the fused decode matvec reads them.
    qkv_bias_cat: Option<GpuBuffer>,
    wo: GpuWeight,
    ffn_norm: GpuBuffer,
    gate: GpuWeight,
    up: GpuWeight,
    down: GpuWeight,
}

/// Activation buffers, each sized for `max_batch` tokens.
struct Activations {
    tokens: GpuBuffer,
    positions: GpuBuffer,
    x: GpuBuffer,
    normed: GpuBuffer,
    q: GpuBuffer,
    k: GpuBuffer,
    v: GpuBuffer,
    attn: GpuBuffer,
    gate: GpuBuffer,
    up: GpuBuffer,
    logits: GpuBuffer,
    /// The greedy token (argmax kernel output).
    best: GpuBuffer,
    staging: wgpu::Buffer,
}

/// A model loaded on the GPU with its KV cache: one sequence, stepped token batch by batch.
pub struct GpuForward {
    ctx: Arc<GpuContext>,
    cfg: ModelConfig,
    opts: GpuForwardOptions,
    embd: GpuWeight,
    /// None when the output projection is tied to the embedding.
    output: Option<GpuWeight>,
    output_norm: GpuBuffer,
    freq_factors: GpuBuffer,
    layers: Vec<LayerWeights>,
    kv: KvPool,
    /// This model's sequence in `kv`.
    seq: SeqId,
    act: Activations,
    /// Rows of logits `act.logits` holds (see [`GpuForwardOptions::max_logit_rows`]).
    logit_rows: usize,
    attn_scratch: GpuBuffer,
    /// Step plans by (tokens, output); every plan binds the pool's one block-table buffer,
    /// so a plan serves any sequence.
    plans: HashMap<(usize, StepOutput), Vec<Dispatch>>,
    /// Set while profiling: every step times its kernels ([`GpuForward::set_profiling`]).
    profiler: Option<KernelProfiler>,
    last_profile: Option<StepProfile>,
}

fn tensor<'f>(
    file: &'f GgufFile,
    name: &str,
) -> Result<&'f crate::gguf::TensorInfo, GpuForwardError> {
    file.tensor(name)
        .ok_or_else(|| GpuForwardError::MissingTensor {
            name: name.to_string(),
        })
}

fn upload_matrix(
    ctx: &GpuContext,
    file: &GgufFile,
    name: &str,
    max_chunk: u64,
) -> Result<GpuWeight, GpuForwardError> {
    let t = tensor(file, name)?;
    let (k, rows) = match t.dims.as_slice() {
        [k, rows] => (*k, *rows),
        [k, rows, 1] | [k, rows, 1, 1] => (*k, *rows),
        _ => {
            return Err(GpuError::Shape {
                what: "weight",
                detail: format!("{name} has dims {:?}", t.dims),
            }
            .into());
        }
    };
    Ok(GpuWeight::upload_with_limit(
        ctx,
        name,
        t.ggml_type,
        k,
        rows,
        file.tensor_data(t),
        max_chunk,
    )?)
}

fn read_vector(file: &GgufFile, name: &str) -> Result<Vec<f32>, GpuForwardError> {
    let t = tensor(file, name)?;
    Ok(quant::dequantize_to_vec(
        t.ggml_type,
        file.tensor_data(t),
        t.n_elements as usize,
    )?)
}

fn upload_vector(
    ctx: &GpuContext,
    file: &GgufFile,
    name: &str,
) -> Result<GpuBuffer, GpuForwardError> {
    Ok(ctx.upload_pod(name, &read_vector(file, name)?)?)
}

impl GpuForward {
    /// The memory plan of `file` with `opts` on `ctx`'s adapter (what [`GpuForward::load`]
    /// checks first).
    pub fn plan(
        ctx: &GpuContext,
        file: &GgufFile,
        opts: &GpuForwardOptions,
    ) -> Result<MemoryPlan, GpuForwardError> {
        plan(ctx.info(), file, opts)
    }

    /// Uploads the weights of `file` and allocates the KV cache and scratch; refuses with
    /// [`GpuForwardError::ModelDoesNotFit`] when the memory plan says it cannot fit.
    pub fn load(
        shared: Arc<GpuContext>,
        file: &GgufFile,
        opts: GpuForwardOptions,
    ) -> Result<Self, GpuForwardError> {
        let cfg = ModelConfig::from_gguf(file)?;
        let memory = plan::plan_for(shared.info(), file, &cfg, &opts);
        if !memory.fits {
            return Err(GpuForwardError::ModelDoesNotFit {
                problem: memory.problem.clone().unwrap_or_default(),
                suggestion: memory.suggestion.clone(),
                plan: Box::new(memory),
            });
        }
        let ctx: &GpuContext = &shared;
        let max_chunk = opts
            .max_weight_chunk_bytes
            .map_or(ctx.max_binding_bytes(), |c| c.min(ctx.max_binding_bytes()));
        if opts.max_step_sequences == 0
            || opts.max_step_sequences > opts.max_batch
            || opts.max_step_sequences > opts.max_sequences.max(1)
        {
            return Err(GpuForwardError::Batch(format!(
                "max_step_sequences {} must be ≥ 1, ≤ max_batch {} and ≤ max_sequences {}",
                opts.max_step_sequences, opts.max_batch, opts.max_sequences
            )));
        }
        if opts.max_ctx == 0 || opts.max_batch == 0 || opts.block_size == 0 {
            return Err(GpuForwardError::DoesNotFit {
                n: opts.max_batch,
                len: 0,
                max_batch: opts.max_batch,
                max_ctx: opts.max_ctx,
            });
        }
        let layers = (0..cfg.n_layer)
            .map(|l| {
                let (qkv_bias, qkv_bias_cat) = if cfg.qkv_bias {
                    let names = [ATTN_Q_BIAS, ATTN_K_BIAS, ATTN_V_BIAS].map(|b| blk(l, b));
                    let mut cat = Vec::new();
                    for name in &names {
                        cat.extend(read_vector(file, name)?);
                    }
                    (
                        Some([
                            upload_vector(ctx, file, &names[0])?,
                            upload_vector(ctx, file, &names[1])?,
                            upload_vector(ctx, file, &names[2])?,
                        ]),
                        Some(ctx.upload_pod("qkv-bias", &cat)?),
                    )
                } else {
                    (None, None)
                };
                let layer = LayerWeights {
                    attn_norm: upload_vector(ctx, file, &blk(l, ATTN_NORM))?,
                    wq: upload_matrix(ctx, file, &blk(l, ATTN_Q), max_chunk)?,
                    wk: upload_matrix(ctx, file, &blk(l, ATTN_K), max_chunk)?,
                    wv: upload_matrix(ctx, file, &blk(l, ATTN_V), max_chunk)?,
                    qkv_bias,
                    qkv_bias_cat,
                    wo: upload_matrix(ctx, file, &blk(l, ATTN_OUTPUT), max_chunk)?,
                    ffn_norm: upload_vector(ctx, file, &blk(l, FFN_NORM))?,
                    gate: upload_matrix(ctx, file, &blk(l, FFN_GATE), max_chunk)?,
                    up: upload_matrix(ctx, file, &blk(l, FFN_UP), max_chunk)?,
                    down: upload_matrix(ctx, file, &blk(l, FFN_DOWN), max_chunk)?,
                };
                ctx.flush_uploads()?;
                Ok(layer)
            })
            .collect::<Result<Vec<_>, GpuForwardError>>()?;
        let embd = upload_matrix(ctx, file, TOKEN_EMBD, max_chunk)?;
        let output = if cfg.tied_output {
            None
        } else {
            Some(upload_matrix(ctx, file, OUTPUT, max_chunk)?)
        };
        let output_norm = upload_vector(ctx, file, OUTPUT_NORM)?;
        let half = cfg.rope.n_dims / 2;
        let ff = cfg
            .rope
            .freq_factors
            .clone()
            .unwrap_or_else(|| vec![1.0; half]);
        let freq_factors = ctx.upload_pod("rope-freq-factors", &ff)?;

        let layout = Self::layout_of(&cfg, &opts);
        let n_blocks = plan::pool_blocks(&cfg, &opts, ctx.max_binding_bytes());
        let mut kv = KvPool::new(
            Arc::clone(&shared),
            layout,
            cfg.n_layer,
            n_blocks,
            opts.max_sequences.max(1),
            opts.max_ctx,
        )?;
        kv.set_root(Self::fingerprint(&cfg, &opts).root());
        let seq = kv.new_sequence()?;

        let limit = ctx.max_binding_bytes();
        let b = opts.max_batch;
        let f32s = |what: &'static str, n: usize| -> Result<GpuBuffer, GpuForwardError> {
            let bytes = (n * 4) as u64;
            if bytes > limit {
                return Err(GpuForwardError::TooLarge { what, bytes, limit });
            }
            Ok(ctx.zeroed(what, bytes)?)
        };
        let logit_rows = plan::logit_rows(&cfg, &opts, limit);
        let logits = f32s("logits", logit_rows * cfg.n_vocab)?;
        let staging = ctx.create_buffer(&wgpu::BufferDescriptor {
            label: Some("logits-staging"),
            size: logits.buffer.size(),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let act = Activations {
            tokens: ctx.zeroed("tokens", (b * 4) as u64)?,
            positions: ctx.zeroed("positions", (b * 4) as u64)?,
            x: f32s("x", b * cfg.n_embd)?,
            normed: f32s("normed", b * cfg.n_embd.max(cfg.q_dim()))?,
            q: f32s("q", b * cfg.q_dim())?,
            k: f32s("k", b * cfg.kv_dim())?,
            v: f32s("v", b * cfg.kv_dim())?,
            attn: f32s("attn", b * cfg.q_dim())?,
            gate: f32s("gate", b * cfg.n_ff)?,
            up: f32s("up", b * cfg.n_ff)?,
            logits,
            best: ctx.zeroed("argmax", 4 * opts.max_step_sequences as u64)?,
            staging,
        };
        let scratch_bytes = plan::attention_scratch_bytes(&cfg, &opts, ctx.info().loops_limited());
        if scratch_bytes > limit {
            return Err(GpuForwardError::TooLarge {
                what: "attention scratch",
                bytes: scratch_bytes,
                limit,
            });
        }
        let attn_scratch = ctx.zeroed("attention-scratch", scratch_bytes)?;
        Ok(GpuForward {
            ctx: Arc::clone(&shared),
            cfg,
            opts,
            embd,
            output,
            output_norm,
            freq_factors,
            layers,
            kv,
            seq,
            act,
            logit_rows,
            attn_scratch,
            plans: HashMap::new(),
            profiler: None,
            last_profile: None,
        })
    }

    fn layout_of(cfg: &ModelConfig, opts: &GpuForwardOptions) -> KvLayout {
        KvLayout {
            block_size: opts.block_size,
            n_kv_head: cfg.n_head_kv,
            head_dim: cfg.head_dim,
            f16: opts.kv_f16,
        }
    }

    /// What roots this model's block hashes: the file's hash and every setting that
    /// changes a block's bytes.
    pub fn fingerprint(cfg: &ModelConfig, opts: &GpuForwardOptions) -> ModelFingerprint {
        ModelFingerprint {
            file_hash: opts.model_hash.unwrap_or([0; 32]),
            kv_type: if opts.kv_f16 { "f16" } else { "f32" },
            block_size: opts.block_size as u32,
            rope_dims: cfg.rope.n_dims as u32,
            rope_freq_base: cfg.rope.freq_base,
            rope_freq_scale: cfg.rope.freq_scale(),
            rope_style: match cfg.rope.style {
                crate::model::RopeStyle::Normal => 0,
                crate::model::RopeStyle::Neox => 1,
            },
            layout_version: KV_LAYOUT_VERSION,
        }
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The paged KV pool (blocks, sequences, the prefix index).
    pub fn kv(&self) -> &KvPool {
        &self.kv
    }

    pub fn kv_mut(&mut self) -> &mut KvPool {
        &mut self.kv
    }

    /// Tokens in the KV cache.
    pub fn len(&self) -> usize {
        self.kv.len(self.seq).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets the sequence (the pool is overwritten as new tokens arrive).
    pub fn reset(&mut self) {
        self.truncate(0);
    }

    /// Drops the cached positions ≥ `len` (no-op when `len >= self.len()`): a conversation
    /// whose history changed keeps the common prefix and re-runs the rest.
    pub fn truncate(&mut self, len: usize) {
        // Only fails for an unknown sequence, and ours lives as long as self.
        let _ = self.kv.truncate(self.seq, len);
    }

    /// The sequence steps run on.
    pub fn sequence(&self) -> SeqId {
        self.seq
    }

    /// A new, empty sequence in the KV pool (at most `max_sequences` live at once); steps
    /// still run on the current one until [`GpuForward::select_sequence`].
    pub fn new_sequence(&mut self) -> Result<SeqId, GpuForwardError> {
        Ok(self.kv.new_sequence()?)
    }

    /// Makes `s` the sequence that steps, `len` and `truncate` act on.
    pub fn select_sequence(&mut self, s: SeqId) -> Result<(), GpuForwardError> {
        self.kv.len(s)?;
        self.seq = s;
        Ok(())
    }

    /// A new sequence holding the longest prefix of `tokens` the cache has (blocks computed
    /// by any sequence before), made current. Returns it and the tokens it holds.
    pub fn acquire(&mut self, tokens: &[u32]) -> Result<(SeqId, usize), GpuForwardError> {
        let (s, n) = self.kv.acquire(tokens)?;
        self.seq = s;
        Ok((s, n))
    }

    /// The token ids the current sequence holds.
    pub fn tokens(&self) -> &[u32] {
        self.kv.tokens(self.seq).unwrap_or(&[])
    }

    /// Frees `s`; its registered blocks stay cached. Freeing the current sequence leaves
    /// steps without one (they fail with `UnknownSequence`) until `select_sequence` or
    /// `acquire`.
    pub fn free_sequence(&mut self, s: SeqId) -> Result<(), GpuForwardError> {
        Ok(self.kv.free_sequence(s)?)
    }

    /// Tokens of KV space a step can take (free and evictable cached blocks × block size).
    pub fn free_tokens(&self) -> usize {
        self.kv.allocator().n_free() * self.opts.block_size
    }

    /// The context length: the most tokens the KV cache holds.
    pub fn max_ctx(&self) -> usize {
        self.opts.max_ctx
    }

    /// Tokens that can still be added before the cache is full (`max_ctx() - len()`).
    pub fn tokens_capacity(&self) -> usize {
        self.opts.max_ctx - self.len()
    }

    /// Most tokens one [`GpuForward::step`] may take.
    pub fn max_batch(&self) -> usize {
        self.opts.max_batch
    }

    /// Most tokens of a step that returns every token's logits.
    pub fn max_logit_rows(&self) -> usize {
        self.logit_rows
    }

    pub fn options(&self) -> &GpuForwardOptions {
        &self.opts
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// Runs `tokens` at positions len().. in one submit. Returns the logits of every token
    /// (tokens.len() × n_vocab, at most [`GpuForward::max_logit_rows`] tokens) when
    /// `all_logits`, else those of the last token only (the output head runs for it alone).
    pub fn step(&mut self, tokens: &[u32], all_logits: bool) -> Result<Vec<f32>, GpuForwardError> {
        let mode = if all_logits {
            StepOutput::AllLogits
        } else {
            StepOutput::LastLogits
        };
        let bytes = self.run(tokens, mode)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Runs `tokens` in one submit and returns the greedy next token, picked on the GPU
    /// (argmax kernel; the lowest id on ties), reading back 4 bytes instead of the logits.
    pub fn step_greedy(&mut self, tokens: &[u32]) -> Result<u32, GpuForwardError> {
        let bytes = self.run(tokens, StepOutput::Greedy)?;
        let word: [u8; 4] =
            bytes
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or(GpuError::Readback(crate::gpu::ReadbackError::Map(
                    "short argmax readback".into(),
                )))?;
        Ok(u32::from_le_bytes(word))
    }

    /// Runs `tokens` in steps of at most `max_batch` and returns the last token's logits.
    pub fn prefill(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GpuForwardError> {
        let mut last = Err(GpuForwardError::DoesNotFit {
            n: 0,
            len: self.len(),
            max_batch: self.opts.max_batch,
            max_ctx: self.opts.max_ctx,
        });
        for chunk in tokens.chunks(self.opts.max_batch) {
            last = Ok(self.step(chunk, false)?);
        }
        last
    }
}
