//! `hearth bench --profile`: GPU time per kernel family per token from timestamp queries
//! (`hearth::gpu::profile`), for a prompt's prefill and for decode steps after it, with each
//! family's share of the step. The same steps run unprofiled just before are the reference the
//! kernel times are checked against (`coverage`: kernels' sum / unprofiled step time). The
//! profiled span (first kernel's start to the last one's end) shows what the passes cost.

use anyhow::{Context, Result};
use hearth::engine::gpu_forward::GpuForward;
use hearth::gpu::StepProfile;
use hearth::gpu::profile::totals_by_family;
use serde_json::{Value, json};
use std::time::Instant;

/// Decode steps profiled (after the prompt): enough to average the noise of a busy machine.
const PROFILED_DECODE_STEPS: usize = 16;
/// Unprofiled/profiled pairs of runs.
const ROUNDS: usize = 3;

/// Profiles the prefill of `prompt` (steps of `batch` tokens) and up to
/// [`PROFILED_DECODE_STEPS`] greedy decode steps after it, each profiled run preceded by the
/// same steps unprofiled (plans already built by the measurement): the reference step times.
pub fn profile(
    forward: &mut GpuForward,
    prompt: &[u32],
    batch: usize,
    decode_steps: usize,
) -> Result<Value> {
    let decode_steps = decode_steps.min(PROFILED_DECODE_STEPS);
    let (mut prefill_ms, mut decode_ms) = (0.0, 0.0);
    let (mut prefill, mut decode) = (Vec::new(), Vec::new());
    // Unprofiled and profiled runs alternate so that a busy machine's drift hits both alike.
    for _ in 0..ROUNDS {
        forward.set_profiling(false)?;
        let (p, d) = run_steps(forward, prompt, batch, decode_steps, |_| {})?;
        prefill_ms += p;
        decode_ms += d;
        forward
            .set_profiling(true)
            .context("--profile needs timestamp queries")?;
        run_steps(
            forward,
            prompt,
            batch,
            decode_steps,
            |(phase, profile)| match phase {
                Phase::Prefill => prefill.extend(profile),
                Phase::Decode => decode.extend(profile),
            },
        )?;
    }
    forward.set_profiling(false)?;
    let (prompt_tokens, decode_tokens) = (prompt.len() * ROUNDS, decode_steps * ROUNDS);
    Ok(json!({
        "rounds": ROUNDS,
        "prefill": phase(&prefill, prompt_tokens, prefill_ms / prompt_tokens.max(1) as f64),
        "decode": phase(&decode, decode_tokens, decode_ms / decode_tokens.max(1) as f64),
    }))
}

enum Phase {
    Prefill,
    Decode,
}

/// Prefills `prompt` from an empty cache and decodes `decode_steps` greedy tokens, handing
/// each step's profile (when profiling) to `each`. Returns the wall ms of both phases.
fn run_steps(
    forward: &mut GpuForward,
    prompt: &[u32],
    batch: usize,
    decode_steps: usize,
    mut each: impl FnMut((Phase, Option<StepProfile>)),
) -> Result<(f64, f64)> {
    forward.reset();
    let start = Instant::now();
    let mut next = 0;
    for chunk in prompt.chunks(batch.max(1)) {
        next = forward.step_greedy(chunk)?;
        each((Phase::Prefill, forward.take_profile()));
    }
    let prefill_ms = start.elapsed().as_secs_f64() * 1e3;
    let start = Instant::now();
    for _ in 0..decode_steps {
        next = forward.step_greedy(&[next])?;
        each((Phase::Decode, forward.take_profile()));
    }
    Ok((prefill_ms, start.elapsed().as_secs_f64() * 1e3))
}

/// One phase's table: per family, ms per token and share of the kernels' sum; the profiled
/// span per token; the unprofiled step time per token; and their coverage.
fn phase(steps: &[StepProfile], tokens: usize, unprofiled_ms_per_token: f64) -> Value {
    let per_token = |ns: f64| ns / 1e6 / tokens.max(1) as f64;
    let totals = totals_by_family(steps);
    let kernels_ns: f64 = totals.iter().map(|t| t.1).sum();
    let span_ns: f64 = steps.iter().map(|s| s.span_ns).sum();
    let families: Vec<Value> = totals
        .iter()
        .map(|(family, ns, n)| {
            json!({
                "family": family,
                "ms_per_token": per_token(*ns),
                "dispatches_per_token": *n as f64 / tokens.max(1) as f64,
                "share": if kernels_ns > 0.0 { ns / kernels_ns } else { 0.0 },
            })
        })
        .collect();
    let kernels_ms = per_token(kernels_ns);
    json!({
        "tokens": tokens,
        "steps": steps.len(),
        "kernels_ms_per_token": kernels_ms,
        "span_ms_per_token": per_token(span_ns),
        "unprofiled_ms_per_token": unprofiled_ms_per_token,
        // How much of the unprofiled step the kernels explain (1.0 = all of it).
        "coverage": if unprofiled_ms_per_token > 0.0 { kernels_ms / unprofiled_ms_per_token } else { 0.0 },
        "families": families,
    })
}

/// The profile as a table per phase.
pub fn print(profile: &Value) {
    for name in ["prefill", "decode"] {
        let p = &profile[name];
        let f = |k: &str| p[k].as_f64().unwrap_or(0.0);
        println!(
            "\n{name}: {} tokens in {} steps; kernels {:.3} ms/token, GPU span {:.3} ms/token, \
             unprofiled step {:.3} ms/token (kernels cover {:.0}% of it)",
            p["tokens"],
            p["steps"],
            f("kernels_ms_per_token"),
            f("span_ms_per_token"),
            f("unprofiled_ms_per_token"),
            100.0 * f("coverage"),
        );
        println!(
            "  {:<44} {:>10} {:>8} {:>7}",
            "kernel family", "ms/token", "calls/t", "share"
        );
        for fam in p["families"].as_array().into_iter().flatten() {
            println!(
                "  {:<44} {:>10.4} {:>8.2} {:>6.1}%",
                fam["family"].as_str().unwrap_or("?"),
                fam["ms_per_token"].as_f64().unwrap_or(0.0),
                fam["dispatches_per_token"].as_f64().unwrap_or(0.0),
                100.0 * fam["share"].as_f64().unwrap_or(0.0),
            );
        }
        // What no kernel accounts for: recording, submit, readback and the gaps between passes.
        let outside = f("unprofiled_ms_per_token") - f("kernels_ms_per_token");
        println!(
            "  {:<44} {:>10.4}   (the unprofiled step minus the kernels)",
            "outside kernels (submit, readback, gaps)", outside
        );
    }
}
