//! Feeds arbitrary bytes to the GGUF reader. A file that opens must answer every accessor
//! without panicking, hand out exactly `n_bytes` for every tensor, and survive a rewrite by
//! `GgufWriter` with the same metadata and tensors.
#![no_main]

use hearth::gguf::{GgufFile, GgufWriter, MetadataValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    let _ = (
        file.version(),
        file.alignment(),
        file.data_offset(),
        file.file_size(),
    );
    for (key, value) in file.metadata() {
        assert!(std::ptr::eq(
            file.get(key).expect("listed key is found"),
            value
        ));
        let _ = (
            value.type_name(),
            value.as_u64(),
            value.as_i64(),
            value.as_f64(),
            value.as_str(),
        );
        let _ = (
            file.get_str(key),
            file.get_u32(key),
            file.get_u64(key),
            file.get_f32(key),
            file.get_bool(key),
        );
        let _ = (
            file.get_str_array(key),
            file.get_f32_array(key),
            file.get_i32_array(key),
        );
        let _ = (
            file.opt_str(key),
            file.opt_u32(key),
            file.opt_u64(key),
            file.opt_f32(key),
            file.opt_bool(key),
        );
    }
    let _ = (file.get_u32("no.such.key"), file.opt_str("no.such.key"));
    for t in file.tensors() {
        assert_eq!(file.tensor_data(t).len() as u64, t.n_bytes, "{}", t.name);
        assert!(std::ptr::eq(
            file.tensor(&t.name).expect("listed tensor is found"),
            t
        ));
    }
    // A huge alignment legitimately makes a huge file; keep the rewrite small.
    if file.alignment() <= 1 << 16 {
        rewrite_matches(&file);
    }
});

fn rewrite_matches(file: &GgufFile) {
    let mut w = GgufWriter::new();
    w.set_version(file.version());
    for (k, v) in file.metadata() {
        w.add_metadata(k.clone(), v.clone());
    }
    for t in file.tensors() {
        w.add_tensor(
            t.name.clone(),
            &t.dims,
            t.ggml_type,
            file.tensor_data(t).to_vec(),
        )
        .expect("valid tensor");
    }
    let again =
        GgufFile::from_bytes(w.to_bytes().expect("writable")).expect("rewritten file reads back");
    // Debug formatting compares NaNs too (their payload aside).
    let show = |m: &[(String, MetadataValue)]| format!("{m:?}");
    assert_eq!(show(file.metadata()), show(again.metadata()));
    assert_eq!(file.tensors().len(), again.tensors().len());
    for (a, b) in file.tensors().iter().zip(again.tensors()) {
        assert_eq!(
            (&a.name, &a.dims, a.ggml_type),
            (&b.name, &b.dims, b.ggml_type)
        );
        assert_eq!(file.tensor_data(a), again.tensor_data(b));
    }
}
