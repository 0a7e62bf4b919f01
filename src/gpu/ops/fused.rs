//! Fused decode kernels (one token per step), so a layer costs fewer dispatches:
//! q/k/v projections (+ biases) in one launch, gate/up/SwiGLU in one, each optionally with the
//! RMSNorm of its input folded in (`shaders/matvec_fused.wgsl`); RoPE of q and k with the K/V
//! append to the paged pool in one (`shaders/rope_kv.wgsl`, any number of tokens).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use bytemuck::{Pod, Zeroable};

use super::super::{
    Dispatch, GpuContext, GpuError, GpuWeight, PipelineKey, ShaderId, max_workgroups_grid,
};
use super::attention::KvLayout;
use super::simple::{RopeParams, RopeStyle};
use super::weighted::{
    XBCAST_ROWS, has_dot32, row_width, rows_per_invocation, threads_per_row, threads_per_row_dot32,
    xbcast_subgroup,
};
use super::{reducing_key, shape_err, subgroup_rows, type_define, u32_of};

/// Most input elements a fused matvec with the norm folded in takes (its workgroup holds the
/// normed input: XCAP vec4s in matvec_fused.wgsl).
pub const FUSED_NORM_MAX_K: usize = 4096;

/// Workgroup size of the fused matvecs.
const FUSED_WG: u32 = 64;

/// Workgroup memory the NORM variant needs: the normed input and reduce.wgsl's 256 floats.
const FUSED_NORM_WG_BYTES: u32 = (FUSED_NORM_MAX_K as u32 + 256) * 4;

/// The RMSNorm folded into a fused matvec: y = x / sqrt(mean(x²) + eps) * weight.
#[derive(Clone, Copy)]
pub struct FoldedNorm<'a> {
    pub weight: &'a wgpu::Buffer,
    pub eps: f32,
}

/// Whether a fused matvec over `weights` (with the norm folded in when `norm`) runs on this
/// adapter: every weight one chunk with the same k, bindings and workgroup memory enough.
pub fn fused_matvec_supported(ctx: &GpuContext, weights: &[&GpuWeight], norm: bool) -> bool {
    let info = ctx.info();
    let Some(first) = weights.first() else {
        return false;
    };
    let k = first.k as usize;
    weights
        .iter()
        .all(|w| w.chunks.len() == 1 && w.k as usize == k && type_define(w.ty).is_ok())
        && k.is_multiple_of(4)
        && info.max_storage_buffers_per_shader_stage >= 9
        && (!norm
            || (k <= FUSED_NORM_MAX_K
                && info.max_compute_workgroup_storage_size >= FUSED_NORM_WG_BYTES))
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct FusedParams {
    rows0: u32,
    rows1: u32,
    rows2: u32,
    k: u32,
    row_bytes0: u32,
    row_bytes1: u32,
    row_bytes2: u32,
    eps: f32,
}

/// `S<slot>_<define>` as a static string (pipeline keys hold `&'static str`; the set is small
/// and bounded: 3 slots × the type defines and DOT32).
fn slot_define(slot: usize, define: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let name = format!("S{slot}_{define}");
    let mut map = match NAMES.get_or_init(Default::default).lock() {
        Ok(m) => m,
        Err(poisoned) => poisoned.into_inner(),
    };
    map.entry(name.clone())
        .or_insert_with(|| Box::leak(name.into_boxed_str()))
}

/// A fused launch's pipeline (with its TPR and ROWS constants) and the rows one workgroup takes.
struct FusedLaunch {
    key: PipelineKey,
    rows_per_wg: u32,
}

/// `boundaries`: the row counts of every slot but the last (QKV: q and k rows), which no
/// invocation's rows may straddle — nor a subgroup's, with broadcast activations.
fn fused_launch(
    ctx: &GpuContext,
    kind: &'static str,
    weights: &[&GpuWeight],
    norm: bool,
    bias: bool,
    boundaries: &[u32],
) -> Result<FusedLaunch, GpuError> {
    let k = weights[0].k;
    // Broadcast activations (weighted::xbcast_subgroup) when every slot reads 32-element
    // groups and a subgroup's rows can stay within one slot.
    let xbcast = xbcast_subgroup(ctx)
        .filter(|_| weights.iter().all(|w| has_dot32(w.ty)))
        .and_then(|sg| {
            let rows = fused_rows(XBCAST_ROWS, boundaries, sg);
            boundaries
                .iter()
                .all(|b| b.is_multiple_of(sg * rows))
                .then_some((sg, rows))
        });
    let (wg, per_inv) = match xbcast {
        Some((sg, rows)) => (sg, rows),
        None => (
            FUSED_WG,
            fused_rows(rows_per_invocation(ctx), boundaries, 1),
        ),
    };
    let mut key = reducing_key(ctx, ShaderId::MatVecFused, wg, true).define(kind);
    for (slot, w) in weights.iter().enumerate() {
        key = key.define(slot_define(slot, type_define(w.ty)?));
        if has_dot32(w.ty) {
            key = key.define(slot_define(slot, "DOT32"));
        }
    }
    // Broadcast activations take one invocation per row set; otherwise the widest any slot
    // wants, within the subgroup width.
    let tpr = if xbcast.is_some() {
        key = key.define("XBCAST");
        1
    } else {
        let width = row_width(ctx.info().subgroup_max_size);
        weights
            .iter()
            .map(|w| {
                if has_dot32(w.ty) {
                    threads_per_row_dot32(k / 32, wg)
                } else {
                    threads_per_row(k / 4, wg)
                }
                .min(width)
            })
            .max()
            .unwrap_or(1)
    };
    if norm {
        key = key.define("NORM");
    }
    if bias {
        key = key.define("BIAS");
    }
    if subgroup_rows(ctx, wg, tpr, true) {
        key = key.define("SUBGROUP_ROWS");
    }
    Ok(FusedLaunch {
        key: key
            .constant("TPR", tpr as f64)
            .constant("ROWS", per_inv as f64),
        rows_per_wg: wg / tpr * per_inv,
    })
}

/// ROWS for a fused launch: `most`, or fewer so that `unit` × ROWS divides every boundary (an
/// invocation's rows never straddle two weights).
fn fused_rows(most: u32, boundaries: &[u32], unit: u32) -> u32 {
    let mut rows = most;
    while rows > 1 && !boundaries.iter().all(|b| b.is_multiple_of(unit * rows)) {
        rows /= 2;
    }
    rows
}

fn check_fused(
    ctx: &GpuContext,
    what: &'static str,
    weights: &[&GpuWeight],
    norm: bool,
) -> Result<(), GpuError> {
    if fused_matvec_supported(ctx, weights, norm) {
        return Ok(());
    }
    Err(shape_err(
        what,
        format!(
            "weights {:?} (k {:?}, chunks {:?}) need one chunk each and one k{}",
            weights.iter().map(|w| w.ty).collect::<Vec<_>>(),
            weights.iter().map(|w| w.k).collect::<Vec<_>>(),
            weights.iter().map(|w| w.chunks.len()).collect::<Vec<_>>(),
            if norm {
                format!(" ≤ {FUSED_NORM_MAX_K} (norm folded in)")
            } else {
                String::new()
            }
        ),
    ))
}

/// q, k and v of one token in one dispatch: y_i[r] = W_i[r, :] · x (+ bias), with x = `x[0..k]`,
/// or `rmsnorm(x[0..k]) * norm.weight` when `norm` is given. `bias` holds the three biases
/// concatenated (q_rows + k_rows + v_rows floats). Check [`fused_matvec_supported`] first.
pub fn prepare_matvec_qkv(
    ctx: &GpuContext,
    w: [&GpuWeight; 3],
    x: &wgpu::Buffer,
    norm: Option<FoldedNorm<'_>>,
    bias: Option<&wgpu::Buffer>,
    y: [&wgpu::Buffer; 3],
) -> Result<Dispatch, GpuError> {
    check_fused(ctx, "qkv matvec", &w, norm.is_some())?;
    let launch = fused_launch(
        ctx,
        "QKV",
        &w,
        norm.is_some(),
        bias.is_some(),
        &[w[0].rows, w[1].rows],
    )?;
    let params = FusedParams {
        rows0: w[0].rows,
        rows1: w[1].rows,
        rows2: w[2].rows,
        k: w[0].k,
        row_bytes0: w[0].row_bytes,
        row_bytes1: w[1].row_bytes,
        row_bytes2: w[2].row_bytes,
        eps: norm.map_or(0.0, |n| n.eps),
    };
    let rows = u32_of("qkv rows", w.iter().map(|w| w.rows as usize).sum::<usize>())?;
    let pipeline = ctx.pipeline(&launch.key)?;
    let p = ctx.uniform("qkv-params", &params);
    let mut entries = vec![
        (0, &w[0].chunks[0].buffer),
        (1, &w[1].chunks[0].buffer),
        (2, &w[2].chunks[0].buffer),
        (3, x),
        (5, y[0]),
        (6, y[1]),
        (7, y[2]),
        (9, &p),
    ];
    if let Some(n) = norm {
        entries.push((4, n.weight));
    }
    if let Some(b) = bias {
        entries.push((8, b));
    }
    let bind_group = ctx.bind_numbered(&pipeline, &entries);
    Ok(Dispatch {
        pipeline,
        bind_group,
        workgroups: max_workgroups_grid(rows.div_ceil(launch.rows_per_wg), ctx.grid_limit()),
    })
}

/// gate, up and SwiGLU of one token in one dispatch: y[r] = silu(gate[r, :] · x) * (up[r, :] ·
/// x), x as in [`prepare_matvec_qkv`]. Check [`fused_matvec_supported`] first.
pub fn prepare_matvec_glu(
    ctx: &GpuContext,
    gate: &GpuWeight,
    up: &GpuWeight,
    x: &wgpu::Buffer,
    norm: Option<FoldedNorm<'_>>,
    y: &wgpu::Buffer,
) -> Result<Dispatch, GpuError> {
    let w = [gate, up];
    check_fused(ctx, "gate/up matvec", &w, norm.is_some())?;
    if gate.rows != up.rows {
        return Err(shape_err(
            "gate/up matvec",
            format!("gate has {} rows, up {}", gate.rows, up.rows),
        ));
    }
    let launch = fused_launch(ctx, "GLU", &w, norm.is_some(), false, &[])?;
    let params = FusedParams {
        rows0: gate.rows,
        rows1: up.rows,
        rows2: 0,
        k: gate.k,
        row_bytes0: gate.row_bytes,
        row_bytes1: up.row_bytes,
        row_bytes2: 0,
        eps: norm.map_or(0.0, |n| n.eps),
    };
    let pipeline = ctx.pipeline(&launch.key)?;
    let p = ctx.uniform("glu-params", &params);
    let mut entries = vec![
        (0, &gate.chunks[0].buffer),
        (1, &up.chunks[0].buffer),
        (3, x),
        (5, y),
        (9, &p),
    ];
    if let Some(n) = norm {
        entries.push((4, n.weight));
    }
    let bind_group = ctx.bind_numbered(&pipeline, &entries);
    Ok(Dispatch {
        pipeline,
        bind_group,
        workgroups: max_workgroups_grid(gate.rows.div_ceil(launch.rows_per_wg), ctx.grid_limit()),
    })
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct RopeKvParams {
    n_tokens: u32,
    n_head: u32,
    n_kv_head: u32,
    head_dim: u32,
    n_rot: u32,
    neox: u32,
    freq_base: f32,
    freq_scale: f32,
    block_size: u32,
    bt_stride: u32,
    pad: [u32; 2],
}

/// The buffers [`prepare_rope_kv`] reads and writes.
pub struct RopeKvBuffers<'a> {
    /// n_tokens × n_head × head_dim, rotated in place.
    pub q: &'a wgpu::Buffer,
    /// n_tokens × n_kv_head × head_dim (read only: the pool gets the rotated values).
    pub k: &'a wgpu::Buffer,
    pub v: &'a wgpu::Buffer,
    pub k_pool: &'a wgpu::Buffer,
    pub v_pool: &'a wgpu::Buffer,
    pub positions: &'a wgpu::Buffer,
    pub block_table: &'a wgpu::Buffer,
    /// n_rot/2 frequency factors (ones when the model has none).
    pub freq_factors: &'a wgpu::Buffer,
}

/// RoPE on q (in place, `rp.n_heads` heads) and on k, with k and v appended to the pools at
/// `positions` through the block table: rope ×2 + kv_write ×2 in one dispatch, the same
/// arithmetic. `rp.n_tokens` tokens; the pools' kv heads and head size come from `layout`.
/// Every token is the one sequence's whose table is the block table's first row.
pub fn prepare_rope_kv(
    ctx: &GpuContext,
    layout: &KvLayout,
    rp: &RopeParams,
    b: &RopeKvBuffers<'_>,
) -> Result<Dispatch, GpuError> {
    prepare_rope_kv_rows(ctx, layout, rp, b, 0)
}

/// [`prepare_rope_kv`] for a batched step: token t belongs to the sequence whose table is
/// row t of the block table (entries t × `table_stride` ..); 0 makes it [`prepare_rope_kv`].
pub fn prepare_rope_kv_rows(
    ctx: &GpuContext,
    layout: &KvLayout,
    rp: &RopeParams,
    b: &RopeKvBuffers<'_>,
    table_stride: usize,
) -> Result<Dispatch, GpuError> {
    if rp.n_rot == 0
        || !rp.n_rot.is_multiple_of(2)
        || rp.n_rot > rp.head_dim
        || rp.head_dim != layout.head_dim
        || !layout.head_dim.is_multiple_of(2)
        || layout.block_size == 0
        || layout.n_kv_head == 0
    {
        return Err(shape_err(
            "rope_kv",
            format!(
                "n_rot {} must be even, > 0 and ≤ head_dim {} (pool {:?})",
                rp.n_rot, rp.head_dim, layout
            ),
        ));
    }
    let params = RopeKvParams {
        n_tokens: u32_of("rope_kv tokens", rp.n_tokens)?,
        n_head: u32_of("rope_kv heads", rp.n_heads)?,
        n_kv_head: u32_of("kv heads", layout.n_kv_head)?,
        head_dim: u32_of("head_dim", layout.head_dim)?,
        n_rot: u32_of("n_rot", rp.n_rot)?,
        neox: (rp.style == RopeStyle::Neox) as u32,
        freq_base: rp.freq_base,
        freq_scale: rp.freq_scale,
        block_size: u32_of("block_size", layout.block_size)?,
        bt_stride: u32_of("block-table stride", table_stride)?,
        pad: [0; 2],
    };
    let items = rp
        .n_heads
        .checked_mul(rp.n_rot / 2)
        .and_then(|q| q.checked_add(layout.n_kv_head * layout.head_dim))
        .and_then(|per_token| per_token.checked_mul(rp.n_tokens))
        .ok_or_else(|| shape_err("rope_kv", "size overflows".into()))?;
    let groups = u32_of("rope_kv items", items.div_ceil(64))?;
    let key = PipelineKey::new(ShaderId::RopeKv, "main");
    let key = if layout.f16 {
        key.define("KV_F16")
    } else {
        key
    };
    let pipeline = ctx.pipeline(&key)?;
    let p = ctx.uniform("rope-kv-params", &params);
    let bind_group = ctx.bind(
        &pipeline,
        &[
            b.q,
            b.k,
            b.v,
            b.k_pool,
            b.v_pool,
            b.positions,
            b.block_table,
            b.freq_factors,
            &p,
        ],
    );
    Ok(Dispatch {
        pipeline,
        bind_group,
        workgroups: max_workgroups_grid(groups, ctx.grid_limit()),
    })
}
