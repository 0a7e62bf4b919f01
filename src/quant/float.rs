//! Plain float element types: F32, F16 and BF16, little-endian as in GGUF.
//!
//! Conversions use the `half` crate, which rounds to nearest-even like ggml's
//! `GGML_FP32_TO_FP16` / `GGML_FP32_TO_BF16` (NaN stays NaN).

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

pub(crate) fn dequantize_f32(data: &[u8], out: &mut [f32]) {
    for (b, o) in data.chunks_exact(4).zip(out.iter_mut()) {
        *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
}

pub(crate) fn dequantize_f16(data: &[u8], out: &mut [f32]) {
    // Aligned little-endian data (the usual case: GGUF aligns tensors to 32 bytes) goes
    // through half's slice conversion, which picks the CPU's F16C path once per call.
    if cfg!(target_endian = "little")
        && let Ok(halves) = bytemuck::try_cast_slice::<u8, f16>(data)
        && halves.len() == out.len()
    {
        halves.convert_to_f32_slice(out);
        return;
    }
    for (b, o) in data.chunks_exact(2).zip(out.iter_mut()) {
        *o = f16::from_le_bytes([b[0], b[1]]).to_f32();
    }
}

pub(crate) fn dequantize_bf16(data: &[u8], out: &mut [f32]) {
    for (b, o) in data.chunks_exact(2).zip(out.iter_mut()) {
        *o = bf16::from_le_bytes([b[0], b[1]]).to_f32();
    }
}

pub(crate) fn quantize_f32(src: &[f32], out: &mut Vec<u8>) {
    out.extend(src.iter().flat_map(|v| v.to_le_bytes()));
}

pub(crate) fn quantize_f16(src: &[f32], out: &mut Vec<u8>) {
    out.extend(src.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()));
}

pub(crate) fn quantize_bf16(src: &[f32], out: &mut Vec<u8>) {
    out.extend(src.iter().flat_map(|v| bf16::from_f32(*v).to_le_bytes()));
}
