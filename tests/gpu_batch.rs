//! Batched decode (`GpuForward::step_batch`): B sequences × one token in one submit must give
//! each sequence what stepping it alone gives. The oracle is the engine's own single-sequence
//! decode step (itself tested against the CPU reference and llama.cpp in `gpu_forward.rs`).
//!
//! Sequences of different lengths: one whose step opens a new block (length 16), one whose
//! step fills its block's last slot (length 15), and two sharing two full blocks through the
//! prefix index (`acquire`). B ∈ {1, 2, 3, 5}, items in shuffled order, on three fixture models
//! (f32 and f16 KV, qwen2 biases, grouped-query heads) and B = 4 on SmolLM2-135M. After the
//! batched step every sequence takes one more step alone, which must match the oracle's second
//! step.

mod common;

use common::logits::argmax;

use hearth::engine::gpu_forward::{GpuForward, GpuForwardOptions};
use hearth::gguf::GgufFile;
use hearth::kv::SeqId;

/// Batched vs alone: max |logit difference| ≤ TOL × max(1, max |logit|). The batched step
/// multiplies B token columns per pass over the weights (the prefill matvec) where the alone
/// step uses the fused one-column decode kernels: the same products, summed in another order.
const TOL: f32 = 1e-4;

/// A step after the batched one, against the alone oracle's second step: the K/V the batched
/// step wrote come from those slightly different sums, and stored as f16 one of them can round
/// to the neighbouring f16 value (a relative 1e-3 step), which the next step's attention reads.
const TOL_AFTER: f32 = 1e-3;

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    common::logits::assert_close(got, want, TOL, what);
}

/// The greedy token of a batched step equals the alone step's argmax, or the two top logits
/// of the alone step are within the logits' tolerance of each other (a near tie).
fn assert_same_greedy(got: u32, alone: &[f32], what: &str) {
    let want = argmax(alone);
    if got != want {
        let scale = alone.iter().fold(1f32, |m, v| m.max(v.abs()));
        let margin = alone[want as usize] - alone[got as usize];
        assert!(
            margin <= 2.0 * TOL * scale,
            "{what}: batched greedy {got}, alone {want} (margin {margin})"
        );
    }
}

/// Deterministic tokens in 1..n_vocab.
fn tokens(seed: u64, n: usize, n_vocab: usize) -> Vec<u32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            1 + ((x >> 33) as usize % (n_vocab - 1)) as u32
        })
        .collect()
}

struct Case {
    name: &'static str,
    kv_f16: bool,
}

const CASES: [Case; 3] = [
    Case {
        name: "stories260K-f32",
        kv_f16: false,
    },
    Case {
        name: "rand-qwen2-f16",
        kv_f16: true,
    },
    Case {
        name: "rand-llama-spm-q4_k",
        kv_f16: true,
    },
];

fn load(name: &str, kv_f16: bool) -> Option<(GpuForward, std::sync::Arc<hearth::gpu::GpuContext>)> {
    let path = common::fixture_model(&format!("{name}.gguf"))?;
    load_path(&path, kv_f16)
}

fn load_path(
    path: &std::path::Path,
    kv_f16: bool,
) -> Option<(GpuForward, std::sync::Arc<hearth::gpu::GpuContext>)> {
    let ctx = common::gpu()?;
    let file = GgufFile::open(path).unwrap();
    let opts = GpuForwardOptions {
        max_ctx: 512,
        max_batch: 48,
        block_size: 16,
        kv_f16,
        max_sequences: 8,
        max_step_sequences: 5,
        max_logit_rows: Some(5),
        ..GpuForwardOptions::default()
    };
    Some((GpuForward::load(ctx.clone(), &file, opts).unwrap(), ctx))
}

/// Five prompts: lengths 5, 16, 40, 41 (sharing 32 tokens with the 40), 15.
fn prompts(n_vocab: usize) -> Vec<Vec<u32>> {
    let c = tokens(3, 40, n_vocab);
    let mut d = c[..32].to_vec();
    d.extend(tokens(4, 9, n_vocab));
    vec![
        tokens(1, 5, n_vocab),
        tokens(2, 16, n_vocab),
        c,
        d,
        tokens(5, 15, n_vocab),
    ]
}

/// A new sequence holding `p`'s longest cached prefix, cut so at least its last token runs.
fn acquire(gpu: &mut GpuForward, p: &[u32]) -> (SeqId, usize) {
    let (s, cached) = gpu.acquire(p).unwrap();
    let keep = cached.min(p.len() - 1);
    gpu.truncate(keep);
    (s, keep)
}

/// Each prompt in a sequence of its own, acquired through the prefix index (so the fourth
/// shares the third's first two blocks) and prefilled.
fn prefill_all(gpu: &mut GpuForward, prompts: &[Vec<u32>]) -> Vec<SeqId> {
    let mut seqs = Vec::new();
    for (i, p) in prompts.iter().enumerate() {
        let (s, cached) = acquire(gpu, p);
        if i == 3 {
            assert_eq!(
                cached, 32,
                "the fourth prompt shares two blocks with the third"
            );
        }
        gpu.step(&p[cached..], false).unwrap();
        seqs.push(s);
    }
    seqs
}

#[test]
fn batched_step_matches_each_sequence_alone() {
    for case in &CASES {
        let Some((gpu, _ctx)) = load(case.name, case.kv_f16) else {
            return;
        };
        check_against_alone(
            gpu,
            case.name,
            &[
                (1, &[2]),
                (2, &[3, 2]),
                (3, &[4, 0, 1]),
                (5, &[3, 1, 4, 0, 2]),
            ],
        );
    }
}

/// A real trained model (SmolLM2-135M, Q4_1, head_dim 64, 9 heads over 3 kv heads).
#[test]
fn batched_step_matches_each_sequence_alone_on_smollm2() {
    let Some(path) = common::real_model("SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let Some((gpu, _ctx)) = load_path(&path, true) else {
        return;
    };
    check_against_alone(gpu, "SmolLM2", &[(4, &[3, 1, 4, 2])]);
}

/// The five prompts prefilled; for each (B, order), the batched step of those sequences
/// against each one stepped alone, then one more step alone from the batched step's KV.
fn check_against_alone(mut gpu: GpuForward, name: &str, rounds: &[(usize, &[usize])]) {
    let n_vocab = gpu.config().n_vocab;
    let prompts = prompts(n_vocab);
    let seqs = prefill_all(&mut gpu, &prompts);
    let next: Vec<[u32; 2]> = (0..seqs.len())
        .map(|i| {
            let t = tokens(100 + i as u64, 2, n_vocab);
            [t[0], t[1]]
        })
        .collect();
    // The oracle: two steps of each sequence alone, then back to the prompt.
    let mut alone = Vec::new();
    for (&s, t) in seqs.iter().zip(&next) {
        gpu.select_sequence(s).unwrap();
        let len = gpu.len();
        let first = gpu.step(&t[..1], false).unwrap();
        let second = gpu.step(&t[1..], false).unwrap();
        gpu.truncate(len);
        alone.push([first, second]);
    }
    for &(b, order) in rounds {
        let what = |i: usize| format!("{name} B={b} sequence {i}");
        let lens: Vec<usize> = order
            .iter()
            .map(|&i| gpu.len_of(seqs[i]).unwrap())
            .collect();
        let items: Vec<(SeqId, u32)> = order.iter().map(|&i| (seqs[i], next[i][0])).collect();
        let got = gpu.step_batch(&items).unwrap();
        assert_eq!(got.len(), b);
        for (k, &i) in order.iter().enumerate() {
            assert_eq!(gpu.len_of(seqs[i]).unwrap(), lens[k] + 1);
            assert_close(&got[k], &alone[i][0], &format!("{} step 1", what(i)));
            // The sequence goes on alone from the batched step's KV.
            gpu.select_sequence(seqs[i]).unwrap();
            let second = gpu.step(&next[i][1..], false).unwrap();
            let what = format!("{} step 2", what(i));
            common::logits::assert_close(&second, &alone[i][1], TOL_AFTER, &what);
            gpu.truncate(lens[k]);
        }
        // The same step with the argmax on the GPU.
        let greedy = gpu.step_batch_greedy(&items).unwrap();
        for (k, &i) in order.iter().enumerate() {
            assert_same_greedy(greedy[k], &alone[i][0], &format!("{} greedy", what(i)));
            gpu.select_sequence(seqs[i]).unwrap();
            gpu.truncate(lens[k]);
        }
    }
    // The shared prefix is still intact for the sequence that did not write it.
    gpu.select_sequence(seqs[3]).unwrap();
    let again = gpu.step(&next[3][..1], false).unwrap();
    assert_close(&again, &alone[3][0], &format!("{name} shared prefix"));
}

/// Greedy decoding of several sequences in batched steps gives each the tokens it gets
/// decoded alone, for 12 steps (sequences cross block boundaries as they grow), with one
/// submit per step and no buffer created once each batch size has run once.
#[test]
fn batched_greedy_decode_matches_alone_and_creates_nothing() {
    let Some((mut gpu, ctx)) = load("stories260K-f32", false) else {
        return;
    };
    let n_vocab = gpu.config().n_vocab;
    let prompts = prompts(n_vocab);
    let steps = 12;
    // Alone: greedy continuation of each prompt.
    let mut want = Vec::new();
    for p in &prompts {
        let (s, cached) = acquire(&mut gpu, p);
        let mut t = gpu.step_greedy(&p[cached..]).unwrap();
        let mut out = vec![t];
        for _ in 1..steps {
            t = gpu.step_greedy(&[t]).unwrap();
            out.push(t);
        }
        gpu.free_sequence(s).unwrap();
        want.push(out);
    }
    // Together: the first token from each prefill, then batched steps.
    let mut seqs = Vec::new();
    let mut last = Vec::new();
    for p in &prompts {
        let (s, cached) = acquire(&mut gpu, p);
        last.push(gpu.step_greedy(&p[cached..]).unwrap());
        seqs.push(s);
    }
    let mut got: Vec<Vec<u32>> = last.iter().map(|&t| vec![t]).collect();
    // Warm every plan (sizes 5, then 3 as two sequences stop early).
    let mut before = None;
    for step in 1..steps {
        let active: Vec<usize> = if step < 6 {
            (0..5).collect()
        } else {
            vec![0, 2, 4]
        };
        if step == 7 {
            before = Some(ctx.counters().snapshot());
        }
        let items: Vec<(SeqId, u32)> = active.iter().map(|&i| (seqs[i], last[i])).collect();
        let out = gpu.step_batch_greedy(&items).unwrap();
        for (k, &i) in active.iter().enumerate() {
            last[i] = out[k];
            got[i].push(out[k]);
        }
    }
    let delta = ctx.counters().snapshot() - before.unwrap();
    assert_eq!(
        delta.submits,
        (steps - 7) as u64,
        "one submit per batched step"
    );
    assert_eq!(delta.buffers_created, 0, "no buffer created after warm-up");
    for i in [0, 2, 4] {
        assert_eq!(got[i], want[i], "sequence {i}");
    }
    for i in [1, 3] {
        assert_eq!(got[i][..6], want[i][..6], "sequence {i}");
    }
}

/// A batched step refuses what it cannot run, and leaves every sequence as it was.
#[test]
fn batched_step_refusals_leave_sequences_unchanged() {
    let Some((mut gpu, _ctx)) = load("stories260K-f32", false) else {
        return;
    };
    let prompts = prompts(gpu.config().n_vocab);
    let seqs = prefill_all(&mut gpu, &prompts);
    let lens: Vec<usize> = seqs.iter().map(|&s| gpu.len_of(s).unwrap()).collect();
    assert!(gpu.step_batch(&[]).is_err());
    assert!(gpu.step_batch(&[(seqs[0], 1), (seqs[0], 2)]).is_err());
    assert!(
        gpu.step_batch(&[(seqs[0], 1), (seqs[1], u32::MAX)])
            .is_err()
    );
    let s6 = gpu.new_sequence().unwrap();
    let six: Vec<(SeqId, u32)> = seqs.iter().chain([&s6]).map(|&s| (s, 1)).collect();
    assert!(
        gpu.step_batch(&six).is_err(),
        "more than max_step_sequences"
    );
    for (&s, &len) in seqs.iter().zip(&lens) {
        assert_eq!(gpu.len_of(s).unwrap(), len);
    }
}
