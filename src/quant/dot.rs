//! The reference dot product and matrix-vector product over quantized rows.
//!
//! A row is decoded a tile (at most 256 values, a whole number of blocks) at a time into a
//! stack buffer and multiplied with eight f32 accumulators; tile sums are added in f64 so
//! long rows (n_embd 4096, n_ff 14336) do not lose precision.

use super::codec::{DequantizeFn, dequantizer};
use super::{GgmlType, QuantError, check_row};

/// Values decoded per step: a multiple of every block size (32 and 256).
const TILE: usize = 256;
/// Matrices with more elements than this are split over threads.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 20;

/// Dot product of one row of type `ty` (the bytes of `x.len()` values) with `x`.
pub fn dot_row(ty: GgmlType, row: &[u8], x: &[f32]) -> Result<f32, QuantError> {
    let decode = dequantizer(ty).ok_or(QuantError::Unsupported { ty, op: "dot_row" })?;
    check_row(ty, row.len(), x.len())?;
    Ok(dot_checked(decode, ty, row, x))
}

/// `out[r] = dot(row r of weights, x)` for a row-major `n_rows × n_cols` matrix of type `ty`.
pub fn matvec(
    ty: GgmlType,
    weights: &[u8],
    n_rows: usize,
    n_cols: usize,
    x: &[f32],
    out: &mut [f32],
) -> Result<(), QuantError> {
    let decode = dequantizer(ty).ok_or(QuantError::Unsupported { ty, op: "matvec" })?;
    if x.len() != n_cols {
        return Err(QuantError::LengthMismatch {
            what: "matvec x",
            expected: n_cols,
            actual: x.len(),
        });
    }
    if out.len() != n_rows {
        return Err(QuantError::LengthMismatch {
            what: "matvec out",
            expected: n_rows,
            actual: out.len(),
        });
    }
    let row_bytes = super::bytes_for(ty, n_cols)?;
    let total = row_bytes.checked_mul(n_rows).ok_or(QuantError::TooLarge {
        ty,
        n_elements: n_cols as u64 * n_rows as u64,
    })?;
    if weights.len() != total {
        return Err(QuantError::DataLength {
            ty,
            n_elements: (n_rows * n_cols) as u64,
            expected: total as u64,
            actual: weights.len() as u64,
        });
    }
    if n_rows == 0 {
        return Ok(());
    }
    let rows_into = |out: &mut [f32], weights: &[u8]| {
        // row_bytes is 0 only when n_cols is 0: every dot is then 0.
        if row_bytes == 0 {
            out.fill(0.0);
            return;
        }
        for (o, row) in out.iter_mut().zip(weights.chunks_exact(row_bytes)) {
            *o = dot_checked(decode, ty, row, x);
        }
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(n_rows);
    if n_rows.saturating_mul(n_cols) <= PARALLEL_MIN_ELEMENTS || threads < 2 {
        rows_into(out, weights);
        return Ok(());
    }
    let rows_per_thread = n_rows.div_ceil(threads);
    std::thread::scope(|s| {
        for (out, weights) in out
            .chunks_mut(rows_per_thread)
            .zip(weights.chunks(rows_per_thread * row_bytes))
        {
            s.spawn(move || rows_into(out, weights));
        }
    });
    Ok(())
}

/// The dot product once lengths are known to match (`row` holds exactly `x.len()` values).
fn dot_checked(decode: DequantizeFn, ty: GgmlType, row: &[u8], x: &[f32]) -> f32 {
    // Bytes per tile: TILE values, or the whole row when it is shorter than a tile.
    let tile_bytes = TILE / ty.block_elems() * ty.block_bytes();
    let mut buf = [0.0f32; TILE];
    let mut total = 0.0f64;
    for (bytes, xs) in row.chunks(tile_bytes).zip(x.chunks(TILE)) {
        let vals = &mut buf[..xs.len()];
        decode(bytes, vals);
        total += dot_f32(vals, xs) as f64;
    }
    total as f32
}

/// f32 dot product with eight independent accumulators (lets the compiler vectorise).
fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (a8, a_rest) = a.as_chunks::<8>();
    let (b8, b_rest) = b.as_chunks::<8>();
    for (ca, cb) in a8.iter().zip(b8) {
        for k in 0..8 {
            acc[k] += ca[k] * cb[k];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(p, q)| p * q).sum();
    acc.iter().sum::<f32>() + tail
}
