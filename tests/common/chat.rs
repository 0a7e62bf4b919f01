//! The chat engine as the chat tests load it.

use std::path::Path;

use hearth::chat::ChatEngine;
use hearth::store::kv_blocks::KvStoreOptions;

/// An engine with `model` loaded for `context` tokens: `kv` opens the disk tier there;
/// `budget` bytes of GPU KV (Some(1): one context). None, with the reason printed, when there
/// is no GPU adapter (a failure when `CI` is set).
pub fn engine(
    model: &Path,
    kv: Option<&Path>,
    budget: Option<u64>,
    context: u32,
) -> Option<ChatEngine> {
    let mut e = ChatEngine::new();
    if let Some(reason) = e.adapter_error() {
        assert!(
            std::env::var_os("CI").is_none(),
            "no GPU adapter and CI is set: {reason}"
        );
        eprintln!("SKIP: {reason}");
        return None;
    }
    if let Some(kv) = kv {
        e.open_kv_disk(kv, KvStoreOptions::default()).unwrap();
    }
    e.set_kv_budget(budget);
    e.load(model, context, &mut |_, _| {}).unwrap();
    Some(e)
}
