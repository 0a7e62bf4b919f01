//! Kernels over activations only: RMSNorm, RoPE, residual add, SwiGLU, argmax.

use bytemuck::{Pod, Zeroable};

use super::super::{Dispatch, GpuContext, GpuError, PipelineKey, ShaderId, max_workgroups_grid};
use super::{reducing_key, shape_err, u32_of};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct NormParams {
    n_rows: u32,
    n: u32,
    eps: f32,
    pad: u32,
}

#[allow(clippy::too_many_arguments)]
/// y[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) * g for r < n_rows (y must not alias x).
pub fn prepare_rmsnorm(
    ctx: &GpuContext,
    x: &wgpu::Buffer,
    g: &wgpu::Buffer,
    y: &wgpu::Buffer,
    n_rows: usize,
    n: usize,
    eps: f32,
    allow_subgroup: bool,
) -> Result<Dispatch, GpuError> {
    let params = NormParams {
        n_rows: u32_of("rmsnorm rows", n_rows)?,
        n: u32_of("rmsnorm n", n)?,
        eps,
        pad: 0,
    };
    let pipeline = ctx.pipeline(&reducing_key(ctx, ShaderId::RmsNorm, 256, allow_subgroup))?;
    let p = ctx.uniform("rmsnorm-params", &params);
    let bind_group = ctx.bind(&pipeline, &[x, g, y, &p]);
    Ok(Dispatch {
        pipeline,
        bind_group,
        workgroups: max_workgroups_grid(params.n_rows, ctx.grid_limit()),
    })
}

/// Which elements RoPE rotates together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// (x[2i], x[2i+1]): llama, mistral.
    Normal,
    /// (x[i], x[i + n_rot/2]): qwen2 (GPT-NeoX).
    Neox,
}

#[derive(Clone, Copy, Debug)]
pub struct RopeParams {
    pub n_tokens: usize,
    pub n_heads: usize,
    pub head_dim: usize,
    /// Rotated dimensions (≤ head_dim, even).
    pub n_rot: usize,
    pub style: RopeStyle,
    pub freq_base: f32,
    pub freq_scale: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct RopeGpuParams {
    n_tokens: u32,
    n_heads: u32,
    head_dim: u32,
    n_rot: u32,
    neox: u32,
    freq_base: f32,
    freq_scale: f32,
    pad: u32,
}

/// RoPE in place on x (n_tokens × n_heads × head_dim) at `positions` (u32 per token), with
/// per-pair frequency factors `freq_factors` (n_rot/2 floats; ones when the model has none).
pub fn prepare_rope(
    ctx: &GpuContext,
    x: &wgpu::Buffer,
    positions: &wgpu::Buffer,
    freq_factors: &wgpu::Buffer,
    rp: &RopeParams,
) -> Result<Dispatch, GpuError> {
    if rp.n_rot == 0 || !rp.n_rot.is_multiple_of(2) || rp.n_rot > rp.head_dim {
        return Err(shape_err(
            "rope",
            format!(
                "n_rot {} must be even, > 0 and ≤ head_dim {}",
                rp.n_rot, rp.head_dim
            ),
        ));
    }
    let params = RopeGpuParams {
        n_tokens: u32_of("rope tokens", rp.n_tokens)?,
        n_heads: u32_of("rope heads", rp.n_heads)?,
        head_dim: u32_of("rope head_dim", rp.head_dim)?,
        n_rot: u32_of("rope n_rot", rp.n_rot)?,
        neox: (rp.style == RopeStyle::Neox) as u32,
        freq_base: rp.freq_base,
        freq_scale: rp.freq_scale,
        pad: 0,
    };
    let pairs = rp
        .n_tokens
        .checked_mul(rp.n_heads)
        .and_then(|v| v.checked_mul(rp.n_rot / 2))
        .ok_or_else(|| shape_err("rope", "size overflows".into()))?;
    let groups = u32_of("rope pairs", pairs.div_ceil(64))?;
    let pipeline = ctx.pipeline(&PipelineKey::new(ShaderId::Rope, "main"))?;
    let p = ctx.uniform("rope-params", &params);
    let bind_group = ctx.bind(&pipeline, &[x, positions, freq_factors, &p]);
    Ok(Dispatch {
        pipeline,
        bind_group,
        workgroups: max_workgroups_grid(groups, ctx.grid_limit()),
    })
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ElemParams {
    n: u32,
    a_offset: u32,
    b_offset: u32,
    b_period: u32,
}

#[allow(clippy::too_many_arguments)]
fn prepare_elementwise(
    ctx: &GpuContext,
    entry: &'static str,
    a: &wgpu::Buffer,
    a_offset: usize,
    b: &wgpu::Buffer,
    b_offset: usize,
    n: usize,
    b_period: usize,
) -> Result<Dispatch, GpuError> {
    let params = ElemParams {
        n: u32_of("elementwise n", n)?,
        a_offset: u32_of("elementwise a_offset", a_offset)?,
        b_offset: u32_of("elementwise b_offset", b_offset)?,
        b_period: u32_of("elementwise b_period", b_period)?,
    };
    let pipeline = ctx.pipeline(&PipelineKey::new(ShaderId::Elementwise, entry))?;
    let p = ctx.uniform(entry, &params);
    let bind_group = ctx.bind(&pipeline, &[a, b, &p]);
    Ok(Dispatch {
        pipeline,
        bind_group,
        workgroups: max_workgroups_grid(params.n.div_ceil(256), ctx.grid_limit()),
    })
}

/// a[a_offset + i] += b[b_offset + i] for i < n (residual add; a and b distinct buffers).
pub fn prepare_add(
    ctx: &GpuContext,
    a: &wgpu::Buffer,
    a_offset: usize,
    b: &wgpu::Buffer,
    b_offset: usize,
    n: usize,
) -> Result<Dispatch, GpuError> {
    prepare_elementwise(ctx, "add_inplace", a, a_offset, b, b_offset, n, 0)
}

/// a[a_offset + i] += bias[i % period] for i < n: a bias added to each `period`-long row.
pub fn prepare_add_bias(
    ctx: &GpuContext,
    a: &wgpu::Buffer,
    a_offset: usize,
    bias: &wgpu::Buffer,
    period: usize,
    n: usize,
) -> Result<Dispatch, GpuError> {
    if period == 0 {
        return Err(shape_err("add_bias", "period must be > 0".into()));
    }
    prepare_elementwise(ctx, "add_inplace", a, a_offset, bias, 0, n, period)
}

/// gate[i] = silu(gate[i]) * up[i] for i < n (gate and up distinct buffers).
pub fn prepare_swiglu(
    ctx: &GpuContext,
    gate: &wgpu::Buffer,
    gate_offset: usize,
    up: &wgpu::Buffer,
    up_offset: usize,
    n: usize,
) -> Result<Dispatch, GpuError> {
    prepare_elementwise(
        ctx,
        "swiglu_inplace",
        gate,
        gate_offset,
        up,
        up_offset,
        n,
        0,
    )
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ArgmaxParams {
    n: u32,
    offset: u32,
    out_index: u32,
    pad: u32,
}

/// out[out_index] = argmax of x[offset .. offset + n] (lowest index on ties).
pub fn prepare_argmax(
    ctx: &GpuContext,
    x: &wgpu::Buffer,
    offset: usize,
    n: usize,
    out: &wgpu::Buffer,
    out_index: usize,
) -> Result<Dispatch, GpuError> {
    let params = ArgmaxParams {
        n: u32_of("argmax n", n)?,
        offset: u32_of("argmax offset", offset)?,
        out_index: u32_of("argmax out_index", out_index)?,
        pad: 0,
    };
    let pipeline = ctx.pipeline(&PipelineKey::new(ShaderId::Argmax, "main"))?;
    let p = ctx.uniform("argmax-params", &params);
    let bind_group = ctx.bind(&pipeline, &[x, out, &p]);
    Ok(Dispatch {
        pipeline,
        bind_group,
        workgroups: [1, 1, 1],
    })
}
