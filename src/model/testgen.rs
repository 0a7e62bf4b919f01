//! Deterministic random-weight GGUF models: tiny ones for tests, and the real shapes of 7B/8B
//! models (Llama 2, Mistral v0.2, Llama 3.1, Qwen2.5) for memory and speed work without
//! downloading weights.
//!
//! Tensor data is generated in its storage format straight from a seeded ChaCha8 stream and
//! streamed to the file. Each tensor is cut into chunks of whole rows (a fixed byte budget, so
//! the cut depends only on the shape); chunk `c` of tensor `t` draws from ChaCha8 seeded with
//! `seed` on stream `t << 32 | c`, and chunks are generated in parallel, so the bytes do not
//! depend on the thread count.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::gguf::{GgufFile, MetadataValue};
use crate::quant::GgmlType;

use super::config::{Arch, MAX_CTX, MAX_EMBD, MAX_FF, MAX_HEADS, MAX_LAYERS, MAX_VOCAB};
use super::error::ModelError;
use super::gguf_stream::{GgufStreamWriter, PlannedTensor};
use super::rope_factors::{Llama3RopeScaling, llama3_rope_factors};
use super::tensor_names::*;
use super::testgen_blocks::{Fill, can_generate, fill};
use super::testgen_vocab::{copy_vocab, synthetic_spm_vocab};

/// Spread of generated weights; keeps activations of deep, wide models in a sane range.
const WEIGHT_STD: f32 = 0.02;
/// Norm weights are 1 ± this.
const NORM_STD: f32 = 0.02;
/// Bytes generated per RNG chunk (whole rows, at least one).
const CHUNK_BYTES: u64 = 4 << 20;

#[derive(Clone, Debug, PartialEq)]
pub struct TestModelSpec {
    pub name: String,
    pub arch: Arch,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub n_ff: usize,
    /// Ignored when the vocabulary is copied from a file (its token count is used).
    pub n_vocab: usize,
    pub n_ctx: usize,
    pub rope_theta: f32,
    pub rms_eps: f32,
    /// Matrix type (F32, F16, Q8_0, Q4_0 or Q4_K); norms, biases and rope factors are F32.
    pub weight_type: GgmlType,
    pub tied_output: bool,
    pub seed: u64,
    /// Write Llama 3.1's `rope_freqs.weight` (factor 8, low 1, high 4, original context 8192).
    pub llama3_rope_scaling: bool,
}

/// Named specs: `tiny`, `tiny-qwen2`, `tiny-llama3` (small, for tests), and the real shapes
/// `llama2-7b`, `mistral-7b` (v0.2: theta 1e6, 32k context), `llama3-8b` (3.1: theta 5e5, llama3
/// rope scaling, 128k context) and `qwen2.5-7b`, all at Q4_0.
pub fn preset(name: &str) -> Option<TestModelSpec> {
    let llama =
        |n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx, rope_theta| TestModelSpec {
            name: name.to_string(),
            arch: Arch::Llama,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            n_ff,
            n_vocab,
            n_ctx,
            rope_theta,
            rms_eps: 1e-5,
            weight_type: GgmlType::Q4_0,
            tied_output: false,
            seed: 42,
            llama3_rope_scaling: false,
        };
    let qwen2 = |n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx| TestModelSpec {
        arch: Arch::Qwen2,
        rms_eps: 1e-6,
        ..llama(
            n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx, 1e6,
        )
    };
    Some(match name {
        "tiny" => TestModelSpec {
            weight_type: GgmlType::Q8_0,
            ..llama(64, 2, 4, 2, 128, 512, 512, 10000.0)
        },
        "tiny-qwen2" => TestModelSpec {
            weight_type: GgmlType::F16,
            tied_output: true,
            ..qwen2(64, 2, 4, 2, 128, 512, 512)
        },
        "tiny-llama3" => TestModelSpec {
            llama3_rope_scaling: true,
            ..llama(64, 2, 2, 1, 256, 512, 8192, 500000.0)
        },
        "llama2-7b" => llama(4096, 32, 32, 32, 11008, 32000, 4096, 10000.0),
        "mistral-7b" => llama(4096, 32, 32, 8, 14336, 32000, 32768, 1e6),
        "llama3-8b" => TestModelSpec {
            llama3_rope_scaling: true,
            ..llama(4096, 32, 32, 8, 14336, 128256, 131072, 500000.0)
        },
        "qwen2.5-7b" => qwen2(3584, 28, 28, 4, 18944, 152064, 32768),
        _ => return None,
    })
}

/// Writes the model `spec` describes to `out`. With `vocab_from`, every `tokenizer.*` key is
/// copied from it and n_vocab is its token count; otherwise a synthetic SPM vocabulary of
/// `spec.n_vocab` tokens is written.
pub fn write_test_model(
    spec: &TestModelSpec,
    vocab_from: Option<&GgufFile>,
    out: &Path,
) -> Result<(), ModelError> {
    let (vocab_meta, n_vocab) = match vocab_from {
        Some(file) => copy_vocab(file)?,
        None => (synthetic_spm_vocab(spec.n_vocab)?, spec.n_vocab),
    };
    validate_spec(spec, n_vocab)?;
    let mut metadata = hparams_metadata(spec, n_vocab);
    metadata.extend(vocab_meta);
    let plan = plan_tensors(spec, n_vocab);

    let io_err = |source| ModelError::Io {
        path: out.display().to_string(),
        source,
    };
    let file = File::create(out).map_err(io_err)?;
    let infos: Vec<PlannedTensor> = plan.iter().map(|p| p.info.clone()).collect();
    let mut writer =
        GgufStreamWriter::begin(BufWriter::with_capacity(1 << 20, file), &metadata, &infos)
            .map_err(io_err)?;
    for (index, tensor) in plan.iter().enumerate() {
        write_tensor(&mut writer, spec, index as u64, tensor).map_err(io_err)?;
    }
    // `finish` flushes the buffer; no fsync: a test model need not be durable, and waiting for
    // the disk would dominate the time of a 4 GB write.
    writer.finish().map_err(io_err)?;
    Ok(())
}

fn validate_spec(spec: &TestModelSpec, n_vocab: usize) -> Result<(), ModelError> {
    let bad = |what: String| Err(ModelError::BadSpec(what));
    let in_range = |name: &str, v: usize, max: u64| -> Result<(), ModelError> {
        if v == 0 || v as u64 > max {
            return Err(ModelError::BadSpec(format!(
                "{name} = {v} is not in 1..={max}"
            )));
        }
        Ok(())
    };
    in_range("n_embd", spec.n_embd, MAX_EMBD)?;
    in_range("n_layer", spec.n_layer, MAX_LAYERS)?;
    in_range("n_head", spec.n_head, MAX_HEADS)?;
    in_range("n_head_kv", spec.n_head_kv, spec.n_head as u64)?;
    in_range("n_ff", spec.n_ff, MAX_FF)?;
    in_range("n_vocab", n_vocab, MAX_VOCAB)?;
    in_range("n_ctx", spec.n_ctx, MAX_CTX)?;
    if !spec.n_embd.is_multiple_of(spec.n_head) || !(spec.n_embd / spec.n_head).is_multiple_of(2) {
        return bad(format!(
            "n_embd {} / n_head {} must be a whole, even head size",
            spec.n_embd, spec.n_head
        ));
    }
    if !spec.n_head.is_multiple_of(spec.n_head_kv) {
        return bad(format!(
            "n_head_kv {} must divide n_head {}",
            spec.n_head_kv, spec.n_head
        ));
    }
    if !can_generate(spec.weight_type) {
        return bad(format!(
            "weight type {} (use F32, F16, Q8_0, Q4_0 or Q4_K)",
            spec.weight_type
        ));
    }
    if !(spec.rope_theta.is_finite()
        && spec.rope_theta > 1.0
        && spec.rms_eps > 0.0
        && spec.rms_eps < 1.0)
    {
        return bad(format!(
            "rope_theta {} / rms_eps {} out of range",
            spec.rope_theta, spec.rms_eps
        ));
    }
    if spec.llama3_rope_scaling && spec.arch != Arch::Llama {
        return bad("llama3 rope scaling is for the llama architecture".into());
    }
    Ok(())
}

fn hparams_metadata(spec: &TestModelSpec, n_vocab: usize) -> Vec<(String, MetadataValue)> {
    let a = spec.arch.name();
    let u32v = |v: usize| MetadataValue::U32(v as u32);
    vec![
        (
            "general.architecture".into(),
            MetadataValue::String(a.into()),
        ),
        (
            "general.name".into(),
            MetadataValue::String(spec.name.clone()),
        ),
        (format!("{a}.context_length"), u32v(spec.n_ctx)),
        (format!("{a}.embedding_length"), u32v(spec.n_embd)),
        (format!("{a}.block_count"), u32v(spec.n_layer)),
        (format!("{a}.feed_forward_length"), u32v(spec.n_ff)),
        (format!("{a}.attention.head_count"), u32v(spec.n_head)),
        (format!("{a}.attention.head_count_kv"), u32v(spec.n_head_kv)),
        (
            format!("{a}.rope.dimension_count"),
            u32v(spec.n_embd / spec.n_head),
        ),
        (
            format!("{a}.rope.freq_base"),
            MetadataValue::F32(spec.rope_theta),
        ),
        (
            format!("{a}.attention.layer_norm_rms_epsilon"),
            MetadataValue::F32(spec.rms_eps),
        ),
        (format!("{a}.vocab_size"), u32v(n_vocab)),
        ("general.quantization_version".into(), MetadataValue::U32(2)),
    ]
}

/// One tensor to generate: its header entry and how to fill it.
struct TensorPlan {
    info: PlannedTensor,
    content: Content,
}

enum Content {
    Random(Fill),
    Values(Vec<f32>),
}

/// The tensor list in llama.cpp's converter order.
fn plan_tensors(spec: &TestModelSpec, n_vocab: usize) -> Vec<TensorPlan> {
    let (embd, ff, vocab) = (spec.n_embd as u64, spec.n_ff as u64, n_vocab as u64);
    let head_dim = (spec.n_embd / spec.n_head) as u64;
    let kv_dim = head_dim * spec.n_head_kv as u64;
    let weight = |name: String, dims: &[u64]| {
        planned(
            name,
            dims,
            matrix_type(spec.weight_type, dims[0]),
            Content::Random(Fill::Normal { std: WEIGHT_STD }),
        )
    };
    let f32_tensor =
        |name: String, dims: &[u64], content| planned(name, dims, GgmlType::F32, content);
    let norm = |name: String| {
        f32_tensor(
            name,
            &[embd],
            Content::Random(Fill::AroundOne { std: NORM_STD }),
        )
    };
    let bias = |name: String, n| {
        f32_tensor(
            name,
            &[n],
            Content::Random(Fill::Normal { std: WEIGHT_STD }),
        )
    };

    let mut plan = vec![weight(TOKEN_EMBD.into(), &[embd, vocab])];
    if spec.llama3_rope_scaling {
        let factors = llama3_rope_factors(
            &Llama3RopeScaling::default(),
            spec.rope_theta,
            head_dim as usize,
        );
        plan.push(f32_tensor(
            ROPE_FREQS.into(),
            &[head_dim / 2],
            Content::Values(factors),
        ));
    }
    plan.push(norm(OUTPUT_NORM.into()));
    if !spec.tied_output {
        plan.push(weight(OUTPUT.into(), &[embd, vocab]));
    }
    for l in 0..spec.n_layer {
        plan.push(norm(blk(l, ATTN_NORM)));
        plan.push(weight(blk(l, ATTN_Q), &[embd, embd]));
        plan.push(weight(blk(l, ATTN_K), &[embd, kv_dim]));
        plan.push(weight(blk(l, ATTN_V), &[embd, kv_dim]));
        if spec.arch == Arch::Qwen2 {
            plan.push(bias(blk(l, ATTN_Q_BIAS), embd));
            plan.push(bias(blk(l, ATTN_K_BIAS), kv_dim));
            plan.push(bias(blk(l, ATTN_V_BIAS), kv_dim));
        }
        plan.push(weight(blk(l, ATTN_OUTPUT), &[embd, embd]));
        plan.push(norm(blk(l, FFN_NORM)));
        plan.push(weight(blk(l, FFN_GATE), &[embd, ff]));
        plan.push(weight(blk(l, FFN_UP), &[embd, ff]));
        plan.push(weight(blk(l, FFN_DOWN), &[ff, embd]));
    }
    plan
}

fn planned(name: String, dims: &[u64], ty: GgmlType, content: Content) -> TensorPlan {
    let n: u64 = dims.iter().product();
    let n_bytes = ty
        .bytes_for(n)
        .expect("matrix_type picks a type whose blocks divide the rows");
    TensorPlan {
        info: PlannedTensor {
            name,
            dims: dims.to_vec(),
            ty,
            n_bytes,
        },
        content,
    }
}

/// `wanted`, or like llama.cpp a compatible type when rows are not whole blocks of it:
/// Q4_K → Q4_0 (llama.cpp picks Q5_0, which `quant` does not implement), 32-block types → F16.
fn matrix_type(wanted: GgmlType, row_len: u64) -> GgmlType {
    let chain: &[GgmlType] = match wanted {
        GgmlType::Q4_K => &[GgmlType::Q4_K, GgmlType::Q4_0],
        _ => std::slice::from_ref(&wanted),
    };
    chain
        .iter()
        .copied()
        .find(|t| row_len.is_multiple_of(t.block_elems() as u64))
        .unwrap_or(GgmlType::F16)
}

fn write_tensor<W: std::io::Write>(
    writer: &mut GgufStreamWriter<W>,
    spec: &TestModelSpec,
    index: u64,
    tensor: &TensorPlan,
) -> std::io::Result<()> {
    let fill_kind = match &tensor.content {
        Content::Values(values) => {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            writer.write_data(&bytes)?;
            return writer.end_tensor();
        }
        Content::Random(f) => *f,
    };
    let info = &tensor.info;
    let rows = info.dims[1..].iter().product::<u64>().max(1);
    let row_bytes = info.n_bytes / rows;
    let rows_per_chunk = (CHUNK_BYTES / row_bytes).max(1);
    let chunk_bytes = (rows_per_chunk * row_bytes) as usize;
    let n_chunks = rows.div_ceil(rows_per_chunk);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;

    // Generate `threads` chunks at a time in parallel, then write them in order.
    let mut buf = vec![0u8; chunk_bytes * threads.min(n_chunks) as usize];
    let mut first = 0u64;
    while first < n_chunks {
        let count = threads.min(n_chunks - first);
        let batch_rows = (rows - first * rows_per_chunk).min(count * rows_per_chunk);
        let batch = &mut buf[..(batch_rows * row_bytes) as usize];
        std::thread::scope(|s| {
            for (i, chunk) in batch.chunks_mut(chunk_bytes).enumerate() {
                let stream = (index << 32) | (first + i as u64);
                s.spawn(move || {
                    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
                    rng.set_stream(stream);
                    fill(info.ty, fill_kind, &mut rng, chunk);
                });
            }
        });
        writer.write_data(batch)?;
        first += count;
    }
    writer.end_tensor()
}
