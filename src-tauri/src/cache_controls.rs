//! The cache panel's controls: clear one tier, clear one owner's blocks, pin or unpin an
//! owner. Clearing never deletes a conversation or a document; their next turn recomputes
//! what is gone. Pins are saved in the store (`kvPinned`) and given to the engine at start.

use std::sync::Arc;

use hearth::kv::{CacheTier, Owner};
use hearth::store::Settings;
use tauri::State;

use crate::state::AppData;

type CmdResult<T> = Result<T, String>;

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

const MIB: u64 = 1 << 20;

/// The disk tier's budget the settings ask for (None: the store's default).
pub fn disk_budget_bytes(settings: &Settings) -> u64 {
    settings.kv_disk_budget_mib.map_or(
        hearth::store::kv_blocks::KvStoreOptions::default().budget_bytes,
        |m| u64::from(m) * MIB,
    )
}

/// "gpu", "ram", "disk" → that tier; "all" → None (every tier).
pub fn parse_tier(tier: &str) -> Result<Option<CacheTier>, String> {
    match tier {
        "gpu" => Ok(Some(CacheTier::Gpu)),
        "ram" => Ok(Some(CacheTier::Ram)),
        "disk" => Ok(Some(CacheTier::Disk)),
        "all" => Ok(None),
        other => Err(format!("there is no cache tier called {other:?}")),
    }
}

/// The owner a panel row names ("conversation" or "document", and its id).
pub fn parse_owner(kind: &str, id: i64) -> Result<Owner, String> {
    match kind {
        "conversation" => Ok(Owner::Conversation(id)),
        "document" => Ok(Owner::Document(id)),
        other => Err(format!(
            "only a conversation or a document can be {other:?}ed"
        )),
    }
}

/// The owner a stored pin names (`conversation:12`, `document:3`).
pub fn owner_of_key(key: &str) -> Option<Owner> {
    let (kind, id) = key.split_once(':')?;
    parse_owner(kind, id.parse().ok()?).ok()
}

/// Empties one tier (`gpu`, `ram`, `disk`) or every tier (`all`).
#[tauri::command]
pub async fn clear_cache_tier(state: State<'_, AppData>, tier: String) -> CmdResult<()> {
    let tier = parse_tier(&tier)?;
    let engine = Arc::clone(&state.engine).lock_owned().await;
    tauri::async_runtime::spawn_blocking(move || {
        let mut engine = engine;
        match tier {
            Some(t) => engine.clear_tier(t).map_err(text),
            None => {
                engine.clear_cache();
                Ok(())
            }
        }
    })
    .await
    .map_err(text)??;
    if matches!(tier, None | Some(CacheTier::Gpu)) {
        // Nothing of any document is encoded on the GPU any more.
        state.forget_encoded();
    }
    Ok(())
}

/// Clears one conversation's or document's cached blocks on every tier (shared prefix
/// blocks others still use stay).
#[tauri::command]
pub async fn clear_cache_owner(state: State<'_, AppData>, kind: String, id: i64) -> CmdResult<()> {
    let owner = parse_owner(&kind, id)?;
    let engine = Arc::clone(&state.engine).lock_owned().await;
    tauri::async_runtime::spawn_blocking(move || {
        let mut engine = engine;
        engine.clear_owner(owner).map_err(text)
    })
    .await
    .map_err(text)??;
    if let (Owner::Document(id), Ok(mut e)) = (owner, state.encoded.lock()) {
        e.remove(&id);
    }
    Ok(())
}

/// Pins (`pinned` true) or unpins an owner; a pin past the limit (half the GPU cache) is
/// refused with the reason. Remembered across restarts.
#[tauri::command]
pub async fn pin_cache_owner(
    state: State<'_, AppData>,
    kind: String,
    id: i64,
    pinned: bool,
) -> CmdResult<()> {
    let owner = parse_owner(&kind, id)?;
    // A detached document's prefixes are let go once it is unpinned.
    let attached = match owner {
        Owner::Document(id) if !pinned => !state
            .store
            .document(id)
            .await
            .map_err(text)?
            .summary
            .conversation_ids
            .is_empty(),
        _ => true,
    };
    let engine = Arc::clone(&state.engine).lock_owned().await;
    tauri::async_runtime::spawn_blocking(move || {
        let mut engine = engine;
        if pinned {
            engine.pin_owner(owner).map(|_| ()).map_err(text)
        } else {
            engine.unpin_owner(owner);
            if let (Owner::Document(id), false) = (owner, attached) {
                engine.unpin_document(id);
            }
            Ok(())
        }
    })
    .await
    .map_err(text)??;
    state
        .store
        .set_cache_pin(&hearth::kv::owner_key(owner), pinned)
        .await
        .map_err(text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_and_owners_parse() {
        assert_eq!(parse_tier("gpu"), Ok(Some(CacheTier::Gpu)));
        assert_eq!(parse_tier("ram"), Ok(Some(CacheTier::Ram)));
        assert_eq!(parse_tier("disk"), Ok(Some(CacheTier::Disk)));
        assert_eq!(parse_tier("all"), Ok(None));
        assert!(parse_tier("vram").is_err());
        assert_eq!(parse_owner("document", 3), Ok(Owner::Document(3)));
        assert!(parse_owner("other", 3).is_err());
        assert_eq!(
            owner_of_key("conversation:12"),
            Some(Owner::Conversation(12))
        );
        assert_eq!(owner_of_key("request:1"), None);
        assert_eq!(owner_of_key("document:x"), None);
    }

    #[test]
    fn the_disk_budget_is_the_setting_or_the_default() {
        let mut s = Settings::default();
        assert_eq!(disk_budget_bytes(&s), 8 << 30);
        s.kv_disk_budget_mib = Some(512);
        assert_eq!(disk_budget_bytes(&s), 512 << 20);
    }
}
