//! Paged KV cache kernels: append K/V rows into pool blocks, and split-K attention over a
//! sequence's block table (see shaders/paged_kv.wgsl and shaders/attention.wgsl for layouts).

use bytemuck::{Pod, Zeroable};

use super::super::{Dispatch, GpuContext, GpuError, PipelineKey, ShaderId, max_workgroups_grid};
use super::weighted::xbcast_subgroup;
use super::{shape_err, u32_of};

/// Keys per split of the attention kernel (SPLIT in attention.wgsl).
pub const ATTENTION_SPLIT: usize = 64;

/// Geometry of one layer's paged K or V pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvLayout {
    pub block_size: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    /// f16 values packed two per u32 (else f32).
    pub f16: bool,
}

impl KvLayout {
    /// Bytes of one pool holding `n_blocks` blocks.
    pub fn pool_bytes(&self, n_blocks: usize) -> u64 {
        let elems = (n_blocks * self.block_size * self.n_kv_head * self.head_dim) as u64;
        if self.f16 { elems * 2 } else { elems * 4 }
    }

    fn key(&self, shader: ShaderId, entry: &'static str) -> PipelineKey {
        let k = PipelineKey::new(shader, entry);
        if self.f16 { k.define("KV_F16") } else { k }
    }

    /// Whether a key's row is whole vec4<u32> words (head_dim a multiple of 8 halves or 4
    /// floats; rows then start on 16 bytes): decode attention then reads K and V a vec4 word
    /// at a time (attention.wgsl's VEC).
    fn rows_are_vec4_words(&self) -> bool {
        self.head_dim.is_multiple_of(if self.f16 { 8 } else { 4 })
    }

    /// vec4<u32> words per key row (with [`Self::rows_are_vec4_words`]).
    fn row_words(&self) -> usize {
        self.head_dim / if self.f16 { 8 } else { 4 }
    }

    fn check(&self) -> Result<(), GpuError> {
        if self.block_size == 0
            || self.n_kv_head == 0
            || self.head_dim == 0
            || !self.head_dim.is_multiple_of(2)
            || self.head_dim > 256
        {
            return Err(shape_err(
                "kv layout",
                format!("{self:?}: head_dim must be even and ≤ 256, sizes > 0"),
            ));
        }
        Ok(())
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct KvWriteParams {
    n_tokens: u32,
    n_kv_head: u32,
    head_dim: u32,
    block_size: u32,
}

/// Writes `src` (n_tokens × n_kv_head × head_dim f32) into `pool` at the positions in
/// `positions` through `block_table`.
pub fn prepare_kv_write(
    ctx: &GpuContext,
    layout: &KvLayout,
    src: &wgpu::Buffer,
    pool: &wgpu::Buffer,
    positions: &wgpu::Buffer,
    block_table: &wgpu::Buffer,
    n_tokens: usize,
) -> Result<Dispatch, GpuError> {
    layout.check()?;
    let params = KvWriteParams {
        n_tokens: u32_of("kv_write tokens", n_tokens)?,
        n_kv_head: u32_of("kv heads", layout.n_kv_head)?,
        head_dim: u32_of("head_dim", layout.head_dim)?,
        block_size: u32_of("block_size", layout.block_size)?,
    };
    let pairs = u32_of(
        "kv_write size",
        n_tokens * layout.n_kv_head * layout.head_dim / 2,
    )?;
    let pipeline = ctx.pipeline(&layout.key(ShaderId::KvWrite, "main"))?;
    let p = ctx.uniform("kv-write-params", &params);
    let bind_group = ctx.bind(&pipeline, &[src, pool, positions, block_table, &p]);
    Ok(Dispatch {
        pipeline,
        bind_group,
        workgroups: max_workgroups_grid(pairs.div_ceil(64), ctx.grid_limit()),
    })
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct AttnParams {
    n_q: u32,
    n_head: u32,
    n_kv_head: u32,
    head_dim: u32,
    block_size: u32,
    /// Splits (split-K kernel) or keys per tile (tiled kernel).
    n_splits: u32,
    scale: f32,
    /// Block-table entries per query row (0: every query reads row 0).
    bt_stride: u32,
}

/// Bytes of the split scratch that [`prepare_attention`] needs.
pub fn attention_scratch_bytes(n_q: usize, n_head: usize, head_dim: usize, max_len: usize) -> u64 {
    (n_q * n_head * max_len.div_ceil(ATTENTION_SPLIT) * (head_dim + 2) * 4) as u64
}

/// Attention of `n_q` queries (q: n_q × n_head × head_dim, positions in `q_positions`, each
/// seeing keys 0..=its position) over the pools through `block_table`, into `out` (same shape
/// as q). `max_len` bounds every query's position + 1; `scratch` holds the per-split partial
/// results ([`attention_scratch_bytes`]; layers may share one). Returns (partial, combine).
#[allow(clippy::too_many_arguments)]
pub fn prepare_attention(
    ctx: &GpuContext,
    layout: &KvLayout,
    n_head: usize,
    q: &wgpu::Buffer,
    k_pool: &wgpu::Buffer,
    v_pool: &wgpu::Buffer,
    block_table: &wgpu::Buffer,
    q_positions: &wgpu::Buffer,
    out: &wgpu::Buffer,
    scratch: &wgpu::Buffer,
    n_q: usize,
    max_len: usize,
    scale: f32,
) -> Result<Vec<Dispatch>, GpuError> {
    let buffers = [q, k_pool, v_pool, block_table, q_positions, out, scratch];
    prepare_attention_rows(ctx, layout, n_head, buffers, n_q, max_len, scale, 0)
}

/// [`prepare_attention`] for a batched step: query qi belongs to the sequence whose table is
/// row qi of `block_table` (entries qi × `table_stride` ..) and sees that sequence's keys
/// 0..=its position. `buffers`: q, k_pool, v_pool, block_table, q_positions, out, scratch.
#[allow(clippy::too_many_arguments)]
pub fn prepare_attention_rows(
    ctx: &GpuContext,
    layout: &KvLayout,
    n_head: usize,
    buffers: [&wgpu::Buffer; 7],
    n_q: usize,
    max_len: usize,
    scale: f32,
    table_stride: usize,
) -> Result<Vec<Dispatch>, GpuError> {
    let [q, k_pool, v_pool, block_table, q_positions, out, scratch] = buffers;
    layout.check()?;
    if n_head == 0 || !n_head.is_multiple_of(layout.n_kv_head) || max_len == 0 {
        return Err(shape_err(
            "attention",
            format!(
                "n_head {n_head} must be a multiple of n_kv_head {}, max_len {max_len} > 0",
                layout.n_kv_head
            ),
        ));
    }
    let need = attention_scratch_bytes(n_q, n_head, layout.head_dim, max_len);
    if scratch.size() < need {
        return Err(shape_err(
            "attention",
            format!("scratch of {} bytes, {need} needed", scratch.size()),
        ));
    }
    let n_splits = max_len.div_ceil(ATTENTION_SPLIT);
    let params = AttnParams {
        n_q: u32_of("attention n_q", n_q)?,
        n_head: u32_of("attention n_head", n_head)?,
        n_kv_head: u32_of("kv heads", layout.n_kv_head)?,
        head_dim: u32_of("head_dim", layout.head_dim)?,
        block_size: u32_of("block_size", layout.block_size)?,
        n_splits: u32_of("attention splits", n_splits)?,
        scale,
        bt_stride: u32_of("block-table stride", table_stride)?,
    };
    let lim = ctx.grid_limit();
    if params.n_splits > lim || params.n_head > lim || params.n_q > lim {
        return Err(shape_err("attention", "dispatch grid too large".into()));
    }
    let p = ctx.uniform("attention-params", &params);
    let partial = match subgroup_attention(ctx, layout) {
        // CPU adapters: one subgroup per split, no workgroup memory (attention_lanes.wgsl).
        Some(sg) => subgroup_attention_key(layout, ShaderId::AttentionLanes, "partial", sg),
        None => {
            let mut key = layout.key(ShaderId::Attention, "partial").define("PARTIAL");
            if layout.rows_are_vec4_words() {
                key = key.define("VEC");
            }
            if ctx.has_subgroup() {
                key = key.define("SUBGROUP");
            }
            key
        }
    };
    let p1 = ctx.pipeline(&partial)?;
    let bg1 = ctx.bind(
        &p1,
        &[q, k_pool, v_pool, block_table, q_positions, scratch, &p],
    );
    let p2 = ctx.pipeline(&PipelineKey::new(ShaderId::Attention, "combine").define("COMBINE"))?;
    let bg2 = ctx.bind(&p2, &[scratch, out, &p]);
    Ok(vec![
        Dispatch {
            pipeline: p1,
            bind_group: bg1,
            workgroups: [params.n_splits, params.n_head, params.n_q],
        },
        Dispatch {
            pipeline: p2,
            bind_group: bg2,
            workgroups: [params.n_head, params.n_q, 1],
        },
    ])
}

/// Queries per workgroup of the tiled prefill kernel (BQ in attention_tiled.wgsl).
pub const PREFILL_QUERY_TILE: usize = 16;

/// llvmpipe (lavapipe) ends every loop of a shader invocation once all its loops together have
/// run this many iterations (Mesa's `LP_MAX_TGSI_LOOP_ITERATIONS`), without an error.
pub const LLVMPIPE_LOOP_LIMIT: usize = 65_535;

/// Whether [`prepare_prefill_attention`] handles this head size (a multiple of 4, ≤ 256).
pub fn prefill_attention_supports(head_dim: usize) -> bool {
    head_dim > 0 && head_dim.is_multiple_of(4) && head_dim <= 256
}

/// Keys per tile of the tiled kernel: TILE_VEC4 · 4 / head_dim, at most BK_MAX.
fn prefill_key_tile(head_dim: usize) -> usize {
    (2048 / head_dim).min(16)
}

/// Keys per split of the tiled prefill kernel (a multiple of its key tile). Unlimited adapters
/// take the whole context in one split. Where loops are limited ([`LLVMPIPE_LOOP_LIMIT`]), the most whole
/// key tiles whose loop iterations stay within 3/4 of the limit, counted as the kernel runs
/// them (a WGSL `for` costs one iteration more than its trip count: the exit test).
pub fn prefill_split_keys(head_dim: usize, max_len: usize, loops_limited: bool) -> usize {
    if !prefill_attention_supports(head_dim) {
        return max_len.max(1);
    }
    let bk = prefill_key_tile(head_dim);
    let whole = max_len.max(1).next_multiple_of(bk);
    if !loops_limited {
        return whole;
    }
    let hd4 = head_dim / 4;
    let per_lane = hd4.div_ceil(4);
    let stage = (bk * hd4).div_ceil(64) + 1;
    let per_key = per_lane + 1;
    let per_tile = 2 * stage + 2 * ((bk + 1) + bk * per_key) + (bk + 1) + (per_lane + 1) + 1;
    // Outside the key loop: lens max (17), q load and output (per_lane + 1 each).
    let fixed = 17 + 2 * (per_lane + 1);
    let tiles = (LLVMPIPE_LOOP_LIMIT * 3 / 4 - fixed) / per_tile;
    (tiles * bk).min(whole)
}

/// The subgroup size with which attention shares K/V rows by subgroup broadcast instead of
/// workgroup memory — decode `attention_lanes.wgsl`, prefill `attention_rows.wgsl` — or None
/// for `attention.wgsl` / `attention_tiled.wgsl`: CPU adapters (weighted::xbcast_subgroup)
/// with key rows of whole vec4 words, a multiple of 8 of them (head_dim a multiple of 64 in
/// f16, of 32 in f32), and key tiles of whole 8-key chunks (the prefill kernel takes the tiled
/// kernel's splits). Measured on lavapipe: ARCHITECTURE.md ("GPU engine").
fn subgroup_attention(ctx: &GpuContext, layout: &KvLayout) -> Option<u32> {
    let fits = layout.rows_are_vec4_words()
        && layout.row_words().is_multiple_of(8)
        && layout.head_dim <= 256
        && prefill_key_tile(layout.head_dim).is_multiple_of(8);
    xbcast_subgroup(ctx).filter(|_| fits)
}

/// The pipeline key of a subgroup attention kernel (`shader`'s `entry`) for subgroups of `sg`.
fn subgroup_attention_key(
    layout: &KvLayout,
    shader: ShaderId,
    entry: &'static str,
    sg: u32,
) -> PipelineKey {
    layout
        .key(shader, entry)
        .constant("WG", sg as f64)
        .constant("KW8", (layout.row_words() / 8) as f64)
        .constant("NQ4", (layout.head_dim / 4) as f64)
}

/// Splits of the tiled prefill kernel for a context of `max_len` keys.
pub fn prefill_splits(split_keys: usize, max_len: usize) -> usize {
    max_len.max(1).div_ceil(split_keys.max(1))
}

/// Bytes of the partials the tiled prefill kernel writes when it needs several splits (0 when
/// one split covers `max_len`).
pub fn prefill_attention_scratch_bytes(
    n_q: usize,
    n_head: usize,
    head_dim: usize,
    max_len: usize,
    split_keys: usize,
) -> u64 {
    let splits = prefill_splits(split_keys, max_len);
    if splits <= 1 {
        return 0;
    }
    (n_q * n_head * splits * (head_dim + 2) * 4) as u64
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct TiledParams {
    n_q: u32,
    n_head: u32,
    n_kv_head: u32,
    head_dim: u32,
    block_size: u32,
    bk: u32,
    scale: f32,
    split_keys: u32,
}

/// Causal attention of `n_q` queries as [`prepare_attention`] computes it, with the tiled
/// kernel (shaders/attention_tiled.wgsl). `max_len` bounds every query's position + 1; the
/// keys are cut in splits of `split_keys` ([`prefill_split_keys`], a multiple of the key
/// tile). One split: one dispatch, no scratch. Several: the kernel writes partials to
/// `scratch` ([`prefill_attention_scratch_bytes`]) and attention.wgsl's `combine` merges them.
#[allow(clippy::too_many_arguments)]
pub fn prepare_prefill_attention(
    ctx: &GpuContext,
    layout: &KvLayout,
    n_head: usize,
    q: &wgpu::Buffer,
    k_pool: &wgpu::Buffer,
    v_pool: &wgpu::Buffer,
    block_table: &wgpu::Buffer,
    q_positions: &wgpu::Buffer,
    out: &wgpu::Buffer,
    scratch: &wgpu::Buffer,
    n_q: usize,
    max_len: usize,
    split_keys: usize,
    scale: f32,
) -> Result<Vec<Dispatch>, GpuError> {
    layout.check()?;
    let bk = prefill_key_tile(layout.head_dim.max(1));
    if n_head == 0
        || !n_head.is_multiple_of(layout.n_kv_head)
        || !prefill_attention_supports(layout.head_dim)
        || split_keys == 0
        || !split_keys.is_multiple_of(bk)
    {
        return Err(shape_err(
            "prefill attention",
            format!(
                "n_head {n_head} must be a multiple of n_kv_head {}; head_dim {} a multiple of 4, ≤ 256; split_keys {split_keys} a multiple of {bk}",
                layout.n_kv_head, layout.head_dim
            ),
        ));
    }
    let n_splits = prefill_splits(split_keys, max_len);
    let need = prefill_attention_scratch_bytes(n_q, n_head, layout.head_dim, max_len, split_keys);
    if scratch.size() < need {
        return Err(shape_err(
            "prefill attention",
            format!("scratch of {} bytes, {need} needed", scratch.size()),
        ));
    }
    let params = TiledParams {
        n_q: u32_of("attention n_q", n_q)?,
        n_head: u32_of("attention n_head", n_head)?,
        n_kv_head: u32_of("kv heads", layout.n_kv_head)?,
        head_dim: u32_of("head_dim", layout.head_dim)?,
        block_size: u32_of("block_size", layout.block_size)?,
        bk: bk as u32,
        scale,
        split_keys: u32_of("attention split", split_keys)?,
    };
    let groups = u32_of("attention tiles", n_q.div_ceil(PREFILL_QUERY_TILE))?;
    let splits = u32_of("attention splits", n_splits)?;
    let lim = ctx.grid_limit();
    if groups > lim || params.n_head > lim || splits > lim || params.n_q > lim {
        return Err(shape_err(
            "prefill attention",
            "dispatch grid too large".into(),
        ));
    }
    let p = ctx.uniform("prefill-attention-params", &params);
    let (pipeline, groups) = match subgroup_attention(ctx, layout) {
        Some(sg) => {
            let key = subgroup_attention_key(layout, ShaderId::AttentionRows, "main", sg);
            let groups = u32_of("attention query groups", n_q.div_ceil(sg as usize))?;
            (ctx.pipeline(&key)?, groups)
        }
        None => {
            let mut key = layout.key(ShaderId::AttentionTiled, "main");
            if layout.head_dim.is_multiple_of(16) {
                key = key.constant("NM4", (layout.head_dim / 16) as f64);
            }
            (ctx.pipeline(&key)?, groups)
        }
    };
    if groups > lim {
        return Err(shape_err(
            "prefill attention",
            "dispatch grid too large".into(),
        ));
    }
    let target = if n_splits > 1 { scratch } else { out };
    let bind_group = ctx.bind(
        &pipeline,
        &[q, k_pool, v_pool, block_table, q_positions, target, &p],
    );
    let mut dispatches = vec![Dispatch {
        pipeline,
        bind_group,
        workgroups: [groups, params.n_head, splits],
    }];
    if n_splits > 1 {
        let combine = AttnParams {
            n_q: params.n_q,
            n_head: params.n_head,
            n_kv_head: params.n_kv_head,
            head_dim: params.head_dim,
            block_size: params.block_size,
            n_splits: splits,
            scale,
            bt_stride: 0,
        };
        let p2 = ctx.uniform("prefill-combine-params", &combine);
        let pipeline =
            ctx.pipeline(&PipelineKey::new(ShaderId::Attention, "combine").define("COMBINE"))?;
        let bind_group = ctx.bind(&pipeline, &[scratch, out, &p2]);
        dispatches.push(Dispatch {
            pipeline,
            bind_group,
            workgroups: [params.n_head, params.n_q, 1],
        });
    }
    Ok(dispatches)
}
