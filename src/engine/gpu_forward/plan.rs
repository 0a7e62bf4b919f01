//! The memory plan checked before a model is loaded: what weights, KV cache and scratch
//! need, against what the adapter can bind and (where it can be known) hold.
//!
//! wgpu reports no VRAM size. The plan therefore uses two kinds of limits:
//! - hard, per-buffer ones from the device limits: one weight row, one layer's K (or V)
//!   pool and each activation buffer must fit one storage binding
//!   (`max_storage_buffer_binding_size`, capped by `max_buffer_size`);
//! - a total, `limit_bytes`: `GpuForwardOptions::memory_limit_bytes` when the caller knows
//!   it; else, for CPU adapters (lavapipe) and integrated GPUs, which allocate from system
//!   RAM, the host's `MemAvailable` (Linux `/proc/meminfo`); else (discrete GPUs) unknown,
//!   and only the per-buffer limits are checked.

use crate::gguf::GgufFile;
use crate::gpu::GpuInfo;
use crate::model::{ModelConfig, estimate_memory};
use crate::quant::GgmlType;

use super::{GpuForwardError, GpuForwardOptions};
use crate::gpu::ops;

/// What a model needs on the GPU with given options, and whether that fits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    pub weights_bytes: u64,
    /// The K/V element type chosen: "f16" (two halves packed per u32 word, so no
    /// `SHADER_F16` is needed) or "f32".
    pub kv_type: &'static str,
    /// Tokens the KV pool holds (all sequences and cached prefixes together).
    pub kv_tokens: u64,
    pub kv_bytes: u64,
    /// Activations, logits (and their staging copy) and attention scratch.
    pub scratch_bytes: u64,
    pub total_bytes: u64,
    /// The memory the adapter offers, when it can be known (see the module docs).
    pub limit_bytes: Option<u64>,
    pub fits: bool,
    /// Why it does not fit (None when it fits).
    pub problem: Option<String>,
    /// What to change so that it fits (smaller context, f16 KV, smaller batch), when
    /// something can.
    pub suggestion: Option<String>,
}

/// Bytes of one block of one layer's K (or V) pool.
fn layer_block_bytes(cfg: &ModelConfig, opts: &GpuForwardOptions) -> u64 {
    let per_token = cfg.kv_dim() as u64 * if opts.kv_f16 { 2 } else { 4 };
    opts.block_size.max(1) as u64 * per_token
}

/// Blocks in the KV pool: the budget's worth (all layers, K and V), at least one context's,
/// at most what one storage binding of `binding` bytes holds per layer (when one context
/// alone is over that, the plan refuses).
pub(super) fn pool_blocks(cfg: &ModelConfig, opts: &GpuForwardOptions, binding: u64) -> usize {
    let context = opts.max_ctx.div_ceil(opts.block_size.max(1)).max(1);
    let per_block_all = layer_block_bytes(cfg, opts) * 2 * cfg.n_layer.max(1) as u64;
    let budget = opts
        .kv_budget_bytes
        .map_or(context, |b| (b / per_block_all.max(1)) as usize);
    let fit = (binding / layer_block_bytes(cfg, opts).max(1)) as usize;
    budget.min(fit).max(context)
}

/// Bytes of one layer's K (or V) pool.
pub(super) fn layer_pool_bytes(cfg: &ModelConfig, opts: &GpuForwardOptions, binding: u64) -> u64 {
    pool_blocks(cfg, opts, binding) as u64 * layer_block_bytes(cfg, opts)
}

/// The activation buffers of one step of `max_batch` tokens, by name and f32 count.
pub(super) fn activation_sizes(cfg: &ModelConfig, b: usize) -> [(&'static str, usize); 8] {
    [
        ("x", b * cfg.n_embd),
        ("normed", b * cfg.n_embd.max(cfg.q_dim())),
        ("q", b * cfg.q_dim()),
        ("k", b * cfg.kv_dim()),
        ("v", b * cfg.kv_dim()),
        ("attn", b * cfg.q_dim()),
        ("gate", b * cfg.n_ff),
        ("up", b * cfg.n_ff),
    ]
}

/// Rows of logits a step can return: `opts.max_logit_rows`, or `max_batch`, capped by what
/// fits one binding of `binding` bytes (at least one row).
pub(super) fn logit_rows(cfg: &ModelConfig, opts: &GpuForwardOptions, binding: u64) -> usize {
    let fit = (binding / (cfg.n_vocab.max(1) as u64 * 4)).max(1) as usize;
    opts.max_logit_rows
        .unwrap_or(opts.max_batch)
        .max(opts.max_step_sequences)
        .clamp(1, opts.max_batch.max(1))
        .min(fit)
}

fn scratch_bytes(
    cfg: &ModelConfig,
    opts: &GpuForwardOptions,
    binding: u64,
    loops_limited: bool,
) -> u64 {
    let b = opts.max_batch;
    let acts: usize = activation_sizes(cfg, b).iter().map(|(_, n)| n).sum();
    let logits = 2 * logit_rows(cfg, opts, binding) * cfg.n_vocab; // logits + staging
    (acts + logits) as u64 * 4 + attention_scratch_bytes(cfg, opts, loops_limited)
}

/// Bytes of host memory available (Linux), for adapters that allocate from it.
fn host_available_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

fn limit_for(info: &GpuInfo, opts: &GpuForwardOptions) -> Option<u64> {
    opts.memory_limit_bytes
        .or_else(|| match info.device_type.as_str() {
            "Cpu" | "IntegratedGpu" => host_available_bytes(),
            _ => None,
        })
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

/// Plans `file` with `opts` on the adapter described by `info` (see the module docs).
pub fn plan(
    info: &GpuInfo,
    file: &GgufFile,
    opts: &GpuForwardOptions,
) -> Result<MemoryPlan, GpuForwardError> {
    let cfg = ModelConfig::from_gguf(file)?;
    Ok(plan_for(info, file, &cfg, opts))
}

pub(super) fn plan_for(
    info: &GpuInfo,
    file: &GgufFile,
    cfg: &ModelConfig,
    opts: &GpuForwardOptions,
) -> MemoryPlan {
    let kv_type = if opts.kv_f16 {
        GgmlType::F16
    } else {
        GgmlType::F32
    };
    let est = estimate_memory(file, cfg, opts.max_ctx, kv_type);
    let binding = info
        .max_storage_buffer_binding_size
        .min(info.max_buffer_size);
    let kv_bytes = layer_pool_bytes(cfg, opts, binding) * 2 * cfg.n_layer as u64;
    let scratch = scratch_bytes(cfg, opts, binding, info.loops_limited());
    let total = est
        .weights_bytes
        .saturating_add(kv_bytes)
        .saturating_add(scratch);
    let limit_bytes = limit_for(info, opts);
    let mut plan = MemoryPlan {
        weights_bytes: est.weights_bytes,
        kv_type: if opts.kv_f16 { "f16" } else { "f32" },
        kv_tokens: pool_blocks(cfg, opts, binding) as u64 * opts.block_size as u64,
        kv_bytes,
        scratch_bytes: scratch,
        total_bytes: total,
        limit_bytes,
        fits: true,
        problem: None,
        suggestion: None,
    };
    let mut refuse = |problem: String, suggestion: Option<String>| {
        if plan.fits {
            plan.fits = false;
            plan.problem = Some(problem);
            plan.suggestion = suggestion;
        }
    };
    if opts.max_ctx == 0 || opts.max_batch == 0 || opts.block_size == 0 {
        refuse(
            "context, batch and block size must be > 0".into(),
            Some("use the defaults".into()),
        );
    }
    // One weight row must fit one binding (rows are never split).
    for t in file.tensors() {
        let row = t.dims.first().copied().unwrap_or(0);
        if let Some(row_bytes) = t.ggml_type.bytes_for(row)
            && row_bytes > binding.min(1 << 31)
        {
            refuse(
                format!(
                    "a row of {} ({}) is larger than one storage binding ({})",
                    t.name,
                    mib(row_bytes),
                    mib(binding)
                ),
                None,
            );
        }
    }
    // One layer's K (or V) pool is one binding.
    let pool = layer_pool_bytes(cfg, opts, binding);
    if pool > binding {
        let per_token = |f16: bool| cfg.kv_dim() as u64 * if f16 { 2 } else { 4 };
        let fit_ctx = |f16: bool| {
            (binding / per_token(f16)) / opts.block_size.max(1) as u64 * opts.block_size as u64
        };
        let suggestion = if opts.kv_f16 {
            format!("use a context of at most {} tokens", fit_ctx(true))
        } else {
            format!(
                "use an f16 KV cache (context up to {} tokens) or a context of at most {} tokens",
                fit_ctx(true),
                fit_ctx(false)
            )
        };
        refuse(
            format!(
                "one layer's KV pool at {} tokens needs {}, over one storage binding ({})",
                opts.max_ctx,
                mib(pool),
                mib(binding)
            ),
            Some(suggestion),
        );
    }
    let b = opts.max_batch;
    let mut buffers = activation_sizes(cfg, b)
        .map(|(n, e)| (n, e as u64 * 4))
        .to_vec();
    buffers.push((
        "attention scratch",
        attention_scratch_bytes(cfg, opts, info.loops_limited()),
    ));
    for (name, bytes) in buffers {
        if bytes > binding {
            refuse(
                format!(
                    "the {name} buffer for a batch of {b} tokens needs {}, over one storage binding ({})",
                    mib(bytes),
                    mib(binding)
                ),
                Some("use a smaller batch (max_batch) or context".to_string()),
            );
        }
    }
    if let Some(limit) = limit_bytes
        && total > limit
    {
        let fixed = est.weights_bytes.saturating_add(scratch);
        let suggestion = if fixed >= limit {
            "choose a smaller model or a smaller quantization (e.g. Q4_0 / Q4_K_M)".to_string()
        } else {
            let per_token = layer_block_bytes(cfg, opts) * 2 * cfg.n_layer as u64
                / opts.block_size.max(1) as u64;
            let ctx = (limit - fixed) / per_token.max(1);
            let ctx = ctx / opts.block_size.max(1) as u64 * opts.block_size as u64;
            let context_kv = per_token * opts.max_ctx as u64;
            if kv_bytes > context_kv && fixed + context_kv <= limit {
                format!(
                    "use a smaller KV cache budget (at most {})",
                    mib(limit - fixed)
                )
            } else if opts.kv_f16 {
                format!("use a context of at most {ctx} tokens")
            } else {
                format!("use an f16 KV cache or a context of at most {ctx} tokens (f32 KV)")
            }
        };
        refuse(
            format!(
                "weights ({}) + KV cache ({}) + scratch ({}) = {} exceed the {} this adapter offers",
                mib(est.weights_bytes),
                mib(kv_bytes),
                mib(scratch),
                mib(total),
                mib(limit)
            ),
            Some(suggestion),
        );
    }
    plan
}

/// Bytes of the attention scratch for `opts`: the split-K partials of one query per sequence
/// of a batched decode step (`max_step_sequences`) when
/// the tiled prefill kernel takes the steps of several tokens — or that kernel's own partials
/// where loops are limited and a context takes several splits — else the whole batch.
pub(super) fn attention_scratch_bytes(
    cfg: &ModelConfig,
    opts: &GpuForwardOptions,
    loops_limited: bool,
) -> u64 {
    if !ops::prefill_attention_supports(cfg.head_dim) {
        return ops::attention_scratch_bytes(
            opts.max_batch,
            cfg.n_head,
            cfg.head_dim,
            opts.max_ctx,
        );
    }
    // Decode: one query per sequence of a batched step.
    let decode = ops::attention_scratch_bytes(
        opts.max_step_sequences.max(1),
        cfg.n_head,
        cfg.head_dim,
        opts.max_ctx,
    );
    let split = ops::prefill_split_keys(cfg.head_dim, opts.max_ctx, loops_limited);
    let prefill = ops::prefill_attention_scratch_bytes(
        opts.max_batch,
        cfg.n_head,
        cfg.head_dim,
        opts.max_ctx,
        split,
    );
    decode.max(prefill)
}
