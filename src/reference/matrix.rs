//! A weight matrix borrowed from the GGUF mapping in its stored type.

use crate::gguf::{GgufFile, TensorInfo};
use crate::quant::{self, GgmlType};

use super::error::ReferenceError;

pub(crate) struct Matrix<'a> {
    pub ty: GgmlType,
    data: &'a [u8],
    /// Output features (dims[1]).
    pub rows: usize,
    /// Input features (dims[0]).
    pub cols: usize,
    row_bytes: usize,
}

impl<'a> Matrix<'a> {
    /// `t` as a matrix (its shape was validated by `ModelConfig::from_gguf`; sizes are checked
    /// again here so a mismatch is an error, not a panic).
    pub fn new(file: &'a GgufFile, t: &TensorInfo) -> Result<Matrix<'a>, ReferenceError> {
        let bad = |reason: String| ReferenceError::BadTensor {
            name: t.name.clone(),
            reason,
        };
        let cols = *t.dims.first().ok_or_else(|| bad("no dimensions".into()))? as usize;
        let rows = t.dims.get(1..).map_or(1, |d| d.iter().product::<u64>()) as usize;
        let row_bytes = t
            .ggml_type
            .bytes_for(cols as u64)
            .ok_or_else(|| bad(format!("row of {cols} is not whole {} blocks", t.ggml_type)))?
            as usize;
        let data = file.tensor_data(t);
        if Some(data.len()) != row_bytes.checked_mul(rows) {
            return Err(bad(format!(
                "{} data bytes for {rows} rows of {row_bytes}",
                data.len()
            )));
        }
        Ok(Matrix {
            ty: t.ggml_type,
            data,
            rows,
            cols,
            row_bytes,
        })
    }

    /// The stored bytes of row `r` (< rows).
    pub fn row(&self, r: usize) -> &'a [u8] {
        &self.data[r * self.row_bytes..(r + 1) * self.row_bytes]
    }

    /// Row `r` as f32 (embedding lookup).
    pub fn row_f32(&self, r: usize, out: &mut [f32]) -> Result<(), ReferenceError> {
        Ok(quant::dequantize(self.ty, self.row(r), out)?)
    }

    /// `out[r] = row_r · x` for every row (`quant::matvec` splits big matrices over threads).
    pub fn matvec(&self, x: &[f32], out: &mut [f32]) -> Result<(), ReferenceError> {
        Ok(quant::matvec(
            self.ty, self.data, self.rows, self.cols, x, out,
        )?)
    }
}
