//! A weight matrix borrowed from the GGUF mapping in its stored type, and the matrix-vector
//! product over it (row by row through `quant::dot_row`, rows split across threads when the
//! matrix is big enough to pay for them).

use crate::gguf::{GgufFile, TensorInfo};
use crate::quant::{self, GgmlType};

use super::error::ReferenceError;

/// Multiply-adds below which a product runs on the calling thread.
const PARALLEL_MIN_WORK: usize = 1 << 18;

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
        let bad = |reason: String| ReferenceError::BadTensor { name: t.name.clone(), reason };
        let cols = *t.dims.first().ok_or_else(|| bad("no dimensions".into()))? as usize;
        let rows = t.dims.get(1..).map_or(1, |d| d.iter().product::<u64>()) as usize;
        let row_bytes = t
            .ggml_type
            .bytes_for(cols as u64)
            .ok_or_else(|| bad(format!("row of {cols} is not whole {} blocks", t.ggml_type)))?
            as usize;
        let data = file.tensor_data(t);
        if Some(data.len()) != row_bytes.checked_mul(rows) {
            return Err(bad(format!("{} data bytes for {rows} rows of {row_bytes}", data.len())));
        }
        Ok(Matrix { ty: t.ggml_type, data, rows, cols, row_bytes })
    }

    /// The stored bytes of row `r` (< rows).
    pub fn row(&self, r: usize) -> &'a [u8] {
        &self.data[r * self.row_bytes..(r + 1) * self.row_bytes]
    }

    /// Row `r` as f32 (embedding lookup).
    pub fn row_f32(&self, r: usize, out: &mut [f32]) -> Result<(), ReferenceError> {
        Ok(quant::dequantize(self.ty, self.row(r), out)?)
    }

    /// `out[r] = row_r · x` for every row.
    pub fn matvec(&self, x: &[f32], out: &mut [f32]) -> Result<(), ReferenceError> {
        debug_assert_eq!((x.len(), out.len()), (self.cols, self.rows));
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if threads == 1 || self.rows * self.cols < PARALLEL_MIN_WORK {
            return self.matvec_rows(0, x, out);
        }
        let per_thread = self.rows.div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = out
                .chunks_mut(per_thread)
                .enumerate()
                .map(|(i, chunk)| s.spawn(move || self.matvec_rows(i * per_thread, x, chunk)))
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        })
    }

    fn matvec_rows(&self, first: usize, x: &[f32], out: &mut [f32]) -> Result<(), ReferenceError> {
        for (i, o) in out.iter_mut().enumerate() {
            *o = quant::dot_row(self.ty, self.row(first + i), x)?;
        }
        Ok(())
    }
}
