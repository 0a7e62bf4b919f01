//! Kernels that read a weight tensor: matvec (decode), matmul (prefill) and the embedding
//! gather. One dispatch per weight chunk.

use bytemuck::{Pod, Zeroable};

use crate::quant::GgmlType;

use super::super::{
    Dispatch, GpuContext, GpuError, GpuWeight, PipelineKey, ShaderId, max_workgroups_grid,
};
use super::{reducing_key, shape_err, subgroup_rows, type_define, u32_of};

/// Invocations per row in matvec: enough that each handles about four vec4s, a power of two
/// ≤ `wg` (long rows get the whole workgroup; a 16-wide row gets one invocation).
pub fn threads_per_row(k4: u32, wg: u32) -> u32 {
    k4.div_ceil(4).max(1).next_power_of_two().min(wg)
}

/// The block formats whose matvec reads 32 elements per step with the scale loaded once
/// (shaders/dot32.wgsl); their blocks hold 32 or 256 elements, so k is a multiple of 32.
pub fn has_dot32(ty: GgmlType) -> bool {
    matches!(
        ty,
        GgmlType::Q8_0
            | GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q4_K
            | GgmlType::Q5_K
            | GgmlType::Q6_K
    )
}

/// Invocations per row when each takes 32-element groups: no more than there are groups; a
/// power of two ≤ `wg`.
pub fn threads_per_row_dot32(groups: u32, wg: u32) -> u32 {
    groups.max(1).next_power_of_two().min(wg)
}

/// The most invocations one row gets: the adapter's widest subgroup (32 when unknown), so a
/// row's partial sums stay within a few lanes and each lane streams more of the row. Measured
/// on lavapipe (subgroup 8), decode of Llama-shaped layers (k = 2048–5632), tok/s with 64 →
/// 8 threads per row: Q4_K 2.8 → 5.4, Q4_0 3.6 → 5.4, F16 2.75 → 3.77.
pub fn row_width(subgroup_max: u32) -> u32 {
    if (4..=128).contains(&subgroup_max) {
        subgroup_max.next_power_of_two()
    } else {
        32
    }
}

/// Rows each matvec invocation takes (matvec.wgsl's and matvec_fused.wgsl's ROWS): 4 on CPU
/// adapters, where loads bound a matvec and each activation load then serves four rows
/// (lavapipe: ARCHITECTURE.md, "GPU engine", register tiling); 1 on GPUs, where four times
/// fewer workgroups would leave small layers' rows too few to fill the device (unmeasured on
/// a real GPU; one row per invocation is the layout measured there before).
pub fn rows_per_invocation(ctx: &GpuContext) -> u32 {
    if ctx.info().is_cpu() { 4 } else { 1 }
}

/// Rows each invocation of a broadcast-activation matvec takes (see [`xbcast_subgroup`]).
pub const XBCAST_ROWS: u32 = 8;

/// The subgroup size with which decode matvecs share each 32-element activation group by
/// subgroup broadcast (xgroup.wgsl's XBCAST: one invocation per row set, TPR 1, a subgroup
/// per workgroup, every lane on the same group at once, lane i loading vec4 i of it), or None
/// where that layout is not used: only CPU adapters with subgroups of one size, 8 to 64 lanes.
/// Why: llvmpipe loads storage lane by lane, so eight lanes each loading the group's eight
/// vec4s cost 64 lane loads where the broadcast costs 8. Measured on lavapipe (SmolLM2-135M
/// decode, ms per token): o/down projections 18.5 → 12–13, the Q8_0 output head 17.0 → 10.
pub fn xbcast_subgroup(ctx: &GpuContext) -> Option<u32> {
    let info = ctx.info();
    let size = info.subgroup_min_size;
    (info.is_cpu()
        && ctx.has_subgroup()
        && size == info.subgroup_max_size
        && (8..=64).contains(&size))
    .then_some(size)
}

/// Rows each invocation of a multi-token matvec takes (prefill on CPU adapters): 8 on CPU
/// adapters — a token's activation vec4, loaded once, serves eight rows — else 1.
pub fn multi_rows_per_invocation(ctx: &GpuContext) -> u32 {
    if ctx.info().is_cpu() { 8 } else { 1 }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct MatVecParams {
    rows: u32,
    k: u32,
    row_bytes: u32,
    out_offset: u32,
    x_offset: u32,
    x_stride4: u32,
    y_stride: u32,
    pad: u32,
}

/// y[y_offset + r] = W[r, :] · x[x_offset .. x_offset + k] for every row r of `w`.
/// `x_offset` must be a multiple of 4. `wg` is the workgroup size (power of 2, ≤ 256);
/// `allow_subgroup` = false forces the shared-memory reduction even where subgroups exist.
#[allow(clippy::too_many_arguments)]
pub fn prepare_matvec(
    ctx: &GpuContext,
    w: &GpuWeight,
    x: &wgpu::Buffer,
    x_offset: usize,
    y: &wgpu::Buffer,
    y_offset: usize,
    wg: u32,
    allow_subgroup: bool,
) -> Result<Vec<Dispatch>, GpuError> {
    let cols = Columns::single(x_offset, y_offset);
    matvec_dispatches(ctx, w, x, y, &cols, wg, allow_subgroup, false)
}

/// As [`prepare_matvec`], accumulating: y[y_offset + r] += W[r, :] · x[..] (the residual add
/// folded into the projection; y must not alias x).
pub fn prepare_matvec_add(
    ctx: &GpuContext,
    w: &GpuWeight,
    x: &wgpu::Buffer,
    x_offset: usize,
    y: &wgpu::Buffer,
    y_offset: usize,
) -> Result<Vec<Dispatch>, GpuError> {
    let cols = Columns::single(x_offset, y_offset);
    matvec_dispatches(ctx, w, x, y, &cols, 64, true, true)
}

/// Most tokens one [`prepare_matvec_cols`] dispatch takes.
pub const MATVEC_MAX_COLS: usize = 16;

/// Steps of at most this many tokens run as matvec passes on GPUs too (prefill of more runs
/// the tiled matmul there; on CPU adapters matvec passes take every prefill).
pub const MATVEC_SHORT_STEP: usize = 8;

/// The token rows of a multi-token matvec: X is `m` rows of `x_stride` floats from
/// `x_offset`, Y `m` rows of `y_stride` floats from `y_offset`.
#[derive(Debug, Clone, Copy)]
pub struct Columns {
    pub m: usize,
    pub x_offset: usize,
    pub x_stride: usize,
    pub y_offset: usize,
    pub y_stride: usize,
}

impl Columns {
    /// One column: x at `x_offset`, y at `y_offset`.
    pub fn single(x_offset: usize, y_offset: usize) -> Columns {
        Columns {
            m: 1,
            x_offset,
            x_stride: 0,
            y_offset,
            y_stride: 0,
        }
    }
}

/// Y[t, r] = X[t, :] · W[r, :] for t < cols.m ≤ [`MATVEC_MAX_COLS`]: one pass over the
/// weights for all the tokens (each weight vec4 dequantized once). Offsets and strides must be
/// multiples of 4 on the X side.
pub fn prepare_matvec_cols(
    ctx: &GpuContext,
    w: &GpuWeight,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
    cols: &Columns,
    wg: u32,
) -> Result<Vec<Dispatch>, GpuError> {
    check_cols(cols)?;
    matvec_dispatches(ctx, w, x, y, cols, wg, true, false)
}

/// As [`prepare_matvec_cols`], accumulating: Y[t, r] += X[t, :] · W[r, :].
pub fn prepare_matvec_cols_add(
    ctx: &GpuContext,
    w: &GpuWeight,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
    cols: &Columns,
) -> Result<Vec<Dispatch>, GpuError> {
    check_cols(cols)?;
    matvec_dispatches(ctx, w, x, y, cols, 64, true, true)
}

fn check_cols(cols: &Columns) -> Result<(), GpuError> {
    if cols.m == 0 || cols.m > MATVEC_MAX_COLS || !cols.x_stride.is_multiple_of(4) {
        return Err(shape_err(
            "matvec",
            format!(
                "{} tokens (1–{MATVEC_MAX_COLS}), x stride {} (a multiple of 4)",
                cols.m, cols.x_stride
            ),
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn matvec_dispatches(
    ctx: &GpuContext,
    w: &GpuWeight,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
    cols: &Columns,
    wg: u32,
    allow_subgroup: bool,
    accumulate: bool,
) -> Result<Vec<Dispatch>, GpuError> {
    if !cols.x_offset.is_multiple_of(4) || !wg.is_power_of_two() || wg > 256 {
        return Err(shape_err(
            "matvec",
            format!(
                "x_offset {} must be a multiple of 4, wg {wg} a power of 2 ≤ 256",
                cols.x_offset
            ),
        ));
    }
    let multi = cols.m > 1;
    let dot32 = has_dot32(w.ty) && !multi;
    let width = row_width(ctx.info().subgroup_max_size);
    let xbcast = xbcast_subgroup(ctx).filter(|_| (dot32 || multi) && allow_subgroup);
    let wg = xbcast.unwrap_or(wg);
    let tpr = if xbcast.is_some() {
        1
    } else if dot32 {
        threads_per_row_dot32(w.k / 32, wg).min(width)
    } else {
        threads_per_row(w.k / 4, wg).min(width)
    };
    let rows = if multi {
        multi_rows_per_invocation(ctx)
    } else if xbcast.is_some() {
        XBCAST_ROWS
    } else {
        rows_per_invocation(ctx)
    };
    let mut key = reducing_key(ctx, ShaderId::MatVec, wg, allow_subgroup)
        .define(type_define(w.ty)?)
        .constant("TPR", tpr as f64)
        .constant("ROWS", rows as f64);
    if dot32 {
        key = key.define("DOT32");
    }
    if xbcast.is_some() {
        key = key.define("XBCAST");
    }
    if multi {
        key = key.define("MULTI").constant("NCOLS", cols.m as f64);
    }
    if accumulate {
        key = key.define("ADD");
    }
    if subgroup_rows(ctx, wg, tpr, allow_subgroup) {
        key = key.define("SUBGROUP_ROWS");
    }
    let pipeline = ctx.pipeline(&key)?;
    let rows_per_wg = wg / tpr * rows;
    let mut out = Vec::with_capacity(w.chunks.len());
    for c in &w.chunks {
        let params = MatVecParams {
            rows: c.rows,
            k: w.k,
            row_bytes: w.row_bytes,
            out_offset: u32_of("matvec y_offset", cols.y_offset)? + c.row_start,
            x_offset: u32_of("matvec x_offset", cols.x_offset / 4)?,
            x_stride4: u32_of("matvec x_stride", cols.x_stride / 4)?,
            y_stride: u32_of("matvec y_stride", cols.y_stride)?,
            pad: 0,
        };
        let p = ctx.uniform("matvec-params", &params);
        let bind_group = ctx.bind(&pipeline, &[&c.buffer, x, y, &p]);
        let workgroups = max_workgroups_grid(c.rows.div_ceil(rows_per_wg), ctx.grid_limit());
        out.push(Dispatch {
            pipeline: pipeline.clone(),
            bind_group,
            workgroups,
        });
    }
    Ok(out)
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct MatMulParams {
    m: u32,
    rows: u32,
    k: u32,
    row_bytes: u32,
    out_offset: u32,
    y_stride: u32,
    x_stride4: u32,
    pad: u32,
}

/// Tokens from which [`prepare_matmul`] takes the register-tiled kernel (64 × 64 blocks, 4 × 4
/// outputs per invocation: matmul.wgsl's REG); shorter steps keep 16 × 16 blocks, which waste
/// less on a partial tile.
pub const MATMUL_REG_MIN_TOKENS: usize = 64;

/// Y[t, r] = X[t, :] · W[r, :] for t < m tokens (X is m × k, Y is m × w.rows, row-major).
pub fn prepare_matmul(
    ctx: &GpuContext,
    w: &GpuWeight,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
    m: usize,
) -> Result<Vec<Dispatch>, GpuError> {
    let m32 = u32_of("matmul m", m)?;
    let reg = m >= MATMUL_REG_MIN_TOKENS;
    let mut key = PipelineKey::new(ShaderId::MatMul, "main").define(type_define(w.ty)?);
    if reg {
        key = key.define("REG");
    }
    let block = if reg { 64 } else { 16 };
    let pipeline = ctx.pipeline(&key)?;
    let mut out = Vec::with_capacity(w.chunks.len());
    for c in &w.chunks {
        let params = MatMulParams {
            m: m32,
            rows: c.rows,
            k: w.k,
            row_bytes: w.row_bytes,
            out_offset: c.row_start,
            y_stride: w.rows,
            x_stride4: w.k / 4,
            pad: 0,
        };
        let p = ctx.uniform("matmul-params", &params);
        let bind_group = ctx.bind(&pipeline, &[&c.buffer, x, y, &p]);
        let workgroups = [c.rows.div_ceil(block), m32.div_ceil(block), 1];
        if workgroups[0] > ctx.grid_limit() || workgroups[1] > ctx.grid_limit() {
            return Err(shape_err(
                "matmul",
                format!("{} rows × {m} tokens exceeds the dispatch grid", c.rows),
            ));
        }
        out.push(Dispatch {
            pipeline: pipeline.clone(),
            bind_group,
            workgroups,
        });
    }
    Ok(out)
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct EmbedParams {
    n_tokens: u32,
    k: u32,
    row_bytes: u32,
    row_start: u32,
    rows: u32,
    pad: [u32; 3],
}

/// Y[t, :] = dequantized row tokens[t] of `w` for t < n_tokens (`tokens` holds u32 ids,
/// already checked against the vocabulary).
pub fn prepare_embed(
    ctx: &GpuContext,
    w: &GpuWeight,
    tokens: &wgpu::Buffer,
    y: &wgpu::Buffer,
    n_tokens: usize,
) -> Result<Vec<Dispatch>, GpuError> {
    let n = u32_of("embed n_tokens", n_tokens)?;
    if n > ctx.grid_limit() {
        return Err(shape_err(
            "embed",
            format!("{n} tokens exceeds the dispatch grid"),
        ));
    }
    let key = PipelineKey::new(ShaderId::Embed, "main").define(type_define(w.ty)?);
    let pipeline = ctx.pipeline(&key)?;
    let mut out = Vec::with_capacity(w.chunks.len());
    for c in &w.chunks {
        let params = EmbedParams {
            n_tokens: n,
            k: w.k,
            row_bytes: w.row_bytes,
            row_start: c.row_start,
            rows: c.rows,
            pad: [0; 3],
        };
        let p = ctx.uniform("embed-params", &params);
        let bind_group = ctx.bind(&pipeline, &[&c.buffer, tokens, y, &p]);
        out.push(Dispatch {
            pipeline: pipeline.clone(),
            bind_group,
            workgroups: [(w.k / 4).div_ceil(64), n, 1],
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_per_row_stay_within_a_subgroup_and_the_work() {
        assert_eq!(row_width(8), 8);
        assert_eq!(row_width(32), 32);
        assert_eq!(row_width(0), 32, "unknown subgroup size");
        assert_eq!(row_width(u32::MAX), 32);
        // k = 256 is 8 groups of 32: 8 lanes; k = 4096 is 128 groups: the workgroup's width.
        assert_eq!(threads_per_row_dot32(8, 64), 8);
        assert_eq!(threads_per_row_dot32(128, 64), 64);
        assert_eq!(threads_per_row_dot32(0, 64), 1);
        assert!(
            has_dot32(GgmlType::Q4_K) && has_dot32(GgmlType::Q6_K) && !has_dot32(GgmlType::F16)
        );
    }
}
