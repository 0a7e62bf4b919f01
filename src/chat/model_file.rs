//! Opening a model file the user picked: path checks with plain errors, the facts the model
//! panel shows (`ModelInfo`), and the memory plan before a load.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use crate::engine::gpu_forward::{self, GpuForwardOptions};
use crate::gguf::GgufFile;
use crate::gpu::GpuInfo;
use crate::model::{ModelConfig, estimate_memory};
use crate::quant::GgmlType;

use super::error::ChatError;
use super::types::{MemoryPlan, ModelInfo};

const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// Checks that `path` is an existing regular file starting with the GGUF magic, then opens it.
pub fn open_model_file(path: &Path) -> Result<GgufFile, ChatError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ChatError::FileMissing {
            path: path.to_path_buf(),
        },
        _ => ChatError::Read {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    if !meta.is_file() {
        return Err(ChatError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path)
        .and_then(|mut f| read_up_to(&mut f, &mut magic))
        .map_err(|e| ChatError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
    if read < 4 || &magic != GGUF_MAGIC {
        return Err(ChatError::NotGguf {
            path: path.to_path_buf(),
            found: describe_magic(&magic[..read]),
        });
    }
    GgufFile::open(path).map_err(|source| ChatError::Gguf {
        path: path.to_path_buf(),
        source,
    })
}

fn read_up_to(f: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn describe_magic(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing (the file is empty)".into();
    }
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("bytes {}", hex.join(" "))
}

/// The context a model is loaded with: the requested one, at most what it was trained for.
pub fn effective_context(cfg: &ModelConfig, requested: u32) -> u32 {
    let trained = u32::try_from(cfg.n_ctx_train).unwrap_or(u32::MAX).max(1);
    requested.clamp(1, trained)
}

pub fn model_info(
    path: &Path,
    file: &GgufFile,
    cfg: &ModelConfig,
    context_length: u32,
) -> ModelInfo {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = file
        .opt_str("general.name")
        .ok()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .unwrap_or(stem);
    let params: u64 = file
        .tensors()
        .iter()
        .map(|t| t.n_elements)
        .fold(0, u64::saturating_add);
    ModelInfo {
        path: path.to_string_lossy().into_owned(),
        name,
        architecture: cfg.arch.name().to_string(),
        parameter_label: parameter_label(params),
        quantization: dominant_type(file)
            .map(|t| t.name().to_string())
            .unwrap_or_else(|| "unknown".into()),
        context_length,
        file_bytes: file.file_size(),
    }
}

/// "7B", "1.5B", "260K": the parameter count as model cards write it.
pub fn parameter_label(params: u64) -> String {
    let (value, unit) = match params {
        p if p >= 1_000_000_000 => (p as f64 / 1e9, "B"),
        p if p >= 1_000_000 => (p as f64 / 1e6, "M"),
        p if p >= 1_000 => (p as f64 / 1e3, "K"),
        p => (p as f64, ""),
    };
    // Cards round sizes of 3 and up to whole numbers (6.74B is "7B"), smaller ones to tenths.
    if value >= 3.0 || (value - value.round()).abs() < 0.05 {
        format!("{}{unit}", value.round() as u64)
    } else {
        format!("{value:.1}{unit}")
    }
}

/// The tensor type that holds the most bytes of the matrices (norms are always F32).
fn dominant_type(file: &GgufFile) -> Option<GgmlType> {
    let mut bytes: HashMap<GgmlType, u64> = HashMap::new();
    for t in file.tensors().iter().filter(|t| t.dims.len() >= 2) {
        *bytes.entry(t.ggml_type).or_default() += t.n_bytes;
    }
    bytes
        .into_iter()
        .max_by_key(|&(ty, b)| (b, ty.id()))
        .map(|(ty, _)| ty)
}

/// The memory plan for the model at `path`, with the context clamped as a load would clamp it.
pub fn plan_file(
    path: &Path,
    context_length: u32,
    gpu: Option<&GpuInfo>,
) -> Result<MemoryPlan, ChatError> {
    let file = open_model_file(path)?;
    let cfg = ModelConfig::from_gguf(&file)?;
    Ok(memory_plan(
        &file,
        &cfg,
        effective_context(&cfg, context_length),
        gpu,
    ))
}

/// blake3 of the file at `path` (streamed): what roots the model's KV block hashes and names
/// whose token ids a stored message holds. Without a disk tier there is no memo.
pub fn file_content_hash(path: &Path) -> Result<[u8; 32], ChatError> {
    crate::store::kv_blocks::hash_file(path).map_err(|source| ChatError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Tokens per prefill step (and the prefill progress granularity).
pub const MAX_BATCH: usize = 64;

/// Conversations holding a live sequence at once (each slot is a few hundred bytes; their
/// blocks come from the one pool, and cached blocks outlive them).
pub const MAX_CONVERSATIONS: usize = 16;

/// The default cap on the KV pool's GPU memory.
pub const KV_BUDGET_CAP_BYTES: u64 = 1 << 30;

/// The GPU engine's options for a model loaded with `context_length`: f16 K/V on every
/// adapter (packed two per u32 word, so it needs no `SHADER_F16`; half the memory of f32),
/// one row of logits (chat reads only the last token's), and a KV pool of one context (see
/// [`planned_options`] for the budgeted pool a load uses).
pub fn forward_options(context_length: u32) -> GpuForwardOptions {
    let max_ctx = context_length.max(1) as usize;
    GpuForwardOptions {
        max_ctx,
        max_batch: MAX_BATCH.min(max_ctx),
        max_sequences: MAX_CONVERSATIONS,
        kv_f16: true,
        max_logit_rows: Some(1),
        ..GpuForwardOptions::default()
    }
}

/// The options a load uses and their plan: the KV pool gets half of what the adapter has
/// left after weights and scratch (when that can be known), at most
/// [`KV_BUDGET_CAP_BYTES`], never less than one context — so many conversations, documents
/// and shared prefixes stay cached, not just one context.
///
/// `budget_bytes` overrides the default (a setting); it is still at least one context.
pub fn planned_options(
    info: &GpuInfo,
    file: &GgufFile,
    context_length: u32,
    budget_bytes: Option<u64>,
) -> Result<(GpuForwardOptions, gpu_forward::MemoryPlan), gpu_forward::GpuForwardError> {
    planned_options_typed(info, file, context_length, budget_bytes, true)
}

/// [`planned_options`] with the KV cache's element type chosen (`kv_f16` false: f32, twice
/// the bytes per token, so a byte budget holds half the tokens).
pub fn planned_options_typed(
    info: &GpuInfo,
    file: &GgufFile,
    context_length: u32,
    budget_bytes: Option<u64>,
    kv_f16: bool,
) -> Result<(GpuForwardOptions, gpu_forward::MemoryPlan), gpu_forward::GpuForwardError> {
    let one = GpuForwardOptions {
        kv_f16,
        ..forward_options(context_length)
    };
    let first = gpu_forward::plan(info, file, &one)?;
    if !first.fits {
        return Ok((one, first));
    }
    let left = first
        .limit_bytes
        .map(|l| l.saturating_sub(first.weights_bytes + first.scratch_bytes) / 2);
    let default = left.unwrap_or(KV_BUDGET_CAP_BYTES).min(KV_BUDGET_CAP_BYTES);
    let budget = budget_bytes.unwrap_or(default).max(first.kv_bytes);
    let opts = GpuForwardOptions {
        kv_budget_bytes: Some(budget),
        ..one
    };
    let plan = gpu_forward::plan(info, file, &opts)?;
    Ok(if plan.fits {
        (opts, plan)
    } else {
        (one, first)
    })
}

/// Weights + KV at `context_length` + scratch, against what the adapter can hold (the GPU
/// engine's own plan, the one a load checks).
pub fn memory_plan(
    file: &GgufFile,
    cfg: &ModelConfig,
    context_length: u32,
    gpu: Option<&GpuInfo>,
) -> MemoryPlan {
    let Some(info) = gpu else {
        let est = estimate_memory(file, cfg, context_length as usize, GgmlType::F16);
        return MemoryPlan {
            weights_bytes: est.weights_bytes,
            kv_type: "f16".into(),
            kv_tokens: u64::from(context_length),
            kv_bytes: est.kv_bytes,
            scratch_bytes: est.scratch_bytes,
            total_bytes: est.total_bytes,
            adapter_limit_bytes: None,
            fits: false,
            suggestion: Some("No usable GPU adapter was found, so no model can be loaded.".into()),
            context_length,
        };
    };
    let p = match planned_options(info, file, context_length, None) {
        Ok((_, p)) => p,
        Err(e) => gpu_forward::MemoryPlan {
            weights_bytes: 0,
            kv_type: "f16",
            kv_tokens: 0,
            kv_bytes: 0,
            scratch_bytes: 0,
            total_bytes: 0,
            limit_bytes: None,
            fits: false,
            problem: Some(e.to_string()),
            suggestion: None,
        },
    };
    let suggestion = match (p.problem, p.suggestion) {
        (Some(problem), Some(s)) => Some(format!("{problem}. {s}")),
        (Some(problem), None) => Some(problem),
        (None, s) => s,
    };
    MemoryPlan {
        weights_bytes: p.weights_bytes,
        kv_type: p.kv_type.to_string(),
        kv_tokens: p.kv_tokens,
        kv_bytes: p.kv_bytes,
        scratch_bytes: p.scratch_bytes,
        total_bytes: p.total_bytes,
        adapter_limit_bytes: p.limit_bytes,
        fits: p.fits,
        suggestion,
        context_length,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_labels_read_like_model_cards() {
        assert_eq!(parameter_label(6_738_415_616), "7B");
        assert_eq!(parameter_label(1_543_714_304), "1.5B");
        assert_eq!(parameter_label(260_000), "260K");
        assert_eq!(parameter_label(292_000), "292K");
        assert_eq!(parameter_label(15_200_000), "15M");
    }

    #[test]
    fn non_gguf_files_get_a_plain_error() {
        let dir = std::env::temp_dir().join(format!("hearth-chat-magic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.gguf");
        std::fs::write(&bad, b"PK\x03\x04zip").unwrap();
        let err = open_model_file(&bad).unwrap_err().to_string();
        assert!(err.contains("is not a GGUF model"), "{err}");
        let empty = dir.join("empty.gguf");
        std::fs::write(&empty, b"").unwrap();
        assert!(
            open_model_file(&empty)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        assert!(matches!(
            open_model_file(&dir),
            Err(ChatError::NotAFile { .. })
        ));
        assert!(matches!(
            open_model_file(&dir.join("nope.gguf")),
            Err(ChatError::FileMissing { .. })
        ));
        std::fs::remove_dir_all(&dir).ok();
    }
}
