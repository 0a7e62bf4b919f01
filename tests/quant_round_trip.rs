//! Round trips on random normal data, typed errors for bad input, and the dot products.

use hearth::quant::{
    GgmlType, QuantError, can_dequantize, can_quantize, dequantize, dequantize_to_vec, dot_row,
    matvec, quantize,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Standard normal samples (Box-Muller), deterministic per seed.
fn normal(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
            let u2: f64 = rng.random();
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect()
}

fn rel_rmse(got: &[f32], want: &[f32]) -> f64 {
    let err: f64 = got
        .iter()
        .zip(want)
        .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
        .sum();
    let norm: f64 = want.iter().map(|b| (*b as f64).powi(2)).sum();
    (err / norm).sqrt()
}

const QUANTIZABLE: [GgmlType; 13] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// Relative RMSE bound per type for N(0,1) data: the measured value (64 K values, seed 1)
/// with about 15% margin.
fn rmse_bound(ty: GgmlType) -> f64 {
    match ty {
        GgmlType::F32 => 0.0,
        GgmlType::F16 => 2.5e-4,  // measured 0.00021
        GgmlType::BF16 => 1.9e-3, // measured 0.00167
        GgmlType::Q8_0 => 0.0062, // measured 0.00535
        GgmlType::Q6_K => 0.0205, // measured 0.01772
        GgmlType::Q5_K => 0.0415, // measured 0.03604
        GgmlType::Q5_1 => 0.0435, // measured 0.03778
        GgmlType::Q5_0 => 0.049,  // measured 0.04276
        GgmlType::Q4_K => 0.082,  // measured 0.07119
        GgmlType::Q4_1 => 0.090,  // measured 0.07815
        GgmlType::Q4_0 => 0.099,  // measured 0.08589
        GgmlType::Q3_K => 0.174,  // measured 0.15070
        GgmlType::Q2_K => 0.34,   // measured 0.29560
        _ => 0.0,
    }
}

#[test]
fn round_trip_error_is_within_per_type_bounds() {
    let x = normal(1, 1 << 16);
    for ty in QUANTIZABLE {
        assert!(can_quantize(ty) && can_dequantize(ty), "{ty}");
        let q = quantize(ty, &x).unwrap();
        assert_eq!(
            q.len() as u64,
            ty.bytes_for(x.len() as u64).unwrap(),
            "{ty} size"
        );
        let y = dequantize_to_vec(ty, &q, x.len()).unwrap();
        let err = rel_rmse(&y, &x);
        eprintln!("{ty}: relative RMSE {err:.5}");
        assert!(
            err <= rmse_bound(ty),
            "{ty}: relative RMSE {err} > {}",
            rmse_bound(ty)
        );
    }
}

#[test]
fn quantize_keeps_exact_values_exact() {
    // Values already on a type's grid (integers times a power-of-two scale the quantizer
    // derives from the block's largest magnitude) come back exactly.
    let q4: Vec<f32> = (0..256).map(|i| ((i % 16) as f32 - 8.0) * 0.5).collect(); // d = -4 / -8
    // Q8_0: every 32-block starts with -127/8, so d = 1/8 in each.
    let q8: Vec<f32> = (0..256)
        .map(|i| {
            if i % 32 == 0 {
                -127.0 / 8.0
            } else {
                ((i * 37) % 255) as f32 / 8.0 - 127.0 / 8.0
            }
        })
        .collect();
    let cases = [
        (GgmlType::F32, &q4),
        (GgmlType::F16, &q4),
        (GgmlType::BF16, &q4),
        (GgmlType::Q4_0, &q4),
        (GgmlType::Q8_0, &q8),
    ];
    for (ty, x) in cases {
        let y = dequantize_to_vec(ty, &quantize(ty, x).unwrap(), x.len()).unwrap();
        assert_eq!(&y, x, "{ty}");
    }
    // All-zero input gives all-zero output (no NaN from a zero scale) for every type.
    let zeros = vec![0.0f32; 512];
    for ty in QUANTIZABLE {
        let y = dequantize_to_vec(ty, &quantize(ty, &zeros).unwrap(), 512).unwrap();
        assert!(y.iter().all(|v| *v == 0.0), "{ty}");
    }
}

#[test]
fn bad_lengths_and_unsupported_types_are_typed_errors() {
    let data = quantize(GgmlType::Q4_0, &[0.25; 64]).unwrap();
    let mut out = [0.0f32; 64];
    assert!(matches!(
        dequantize(GgmlType::Q4_0, &data[1..], &mut out),
        Err(QuantError::DataLength {
            ty: GgmlType::Q4_0,
            expected: 36,
            actual: 35,
            ..
        })
    ));
    assert!(matches!(
        dequantize(GgmlType::Q4_0, &data, &mut out[..40]),
        Err(QuantError::PartialBlock {
            ty: GgmlType::Q4_0,
            n_elements: 40,
            block_elems: 32
        })
    ));
    assert!(matches!(
        dequantize_to_vec(GgmlType::Q4_K, &[0u8; 10], usize::MAX / 2 + 1),
        Err(QuantError::PartialBlock { .. }
            | QuantError::TooLarge { .. }
            | QuantError::DataLength { .. })
    ));
    // A huge claimed length must fail before allocating.
    assert!(dequantize_to_vec(GgmlType::F32, &[0u8; 8], 1 << 40).is_err());
    assert!(matches!(
        quantize(GgmlType::Q6_K, &[0.0; 100]),
        Err(QuantError::PartialBlock {
            ty: GgmlType::Q6_K,
            n_elements: 100,
            block_elems: 256
        })
    ));
    assert!(matches!(
        quantize(GgmlType::Q8_0, &[1.0, f32::NAN].repeat(16)),
        Err(QuantError::NonFinite {
            ty: GgmlType::Q8_0,
            index: 1,
            ..
        })
    ));
    for ty in [
        GgmlType::IQ2_XXS,
        GgmlType::Q8_K,
        GgmlType::I32,
        GgmlType::MXFP4,
    ] {
        assert!(!can_dequantize(ty) && !can_quantize(ty), "{ty}");
        let n = ty.block_elems();
        let raw = vec![0u8; ty.block_bytes()];
        assert!(
            matches!(
                dequantize_to_vec(ty, &raw, n),
                Err(QuantError::Unsupported { .. })
            ),
            "{ty}"
        );
        assert!(
            matches!(
                quantize(ty, &vec![0.0; n]),
                Err(QuantError::Unsupported { .. })
            ),
            "{ty}"
        );
        assert!(
            matches!(
                dot_row(ty, &raw, &vec![0.0; n]),
                Err(QuantError::Unsupported { .. })
            ),
            "{ty}"
        );
    }
    let row = quantize(GgmlType::Q8_0, &[1.0; 64]).unwrap();
    assert!(matches!(
        dot_row(GgmlType::Q8_0, &row, &[1.0; 32]),
        Err(QuantError::DataLength { .. })
    ));
    assert!(matches!(
        dot_row(GgmlType::Q8_0, &row, &[1.0; 60]),
        Err(QuantError::PartialBlock { .. })
    ));
    let mut out2 = [0.0f32; 2];
    assert!(matches!(
        matvec(GgmlType::Q8_0, &row, 2, 32, &[1.0; 31], &mut out2),
        Err(QuantError::LengthMismatch {
            what: "matvec x",
            ..
        })
    ));
    assert!(matches!(
        matvec(GgmlType::Q8_0, &row, 2, 32, &[1.0; 32], &mut out2[..1]),
        Err(QuantError::LengthMismatch {
            what: "matvec out",
            ..
        })
    ));
    assert!(matches!(
        matvec(GgmlType::Q8_0, &row, 3, 32, &[1.0; 32], &mut [0.0; 3]),
        Err(QuantError::DataLength { .. })
    ));
    assert!(matches!(
        matvec(GgmlType::Q8_0, &row, usize::MAX, 32, &[1.0; 32], &mut out2),
        Err(QuantError::LengthMismatch { .. })
    ));
}

/// Reference dot in f64 over the dequantized row, and the scale used for the tolerance.
fn reference_dot(w: &[f32], x: &[f32]) -> (f64, f64) {
    let dot = w.iter().zip(x).map(|(a, b)| *a as f64 * *b as f64).sum();
    let mag = w
        .iter()
        .zip(x)
        .map(|(a, b)| (*a as f64 * *b as f64).abs())
        .sum();
    (dot, mag)
}

#[test]
fn dot_row_equals_dequantize_then_dot() {
    // Lengths that are whole blocks but not whole 256-value tiles, and long rows.
    for ty in QUANTIZABLE {
        let be = ty.block_elems();
        for n in [be, 9 * be.max(32), 4096, 14336 + be] {
            let n = n / be * be;
            let w = normal(2 + n as u64, n);
            let x = normal(3 + n as u64, n);
            let row = quantize(ty, &w).unwrap();
            let wd = dequantize_to_vec(ty, &row, n).unwrap();
            let got = dot_row(ty, &row, &x).unwrap() as f64;
            let (want, mag) = reference_dot(&wd, &x);
            // 1e-5 relative to sum |w*x| (the dot itself can cancel to near zero).
            assert!(
                (got - want).abs() <= 1e-5 * mag,
                "{ty} n={n}: {got} vs {want} (mag {mag})"
            );
        }
    }
}

#[test]
fn matvec_equals_dot_row_per_row() {
    // (type, rows, cols): small (single-threaded) and > 1M elements (threaded).
    let cases = [
        (GgmlType::Q4_0, 7, 96),
        (GgmlType::Q8_0, 300, 4096),
        (GgmlType::Q4_K, 520, 2048),
        (GgmlType::Q6_K, 33, 512),
        (GgmlType::F16, 1100, 1000),
        (GgmlType::F32, 3, 5),
    ];
    for (ty, rows, cols) in cases {
        let w = quantize(ty, &normal(5, rows * cols)).unwrap();
        let x = normal(6, cols);
        let mut out = vec![f32::NAN; rows];
        matvec(ty, &w, rows, cols, &x, &mut out).unwrap();
        let row_bytes = ty.bytes_for(cols as u64).unwrap() as usize;
        for (r, got) in out.iter().enumerate() {
            let want = dot_row(ty, &w[r * row_bytes..(r + 1) * row_bytes], &x).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{ty} {rows}x{cols} row {r}");
        }
    }
    // Degenerate shapes: no rows, and rows of zero columns (dot of nothing is 0).
    matvec(GgmlType::Q4_K, &[], 0, 256, &[0.0; 256], &mut []).unwrap();
    let mut out = [f32::NAN; 4];
    matvec(GgmlType::Q8_0, &[], 4, 0, &[], &mut out).unwrap();
    assert_eq!(out, [0.0; 4]);
}
