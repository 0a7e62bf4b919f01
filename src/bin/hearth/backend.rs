//! One forward pass, on the CPU reference or the GPU engine, behind the same calls, so
//! `score`, `generate` and `bench` treat both devices alike.

use anyhow::{Context, Result};
use hearth::engine::gpu_forward::{GpuForward, GpuForwardOptions};
use hearth::gguf::GgufFile;
use hearth::gpu::GpuContext;
use hearth::reference::{KvCache, ReferenceModel};
use std::sync::Arc;

use super::util::{Device, KvType};

/// How a [`Backend`] is sized.
pub struct BackendOptions {
    /// Tokens of context it must hold.
    pub max_tokens: usize,
    /// Most tokens one GPU step prefills.
    pub max_batch: usize,
    /// The GPU's KV element type (the CPU reference keeps f32).
    pub kv: KvType,
    /// Whether [`Backend::forward_all`] will be used (else the GPU keeps one row of logits).
    pub all_logits: bool,
}

// One per process: the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Backend<'a> {
    Cpu {
        model: ReferenceModel<'a>,
        cache: KvCache,
    },
    Gpu {
        forward: Box<GpuForward>,
        max_batch: usize,
    },
}

/// The GPU context a command on `device` needs: opened once per process and shared by each
/// `Backend::Gpu`; none for the CPU reference.
pub fn gpu_for(device: Device) -> Result<Option<Arc<GpuContext>>> {
    match device {
        Device::Gpu => gpu_context().map(Some),
        Device::Cpu => Ok(None),
    }
}

fn gpu_context() -> Result<Arc<GpuContext>> {
    GpuContext::new()
        .map(Arc::new)
        .context("no usable GPU adapter (use --device cpu for the CPU reference)")
}

impl<'a> Backend<'a> {
    /// A backend sized by `o` (see [`BackendOptions`]).
    pub fn load(
        device: Device,
        file: &'a GgufFile,
        gpu: Option<&Arc<GpuContext>>,
        o: BackendOptions,
    ) -> Result<Self> {
        let BackendOptions {
            max_tokens,
            max_batch,
            kv,
            all_logits,
        } = o;
        match device {
            Device::Cpu => {
                let model = ReferenceModel::load(file).context("cannot load the model")?;
                let cache = model.new_cache(max_tokens);
                Ok(Backend::Cpu { model, cache })
            }
            Device::Gpu => {
                let ctx = gpu.context("the GPU context was not opened")?;
                let opts = GpuForwardOptions {
                    max_ctx: max_tokens.max(1),
                    max_batch: max_batch.clamp(1, max_tokens.max(1)),
                    kv_f16: kv == KvType::F16,
                    max_logit_rows: if all_logits { None } else { Some(1) },
                    ..GpuForwardOptions::default()
                };
                let forward = GpuForward::load(Arc::clone(ctx), file, opts)
                    .context("cannot load the model on the GPU")?;
                Ok(Backend::Gpu {
                    forward: Box::new(forward),
                    max_batch: opts.max_batch,
                })
            }
        }
    }

    /// The GPU engine, when this backend is one.
    pub fn gpu_mut(&mut self) -> Option<&mut GpuForward> {
        match self {
            Backend::Gpu { forward, .. } => Some(forward),
            Backend::Cpu { .. } => None,
        }
    }

    pub fn n_vocab(&self) -> usize {
        match self {
            Backend::Cpu { model, .. } => model.config().n_vocab,
            Backend::Gpu { forward, .. } => forward.config().n_vocab,
        }
    }

    pub fn reset(&mut self) {
        match self {
            Backend::Cpu { cache, .. } => cache.clear(),
            Backend::Gpu { forward, .. } => forward.reset(),
        }
    }

    /// Appends `tokens` and returns the logits of every one of them (row-major).
    pub fn forward_all(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        match self {
            Backend::Cpu { model, cache } => Ok(model.forward(cache, tokens)?),
            Backend::Gpu { forward, max_batch } => {
                let mut out = Vec::with_capacity(tokens.len() * forward.config().n_vocab);
                // Each step's logits must fit the logits buffer (one storage binding).
                let step = (*max_batch).min(forward.max_logit_rows()).max(1);
                for chunk in tokens.chunks(step) {
                    out.extend(forward.step(chunk, true)?);
                }
                Ok(out)
            }
        }
    }

    /// Appends `tokens` and returns the last one's logits.
    pub fn forward_last(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        match self {
            Backend::Cpu { model, cache } => {
                let n_vocab = model.config().n_vocab;
                let logits = model.forward(cache, tokens)?;
                Ok(logits[logits.len() - n_vocab..].to_vec())
            }
            Backend::Gpu { forward, .. } => Ok(forward.prefill(tokens)?),
        }
    }

    /// Appends `tokens` and returns the greedy next token (on the GPU the argmax runs there and
    /// only 4 bytes come back).
    pub fn greedy_next(&mut self, tokens: &[u32]) -> Result<u32> {
        match self {
            Backend::Gpu { forward, max_batch } if tokens.len() <= *max_batch => {
                Ok(forward.step_greedy(tokens)?)
            }
            _ => {
                let logits = self.forward_last(tokens)?;
                Ok(argmax(&logits))
            }
        }
    }
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}
