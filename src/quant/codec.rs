//! Per-type dispatch (which function decodes or encodes a type) and the block iteration the
//! format modules share. Lengths are validated by the public API before these run, so the
//! helpers only ever see whole blocks; a short tail would be ignored, never indexed.

use super::GgmlType;
use super::{float, kquants, legacy};
use bytemuck::Pod;

/// Decodes whole blocks: `data` holds `n` blocks, `out` gets `n * block_elems` values.
pub(crate) type DequantizeFn = fn(&[u8], &mut [f32]);
/// Encodes whole blocks of `src`, appending the bytes to `out`.
pub(crate) type QuantizeFn = fn(&[f32], &mut Vec<u8>);

pub(crate) fn dequantizer(ty: GgmlType) -> Option<DequantizeFn> {
    use GgmlType::*;
    Some(match ty {
        F32 => float::dequantize_f32,
        F16 => float::dequantize_f16,
        BF16 => float::dequantize_bf16,
        Q4_0 => legacy::dequantize_q4_0,
        Q4_1 => legacy::dequantize_q4_1,
        Q5_0 => legacy::dequantize_q5_0,
        Q5_1 => legacy::dequantize_q5_1,
        Q8_0 => legacy::dequantize_q8_0,
        Q2_K => kquants::dequantize_q2_k,
        Q3_K => kquants::dequantize_q3_k,
        Q4_K => kquants::dequantize_q4_k,
        Q5_K => kquants::dequantize_q5_k,
        Q6_K => kquants::dequantize_q6_k,
        _ => return None,
    })
}

pub(crate) fn quantizer(ty: GgmlType) -> Option<QuantizeFn> {
    use GgmlType::*;
    Some(match ty {
        F32 => float::quantize_f32,
        F16 => float::quantize_f16,
        BF16 => float::quantize_bf16,
        Q4_0 => legacy::quantize_q4_0,
        Q4_1 => legacy::quantize_q4_1,
        Q5_0 => legacy::quantize_q5_0,
        Q5_1 => legacy::quantize_q5_1,
        Q8_0 => legacy::quantize_q8_0,
        Q2_K => kquants::quantize_q2_k,
        Q3_K => kquants::quantize_q3_k,
        Q4_K => kquants::quantize_q4_k,
        Q5_K => kquants::quantize_q5_k,
        Q6_K => kquants::quantize_q6_k,
        _ => return None,
    })
}

/// Runs `decode` on each block of `data` with the matching `N`-value slice of `out`.
pub(crate) fn dequantize_blocks<B: Pod, const N: usize>(
    data: &[u8],
    out: &mut [f32],
    decode: impl Fn(&B, &mut [f32; N]),
) {
    for (bytes, values) in data
        .chunks_exact(size_of::<B>())
        .zip(out.chunks_exact_mut(N))
    {
        let (Ok(block), Ok(values)) = (bytemuck::try_from_bytes::<B>(bytes), values.try_into())
        else {
            continue; // unreachable: chunks are exact and blocks have alignment 1
        };
        decode(block, values);
    }
}

/// Runs `encode` on each `N`-value chunk of `src`, appending each block's bytes to `out`.
pub(crate) fn quantize_blocks<B: Pod, const N: usize>(
    src: &[f32],
    out: &mut Vec<u8>,
    encode: impl Fn(&[f32; N]) -> B,
) {
    out.reserve(src.len() / N * size_of::<B>());
    for chunk in src.chunks_exact(N) {
        if let Ok(x) = chunk.try_into() {
            out.extend_from_slice(bytemuck::bytes_of(&encode(x)));
        }
    }
}
