//! The non-weight GPU kernels (RMSNorm, RoPE, add, SwiGLU, bias, argmax) against plain Rust
//! written here from the formulas, plus dispatch recording, adapter selection, typed shape
//! errors, and whole models in the newer weight types, on whatever adapter `GpuContext::new`
//! picks (Mesa lavapipe in CI). The weight kernels are in gpu_weight_kernels.rs. Without an
//! adapter the tests skip, unless `CI` is set.

mod common;

use common::kernels::*;
use hearth::gpu::ops::{self, RopeParams, RopeStyle};
use hearth::gpu::{AdapterChoice, Dispatch, GpuContext, GpuError, GpuWeight};
use hearth::quant::{self, GgmlType};
use rand::Rng;

#[test]
fn rmsnorm_matches_cpu() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(4);
    for (n_rows, n) in [(1usize, 1usize), (3, 5), (2, 100), (4, 1000), (1, 4100)] {
        for subgroup in [true, false] {
            let x = random_f32(&mut r, n_rows * n, 3.0);
            let g = random_f32(&mut r, n, 2.0);
            let eps = 1e-5f32;
            let mut want = vec![0.0f32; n_rows * n];
            for row in 0..n_rows {
                let xs = &x[row * n..(row + 1) * n];
                let ms = xs.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / n as f64;
                let s = 1.0 / (ms + eps as f64).sqrt();
                for i in 0..n {
                    want[row * n + i] = (xs[i] as f64 * s * g[i] as f64) as f32;
                }
            }
            let xg = ctx.upload_pod("x", &x).unwrap();
            let gg = ctx.upload_pod("g", &g).unwrap();
            let y = ctx.zeroed("y", (n_rows * n * 4) as u64).unwrap();
            let d = ops::prepare_rmsnorm(
                ctx, &xg.buffer, &gg.buffer, &y.buffer, n_rows, n, eps, subgroup,
            )
            .unwrap();
            ctx.run(&[&d]).unwrap();
            let got = ctx.read_f32(&y.buffer, 0, (n_rows * n) as u64).unwrap();
            check_close(
                &format!("rmsnorm rows={n_rows} n={n} subgroup={subgroup}"),
                &got,
                &want,
                |i| NORM_REL_TOL * want[i].abs() + 1e-6,
            );
        }
    }
}

#[allow(clippy::needless_range_loop)] // the formulas index by position and pair
fn cpu_rope(x: &mut [f32], pos: &[u32], ff: &[f32], p: &RopeParams) {
    let half = p.n_rot / 2;
    for t in 0..p.n_tokens {
        for h in 0..p.n_heads {
            let base = (t * p.n_heads + h) * p.head_dim;
            for i in 0..half {
                let inv = (p.freq_base as f64).powf(-2.0 * i as f64 / p.n_rot as f64);
                let theta = p.freq_scale as f64 * pos[t] as f64 * inv / ff[i] as f64;
                let (a, b) = match p.style {
                    RopeStyle::Normal => (base + 2 * i, base + 2 * i + 1),
                    RopeStyle::Neox => (base + i, base + i + half),
                };
                let (x0, x1) = (x[a] as f64, x[b] as f64);
                x[a] = (x0 * theta.cos() - x1 * theta.sin()) as f32;
                x[b] = (x0 * theta.sin() + x1 * theta.cos()) as f32;
            }
        }
    }
}

#[test]
fn rope_matches_cpu_for_both_styles_partial_rotation_and_freq_factors() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(5);
    let cases = [
        (
            RopeStyle::Normal,
            3usize,
            4usize,
            64usize,
            64usize,
            10000.0f32,
            1.0f32,
            false,
        ),
        (RopeStyle::Neox, 5, 3, 64, 64, 1_000_000.0, 1.0, false),
        (RopeStyle::Normal, 2, 2, 48, 32, 10000.0, 0.5, false),
        (RopeStyle::Neox, 7, 2, 80, 80, 500_000.0, 1.0, true),
        (RopeStyle::Normal, 1, 32, 128, 128, 500_000.0, 1.0, true),
    ];
    for (style, n_tokens, n_heads, head_dim, n_rot, freq_base, freq_scale, with_ff) in cases {
        let p = RopeParams {
            n_tokens,
            n_heads,
            head_dim,
            n_rot,
            style,
            freq_base,
            freq_scale,
        };
        let x = random_f32(&mut r, n_tokens * n_heads * head_dim, 1.0);
        // Long-context positions too: the angle reaches tens of thousands of radians.
        let pos: Vec<u32> = (0..n_tokens)
            .map(|k| r.random_range(0..if k % 2 == 0 { 512 } else { 32768 }))
            .collect();
        let ff: Vec<f32> = (0..n_rot / 2)
            .map(|_| {
                if with_ff {
                    r.random_range(1.0f32..8.0)
                } else {
                    1.0
                }
            })
            .collect();
        let mut want = x.clone();
        cpu_rope(&mut want, &pos, &ff, &p);
        let xg = ctx.upload_pod("x", &x).unwrap();
        let pg = ctx.upload_pod("pos", &pos).unwrap();
        let fg = ctx.upload_pod("ff", &ff).unwrap();
        let d = ops::prepare_rope(ctx, &xg.buffer, &pg.buffer, &fg.buffer, &p).unwrap();
        ctx.run(&[&d]).unwrap();
        let got = ctx.read_f32(&xg.buffer, 0, x.len() as u64).unwrap();
        let worst = check_close(&format!("rope {p:?}"), &got, &want, |_| ROPE_ABS_TOL);
        eprintln!(
            "rope {style:?} n_rot={n_rot}/{head_dim} ff={with_ff}: worst err = {:.2e}",
            worst * ROPE_ABS_TOL
        );
    }
}

#[test]
fn add_and_swiglu_match_cpu_with_offsets() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(6);
    for n in [1usize, 255, 257, 11008] {
        let (a_off, b_off) = (4usize, 12usize);
        let a = random_f32(&mut r, a_off + n, 6.0);
        let b = random_f32(&mut r, b_off + n, 3.0);
        for swiglu in [false, true] {
            let ag = ctx.upload_pod("a", &a).unwrap();
            let bg = ctx.upload_pod("b", &b).unwrap();
            let d = if swiglu {
                ops::prepare_swiglu(ctx, &ag.buffer, a_off, &bg.buffer, b_off, n).unwrap()
            } else {
                ops::prepare_add(ctx, &ag.buffer, a_off, &bg.buffer, b_off, n).unwrap()
            };
            ctx.run(&[&d]).unwrap();
            let got = ctx.read_f32(&ag.buffer, 0, (a_off + n) as u64).unwrap();
            let want: Vec<f32> = (0..a_off + n)
                .map(|i| {
                    if i < a_off {
                        return a[i];
                    }
                    let (g, u) = (a[i] as f64, b[i - a_off + b_off] as f64);
                    (if swiglu {
                        g / (1.0 + (-g).exp()) * u
                    } else {
                        g + u
                    }) as f32
                })
                .collect();
            check_close(
                &format!("{} n={n}", if swiglu { "swiglu" } else { "add" }),
                &got,
                &want,
                |i| ELEM_REL_TOL * want[i].abs() + 1e-6,
            );
        }
    }
}

#[test]
fn bias_add_repeats_over_rows() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(9);
    let (rows, period) = (5usize, 36usize);
    let a = random_f32(&mut r, rows * period, 4.0);
    let bias = random_f32(&mut r, period, 1.0);
    let ag = ctx.upload_pod("a", &a).unwrap();
    let bg = ctx.upload_pod("bias", &bias).unwrap();
    let d = ops::prepare_add_bias(ctx, &ag.buffer, 0, &bg.buffer, period, rows * period).unwrap();
    ctx.run(&[&d]).unwrap();
    let got = ctx.read_f32(&ag.buffer, 0, a.len() as u64).unwrap();
    let want: Vec<f32> = a
        .iter()
        .enumerate()
        .map(|(i, v)| v + bias[i % period])
        .collect();
    check_close("add_bias", &got, &want, |i| {
        ELEM_REL_TOL * want[i].abs() + 1e-6
    });
}

#[test]
fn argmax_finds_first_maximum_and_ignores_nan() {
    let Some(ctx) = ctx() else { return };
    let mut r = rng(7);
    for n in [1usize, 7, 1000, 152_064] {
        let off = 16;
        let mut x = random_f32(&mut r, off + n, 10.0);
        if n > 10 {
            // A tie: the lower index must win. A NaN must not.
            let m = x[off..].iter().fold(f32::MIN, |a, &v| a.max(v)) + 1.0;
            x[off + n / 3] = m;
            x[off + n / 2] = m;
            x[off + 2] = f32::NAN;
        }
        let want = (0..n).fold(
            0usize,
            |best, i| if x[off + i] > x[off + best] { i } else { best },
        );
        let xg = ctx.upload_pod("x", &x).unwrap();
        let out = ctx.zeroed("out", 16).unwrap();
        let d = ops::prepare_argmax(ctx, &xg.buffer, off, n, &out.buffer, 2).unwrap();
        ctx.run(&[&d]).unwrap();
        let got = ctx.read_u32(&out.buffer, 2, 1).unwrap()[0];
        assert_eq!(got as usize, want, "argmax n={n}");
    }
}

#[test]
fn recorded_dispatches_submit_once_and_create_no_buffers() {
    // Its own context so that parallel tests do not move the counters.
    let ctx = match GpuContext::new() {
        Ok(c) => c,
        Err(e) if std::env::var_os("CI").is_some() => panic!("no GPU adapter and CI is set: {e}"),
        Err(e) => return eprintln!("SKIP: no GPU adapter ({e})"),
    };
    let mut r = rng(8);
    let (k, rows) = (256, 20);
    let data = random_weights(&mut r, GgmlType::Q4_K, k, rows);
    let w = GpuWeight::upload(&ctx, "w", GgmlType::Q4_K, k as u64, rows as u64, &data).unwrap();
    let x = ctx.upload_pod("x", &random_f32(&mut r, k, 1.0)).unwrap();
    let y = ctx.zeroed("y", (rows * 4) as u64).unwrap();
    let out = ctx.zeroed("out", 4).unwrap();
    let mut ds = ops::prepare_matvec(&ctx, &w, &x.buffer, 0, &y.buffer, 0, 64, true).unwrap();
    ds.push(ops::prepare_argmax(&ctx, &y.buffer, 0, rows, &out.buffer, 0).unwrap());
    let refs: Vec<&Dispatch> = ds.iter().collect();
    ctx.run(&refs).unwrap(); // warm-up
    let before = ctx.counters().snapshot();
    for _ in 0..3 {
        ctx.run(&refs).unwrap();
    }
    let delta = ctx.counters().snapshot() - before;
    assert_eq!(delta.submits, 3, "one submit per recorded step");
    assert_eq!(delta.buffers_created, 0, "no buffer creation after warm-up");
}

#[test]
fn adapter_info_is_reported() {
    let Some(ctx) = ctx() else { return };
    let info = ctx.info();
    eprintln!("{info}");
    assert!(!info.name.is_empty());
    assert!(
        info.max_storage_buffer_binding_size >= 128 << 20,
        "WebGPU guarantees 128 MiB bindings"
    );
    assert_eq!(
        ctx.max_binding_bytes(),
        info.max_storage_buffer_binding_size
            .min(info.max_buffer_size)
    );
}

#[test]
fn unknown_adapter_name_is_a_typed_error() {
    if ctx().is_none() {
        return;
    }
    let e = GpuContext::with_choice(&AdapterChoice::NameContains("no-such-adapter-zz9".into()))
        .err()
        .expect("must fail");
    assert!(matches!(e, GpuError::AdapterNotFound { .. }), "{e}");
    assert!(e.to_string().contains("no-such-adapter-zz9"), "{e}");
}

#[test]
fn bad_weight_shapes_are_typed_errors() {
    let Some(ctx) = ctx() else { return };
    let e = GpuWeight::upload(ctx, "w", GgmlType::Q4_0, 30, 2, &[0u8; 36])
        .err()
        .expect("k not a block multiple");
    assert!(e.to_string().contains("w"), "{e}");
    assert!(
        GpuWeight::upload(ctx, "w", GgmlType::Q4_0, 32, 2, &[0u8; 35]).is_err(),
        "short data"
    );
    assert!(
        GpuWeight::upload(ctx, "w", GgmlType::Q5_1, 32, 1, &[0u8; 24]).is_err(),
        "no kernel for Q5_1"
    );
    let one_row = 34u64;
    assert!(
        GpuWeight::upload_with_limit(ctx, "w", GgmlType::Q8_0, 64, 1, &[0u8; 68], one_row).is_err(),
        "row > limit"
    );
}

/// GPU vs CPU reference logits on the same weights: max |diff| ≤ this × max(1, max |logit|)
/// (summation order only; the bound tests/gpu_forward.rs uses).
const FORWARD_REL_TOL: f32 = 1e-4;

/// A fixture model whose 2-D tensors are re-quantized to `ty` (the others kept as they are), so
/// that GpuForward loads and runs `ty` in every kernel family: embedding, matmul and matvec.
#[test]
fn forward_runs_models_requantized_to_the_newer_types() {
    use hearth::engine::gpu_forward::{GpuForward, GpuForwardOptions, PrefillKernel};
    use hearth::gguf::{GgufFile, GgufWriter};
    use hearth::reference::ReferenceModel;
    use std::sync::Arc;

    let Some(path) = common::fixture_model("rand-llama-spm-q4_k.gguf") else {
        return;
    };
    let ctx = match GpuContext::new() {
        Ok(c) => Arc::new(c),
        Err(e) if std::env::var_os("CI").is_some() => panic!("no GPU adapter and CI is set: {e}"),
        Err(e) => return eprintln!("SKIP: no GPU adapter ({e})"),
    };
    let src = GgufFile::open(&path).unwrap();
    for ty in [GgmlType::Q5_K, GgmlType::Q5_0, GgmlType::Q4_1] {
        let mut w = GgufWriter::new();
        for (k, v) in src.metadata() {
            w.add_metadata(k.clone(), v.clone());
        }
        let mut n_converted = 0;
        for t in src.tensors() {
            let bytes = src.tensor_data(t);
            let (out_ty, data) = if t.dims.len() == 2 && t.dims[0] % ty.block_elems() as u64 == 0 {
                n_converted += 1;
                let vals =
                    quant::dequantize_to_vec(t.ggml_type, bytes, t.n_elements as usize).unwrap();
                (ty, quant::quantize(ty, &vals).unwrap())
            } else {
                (t.ggml_type, bytes.to_vec())
            };
            w.add_tensor(t.name.clone(), &t.dims, out_ty, data).unwrap();
        }
        assert!(
            n_converted >= 8,
            "{}: only {n_converted} tensors converted",
            ty.name()
        );
        let file = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
        let reference = ReferenceModel::load(&file).unwrap();
        let n_vocab = reference.config().n_vocab;
        let tokens: Vec<u32> = (0..24u32)
            .map(|i| (i * 977 + 13) % n_vocab as u32)
            .collect();
        let mut cache = reference.new_cache(tokens.len());
        let want = reference.forward(&mut cache, &tokens).unwrap();
        let opts = GpuForwardOptions {
            max_ctx: 64,
            max_batch: 32,
            block_size: 16,
            kv_f16: false,
            max_weight_chunk_bytes: None,
            memory_limit_bytes: None,
            prefill: PrefillKernel::Tiled,
            max_sequences: 1,
            max_logit_rows: None,
            kv_budget_bytes: None,
            model_hash: None,
            max_step_sequences: 1,
        };
        let mut gpu = GpuForward::load(ctx.clone(), &file, opts).unwrap();
        // Prefill (matmul) for all but the last token, then one decode step (matvec).
        let mut got = gpu.step(&tokens[..tokens.len() - 1], true).unwrap();
        got.extend(gpu.step(&tokens[tokens.len() - 1..], true).unwrap());
        let scale = want.iter().fold(1.0f32, |a, v| a.max(v.abs()));
        let worst = check_close(&format!("forward {}", ty.name()), &got, &want, |_| {
            FORWARD_REL_TOL * scale
        });
        eprintln!(
            "forward {:5}: {n_converted} tensors, worst err / bound = {worst:.3}",
            ty.name()
        );
    }
}
