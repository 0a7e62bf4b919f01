//! Prepared dispatches for each kernel family. `prepare_*` functions compile (or fetch) the
//! pipeline, write the fixed parameters into a small uniform buffer and build the bind group:
//! call them once at load, then record the returned [`Dispatch`]es every step.
//!
//! Buffers are bound whole; offsets and sizes travel in the parameters. Element offsets are
//! in f32 units unless a parameter says vec4.

mod attention;
mod fused;
mod simple;
mod weighted;

pub use attention::{
    ATTENTION_SPLIT, KvLayout, LLVMPIPE_LOOP_LIMIT, PREFILL_QUERY_TILE, attention_scratch_bytes,
    prefill_attention_scratch_bytes, prefill_attention_supports, prefill_split_keys,
    prefill_splits, prepare_attention, prepare_attention_rows, prepare_kv_write,
    prepare_prefill_attention,
};
pub use fused::{
    FUSED_NORM_MAX_K, FoldedNorm, RopeKvBuffers, fused_matvec_supported, prepare_matvec_glu,
    prepare_matvec_qkv, prepare_rope_kv, prepare_rope_kv_rows,
};
pub use simple::{
    RopeParams, RopeStyle, prepare_add, prepare_add_bias, prepare_argmax, prepare_rmsnorm,
    prepare_rope, prepare_swiglu,
};
pub use weighted::{
    Columns, MATVEC_MAX_COLS, MATVEC_SHORT_STEP, prepare_embed, prepare_matmul, prepare_matvec,
    prepare_matvec_add, prepare_matvec_cols, prepare_matvec_cols_add,
};

use crate::quant::GgmlType;

use super::{GpuContext, GpuError, PipelineKey, ShaderId};

/// The dequant.wgsl define for a weight type.
pub(crate) fn type_define(ty: GgmlType) -> Result<&'static str, GpuError> {
    Ok(match ty {
        GgmlType::F32 => "TYPE_F32",
        GgmlType::F16 => "TYPE_F16",
        GgmlType::Q8_0 => "TYPE_Q8_0",
        GgmlType::Q4_0 => "TYPE_Q4_0",
        GgmlType::Q4_1 => "TYPE_Q4_1",
        GgmlType::Q5_0 => "TYPE_Q5_0",
        GgmlType::Q4_K => "TYPE_Q4_K",
        GgmlType::Q5_K => "TYPE_Q5_K",
        GgmlType::Q6_K => "TYPE_Q6_K",
        other => return Err(GpuError::UnsupportedType(other)),
    })
}

/// A key for a kernel that reduces over a workgroup: SUBGROUP when the device has it (and
/// `allow_subgroup`), and the workgroup size as the WG override.
pub(crate) fn reducing_key(
    ctx: &GpuContext,
    shader: ShaderId,
    wg: u32,
    allow_subgroup: bool,
) -> PipelineKey {
    let key = PipelineKey::new(shader, "main").constant("WG", wg as f64);
    if allow_subgroup && ctx.has_subgroup() {
        key.define("SUBGROUP")
    } else {
        key
    }
}

/// Whether a matvec with `tpr` lanes per row in workgroups of `wg` sums its rows by subgroup
/// shuffles (row_sum.wgsl's SUBGROUP_ROWS): subgroups available and allowed, every subgroup
/// size ≥ tpr and dividing wg. Otherwise the shared-memory tree. Measured on lavapipe
/// (subgroup 8, TPR 8, k = 576 × 1,536 rows): 15–25% less CPU time per matvec for Q4_0, Q4_1,
/// Q5_0, Q8_0 and F16 than the tree's barriers.
pub(crate) fn subgroup_rows(ctx: &GpuContext, wg: u32, tpr: u32, allow_subgroup: bool) -> bool {
    let info = ctx.info();
    let (min, max) = (info.subgroup_min_size, info.subgroup_max_size);
    allow_subgroup
        && ctx.has_subgroup()
        && tpr < wg
        && min >= tpr
        && max >= min
        && max.is_power_of_two()
        && wg.is_multiple_of(max)
}

pub(crate) fn shape_err(what: &'static str, detail: String) -> GpuError {
    GpuError::Shape { what, detail }
}

/// `n` as u32 or a shape error.
pub(crate) fn u32_of(what: &'static str, n: usize) -> Result<u32, GpuError> {
    u32::try_from(n).map_err(|_| shape_err(what, format!("{n} exceeds u32")))
}
