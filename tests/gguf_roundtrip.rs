//! Writer → reader round trips, the byte layout of a tiny file against the GGUF spec, the
//! typed getters, and the writer's refusals.

use hearth::gguf::{GgufError, GgufFile, GgufWriter, MetadataValue as V};
use hearth::quant::GgmlType;

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn every_value_type() -> Vec<(String, V)> {
    let s = |x: &str| V::String(x.into());
    vec![
        ("general.architecture".into(), s("llama")),
        ("t.u8".into(), V::U8(200)),
        ("t.i8".into(), V::I8(-100)),
        ("t.u16".into(), V::U16(60000)),
        ("t.i16".into(), V::I16(-30000)),
        ("t.u32".into(), V::U32(4_000_000_000)),
        ("t.i32".into(), V::I32(-2_000_000_000)),
        ("t.f32".into(), V::F32(1e-5)),
        ("t.bool".into(), V::Bool(true)),
        ("t.string".into(), s("héllo ▁wörld \u{1F600}")),
        ("t.u64".into(), V::U64(u64::MAX)),
        ("t.i64".into(), V::I64(i64::MIN)),
        ("t.f64".into(), V::F64(-2.5e300)),
        ("t.empty_string".into(), s("")),
        (
            "t.str_array".into(),
            V::Array(vec![s("a"), s(""), s("<|eot_id|>")]),
        ),
        (
            "t.f32_array".into(),
            V::Array(vec![V::F32(0.5), V::F32(-1.0)]),
        ),
        (
            "t.i32_array".into(),
            V::Array(vec![V::I32(1), V::I32(-2), V::I32(3)]),
        ),
        ("t.empty_array".into(), V::Array(vec![])),
        (
            "t.nested".into(),
            V::Array(vec![
                V::Array(vec![s("x"), s("yz")]),
                V::Array(vec![]),
                V::Array(vec![s("w")]),
            ]),
        ),
        (
            "t.mixed_inner_types".into(),
            V::Array(vec![
                V::Array(vec![V::U8(1)]),
                V::Array(vec![V::F64(2.0), V::F64(3.0)]),
            ]),
        ),
    ]
}

fn sample_writer() -> GgufWriter {
    let mut w = GgufWriter::new();
    for (k, v) in every_value_type() {
        w.add_metadata(k, v);
    }
    w.add_tensor("a.f32", &[3], GgmlType::F32, bytes(12, 1))
        .unwrap();
    w.add_tensor("b.q8_0", &[64, 2], GgmlType::Q8_0, bytes(4 * 34, 2))
        .unwrap();
    w.add_tensor("c.f16", &[5, 1, 1, 1], GgmlType::F16, bytes(10, 3))
        .unwrap();
    w.add_tensor("d.q4_k", &[256, 3], GgmlType::Q4_K, bytes(3 * 144, 4))
        .unwrap();
    w.add_tensor("e.empty", &[0, 7], GgmlType::F32, vec![])
        .unwrap();
    w
}

#[test]
fn every_value_type_and_tensor_round_trips() {
    let w = sample_writer();
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 32);
    assert_eq!(f.data_offset() % 32, 0);
    assert_eq!(f.metadata(), every_value_type().as_slice());
    let expected: [(&str, &[u64], GgmlType, Vec<u8>); 5] = [
        ("a.f32", &[3], GgmlType::F32, bytes(12, 1)),
        ("b.q8_0", &[64, 2], GgmlType::Q8_0, bytes(136, 2)),
        ("c.f16", &[5, 1, 1, 1], GgmlType::F16, bytes(10, 3)),
        ("d.q4_k", &[256, 3], GgmlType::Q4_K, bytes(432, 4)),
        ("e.empty", &[0, 7], GgmlType::F32, vec![]),
    ];
    assert_eq!(f.tensors().len(), expected.len());
    for (t, (name, dims, ty, data)) in f.tensors().iter().zip(expected) {
        assert_eq!(
            (t.name.as_str(), t.dims.as_slice(), t.ggml_type),
            (name, dims, ty)
        );
        assert_eq!(t.n_elements, dims.iter().product::<u64>());
        assert_eq!(t.n_bytes, data.len() as u64);
        assert_eq!(t.offset % 32, 0, "{name}");
        assert_eq!(f.tensor_data(t), data.as_slice(), "{name}");
        assert_eq!(f.tensor(name), Some(t));
    }
    assert_eq!(f.tensor("missing"), None);
    assert_eq!(f.get("missing"), None);
}

#[test]
fn version_2_round_trips() {
    let mut w = sample_writer();
    w.set_version(2);
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!(f.version(), 2);
    assert_eq!(f.metadata(), every_value_type().as_slice());
}

#[test]
fn general_alignment_sets_data_and_tensor_alignment() {
    let mut w = sample_writer();
    w.add_metadata("general.alignment", V::U32(256));
    let b = w.to_bytes().unwrap();
    let f = GgufFile::from_bytes(b.clone()).unwrap();
    assert_eq!(f.alignment(), 256);
    assert_eq!(f.data_offset() % 256, 0);
    assert_eq!(b.len() % 256, 0);
    for t in f.tensors() {
        assert_eq!(t.offset % 256, 0, "{}", t.name);
        // Padding after each tensor is zeros.
        let start = (f.data_offset() + t.offset + t.n_bytes) as usize;
        let end = (start as u64).div_ceil(256) as usize * 256;
        assert!(b[start..end].iter().all(|&x| x == 0), "{}", t.name);
    }
}

#[test]
fn add_metadata_replaces_an_existing_key_in_place() {
    let mut w = GgufWriter::new();
    w.add_metadata("a", V::U32(1));
    w.add_metadata("b", V::U32(2));
    w.add_metadata("a", V::String("one".into()));
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!(
        f.metadata(),
        &[
            ("a".to_string(), V::String("one".into())),
            ("b".to_string(), V::U32(2))
        ]
    );
}

/// The layout from the GGUF spec (ggml/docs/gguf.md), assembled by hand.
#[test]
fn tiny_file_has_the_documented_byte_layout() {
    let mut w = GgufWriter::new();
    w.add_metadata("a", V::U32(7));
    w.add_tensor("t", &[2], GgmlType::F32, vec![1, 2, 3, 4, 5, 6, 7, 8])
        .unwrap();
    let mut e = Vec::new();
    e.extend_from_slice(b"GGUF");
    e.extend_from_slice(&3u32.to_le_bytes()); // version
    e.extend_from_slice(&1u64.to_le_bytes()); // tensor count
    e.extend_from_slice(&1u64.to_le_bytes()); // kv count
    e.extend_from_slice(&1u64.to_le_bytes()); // key length
    e.extend_from_slice(b"a");
    e.extend_from_slice(&4u32.to_le_bytes()); // GGUF_TYPE_UINT32
    e.extend_from_slice(&7u32.to_le_bytes());
    e.extend_from_slice(&1u64.to_le_bytes()); // name length
    e.extend_from_slice(b"t");
    e.extend_from_slice(&1u32.to_le_bytes()); // n_dims
    e.extend_from_slice(&2u64.to_le_bytes()); // ne[0]
    e.extend_from_slice(&0u32.to_le_bytes()); // GGML_TYPE_F32
    e.extend_from_slice(&0u64.to_le_bytes()); // offset
    assert_eq!(e.len(), 74);
    e.resize(96, 0); // header padded to 32
    e.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    e.resize(128, 0); // tensor padded to 32
    assert_eq!(w.to_bytes().unwrap(), e);
    let f = GgufFile::from_bytes(e).unwrap();
    assert_eq!(f.data_offset(), 96);
    assert_eq!(f.file_size(), 128);
}

#[test]
fn tensorless_file_is_not_padded_and_reads_back() {
    let mut w = GgufWriter::new();
    w.add_metadata("k", V::Bool(false));
    let b = w.to_bytes().unwrap();
    assert_eq!(b.len(), 24 + 8 + 1 + 4 + 1);
    let f = GgufFile::from_bytes(b).unwrap();
    assert!(!f.get_bool("k").unwrap());
    assert!(f.tensors().is_empty());
}

#[test]
fn open_maps_the_same_file_that_write_file_wrote() {
    let dir = std::env::temp_dir().join(format!("hearth-gguf-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sample.gguf");
    sample_writer().write_file(&path).unwrap();
    let mapped = GgufFile::open(&path).unwrap();
    let owned = GgufFile::from_bytes(sample_writer().to_bytes().unwrap()).unwrap();
    assert_eq!(mapped.metadata(), owned.metadata());
    assert_eq!(mapped.tensors(), owned.tensors());
    for t in mapped.tensors() {
        assert_eq!(mapped.tensor_data(t), owned.tensor_data(t));
    }
    let empty = dir.join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        GgufFile::open(&empty),
        Err(GgufError::Truncated { .. })
    ));
    let missing = GgufFile::open(dir.join("nope.gguf"));
    assert!(matches!(missing, Err(GgufError::Io { ref path, .. }) if path.ends_with("nope.gguf")));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn getter_file() -> GgufFile {
    let mut w = GgufWriter::new();
    for (k, v) in every_value_type() {
        w.add_metadata(k, v);
    }
    w.add_metadata("t.u64_small", V::U64(12));
    w.add_metadata("t.i64_neg", V::I64(-1));
    w.add_metadata("t.u32_array", V::Array(vec![V::U32(5), V::U32(6)]));
    w.add_metadata("t.u32_array_big", V::Array(vec![V::U32(u32::MAX)]));
    w.add_metadata("t.f64_array", V::Array(vec![V::F64(0.25)]));
    GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap()
}

#[test]
fn integer_getters_accept_any_integer_type_that_fits() {
    let f = getter_file();
    assert_eq!(f.get_u32("t.u8").unwrap(), 200);
    assert_eq!(f.get_u32("t.u16").unwrap(), 60000);
    assert_eq!(f.get_u32("t.u64_small").unwrap(), 12);
    assert_eq!(f.get_u64("t.u32").unwrap(), 4_000_000_000);
    assert_eq!(f.get_u64("t.u64").unwrap(), u64::MAX);
    assert!(matches!(
        f.get_u32("t.u64"),
        Err(GgufError::ValueOutOfRange {
            expected: "u32",
            ..
        })
    ));
    assert!(matches!(
        f.get_u32("t.i8"),
        Err(GgufError::ValueOutOfRange { .. })
    ));
    assert!(matches!(
        f.get_u64("t.i64_neg"),
        Err(GgufError::ValueOutOfRange { .. })
    ));
    assert!(matches!(
        f.get_u32("t.f32"),
        Err(GgufError::WrongType {
            expected: "u32",
            found: "f32",
            ..
        })
    ));
    assert!(matches!(
        f.get_u32("t.bool"),
        Err(GgufError::WrongType { found: "bool", .. })
    ));
    assert_eq!(f.get_i32_array("t.i32_array").unwrap(), [1, -2, 3]);
    assert_eq!(f.get_i32_array("t.u32_array").unwrap(), [5, 6]);
    assert!(matches!(
        f.get_i32_array("t.u32_array_big"),
        Err(GgufError::ValueOutOfRange { .. })
    ));
    assert!(matches!(
        f.get_i32_array("t.f32_array"),
        Err(GgufError::WrongType { found: "f32", .. })
    ));
    assert!(matches!(
        f.get_i32_array("t.u32"),
        Err(GgufError::WrongType { found: "u32", .. })
    ));
}

#[test]
fn other_getters_check_types() {
    let f = getter_file();
    assert_eq!(f.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(f.get_f32("t.f32").unwrap(), 1e-5);
    assert_eq!(f.get_f32("t.f64").unwrap(), f32::NEG_INFINITY); // -2.5e300 rounds to -inf
    assert!(f.get_bool("t.bool").unwrap());
    assert_eq!(
        f.get_str_array("t.str_array").unwrap(),
        ["a", "", "<|eot_id|>"]
    );
    assert_eq!(
        f.get_str_array("t.empty_array").unwrap(),
        Vec::<&str>::new()
    );
    assert_eq!(f.get_f32_array("t.f32_array").unwrap(), [0.5, -1.0]);
    assert_eq!(f.get_f32_array("t.f64_array").unwrap(), [0.25]);
    assert!(matches!(
        f.get_str("t.u32"),
        Err(GgufError::WrongType {
            expected: "string",
            found: "u32",
            ..
        })
    ));
    assert!(matches!(
        f.get_f32("t.u32"),
        Err(GgufError::WrongType { .. })
    ));
    assert!(matches!(
        f.get_bool("t.u8"),
        Err(GgufError::WrongType { .. })
    ));
    assert!(matches!(
        f.get_str_array("t.nested"),
        Err(GgufError::WrongType { found: "array", .. })
    ));
    assert!(matches!(
        f.get_f32_array("t.string"),
        Err(GgufError::WrongType {
            found: "string",
            ..
        })
    ));
    let missing = f.get_u32("llama.block_count");
    assert!(
        matches!(missing, Err(GgufError::MissingKey { ref key }) if key == "llama.block_count")
    );
    assert!(matches!(
        f.get_str_array("nope"),
        Err(GgufError::MissingKey { .. })
    ));
}

#[test]
fn optional_getters_are_none_when_absent_and_err_on_wrong_type() {
    let f = getter_file();
    assert_eq!(f.opt_str("nope").unwrap(), None);
    assert_eq!(f.opt_u32("nope").unwrap(), None);
    assert_eq!(f.opt_u64("nope").unwrap(), None);
    assert_eq!(f.opt_f32("nope").unwrap(), None);
    assert_eq!(f.opt_bool("nope").unwrap(), None);
    assert_eq!(
        f.opt_str("t.string").unwrap(),
        Some("héllo ▁wörld \u{1F600}")
    );
    assert_eq!(f.opt_u32("t.u16").unwrap(), Some(60000));
    assert_eq!(f.opt_u64("t.u8").unwrap(), Some(200));
    assert_eq!(f.opt_f32("t.f32").unwrap(), Some(1e-5));
    assert_eq!(f.opt_bool("t.bool").unwrap(), Some(true));
    assert!(f.opt_str("t.u8").is_err());
    assert!(f.opt_u32("t.string").is_err());
    assert!(f.opt_u64("t.i64_neg").is_err());
    assert!(f.opt_f32("t.bool").is_err());
    assert!(f.opt_bool("t.string").is_err());
}

#[test]
fn metadata_value_conversions() {
    assert_eq!(V::I8(-1).as_u64(), None);
    assert_eq!(V::I8(-1).as_i64(), Some(-1));
    assert_eq!(V::U64(u64::MAX).as_i64(), None);
    assert_eq!(V::U64(u64::MAX).as_u64(), Some(u64::MAX));
    assert_eq!(V::Bool(true).as_u64(), None);
    assert_eq!(V::F32(0.5).as_f64(), Some(0.5));
    assert_eq!(V::U16(3).as_f64(), Some(3.0));
    assert_eq!(V::String("s".into()).as_str(), Some("s"));
    assert_eq!(V::U8(1).as_str(), None);
    let names: Vec<_> = every_value_type()
        .iter()
        .take(13)
        .map(|(_, v)| v.type_name())
        .collect();
    assert_eq!(
        names,
        [
            "string", "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "u64",
            "i64", "f64"
        ]
    );
}

#[test]
fn writer_refuses_tensors_it_could_not_read_back() {
    let mut w = GgufWriter::new();
    let mut bad = |name: &str, dims: &[u64], ty, n: usize| {
        let r = w.add_tensor(name, dims, ty, vec![0; n]);
        assert!(
            matches!(r, Err(GgufError::InvalidTensor { .. })),
            "{name}: {r:?}"
        );
    };
    bad("short", &[4], GgmlType::F32, 15);
    bad("long", &[4], GgmlType::F32, 17);
    bad("partial block", &[16, 2], GgmlType::Q8_0, 34);
    bad("no dims", &[], GgmlType::F32, 0);
    bad("five dims", &[1, 1, 1, 1, 1], GgmlType::F32, 4);
    bad("overflow", &[1 << 32, 1 << 32], GgmlType::F32, 0);
    bad("over i64", &[1 << 63], GgmlType::I8, 0);
    w.add_tensor("x", &[1], GgmlType::F32, vec![0; 4]).unwrap();
    assert!(matches!(
        w.add_tensor("x", &[1], GgmlType::F32, vec![0; 4]),
        Err(GgufError::InvalidTensor { .. })
    ));
}

#[test]
fn writer_refuses_bad_metadata_and_versions() {
    let refuse = |k: &str, v: V| {
        let mut w = GgufWriter::new();
        w.add_metadata(k, v);
        w.to_bytes().unwrap_err()
    };
    let mixed = refuse("m", V::Array(vec![V::U8(1), V::I8(1)]));
    assert!(
        matches!(mixed, GgufError::InvalidMetadata { ref key, .. } if key == "m"),
        "{mixed}"
    );
    let mut deep = V::Array(vec![]);
    for _ in 0..hearth::gguf::MAX_ARRAY_DEPTH {
        deep = V::Array(vec![deep]);
    }
    assert!(matches!(
        refuse("deep", deep),
        GgufError::InvalidMetadata { .. }
    ));
    for bad in [
        V::U32(0),
        V::U32(48),
        V::I32(-32),
        V::U64(1 << 40),
        V::String("32".into()),
    ] {
        assert!(
            matches!(
                refuse("general.alignment", bad.clone()),
                GgufError::BadAlignment { .. }
            ),
            "{bad:?}"
        );
    }
    for v in [0, 1, 4] {
        let mut w = GgufWriter::new();
        w.set_version(v);
        assert!(
            matches!(w.to_bytes(), Err(GgufError::UnsupportedVersion { version }) if version == v)
        );
    }
}

#[test]
fn deepest_allowed_nesting_round_trips() {
    let mut deep = V::Array(vec![V::String("leaf".into())]);
    for _ in 1..hearth::gguf::MAX_ARRAY_DEPTH {
        deep = V::Array(vec![deep]);
    }
    let mut w = GgufWriter::new();
    w.add_metadata("deep", deep.clone());
    let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    assert_eq!(f.get("deep"), Some(&deep));
}

/// The fuzz seeds are encoded by fuzz/make_seeds.py straight from the format description,
/// independently of this crate: they must read, and the writer must reproduce them exactly.
#[test]
fn independently_encoded_seed_files_read_and_rewrite_identically() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/gguf_reader");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let original = std::fs::read(&path).unwrap();
        let f = GgufFile::from_bytes(original.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut w = GgufWriter::new();
        w.set_version(f.version());
        for (k, v) in f.metadata() {
            w.add_metadata(k.clone(), v.clone());
        }
        for t in f.tensors() {
            let data = f.tensor_data(t).to_vec();
            w.add_tensor(t.name.clone(), &t.dims, t.ggml_type, data).unwrap();
        }
        assert!(w.to_bytes().unwrap() == original, "{}", path.display());
        n += 1;
    }
    assert!(n >= 4, "seeds missing in {}", dir.display());
    let f = GgufFile::open(dir.join("all_types_align64.gguf")).unwrap();
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.get_str("str").unwrap(), "héllo");
    assert_eq!(f.get("i16"), Some(&V::I16(-300)));
    assert_eq!(f.tensor("q4k").unwrap().ggml_type, GgmlType::Q4_K);
    let v2 = GgufFile::open(dir.join("vocab_like_v2.gguf")).unwrap();
    assert_eq!((v2.version(), v2.get_str_array("tokenizer.ggml.tokens").unwrap().len()), (2, 4));
}

#[test]
fn files_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<GgufFile>();
    send_sync::<GgufError>();
}
