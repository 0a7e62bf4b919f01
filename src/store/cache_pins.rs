//! The KV cache owners the person pinned (cache panel), kept in the `settings` table under
//! [`PINS_KEY`] as a JSON array of owner keys (`"conversation:12"`, `"document:3"`). Not a
//! [`super::Settings`] field: the settings pane saves its whole struct, which must not undo a
//! pin made meanwhile in the cache panel. Settings loading ignores the row (unknown key).

use super::{Store, StoreError};

/// The settings-table key of the pinned owners.
pub const PINS_KEY: &str = "kvPinned";

/// The owner keys in `raw` (a JSON array), keeping only `conversation:<id>` and
/// `document:<id>`; anything unreadable is no pins.
pub fn parse_pins(raw: &str) -> Vec<String> {
    let keys: Vec<String> = serde_json::from_str(raw).unwrap_or_default();
    let mut out: Vec<String> = keys.into_iter().filter(|k| is_owner_key(k)).collect();
    out.sort();
    out.dedup();
    out
}

fn is_owner_key(key: &str) -> bool {
    matches!(key.split_once(':'), Some(("conversation" | "document", id)) if id.parse::<i64>().is_ok())
}

impl Store {
    /// The pinned owners' keys (sorted).
    pub async fn cache_pins(&self) -> Result<Vec<String>, StoreError> {
        let raw: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = ?1")
            .bind(PINS_KEY)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err("reading the cache pins"))?;
        Ok(raw.as_deref().map(parse_pins).unwrap_or_default())
    }

    /// Pins (or unpins) `key` in one transaction; returns the pins after.
    pub async fn set_cache_pin(&self, key: &str, pinned: bool) -> Result<Vec<String>, StoreError> {
        if !is_owner_key(key) {
            return Err(StoreError::InvalidSetting {
                field: "kvPinned",
                reason: format!("{key:?} is not a conversation or a document"),
            });
        }
        let op = "saving the cache pins";
        let mut tx = self.begin_write(op).await?;
        let raw: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = ?1")
            .bind(PINS_KEY)
            .fetch_optional(&mut *tx)
            .await
            .map_err(self.err(op))?;
        let mut pins = raw.as_deref().map(parse_pins).unwrap_or_default();
        pins.retain(|k| k != key);
        if pinned {
            pins.push(key.to_string());
            pins.sort();
        }
        let value = serde_json::to_string(&pins).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(PINS_KEY)
        .bind(value)
        .execute(&mut *tx)
        .await
        .map_err(self.err(op))?;
        tx.commit().await.map_err(self.err(op))?;
        Ok(pins)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_conversation_and_document_keys_are_pins() {
        assert_eq!(
            parse_pins(r#"["document:3","conversation:12","request:1","document:x","document:3"]"#),
            vec!["conversation:12".to_string(), "document:3".to_string()]
        );
        assert!(parse_pins("not json").is_empty());
    }

    #[tokio::test]
    async fn pins_survive_a_reopen_and_a_settings_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hearth.db");
        let store = Store::open(&path).await.unwrap();
        store.set_cache_pin("conversation:1", true).await.unwrap();
        store.set_cache_pin("document:2", true).await.unwrap();
        store.set_cache_pin("conversation:1", false).await.unwrap();
        assert!(store.set_cache_pin("request:1", true).await.is_err());
        store
            .save_settings(&super::super::Settings::default())
            .await
            .unwrap();
        let loaded = store.load_settings().await.unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        drop(store);
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.cache_pins().await.unwrap(), vec!["document:2"]);
    }
}
