//! Block quantization formats: the ggml type table, block layouts, dequantize, quantize, and
//! the reference dot products the CPU forward pass uses.
//!
//! Decoding covers F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K and
//! Q6_K; encoding covers F32, F16, BF16, the legacy 32-value formats, Q4_K, Q5_K and Q6_K with
//! ggml's reference (no importance matrix) algorithms, byte-compatible with llama.cpp.

pub mod blocks;
mod codec;
mod dot;
mod float;
mod kquant_fit;
mod kquants;
mod legacy;
mod types;

pub use dot::{dot_row, matvec};
pub use kquants::{pack_scale_min_k4, scale_min_k4};
pub use types::GgmlType;

/// What went wrong in a quant operation; every variant names the type involved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantError {
    #[error("{op} is not supported for tensor type {ty}")]
    Unsupported { ty: GgmlType, op: &'static str },
    #[error(
        "{n_elements} values of type {ty} are not a whole number of {block_elems}-value blocks"
    )]
    PartialBlock {
        ty: GgmlType,
        n_elements: u64,
        block_elems: usize,
    },
    #[error("{n_elements} values of type {ty} take {expected} bytes, but {actual} were given")]
    DataLength {
        ty: GgmlType,
        n_elements: u64,
        expected: u64,
        actual: u64,
    },
    #[error("{what} has length {actual}, expected {expected}")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("{n_elements} values of type {ty} do not fit in memory")]
    TooLarge { ty: GgmlType, n_elements: u64 },
    #[error("value {value} at index {index} cannot be quantized to {ty}: not finite")]
    NonFinite {
        ty: GgmlType,
        index: usize,
        value: f32,
    },
}

/// Whether [`dequantize`], [`dot_row`] and [`matvec`] handle `ty`.
pub fn can_dequantize(ty: GgmlType) -> bool {
    codec::dequantizer(ty).is_some()
}

/// Whether [`quantize`] handles `ty`.
pub fn can_quantize(ty: GgmlType) -> bool {
    codec::quantizer(ty).is_some()
}

/// Decodes `out.len()` values of type `ty` from `data`, which must be exactly
/// `ty.bytes_for(out.len())` bytes long.
pub fn dequantize(ty: GgmlType, data: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    let decode = codec::dequantizer(ty).ok_or(QuantError::Unsupported {
        ty,
        op: "dequantize",
    })?;
    check_row(ty, data.len(), out.len())?;
    decode(data, out);
    Ok(())
}

/// Decodes `n` values of type `ty` into a new vector (`data` must hold exactly `n` values).
pub fn dequantize_to_vec(ty: GgmlType, data: &[u8], n: usize) -> Result<Vec<f32>, QuantError> {
    let decode = codec::dequantizer(ty).ok_or(QuantError::Unsupported {
        ty,
        op: "dequantize",
    })?;
    // Validate before allocating, so a bogus `n` cannot trigger a huge allocation.
    check_row(ty, data.len(), n)?;
    let mut out = vec![0.0f32; n];
    decode(data, &mut out);
    Ok(out)
}

/// Encodes `src` as type `ty` with ggml's reference quantizer; `src.len()` must be a multiple
/// of `ty.block_elems()`. Non-finite input is rejected for the quantized (non-float) types.
pub fn quantize(ty: GgmlType, src: &[f32]) -> Result<Vec<u8>, QuantError> {
    let encode = codec::quantizer(ty).ok_or(QuantError::Unsupported { ty, op: "quantize" })?;
    bytes_for(ty, src.len())?;
    let is_float = matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16);
    if !is_float && let Some((index, &value)) = src.iter().enumerate().find(|(_, v)| !v.is_finite())
    {
        return Err(QuantError::NonFinite { ty, index, value });
    }
    let mut out = Vec::new();
    encode(src, &mut out);
    Ok(out)
}

/// Bytes taken by `n` values of `ty`, or the error saying why `n` is impossible.
pub(crate) fn bytes_for(ty: GgmlType, n: usize) -> Result<usize, QuantError> {
    let n_elements = n as u64;
    if !n.is_multiple_of(ty.block_elems()) {
        return Err(QuantError::PartialBlock {
            ty,
            n_elements,
            block_elems: ty.block_elems(),
        });
    }
    ty.bytes_for(n_elements)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or(QuantError::TooLarge { ty, n_elements })
}

/// Checks that `data_len` bytes hold exactly `n` values of `ty`.
pub(crate) fn check_row(ty: GgmlType, data_len: usize, n: usize) -> Result<(), QuantError> {
    let expected = bytes_for(ty, n)?;
    if data_len != expected {
        return Err(QuantError::DataLength {
            ty,
            n_elements: n as u64,
            expected: expected as u64,
            actual: data_len as u64,
        });
    }
    Ok(())
}
