//! Checks every tensor a llama/qwen2 forward pass reads: present, of a type `quant` can
//! dequantize, and shaped as the config says. Shapes are in ggml order (dims[0] = the
//! contiguous row length = input features of a matrix).

use crate::gguf::{GgufFile, TensorInfo};
use crate::quant;

use super::config::{Arch, ModelConfig};
use super::error::ModelError;
use super::tensor_names::*;

/// What the tensor set says about optional parts of the architecture.
pub(crate) struct TensorLayout {
    pub tied_output: bool,
    pub qkv_bias: bool,
}

/// `dims` without trailing 1s (GGUF writers may pad shapes with them), at least one dim kept.
pub(crate) fn trimmed(dims: &[u64]) -> &[u64] {
    let mut n = dims.len();
    while n > 1 && dims[n - 1] == 1 {
        n -= 1;
    }
    &dims[..n]
}

pub(crate) fn validate(file: &GgufFile, cfg: &ModelConfig) -> Result<TensorLayout, ModelError> {
    let embd = cfg.n_embd as u64;
    let vocab = cfg.n_vocab as u64;
    let q_dim = cfg.q_dim() as u64;
    let kv_dim = cfg.kv_dim() as u64;
    let ff = cfg.n_ff as u64;

    check(file, TOKEN_EMBD, &[embd, vocab])?;
    check(file, OUTPUT_NORM, &[embd])?;
    let tied_output = file.tensor(OUTPUT).is_none();
    if !tied_output {
        check(file, OUTPUT, &[embd, vocab])?;
    }
    let qkv_bias = cfg.arch == Arch::Qwen2 || file.tensor(&blk(0, ATTN_Q_BIAS)).is_some();

    for l in 0..cfg.n_layer {
        let matrices: [(&str, [u64; 2]); 7] = [
            (ATTN_Q, [embd, q_dim]),
            (ATTN_K, [embd, kv_dim]),
            (ATTN_V, [embd, kv_dim]),
            (ATTN_OUTPUT, [q_dim, embd]),
            (FFN_GATE, [embd, ff]),
            (FFN_UP, [embd, ff]),
            (FFN_DOWN, [ff, embd]),
        ];
        for (suffix, shape) in matrices {
            check(file, &blk(l, suffix), &shape)?;
        }
        check(file, &blk(l, ATTN_NORM), &[embd])?;
        check(file, &blk(l, FFN_NORM), &[embd])?;
        if qkv_bias {
            check(file, &blk(l, ATTN_Q_BIAS), &[q_dim])?;
            check(file, &blk(l, ATTN_K_BIAS), &[kv_dim])?;
            check(file, &blk(l, ATTN_V_BIAS), &[kv_dim])?;
        }
    }
    Ok(TensorLayout {
        tied_output,
        qkv_bias,
    })
}

/// The tensor `name`, present, dequantizable, with rows that are whole blocks and shape `expected`.
pub(crate) fn check<'f>(
    file: &'f GgufFile,
    name: &str,
    expected: &[u64],
) -> Result<&'f TensorInfo, ModelError> {
    let t = file.tensor(name).ok_or_else(|| ModelError::MissingTensor {
        name: name.to_string(),
    })?;
    if trimmed(&t.dims) != expected {
        return Err(ModelError::TensorShape {
            name: name.to_string(),
            expected: expected.to_vec(),
            found: t.dims.clone(),
        });
    }
    if !quant::can_dequantize(t.ggml_type) {
        return Err(ModelError::TensorType {
            name: name.to_string(),
            ty: t.ggml_type,
        });
    }
    let row = expected[0];
    if !row.is_multiple_of(t.ggml_type.block_elems() as u64) {
        return Err(ModelError::BadTensor {
            name: name.to_string(),
            reason: format!(
                "row length {row} is not a multiple of {}'s block size",
                t.ggml_type
            ),
        });
    }
    Ok(t)
}
