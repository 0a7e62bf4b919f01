//! The weight kernels against `hearth::quant` (`dot_row`, `dequantize`) on whatever adapter
//! `GpuContext::new` picks (Mesa lavapipe in CI): decode matvec (every reduction and workgroup
//! size), matvec over several tokens, tiled matmul and the embedding gather, for every GPU
//! weight type, with odd shapes and weights split into chunks. Without an adapter the tests
//! skip, unless `CI` is set.

mod common;

use common::kernels::*;
use hearth::gpu::GpuWeight;
use hearth::gpu::ops;
use hearth::quant::{self, GgmlType};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

#[test]
fn matvec_matches_dot_row_for_every_type_and_reduction() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(1);
    for ty in TYPES {
        for (k, rows) in shapes(ty) {
            let data = random_weights(&mut r, ty, k, rows);
            // x sits at an offset inside a larger buffer, as activations do.
            let x_off = 8;
            let x = random_f32(&mut r, k, 1.0);
            let mut xbuf = vec![0.0f32; x_off + k];
            xbuf[x_off..].copy_from_slice(&x);
            let (want, mass) = cpu_matvec(ty, &data, k, rows, &x);
            let xg = ctx.upload_pod("x", &xbuf).unwrap();
            // Whole tensor in one chunk, and split into chunks of 2 rows.
            let row_bytes = data.len() as u64 / rows as u64;
            for limit in [u64::MAX, 2 * row_bytes] {
                let w =
                    GpuWeight::upload_with_limit(ctx, "w", ty, k as u64, rows as u64, &data, limit)
                        .unwrap();
                assert_eq!(
                    w.chunks.len(),
                    if limit == u64::MAX {
                        1
                    } else {
                        rows.div_ceil(2)
                    }
                );
                for (wg, subgroup) in [
                    (64, true),
                    (64, false),
                    (32, false),
                    (256, true),
                    (8, true),
                    (4, false),
                ] {
                    let y_off = 3;
                    let y = ctx.zeroed("y", ((y_off + rows) * 4) as u64).unwrap();
                    let ds = ops::prepare_matvec(
                        ctx, &w, &xg.buffer, x_off, &y.buffer, y_off, wg, subgroup,
                    )
                    .unwrap();
                    run_all(ctx, &ds);
                    let got = ctx.read_f32(&y.buffer, y_off as u64, rows as u64).unwrap();
                    let worst = check_close(
                        &format!(
                            "matvec {} k={k} rows={rows} chunks={} wg={wg} subgroup={subgroup}",
                            ty.name(),
                            w.chunks.len()
                        ),
                        &got,
                        &want,
                        |i| DOT_REL_TOL * mass[i] + 1e-6,
                    );
                    if limit == u64::MAX && wg == 64 && subgroup {
                        eprintln!(
                            "matvec {:5} k={k:5} rows={rows:4}: worst err / bound = {worst:.3}",
                            ty.name()
                        );
                    }
                }
            }
        }
    }
}

/// Matvec over several tokens at once (short prefills): every token row of Y equals the
/// single-token product, for every type, 2–8 tokens, weights whole or in 2-row chunks, and
/// the token rows at an offset inside larger buffers.
#[test]
fn matvec_over_several_tokens_matches_dot_row_for_every_type() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(11);
    for ty in TYPES {
        for (k, rows) in shapes(ty) {
            let data = random_weights(&mut r, ty, k, rows);
            let row_bytes = data.len() as u64 / rows as u64;
            for m in [2usize, 3, 8, 11, ops::MATVEC_MAX_COLS] {
                let (t_off, y_stride) = (1, rows + 5);
                let xs: Vec<Vec<f32>> = (0..m).map(|_| random_f32(&mut r, k, 1.0)).collect();
                let mut xbuf = vec![0.0f32; k * t_off];
                xs.iter().for_each(|x| xbuf.extend_from_slice(x));
                let xg = ctx.upload_pod("x", &xbuf).unwrap();
                for limit in [u64::MAX, 2 * row_bytes] {
                    let w = GpuWeight::upload_with_limit(
                        ctx,
                        "w",
                        ty,
                        k as u64,
                        rows as u64,
                        &data,
                        limit,
                    )
                    .unwrap();
                    let y = ctx
                        .zeroed("y", ((t_off + m) * y_stride * 4) as u64)
                        .unwrap();
                    let cols = ops::Columns {
                        m,
                        x_offset: t_off * k,
                        x_stride: k,
                        y_offset: t_off * y_stride,
                        y_stride,
                    };
                    run_all(
                        ctx,
                        &ops::prepare_matvec_cols(ctx, &w, &xg.buffer, &y.buffer, &cols, 64)
                            .unwrap(),
                    );
                    for (t, x) in xs.iter().enumerate() {
                        let (want, mass) = cpu_matvec(ty, &data, k, rows, x);
                        let at = ((t_off + t) * y_stride) as u64;
                        let got = ctx.read_f32(&y.buffer, at, rows as u64).unwrap();
                        check_close(
                            &format!(
                                "matvec cols {} k={k} rows={rows} m={m} token {t} chunks={}",
                                ty.name(),
                                w.chunks.len()
                            ),
                            &got,
                            &want,
                            |i| DOT_REL_TOL * mass[i] + 1e-6,
                        );
                    }
                }
            }
        }
    }
    let w = GpuWeight::upload(ctx, "w", GgmlType::F32, 4, 1, &[0; 16]).unwrap();
    let buf = ctx.zeroed("b", 64).unwrap();
    let too_many = ops::Columns {
        m: ops::MATVEC_MAX_COLS + 1,
        x_offset: 0,
        x_stride: 4,
        y_offset: 0,
        y_stride: 1,
    };
    assert!(
        ops::prepare_matvec_cols(ctx, &w, &buf.buffer, &buf.buffer, &too_many, 64).is_err(),
        "at most MATVEC_MAX_COLS tokens"
    );
}

#[test]
fn matmul_matches_dot_row_for_every_type() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(2);
    for ty in TYPES {
        for (k, rows) in shapes(ty) {
            for m in [1usize, 5, 17, 33, 64, 70] {
                let data = random_weights(&mut r, ty, k, rows);
                let x = random_f32(&mut r, m * k, 1.0);
                let mut want = vec![0.0f32; m * rows];
                let mut mass = vec![0.0f32; m * rows];
                for t in 0..m {
                    let (y, ms) = cpu_matvec(ty, &data, k, rows, &x[t * k..(t + 1) * k]);
                    want[t * rows..(t + 1) * rows].copy_from_slice(&y);
                    mass[t * rows..(t + 1) * rows].copy_from_slice(&ms);
                }
                let row_bytes = data.len() as u64 / rows as u64;
                let w = GpuWeight::upload_with_limit(
                    ctx,
                    "w",
                    ty,
                    k as u64,
                    rows as u64,
                    &data,
                    3 * row_bytes,
                )
                .unwrap();
                let xg = ctx.upload_pod("x", &x).unwrap();
                let y = ctx.zeroed("y", (m * rows * 4) as u64).unwrap();
                let ds = ops::prepare_matmul(ctx, &w, &xg.buffer, &y.buffer, m).unwrap();
                run_all(ctx, &ds);
                let got = ctx.read_f32(&y.buffer, 0, (m * rows) as u64).unwrap();
                let worst = check_close(
                    &format!("matmul {} k={k} rows={rows} m={m}", ty.name()),
                    &got,
                    &want,
                    |i| DOT_REL_TOL * mass[i] + 1e-6,
                );
                if m == 17 {
                    eprintln!(
                        "matmul {:5} k={k:5} rows={rows:4} m={m}: worst err / bound = {worst:.3}",
                        ty.name()
                    );
                }
            }
        }
    }
}

/// Raw random blocks (every bit pattern of the scales and quants), with the f16 scale fields
/// overwritten by finite values, so the layout is tested beyond what the quantizer emits.
fn random_raw_blocks(r: &mut ChaCha8Rng, ty: GgmlType, n_blocks: usize) -> Vec<u8> {
    let bb = ty.block_bytes();
    let mut data: Vec<u8> = (0..n_blocks * bb).map(|_| r.random()).collect();
    let f16 = |v: f32| half::f16::from_f32(v).to_le_bytes();
    for b in 0..n_blocks {
        let blk = &mut data[b * bb..(b + 1) * bb];
        let d = f16(r.random_range(-0.1f32..0.1));
        let m = f16(r.random_range(-0.1f32..0.1));
        match ty {
            GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q5_0 => blk[..2].copy_from_slice(&d),
            GgmlType::Q4_1 | GgmlType::Q4_K | GgmlType::Q5_K => {
                blk[..2].copy_from_slice(&d);
                blk[2..4].copy_from_slice(&m);
            }
            GgmlType::Q6_K => blk[208..210].copy_from_slice(&d),
            GgmlType::F16 => blk.copy_from_slice(&f16(r.random_range(-2.0f32..2.0))),
            GgmlType::F32 => blk.copy_from_slice(&r.random_range(-2.0f32..2.0).to_le_bytes()),
            _ => unreachable!(),
        }
    }
    data
}

#[test]
fn embedding_gather_matches_dequantize_on_raw_blocks() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(3);
    for ty in TYPES {
        let k = if ty.block_elems() == 256 { 512 } else { 96 };
        let rows = 37;
        let n_blocks = k * rows / ty.block_elems();
        let data = random_raw_blocks(&mut r, ty, n_blocks);
        let row_bytes = data.len() / rows;
        // 5 rows per chunk: tokens land in different chunks.
        let w = GpuWeight::upload_with_limit(
            ctx,
            "embd",
            ty,
            k as u64,
            rows as u64,
            &data,
            5 * row_bytes as u64,
        )
        .unwrap();
        let tokens: Vec<u32> = vec![0, 36, 5, 4, 17, 17, 30];
        let tg = ctx.upload_pod("tok", &tokens).unwrap();
        let y = ctx.zeroed("y", (tokens.len() * k * 4) as u64).unwrap();
        let ds = ops::prepare_embed(ctx, &w, &tg.buffer, &y.buffer, tokens.len()).unwrap();
        run_all(ctx, &ds);
        let got = ctx
            .read_f32(&y.buffer, 0, (tokens.len() * k) as u64)
            .unwrap();
        let mut worst = 0.0f32;
        for (t, &tok) in tokens.iter().enumerate() {
            let row = &data[tok as usize * row_bytes..(tok as usize + 1) * row_bytes];
            let want = quant::dequantize_to_vec(ty, row, k).unwrap();
            let maxabs = want.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            worst = worst.max(check_close(
                &format!("embed {} token {tok}", ty.name()),
                &got[t * k..(t + 1) * k],
                &want,
                |_| EMBED_TOL * maxabs + 1e-12,
            ));
        }
        eprintln!("embed {:5}: worst err / bound = {worst:.3}", ty.name());
    }
}
