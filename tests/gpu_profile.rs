//! Kernel profiling with timestamp queries (`GpuForward::set_profiling`): a profiled step
//! computes the same token as an unprofiled one, times every dispatch it counts, names each
//! by its kernel family, and its kernels fit in its span.

mod common;

use hearth::engine::gpu_forward::{GpuForward, GpuForwardOptions, PrefillKernel};
use hearth::gguf::GgufFile;

fn opts() -> GpuForwardOptions {
    GpuForwardOptions {
        max_ctx: 128,
        max_batch: 32,
        block_size: 16,
        kv_f16: true,
        max_weight_chunk_bytes: None,
        memory_limit_bytes: None,
        prefill: PrefillKernel::Auto,
        max_sequences: 1,
        max_logit_rows: None,
        kv_budget_bytes: None,
        model_hash: None,
        max_step_sequences: 1,
    }
}

#[test]
fn profiled_steps_time_every_dispatch_and_change_nothing() {
    let Some(ctx) = common::gpu() else { return };
    if !ctx
        .info()
        .features
        .contains(wgpu::Features::TIMESTAMP_QUERY)
    {
        // lavapipe (CI's adapter) has timestamps; say plainly when an adapter does not.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI's adapter {} has no timestamp queries",
            ctx.info().name
        );
        eprintln!("skipped: {} has no timestamp queries", ctx.info().name);
        let Some(path) = common::fixture_model("stories260K-q8_0.gguf") else {
            return;
        };
        let file = GgufFile::open(&path).unwrap();
        let mut gpu = GpuForward::load(ctx.clone(), &file, opts()).unwrap();
        let err = gpu.set_profiling(true).unwrap_err().to_string();
        assert!(err.contains("timestamp"), "{err}");
        return;
    }
    for name in ["stories260K-q8_0.gguf", "rand-qwen2-f16.gguf"] {
        let Some(path) = common::fixture_model(name) else {
            return;
        };
        let file = GgufFile::open(&path).unwrap();
        let prompt: Vec<u32> = (1..20).collect();
        let mut plain = GpuForward::load(ctx.clone(), &file, opts()).unwrap();
        let mut want = vec![plain.step_greedy(&prompt).unwrap()];
        for _ in 0..3 {
            let t = *want.last().unwrap();
            want.push(plain.step_greedy(&[t]).unwrap());
        }

        let mut gpu = GpuForward::load(ctx.clone(), &file, opts()).unwrap();
        gpu.set_profiling(true).unwrap();
        let mut got = Vec::new();
        let mut profiles = Vec::new();
        for i in 0..4 {
            let before = ctx.counters().snapshot();
            let t = if i == 0 {
                gpu.step_greedy(&prompt).unwrap()
            } else {
                gpu.step_greedy(&[got[i - 1]]).unwrap()
            };
            let counted = (ctx.counters().snapshot() - before).dispatches as usize;
            let p = gpu
                .take_profile()
                .expect("a profiled step leaves its profile");
            assert_eq!(
                p.kernels.len(),
                counted,
                "{name} step {i}: one time per dispatch"
            );
            got.push(t);
            profiles.push(p);
        }
        assert_eq!(got, want, "{name}: profiling changed the tokens");
        for (i, p) in profiles.iter().enumerate() {
            let sum: f64 = p.kernels.iter().map(|k| k.ns).sum();
            assert!(sum > 0.0, "{name} step {i}: no time measured");
            // Kernels run one after another inside the span (a small slack for clock rounding).
            assert!(
                sum <= p.span_ns * 1.01 + 1e3,
                "{name} step {i}: kernels {sum} ns exceed the span {} ns",
                p.span_ns
            );
            for k in &p.kernels {
                assert!(k.family != "unnamed" && !k.family.is_empty(), "{k:?}");
            }
            let families: Vec<&str> = p.kernels.iter().map(|k| k.family.as_str()).collect();
            let decode_only: &[&str] = if i > 0 { &["matvec_fused"] } else { &[] };
            for want in ["embed", "attention", "argmax"].iter().chain(decode_only) {
                assert!(
                    families.iter().any(|f| f.starts_with(want)),
                    "{name} step {i}: no {want} kernel in {families:?}"
                );
            }
        }
        gpu.set_profiling(false).unwrap();
        gpu.step_greedy(&[*got.last().unwrap()]).unwrap();
        assert!(
            gpu.take_profile().is_none(),
            "profiling off leaves no profile"
        );
    }
}
