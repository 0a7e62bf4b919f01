//! The encoder's weights from `model.safetensors`, as f32 matrices checked against the config.

use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use super::EmbedError;
use super::config::BertConfig;

/// Most bytes `model.safetensors` may have (all-MiniLM-L6-v2 has 91 MB).
pub const MAX_WEIGHT_BYTES: u64 = 1 << 30;

/// A row-major matrix `[rows, cols]` (a linear layer's weight is `[out, in]`).
#[derive(Debug, Clone)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }
}

/// `y = x Wᵀ + b`.
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Matrix,
    pub bias: Vec<f32>,
}

#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

#[derive(Debug, Clone)]
pub struct Layer {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub attn_out: Linear,
    pub attn_norm: LayerNorm,
    pub ffn_in: Linear,
    pub ffn_out: Linear,
    pub ffn_norm: LayerNorm,
}

#[derive(Debug, Clone)]
pub struct BertWeights {
    pub word: Matrix,
    pub position: Matrix,
    pub token_type: Matrix,
    pub embed_norm: LayerNorm,
    pub layers: Vec<Layer>,
}

struct Reader<'a> {
    st: SafeTensors<'a>,
    path: &'a Path,
    /// Tensor-name prefix: "" or "bert." (checkpoints saved from BertForX).
    prefix: &'static str,
}

impl Reader<'_> {
    fn bad(&self, reason: String) -> EmbedError {
        EmbedError::BadWeights {
            path: self.path.into(),
            reason,
        }
    }

    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, EmbedError> {
        let full = format!("{}{name}", self.prefix);
        let view = self
            .st
            .tensor(&full)
            .map_err(|_| self.bad(format!("tensor {full} is missing")))?;
        if view.shape() != shape {
            return Err(self.bad(format!(
                "tensor {full} has shape {:?}, expected {shape:?}",
                view.shape()
            )));
        }
        let bytes = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(self.bad(format!(
                    "tensor {full} is {other:?}; F32, F16 or BF16 expected"
                )));
            }
        };
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(self.bad(format!("tensor {full} holds a non-finite value at {i}")));
        }
        Ok(values)
    }

    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix, EmbedError> {
        Ok(Matrix {
            rows,
            cols,
            data: self.tensor(name, &[rows, cols])?,
        })
    }

    fn linear(&self, name: &str, out: usize, inp: usize) -> Result<Linear, EmbedError> {
        Ok(Linear {
            weight: self.matrix(&format!("{name}.weight"), out, inp)?,
            bias: self.tensor(&format!("{name}.bias"), &[out])?,
        })
    }

    fn norm(&self, name: &str, n: usize) -> Result<LayerNorm, EmbedError> {
        Ok(LayerNorm {
            gamma: self.tensor(&format!("{name}.weight"), &[n])?,
            beta: self.tensor(&format!("{name}.bias"), &[n])?,
        })
    }
}

/// Reads and checks every tensor the forward pass uses from the safetensors bytes.
pub fn parse_weights(path: &Path, bytes: &[u8], c: &BertConfig) -> Result<BertWeights, EmbedError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| EmbedError::BadWeights {
        path: path.into(),
        reason: e.to_string(),
    })?;
    let prefix = if st.names().iter().any(|n| n.starts_with("bert.")) {
        "bert."
    } else {
        ""
    };
    let r = Reader { st, path, prefix };
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let mut layers = Vec::with_capacity(c.num_hidden_layers);
    for l in 0..c.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        layers.push(Layer {
            query: r.linear(&format!("{p}.attention.self.query"), h, h)?,
            key: r.linear(&format!("{p}.attention.self.key"), h, h)?,
            value: r.linear(&format!("{p}.attention.self.value"), h, h)?,
            attn_out: r.linear(&format!("{p}.attention.output.dense"), h, h)?,
            attn_norm: r.norm(&format!("{p}.attention.output.LayerNorm"), h)?,
            ffn_in: r.linear(&format!("{p}.intermediate.dense"), i, h)?,
            ffn_out: r.linear(&format!("{p}.output.dense"), h, i)?,
            ffn_norm: r.norm(&format!("{p}.output.LayerNorm"), h)?,
        });
    }
    Ok(BertWeights {
        word: r.matrix("embeddings.word_embeddings.weight", c.vocab_size, h)?,
        position: r.matrix(
            "embeddings.position_embeddings.weight",
            c.max_position_embeddings,
            h,
        )?,
        token_type: r.matrix(
            "embeddings.token_type_embeddings.weight",
            c.type_vocab_size,
            h,
        )?,
        embed_norm: r.norm("embeddings.LayerNorm", h)?,
        layers,
    })
}
