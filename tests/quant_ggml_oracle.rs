//! Bit-exact comparison with ggml's own C reference code.
//!
//! `tests/quant_ggml_oracle/` holds a harness that compiles the `quantize_row_*_ref` and
//! `dequantize_row_*` functions of ggml-quants.c (from the llama-cpp-python 0.3.36 sdist,
//! the same llama.cpp that made the fixtures) and runs them on a deterministic input built
//! from integer arithmetic only (so C and Rust build bit-identical floats). The SHA-256
//! digests below are its outputs (gcc 12.2, -O2 and -O0 agree): the quantized bytes and the
//! f32 values its dequantizer gives for them. Run `tests/quant_ggml_oracle/run.sh` to remake.

use hearth::quant::{GgmlType, dequantize_to_vec, quantize};
use sha2::{Digest, Sha256};

const QK_K: usize = 256;
const N_BLOCKS: usize = 64;
const N: usize = N_BLOCKS * QK_K;

/// The harness's input: sums of four 24-bit LCG draws (roughly normal), a per-block power-of-two
/// scale, and edge-case blocks (all zeros, constant, outliers, one sign, tiny, a zero group).
fn oracle_input() -> Vec<f32> {
    let mut state: u64 = 0x853c_49e6_748f_ea9b;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as u32
    };
    let mut x: Vec<f32> = (0..N)
        .map(|i| {
            let u: i64 = (0..4).map(|_| (next() >> 7) as i64).sum::<i64>() - (2 << 24);
            let scale = 2f32.powi(-24 - (i / QK_K % 7) as i32);
            u as f32 * scale
        })
        .collect();
    for i in 0..QK_K {
        x[5 * QK_K + i] = 0.0;
        x[6 * QK_K + i] = 0.75;
        x[8 * QK_K + i] = x[8 * QK_K + i].abs();
        x[9 * QK_K + i] = -x[9 * QK_K + i].abs();
        x[10 * QK_K + i] *= 1e-30;
    }
    x[7 * QK_K + 3] = 50.0;
    x[11 * QK_K + 200] = -40.0;
    x[12 * QK_K + 64..12 * QK_K + 96].fill(0.0);
    x
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|f| f.to_le_bytes()).collect()
}

/// (type, SHA-256 of ggml's quantized bytes, SHA-256 of ggml's dequantized f32 values).
const GOLDEN: [(GgmlType, &str, &str); 10] = [
    (
        GgmlType::Q4_0,
        "83baa47fe0002de3320316751af3bce82d7b1676ac8c27eb2041e13904b3620d",
        "c49aba2a10cb6e5466b56d9fdf2f33163e304bc1166324cce7819ec01c84db19",
    ),
    (
        GgmlType::Q4_1,
        "77cd27a700c76926fa8bf82d7da674cd3e95092f2f97826933d3690122bc0fb5",
        "360bd68e1cfeee0a3bd8b0e4691fa90ea2988e51018c44f9a322bb0b3839c037",
    ),
    (
        GgmlType::Q5_0,
        "a780c57e37a7ae9786d304ead56c966bcd9d9d83e0a07919845e0c330a68cf67",
        "6497bf990f934971b6c1646c119bf49bfdb9787c88052030d984b86889eedf8c",
    ),
    (
        GgmlType::Q5_1,
        "f97c6bad795853756a236cec1cf13391fbbd6fdb88c11ec0d73ef357ebae366c",
        "4af1d3e7dc15a950a7107bddf66fccb117e8a0a0dac0b657a9c554b5427d6cdc",
    ),
    (
        GgmlType::Q8_0,
        "254301cc5451465283ab5b004056531f17ba6ad068400bbc9b295fb1f01b96ae",
        "cc330a11d59d47cd2449adb052713b38fc75aea386a66a0376c9ea7e4de86045",
    ),
    (
        GgmlType::Q2_K,
        "e6c7c349dab5da9ee755bfb3717eea2a46883d4ed93e6078fbf5d1fbeabf6b80",
        "a2f85d3ba3f9ae3d1eb0730c370423ecfbd8aee04766868f9fc8c0d3b5832075",
    ),
    (
        GgmlType::Q3_K,
        "b948e7609d6e7438faad3b8be16fea7cb60176079e217bf19b810864722c12b1",
        "c58c9c748766e907f198f7ed6e638c156c8eb0591bf5715f600f1b6b36a87afe",
    ),
    (
        GgmlType::Q4_K,
        "7bab99a49a66d9f6b501f8820889c90f43d6a6878847f4171652411e9ff3ce6b",
        "2cee67b48ab1ddd22fb7323df363db17071e8e1076438983286acf61ee7983cf",
    ),
    (
        GgmlType::Q5_K,
        "a5244c6239a9954e999f0a7da38723bf99c52d062c87f9dd0be633d27d4d76a6",
        "0a48d859fe255f4190fba74723cdd591acdfe9307a9e40da0243da0ecff1d8bc",
    ),
    (
        GgmlType::Q6_K,
        "661ef7f5eb57baa5f5387dc7c7a02a5446055e47de863d23c9c38eda79c7d8d3",
        "794e278b6b0e0855cf78e76065aa388377967968dbedab666157e06a917a36d7",
    ),
];

#[test]
fn input_matches_the_c_harness() {
    let digest = sha256_hex(&f32_bytes(&oracle_input()));
    assert_eq!(
        digest,
        "b3c5e2af5a7effc7da2ab6121be75057cc9fae860293a9244edbaf5a4792566d"
    );
}

#[test]
fn quantize_and_dequantize_match_ggml_bit_for_bit() {
    let x = oracle_input();
    let mut failures = Vec::new();
    for (ty, want_q, want_deq) in GOLDEN {
        let q = quantize(ty, &x).unwrap();
        if sha256_hex(&q) != want_q {
            failures.push(format!("{ty}: quantized bytes differ from ggml's"));
        }
        let deq = dequantize_to_vec(ty, &q, N).unwrap();
        if sha256_hex(&f32_bytes(&deq)) != want_deq {
            failures.push(format!("{ty}: dequantized values differ from ggml's"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
