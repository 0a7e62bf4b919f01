//! Bad-input corpus for the GGUF reader, built in code: every malformed file must give the
//! right typed `GgufError` variant, never a panic, and absurd counts must be refused before
//! anything sized by them is allocated (checked with a tracking allocator).

#[path = "gguf_malformed/support.rs"]
mod support;

use std::time::Duration;

use hearth::gguf::{GgufError as E, GgufWriter, MetadataValue as V};
use hearth::quant::GgmlType;
use support::{F32, Q8_0, Raw, err, one_f32_tensor, parse, parse_measured};

// ---- the valid base file, and truncations of it ----

/// The small file GgufWriter makes, and the same file by hand with its section boundaries.
fn base() -> (Vec<u8>, Raw) {
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", V::String("llama".into()));
    w.add_metadata("test.list", V::Array(vec![V::I32(1), V::I32(2), V::I32(3)]));
    let s = |x: &str| V::String(x.into());
    w.add_metadata(
        "test.nested",
        V::Array(vec![V::Array(vec![s("a")]), V::Array(vec![s("bc")])]),
    );
    w.add_tensor("a", &[4], GgmlType::F32, vec![1; 16]).unwrap();
    w.add_tensor("b", &[32, 2], GgmlType::Q8_0, vec![2; 68])
        .unwrap();
    let written = w.to_bytes().unwrap();

    let raw = Raw::default()
        .bytes(b"GGUF")
        .mark("magic")
        .u32(3)
        .mark("version")
        .u64(2)
        .mark("tensor count")
        .u64(3)
        .mark("kv count")
        .kv_str("general.architecture", "llama")
        .mark("kv 1")
        .str("test.list")
        .u32(9)
        .u32(5)
        .u64(3)
        .u32(1)
        .u32(2)
        .u32(3)
        .mark("kv 2")
        .str("test.nested")
        .u32(9)
        .mark("outer array type")
        .u32(9)
        .u64(2)
        .mark("outer array header")
        .u32(8)
        .u64(1)
        .str("a")
        .mark("inner array 1")
        .u32(8)
        .u64(1)
        .str("bc")
        .mark("kv 3")
        .tensor("a", &[4], F32, 0)
        .mark("tensor info 1")
        .tensor("b", &[32, 2], Q8_0, 32)
        .mark("header end")
        .pad(32)
        .mark("data start")
        .bytes(&[1; 16])
        .mark("tensor a data")
        .pad(32)
        .bytes(&[2; 68])
        .mark("tensor b data")
        .pad(32);
    (written, raw)
}

#[test]
fn base_file_is_valid_and_matches_the_hand_built_layout() {
    let (written, raw) = base();
    assert_eq!(written, raw.b);
    let f = parse(written).unwrap();
    assert_eq!(f.data_offset(), 288);
    assert_eq!(f.tensors().len(), 2);
}

#[test]
fn truncation_at_every_byte_is_a_typed_error() {
    let (file, raw) = base();
    let mark = |name| raw.marks.iter().find(|(n, _)| *n == name).unwrap().1;
    let header_end = mark("header end");
    // Inside the second tensor info, the count check passes and the field itself is cut.
    let e = err(file[..mark("tensor info 1") + 33].to_vec());
    assert!(
        matches!(e, E::Truncated { ref what, offset: 258, needed: 8, available: 0 } if what == "data offset of tensor \"b\""),
        "{e:?}"
    );
    let b_end = mark("tensor b data");
    for cut in 0..file.len() {
        let r = parse(file[..cut].to_vec());
        if cut < header_end {
            // The error accounts for exactly the bytes that are there.
            match r {
                Err(E::Truncated {
                    offset,
                    available,
                    needed,
                    ..
                }) => {
                    assert_eq!(offset + available, cut as u64, "cut {cut}");
                    assert!(needed > available, "cut {cut}");
                }
                // Counts are bounded by the bytes left when their section starts.
                Err(E::CountTooLarge {
                    offset, available, ..
                }) => {
                    assert!(offset + 8 + available <= cut as u64, "cut {cut}");
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        } else if cut < b_end {
            assert!(
                matches!(r, Err(E::TensorOutOfBounds { .. })),
                "cut at {cut}: {r:?}"
            );
        } else {
            // Only the last tensor's trailing padding is missing: every tensor is intact.
            assert!(r.is_ok(), "cut at {cut}: {r:?}");
        }
    }
}

#[test]
fn truncation_at_each_section_boundary_names_the_next_field() {
    let (file, raw) = base();
    for &(name, end) in &raw.marks {
        if name == "tensor b data" {
            // Only the trailing padding is missing; every tensor is intact.
            assert!(parse(file[..end].to_vec()).is_ok());
            continue;
        }
        let e = err(file[..end].to_vec());
        let ok = match name {
            "magic" => matches!(&e, E::Truncated { what, offset: 4, .. } if what == "version"),
            "version" => {
                matches!(&e, E::Truncated { what, offset: 8, .. } if what == "tensor count")
            }
            "tensor count" => matches!(&e, E::Truncated { offset: 16, .. }),
            // 3 pairs (13 bytes each at least) cannot fit in 0 bytes.
            "kv count" => matches!(
                &e,
                E::CountTooLarge {
                    count: 3,
                    offset: 16,
                    available: 0,
                    ..
                }
            ),
            "kv 1" => {
                matches!(&e, E::Truncated { what, offset: 69, .. } if what == "length of metadata key #1")
            }
            "kv 2" => {
                matches!(&e, E::Truncated { what, .. } if what == "length of metadata key #2")
            }
            "outer array type" => {
                matches!(&e, E::Truncated { what, .. } if what == "value type of \"test.nested\"")
            }
            // Two inner arrays need at least 24 bytes: 0 and then 21 are left.
            "outer array header" | "inner array 1" => {
                matches!(&e, E::CountTooLarge { what, count: 2, offset: 141, .. } if what == "array length of \"test.nested\"")
            }
            // Two tensor infos need at least 64 bytes: 0 and then 33 are left.
            "kv 3" | "tensor info 1" => {
                matches!(&e, E::CountTooLarge { what, count: 2, offset: 8, .. } if what == "tensor count")
            }
            "header end" | "data start" | "tensor a data" => {
                matches!(&e, E::TensorOutOfBounds { .. })
            }
            _ => panic!("unexpected mark {name}"),
        };
        assert!(ok, "truncated after {name} (at {end}): {e:?}");
    }
}

// ---- header ----

#[test]
fn bad_magic_and_versions() {
    for magic in [&b"GGML"[..], b"\0\0\0\0", b"gguf", b"GX", b"{"] {
        let mut f = one_f32_tensor(4);
        f.splice(..4, magic.iter().copied());
        assert!(matches!(err(f), E::BadMagic { .. }), "{magic:?}");
    }
    for v in [0, 1, 4, 99, u32::MAX] {
        let e = err(Raw::header(v, 0, 0).build());
        assert!(
            matches!(e, E::UnsupportedVersion { version } if version == v),
            "{v}: {e:?}"
        );
    }
    assert!(
        err(Raw::header(1, 0, 0).build())
            .to_string()
            .contains("unsupported GGUF version 1")
    );
    let big_endian = Raw::default()
        .bytes(b"GGUF")
        .bytes(&3u32.to_be_bytes())
        .zeros(16)
        .build();
    assert!(matches!(err(big_endian), E::BigEndian { version: 3 }));
    assert!(matches!(err(vec![]), E::Truncated { offset: 0, .. }));
    assert!(matches!(
        err(b"GGU".to_vec()),
        E::Truncated { offset: 0, .. }
    ));
    assert_eq!(parse(Raw::header(2, 0, 0).build()).unwrap().version(), 2);
}

// ---- absurd counts ----

/// Files whose count fields claim far more than the file holds, with the variant expected.
fn absurd_count_cases() -> Vec<(&'static str, Vec<u8>, u64)> {
    let big = 1u64 << 60;
    let tail = |r: Raw| r.zeros(64).build();
    vec![
        ("2^60 tensors", tail(Raw::header(3, big, 0)), 8),
        ("u64::MAX tensors", tail(Raw::header(3, u64::MAX, 0)), 8),
        ("2^60 kv pairs", tail(Raw::header(3, 0, big)), 16),
        ("key length 2^60", tail(Raw::header(3, 0, 1).u64(big)), 24),
        (
            "string value length 2^60",
            tail(Raw::header(3, 0, 1).str("k").u32(8).u64(big)),
            37,
        ),
        (
            "u8 array length 2^60",
            tail(Raw::header(3, 0, 1).str("k").u32(9).u32(0).u64(big)),
            41,
        ),
        (
            "u64 array length u64::MAX",
            tail(Raw::header(3, 0, 1).str("k").u32(9).u32(10).u64(u64::MAX)),
            41,
        ),
        (
            "string array length 2^60",
            tail(Raw::header(3, 0, 1).str("k").u32(9).u32(8).u64(big)),
            41,
        ),
        (
            "array-of-arrays length 2^60",
            tail(Raw::header(3, 0, 1).str("k").u32(9).u32(9).u64(big)),
            41,
        ),
        (
            "inner array length 2^60",
            tail(
                Raw::header(3, 0, 1)
                    .str("k")
                    .u32(9)
                    .u32(9)
                    .u64(1)
                    .u32(0)
                    .u64(big),
            ),
            53,
        ),
        (
            "tensor name length 2^60",
            tail(Raw::header(3, 1, 0).u64(big)),
            24,
        ),
        // 100 u64 elements need 800 bytes; only 64 are there.
        (
            "100 u64 in 64 bytes",
            tail(Raw::header(3, 0, 1).str("k").u32(9).u32(10).u64(100)),
            41,
        ),
    ]
}

#[test]
fn absurd_counts_are_refused_before_allocating() {
    for (name, bytes, count_offset) in absurd_count_cases() {
        let (r, largest, took) = parse_measured(bytes);
        match r {
            Err(E::CountTooLarge { offset, .. }) => assert_eq!(offset, count_offset, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        assert!(largest < 4096, "{name}: allocated {largest} bytes at once");
        assert!(took < Duration::from_secs(1), "{name}: took {took:?}");
    }
    // Control: the tracker does see an honest array's allocation.
    let honest = Raw::header(3, 0, 1)
        .str("k")
        .u32(9)
        .u32(10)
        .u64(1000)
        .zeros(8000)
        .build();
    let (r, largest, _) = parse_measured(honest);
    assert_eq!(
        r.unwrap().get("k").and_then(V::as_array).map(<[V]>::len),
        Some(1000)
    );
    assert!(
        largest >= 1000 * std::mem::size_of::<V>(),
        "tracker saw only {largest} bytes"
    );
}

#[test]
fn nesting_is_bounded() {
    let max = hearth::gguf::MAX_ARRAY_DEPTH;
    // `levels` arrays nested in one another, the innermost holding one u8.
    let nested = |levels: usize| {
        let mut r = Raw::header(3, 0, 1).str("deep").u32(9);
        for _ in 1..levels {
            r = r.u32(9).u64(1);
        }
        r.u32(0).u64(1).u8(7).build()
    };
    let f = parse(nested(max)).unwrap();
    let mut v = f.get("deep").unwrap();
    for _ in 0..max {
        v = &v.as_array().unwrap()[0];
    }
    assert_eq!(v, &V::U8(7));
    assert!(matches!(err(nested(max + 1)), E::NestingTooDeep { .. }));
    // A very deep chain fails at the bound, not with a stack overflow.
    let (r, _, took) = parse_measured(nested(100_000));
    assert!(matches!(r, Err(E::NestingTooDeep { max: 8, .. })), "{r:?}");
    assert!(took < Duration::from_secs(1));
}

// ---- metadata ----

#[test]
fn unknown_value_types() {
    for t in [13, 100, u32::MAX] {
        let e = err(Raw::header(3, 0, 1).str("k").u32(t).zeros(16).build());
        assert!(
            matches!(e, E::UnknownValueType { ref key, type_id, offset: 33 } if key == "k" && type_id == t),
            "{e:?}"
        );
        let e = err(Raw::header(3, 0, 1).str("k").u32(9).u32(t).u64(0).build());
        assert!(
            matches!(e, E::UnknownValueType { type_id, offset: 37, .. } if type_id == t),
            "{e:?}"
        );
    }
}

#[test]
fn duplicate_keys() {
    let f = Raw::header(3, 0, 2).kv_u32("a", 1).kv_u32("a", 2).build();
    assert!(matches!(err(f), E::DuplicateKey { ref key, offset: 41 } if key == "a"));
}

#[test]
fn invalid_utf8_in_keys_names_and_values() {
    let f = Raw::header(3, 0, 1).raw_str(b"k\xff").u32(4).u32(0).build();
    assert!(matches!(err(f), E::InvalidUtf8 { offset: 24, .. }));
    let f = Raw::header(3, 1, 0)
        .raw_tensor(b"\xc3(", &[1], F32, 0)
        .pad(32)
        .zeros(4)
        .build();
    assert!(matches!(err(f), E::InvalidUtf8 { ref what, offset: 24 } if what.contains("tensor")));
    // Values: llama.cpp tolerates raw bytes, so they are read lossily.
    let f = parse(
        Raw::header(3, 0, 1)
            .str("k")
            .u32(8)
            .raw_str(b"a\xffb")
            .build(),
    )
    .unwrap();
    assert_eq!(f.get_str("k").unwrap(), "a\u{FFFD}b");
}

#[test]
fn bool_bytes_other_than_0_and_1_read_as_ggml_does() {
    let f = parse(Raw::header(3, 0, 1).str("k").u32(7).u8(2).build()).unwrap();
    assert!(f.get_bool("k").unwrap());
}

#[test]
fn general_alignment_must_be_a_power_of_two() {
    let with = |value: Raw| value.build();
    let kv = |t: u32| Raw::header(3, 0, 1).str("general.alignment").u32(t);
    for bad in [
        kv(4).u32(0),
        kv(4).u32(3),
        kv(4).u32(96),
        kv(5).u32((-32i32) as u32),
        kv(10).u64(1 << 33),
        kv(8).str("32"),
        kv(6).u32(32f32.to_bits()),
    ] {
        assert!(matches!(err(with(bad)), E::BadAlignment { .. }));
    }
    assert_eq!(parse(with(kv(10).u64(64))).unwrap().alignment(), 64);
    assert_eq!(parse(with(kv(5).u32(1))).unwrap().alignment(), 1);
}

// ---- tensor infos ----

#[test]
fn dimension_counts_and_overflows() {
    for n_dims in [0u32, 5, 1000, u32::MAX] {
        let f = Raw::header(3, 1, 0).str("t").u32(n_dims).zeros(64).build();
        assert!(matches!(err(f), E::BadDimCount { n_dims: n, offset: 33, .. } if n == n_dims));
    }
    let overflowing: [(&[u64], u32); 5] = [
        (&[1 << 32, 1 << 32], F32),
        (&[u64::MAX], F32),
        (&[1 << 63, 0], F32),
        (&[1 << 31, 1 << 31, 1 << 2], F32),
        (&[1 << 62], 28), // F64: elements fit i64, bytes overflow u64
    ];
    for (dims, ty) in overflowing {
        let f = Raw::header(3, 1, 0)
            .tensor("t", dims, ty, 0)
            .pad(32)
            .build();
        assert!(
            matches!(err(f), E::DimOverflow { ref dims, offset: 37, .. } if !dims.is_empty()),
            "{dims:?}"
        );
    }
}

#[test]
fn unknown_tensor_types_and_partial_blocks() {
    for ty in [4, 31, 1000, u32::MAX] {
        let f = Raw::header(3, 1, 0)
            .tensor("t", &[32], ty, 0)
            .pad(32)
            .zeros(256)
            .build();
        assert!(
            matches!(err(f), E::UnknownTensorType { type_id, offset: 45, .. } if type_id == ty)
        );
    }
    let f = Raw::header(3, 1, 0)
        .tensor("t", &[16, 2], Q8_0, 0)
        .pad(32)
        .zeros(68)
        .build();
    assert!(matches!(
        err(f),
        E::PartialBlock {
            ty: GgmlType::Q8_0,
            row_len: 16,
            block_elems: 32,
            ..
        }
    ));
    let f = Raw::header(3, 1, 0)
        .tensor("t", &[32], 12, 0)
        .pad(32)
        .zeros(144)
        .build();
    assert!(matches!(
        err(f),
        E::PartialBlock {
            ty: GgmlType::Q4_K,
            ..
        }
    ));
}

#[test]
fn zero_element_tensors_are_accepted_with_no_bytes() {
    let f = parse(Raw::header(3, 1, 0).tensor("t", &[0, 4], Q8_0, 0).build()).unwrap();
    let t = f.tensor("t").unwrap();
    assert_eq!((t.n_elements, t.n_bytes), (0, 0));
    assert!(f.tensor_data(t).is_empty());
    assert!(f.data_offset() > f.file_size()); // unpadded header: nothing to read anyway
}

#[test]
fn data_outside_the_file() {
    let e = err(Raw::header(3, 1, 0)
        .tensor("t", &[4], F32, 1024)
        .pad(32)
        .zeros(16)
        .build());
    assert!(matches!(
        e,
        E::TensorOutOfBounds {
            data_offset: 1024,
            n_bytes: 16,
            data_len: 16,
            data_start: 64,
            ..
        }
    ));
    let e = err(Raw::header(3, 1, 0)
        .tensor("t", &[1000], F32, 0)
        .pad(32)
        .zeros(16)
        .build());
    assert!(matches!(e, E::TensorOutOfBounds { n_bytes: 4000, .. }));
    let aligned_max = !31u64;
    let e = err(Raw::header(3, 1, 0)
        .tensor("t", &[4], F32, aligned_max)
        .pad(32)
        .zeros(16)
        .build());
    assert!(matches!(e, E::TensorOutOfBounds { data_offset, .. } if data_offset == aligned_max));
    let e = err(Raw::header(3, 1, 0)
        .tensor("t", &[4], F32, u64::MAX)
        .pad(32)
        .zeros(16)
        .build());
    assert!(matches!(
        e,
        E::MisalignedTensor {
            data_offset: u64::MAX,
            ..
        }
    ));
}

#[test]
fn misaligned_offsets() {
    let e = err(Raw::header(3, 1, 0)
        .tensor("t", &[4], F32, 4)
        .pad(32)
        .zeros(32)
        .build());
    assert!(matches!(
        e,
        E::MisalignedTensor {
            data_offset: 4,
            alignment: 32,
            offset: 49,
            ..
        }
    ));
    let f = Raw::header(3, 1, 1)
        .str("general.alignment")
        .u32(4)
        .u32(64)
        .tensor("t", &[4], F32, 32)
        .pad(64)
        .zeros(64)
        .build();
    assert!(matches!(
        err(f),
        E::MisalignedTensor {
            data_offset: 32,
            alignment: 64,
            ..
        }
    ));
}

#[test]
fn overlapping_and_duplicate_tensors() {
    let two = |a: (&str, u64, u64), b: (&str, u64, u64)| {
        Raw::header(3, 2, 0)
            .tensor(a.0, &[a.1], F32, a.2)
            .tensor(b.0, &[b.1], F32, b.2)
            .pad(32)
            .zeros(256)
            .build()
    };
    assert!(matches!(
        err(two(("a", 8, 0), ("b", 8, 0))),
        E::TensorOverlap { .. }
    ));
    let e = err(two(("a", 16, 0), ("b", 8, 32)));
    assert!(
        matches!(e, E::TensorOverlap { ref name, ref other, data_offset: 32 } if name == "b" && other == "a"),
        "{e:?}"
    );
    // Listed out of order, still caught.
    assert!(matches!(
        err(two(("a", 8, 64), ("b", 32, 0))),
        E::TensorOverlap { .. }
    ));
    // Adjacent is fine, and a zero-sized tensor overlaps nothing.
    parse(two(("a", 8, 0), ("b", 8, 32))).unwrap();
    let f = Raw::header(3, 2, 0)
        .tensor("a", &[8], F32, 0)
        .tensor("z", &[0], F32, 0)
        .pad(32)
        .zeros(32)
        .build();
    parse(f).unwrap();
    let e = err(two(("a", 8, 0), ("a", 8, 32)));
    assert!(
        matches!(e, E::DuplicateTensor { ref name, offset: 57 } if name == "a"),
        "{e:?}"
    );
}
