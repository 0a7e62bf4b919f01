//! The cache panel's commands. `cache_snapshot` reads the engine's in-memory metrics only (the
//! panel polls it every second or two while it is open, even during a reply); `cache_owners`
//! reads the disk tier's per-owner usage and names each owner from the store (conversation
//! titles, document names), so the panel asks for it less often; `clear_cache` empties every
//! tier (`cache_controls`: one tier, one owner, pins). JSON shapes: ui/src/lib/types.ts.

use std::collections::HashMap;
use std::sync::Arc;

use hearth::metrics::MetricsSnapshot;
use serde::Serialize;
use tauri::State;

use crate::state::AppData;

type CmdResult<T> = Result<T, String>;

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

#[tauri::command]
pub fn cache_snapshot(state: State<'_, AppData>) -> CmdResult<MetricsSnapshot> {
    Ok(state.metrics.snapshot())
}

/// What one owner (a conversation, a document, an anonymous request) holds on disk.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerUsage {
    /// "conversation", "document" or "other".
    pub kind: String,
    /// The conversation's or document's id; None for other owners.
    pub id: Option<i64>,
    /// The conversation's title or the document's name; for a deleted one, a description.
    pub name: String,
    pub blocks: u64,
    pub bytes: u64,
    /// Pinned in the cache panel: its GPU blocks are never evicted.
    pub pinned: bool,
}

/// The disk tier's per-owner usage with names; empty when the disk tier is off.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheOwners {
    /// Whether the disk tier is on.
    pub disk: bool,
    pub owners: Vec<OwnerUsage>,
    /// The loaded model's KV element type ("f16" or "f32"), None without a model.
    pub kv_type: Option<String>,
}

/// Splits an owner key (`conversation:12`, `document:3`, `request:9`).
pub fn parse_owner(key: &str) -> (&str, Option<i64>) {
    match key.split_once(':') {
        Some((kind @ ("conversation" | "document"), id)) => match id.parse() {
            Ok(id) => (kind, Some(id)),
            Err(_) => ("other", None),
        },
        _ => ("other", None),
    }
}

/// Names each owner: `titles` and `names` map conversation and document ids to what the
/// person sees; owners no longer in the store are described as deleted. Pinned owners
/// (`pins`, owner keys) are marked, and listed with nothing on disk when the disk has none
/// of theirs. Largest first.
pub fn name_owners(
    per_owner: &[(String, u64, u64)],
    pins: &[String],
    titles: &HashMap<i64, String>,
    names: &HashMap<i64, String>,
) -> Vec<OwnerUsage> {
    let missing = pins
        .iter()
        .filter(|p| !per_owner.iter().any(|(k, _, _)| k == *p))
        .map(|p| (p.clone(), 0, 0));
    let all: Vec<(String, u64, u64)> = per_owner.iter().cloned().chain(missing).collect();
    let mut out: Vec<OwnerUsage> = all
        .iter()
        .map(|(key, blocks, bytes)| {
            let (kind, id) = parse_owner(key);
            let name = match (kind, id) {
                ("conversation", Some(id)) => titles
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| "A deleted conversation".into()),
                ("document", Some(id)) => names
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| "A deleted document".into()),
                _ => "Other requests (command line, server)".into(),
            };
            OwnerUsage {
                kind: kind.to_string(),
                id,
                name,
                blocks: *blocks,
                bytes: *bytes,
                pinned: pins.contains(key),
            }
        })
        .collect();
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
    out
}

#[tauri::command]
pub async fn cache_owners(state: State<'_, AppData>) -> CmdResult<CacheOwners> {
    let per_owner: Vec<(String, u64, u64)> = match state.kv_disk.clone() {
        Some(disk) => tauri::async_runtime::spawn_blocking(move || disk.stats())
            .await
            .map_err(text)?
            .map_err(text)?
            .per_owner
            .into_iter()
            .map(|u| (u.key, u.blocks, u.bytes))
            .collect(),
        None => Vec::new(),
    };
    let pins = state.store.cache_pins().await.map_err(text)?;
    let titles: HashMap<i64, String> = state
        .store
        .list_conversations()
        .await
        .map_err(text)?
        .into_iter()
        .map(|c| (c.id, c.title))
        .collect();
    let names: HashMap<i64, String> = state
        .store
        .list_documents()
        .await
        .map_err(text)?
        .documents
        .into_iter()
        .map(|d| (d.id, d.name))
        .collect();
    Ok(CacheOwners {
        disk: state.kv_disk.is_some(),
        owners: name_owners(&per_owner, &pins, &titles, &names),
        kv_type: state.status().kv_type,
    })
}

/// Empties the cache on every tier: the GPU pool's cached sequences, and the disk tier's
/// blocks. Conversations and documents stay; their next turn recomputes.
#[tauri::command]
pub async fn clear_cache(state: State<'_, AppData>) -> CmdResult<()> {
    let engine = Arc::clone(&state.engine).lock_owned().await;
    let disk = state.kv_disk.clone();
    tauri::async_runtime::spawn_blocking(move || {
        let mut engine = engine;
        engine.clear_cache();
        if let Some(disk) = disk {
            disk.clear(hearth::store::kv_blocks::ClearFilter::All)
                .map(|_| ())
                .map_err(text)
        } else {
            Ok(())
        }
    })
    .await
    .map_err(text)??;
    state.forget_encoded();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_named_after_conversations_and_documents_largest_first() {
        let titles = HashMap::from([(1, "Trip to Lisbon".to_string())]);
        let names = HashMap::from([(7, "facts.txt".to_string())]);
        let per_owner = vec![
            ("conversation:1".to_string(), 2, 100),
            ("document:7".to_string(), 5, 500),
            ("document:8".to_string(), 1, 50),
            ("conversation:2".to_string(), 1, 10),
            ("request:3".to_string(), 1, 5),
        ];
        let pins = vec!["conversation:1".to_string(), "document:9".to_string()];
        let out = name_owners(&per_owner, &pins, &titles, &names);
        assert!(out[1].pinned && !out[0].pinned);
        assert_eq!(
            (out[5].name.as_str(), out[5].pinned, out[5].bytes),
            ("A deleted document", true, 0),
            "a pinned owner with nothing on disk is listed"
        );
        let shown: Vec<(&str, &str, u64)> = out
            .iter()
            .map(|o| (o.kind.as_str(), o.name.as_str(), o.bytes))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("document", "facts.txt", 500),
                ("conversation", "Trip to Lisbon", 100),
                ("document", "A deleted document", 50),
                ("conversation", "A deleted conversation", 10),
                ("other", "Other requests (command line, server)", 5),
                ("document", "A deleted document", 0),
            ]
        );
    }

    #[test]
    fn owner_keys_parse() {
        assert_eq!(parse_owner("conversation:12"), ("conversation", Some(12)));
        assert_eq!(parse_owner("document:3"), ("document", Some(3)));
        assert_eq!(parse_owner("request:9"), ("other", None));
        assert_eq!(parse_owner("document:x"), ("other", None));
        assert_eq!(parse_owner("junk"), ("other", None));
    }
}
