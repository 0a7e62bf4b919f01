//! Weight tensors on the GPU in their GGUF block layout, split into chunks of whole rows so
//! that no chunk is larger than one storage binding may be (128 MiB on lavapipe; a 7B model's
//! output matrix is larger). Kernels run one dispatch per chunk with the chunk's first row as
//! an offset. Bytes are uploaded as they are in the file (no repack; see shaders/dequant.wgsl).

use crate::quant::GgmlType;

use super::{GpuContext, GpuError};

/// The types that have GPU kernels (dequant.wgsl).
pub const GPU_TYPES: [GgmlType; 9] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// Shaders address bytes with u32; keep every chunk well inside that range.
const MAX_CHUNK_BYTES: u64 = 1 << 31;

pub struct WeightChunk {
    pub buffer: wgpu::Buffer,
    pub row_start: u32,
    pub rows: u32,
}

pub struct GpuWeight {
    pub name: String,
    pub ty: GgmlType,
    /// Elements per row (ggml dims[0]).
    pub k: u32,
    pub rows: u32,
    pub row_bytes: u32,
    pub chunks: Vec<WeightChunk>,
}

impl GpuWeight {
    /// Uploads a 2-D tensor (`k` elements per row, `rows` rows, ggml order) from its raw
    /// GGUF bytes, in chunks no larger than the adapter's storage binding limit.
    pub fn upload(
        ctx: &GpuContext,
        name: &str,
        ty: GgmlType,
        k: u64,
        rows: u64,
        data: &[u8],
    ) -> Result<Self, GpuError> {
        Self::upload_with_limit(ctx, name, ty, k, rows, data, ctx.max_binding_bytes())
    }

    /// As [`GpuWeight::upload`] with an explicit chunk budget (tests use small ones to
    /// exercise the split).
    pub fn upload_with_limit(
        ctx: &GpuContext,
        name: &str,
        ty: GgmlType,
        k: u64,
        rows: u64,
        data: &[u8],
        max_chunk_bytes: u64,
    ) -> Result<Self, GpuError> {
        if !GPU_TYPES.contains(&ty) {
            return Err(GpuError::UnsupportedType(ty));
        }
        let shape_err = |detail: String| GpuError::Shape {
            what: "weight upload",
            detail: format!("{name}: {detail}"),
        };
        if k == 0 || rows == 0 || !k.is_multiple_of(4) {
            return Err(shape_err(format!(
                "k={k}, rows={rows}: both must be > 0 and k a multiple of 4"
            )));
        }
        let row_bytes = ty.bytes_for(k).ok_or_else(|| {
            shape_err(format!(
                "k={k} is not a whole number of {} blocks",
                ty.name()
            ))
        })?;
        let total = row_bytes
            .checked_mul(rows)
            .ok_or_else(|| shape_err("size overflows".into()))?;
        if total != data.len() as u64 {
            return Err(shape_err(format!(
                "{} bytes given, {total} expected",
                data.len()
            )));
        }
        let limit = max_chunk_bytes.min(MAX_CHUNK_BYTES);
        if row_bytes > limit {
            return Err(GpuError::RowTooLarge { row_bytes, limit });
        }
        let (Ok(rows32), Ok(k32), Ok(rb32)) = (
            u32::try_from(rows),
            u32::try_from(k),
            u32::try_from(row_bytes),
        ) else {
            return Err(shape_err("dimensions exceed u32".into()));
        };
        let rows_per_chunk = (limit / row_bytes).min(rows) as u32;
        let mut chunks = Vec::new();
        let mut row_start = 0u32;
        while row_start < rows32 {
            let n = rows_per_chunk.min(rows32 - row_start);
            let lo = row_start as usize * rb32 as usize;
            let hi = lo + n as usize * rb32 as usize;
            let buf = ctx.upload(&format!("{name}[{row_start}..]"), &data[lo..hi])?;
            chunks.push(WeightChunk {
                buffer: buf.buffer,
                row_start,
                rows: n,
            });
            row_start += n;
        }
        Ok(GpuWeight {
            name: name.to_string(),
            ty,
            k: k32,
            rows: rows32,
            row_bytes: rb32,
            chunks,
        })
    }
}
