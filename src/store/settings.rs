//! Settings: one typed struct, stored as one key/value row per field (value = the field's JSON).
//!
//! Reading never fails because of a stored value: each row is checked on its own (type through
//! serde, range through [`Settings::validate`]); a bad one falls back to its default and is
//! reported in [`LoadedSettings::warnings`]. Saving validates first and rejects a bad value with
//! the field's name.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Store, StoreError};

/// Colour theme; `System` follows the desktop's light/dark preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

/// The KV cache's element type: f16 halves the bytes per token; f32 is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvType {
    #[default]
    F16,
    F32,
}

/// What the settings pane edits. Field names in JSON and in the `settings` table are camelCase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// Tokens of context the model is loaded with.
    pub context_length: u32,
    /// 0 = greedy.
    pub temperature: f64,
    /// 1 = off.
    pub top_p: f64,
    /// 0 = off.
    pub top_k: u32,
    /// 0 = off.
    pub min_p: f64,
    /// 1 = off.
    pub repeat_penalty: f64,
    /// 0 = a new random seed for every reply.
    pub seed: u64,
    pub system_prompt: String,
    pub theme: Theme,
    /// Most tokens generated for one reply.
    pub max_tokens: u32,
    /// The model to load at start, if any.
    pub last_model_path: Option<String>,
    /// The KV cache's GPU budget in MiB (None: what the memory plan sizes). Takes effect at the
    /// next model load.
    pub kv_gpu_budget_mib: Option<u32>,
    /// The KV cache's RAM tier budget in MiB (None: the default). Takes effect at the next load.
    pub kv_ram_budget_mib: Option<u32>,
    /// The KV cache's disk tier budget in MiB (None: the store's default, 8 GiB). Applied when
    /// saved (the disk tier trims to it after its next write) and at start.
    pub kv_disk_budget_mib: Option<u32>,
    /// The KV cache's element type. Takes effect at the next model load.
    pub kv_type: KvType,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            context_length: 4096,
            temperature: 0.7,
            top_p: 0.95,
            top_k: 40,
            min_p: 0.05,
            repeat_penalty: 1.1,
            seed: 0,
            system_prompt: String::new(),
            theme: Theme::System,
            max_tokens: 1024,
            last_model_path: None,
            kv_gpu_budget_mib: None,
            kv_ram_budget_mib: None,
            kv_disk_budget_mib: None,
            kv_type: KvType::F16,
        }
    }
}

pub const CONTEXT_LENGTH_RANGE: (u32, u32) = (64, 262_144);
pub const TEMPERATURE_RANGE: (f64, f64) = (0.0, 5.0);
pub const REPEAT_PENALTY_RANGE: (f64, f64) = (0.5, 2.0);
pub const TOP_K_MAX: u32 = 100_000;
pub const MAX_TOKENS_RANGE: (u32, u32) = (1, 262_144);
/// Largest seed the app's JavaScript holds exactly (`Number.MAX_SAFE_INTEGER`).
pub const SEED_MAX: u64 = (1 << 53) - 1;
pub const SYSTEM_PROMPT_MAX_BYTES: usize = 256 * 1024;
pub const MODEL_PATH_MAX_BYTES: usize = 4096;
/// KV cache budgets in MiB (GPU, RAM and disk tiers): 16 MiB to 1 TiB.
pub const KV_BUDGET_MIB_RANGE: (u32, u32) = (16, 1 << 20);

fn in_range<T: PartialOrd + std::fmt::Display>(
    field: &'static str,
    value: T,
    (min, max): (T, T),
) -> Result<(), StoreError> {
    // Written so that NaN fails too.
    if value >= min && value <= max {
        Ok(())
    } else {
        Err(StoreError::InvalidSetting {
            field,
            reason: format!("{value} is outside {min}..={max}"),
        })
    }
}

impl Settings {
    /// Checks every field's range; the error names the first bad field (camelCase).
    pub fn validate(&self) -> Result<(), StoreError> {
        in_range("contextLength", self.context_length, CONTEXT_LENGTH_RANGE)?;
        in_range("temperature", self.temperature, TEMPERATURE_RANGE)?;
        in_range("topP", self.top_p, (0.0, 1.0))?;
        in_range("topK", self.top_k, (0, TOP_K_MAX))?;
        in_range("minP", self.min_p, (0.0, 1.0))?;
        in_range("repeatPenalty", self.repeat_penalty, REPEAT_PENALTY_RANGE)?;
        in_range("seed", self.seed, (0, SEED_MAX))?;
        in_range("maxTokens", self.max_tokens, MAX_TOKENS_RANGE)?;
        if let Some(mib) = self.kv_gpu_budget_mib {
            in_range("kvGpuBudgetMib", mib, KV_BUDGET_MIB_RANGE)?;
        }
        if let Some(mib) = self.kv_ram_budget_mib {
            in_range("kvRamBudgetMib", mib, KV_BUDGET_MIB_RANGE)?;
        }
        if let Some(mib) = self.kv_disk_budget_mib {
            in_range("kvDiskBudgetMib", mib, KV_BUDGET_MIB_RANGE)?;
        }
        if self.system_prompt.len() > SYSTEM_PROMPT_MAX_BYTES {
            return Err(StoreError::InvalidSetting {
                field: "systemPrompt",
                reason: format!(
                    "{} bytes is over the limit of {SYSTEM_PROMPT_MAX_BYTES}",
                    self.system_prompt.len()
                ),
            });
        }
        if let Some(path) = &self.last_model_path {
            let bad = |reason: &str| {
                Err(StoreError::InvalidSetting {
                    field: "lastModelPath",
                    reason: reason.into(),
                })
            };
            if path.trim().is_empty() {
                return bad("it is empty (use null for no model)");
            }
            if path.len() > MODEL_PATH_MAX_BYTES {
                return bad("it is longer than 4096 bytes");
            }
            if path.contains('\0') {
                return bad("it contains a NUL character");
            }
        }
        Ok(())
    }

    /// The fields as (camelCase key, JSON value) pairs, in declaration order.
    fn to_fields(&self) -> Result<Map<String, Value>, StoreError> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(StoreError::InvalidSetting {
                field: "settings",
                reason: "not an object".into(),
            }),
            // Only a non-finite float can fail here, and validate() runs first.
            Err(e) => Err(StoreError::InvalidSetting {
                field: "settings",
                reason: e.to_string(),
            }),
        }
    }
}

/// A stored setting that was ignored (its default is used instead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingWarning {
    pub key: String,
    /// The stored text, cut to 100 characters.
    pub value: String,
    pub problem: String,
}

impl std::fmt::Display for SettingWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "setting {} = {:?} ignored: {}",
            self.key, self.value, self.problem
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadedSettings {
    pub settings: Settings,
    pub warnings: Vec<SettingWarning>,
}

/// Builds settings from stored rows: each known key is tried alone on top of the defaults and
/// kept only if that still deserializes and validates. Unknown keys (from a newer Hearth) are
/// left alone and not reported.
pub(crate) fn settings_from_rows(rows: &[(String, String)]) -> LoadedSettings {
    let defaults = Settings::default().to_fields().unwrap_or_default();
    let mut merged = defaults.clone();
    let mut warnings = Vec::new();
    for (key, raw) in rows {
        if !defaults.contains_key(key) {
            continue;
        }
        let problem = match serde_json::from_str::<Value>(raw) {
            Err(e) => Some(format!("not valid JSON: {e}")),
            Ok(value) => {
                let mut trial = defaults.clone();
                trial.insert(key.clone(), value.clone());
                match serde_json::from_value::<Settings>(Value::Object(trial)) {
                    Err(e) => Some(format!("wrong type: {e}")),
                    Ok(s) => match s.validate() {
                        Err(e) => Some(e.to_string()),
                        Ok(()) => {
                            merged.insert(key.clone(), value);
                            None
                        }
                    },
                }
            }
        };
        if let Some(problem) = problem {
            warnings.push(SettingWarning {
                key: key.clone(),
                value: raw.chars().take(100).collect(),
                problem,
            });
        }
    }
    // Every merged value passed on its own and fields are independent, so this cannot fail;
    // fall back to the defaults rather than trust that.
    let settings = serde_json::from_value(Value::Object(merged)).unwrap_or_default();
    LoadedSettings { settings, warnings }
}

impl Store {
    /// The stored settings over the defaults; bad rows are skipped and reported.
    pub async fn load_settings(&self) -> Result<LoadedSettings, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT key, value FROM settings ORDER BY key")
                .fetch_all(&self.pool)
                .await
                .map_err(self.err("reading settings"))?;
        Ok(settings_from_rows(&rows))
    }

    /// Validates and stores every field (one transaction); returns what was stored.
    pub async fn save_settings(&self, settings: &Settings) -> Result<Settings, StoreError> {
        settings.validate()?;
        let fields = settings.to_fields()?;
        let op = "saving settings";
        let mut tx = self.begin_write(op).await?;
        for (key, value) in &fields {
            let query = if value.is_null() {
                sqlx::query("DELETE FROM settings WHERE key = ?1").bind(key)
            } else {
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(key)
                .bind(value.to_string())
            };
            query.execute(&mut *tx).await.map_err(self.err(op))?;
        }
        tx.commit().await.map_err(self.err(op))?;
        Ok(settings.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid_and_match_the_contract() {
        let d = Settings::default();
        d.validate().unwrap();
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"contextLength": 4096, "temperature": 0.7, "topP": 0.95, "topK": 40,
                "minP": 0.05, "repeatPenalty": 1.1, "seed": 0, "systemPrompt": "", "theme": "system",
                "maxTokens": 1024, "lastModelPath": null, "kvGpuBudgetMib": null,
                "kvRamBudgetMib": null, "kvDiskBudgetMib": null, "kvType": "f16"})
        );
    }

    #[test]
    fn cache_budgets_are_optional_and_bounded() {
        let mut s = Settings {
            kv_gpu_budget_mib: Some(KV_BUDGET_MIB_RANGE.0),
            kv_ram_budget_mib: Some(KV_BUDGET_MIB_RANGE.1),
            ..Settings::default()
        };
        s.validate().unwrap();
        s.kv_gpu_budget_mib = Some(KV_BUDGET_MIB_RANGE.0 - 1);
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("kvGpuBudgetMib")
        );
        s.kv_gpu_budget_mib = None;
        s.kv_ram_budget_mib = Some(KV_BUDGET_MIB_RANGE.1 + 1);
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("kvRamBudgetMib")
        );
        s.kv_ram_budget_mib = None;
        s.kv_disk_budget_mib = Some(KV_BUDGET_MIB_RANGE.0 - 1);
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("kvDiskBudgetMib")
        );
        let loaded = settings_from_rows(&rows(&[
            ("kvRamBudgetMib", "4"),
            ("kvGpuBudgetMib", "512"),
            ("kvDiskBudgetMib", "2048"),
            ("kvType", "\"f32\""),
            ("kvPinned", "[\"conversation:1\"]"),
        ]));
        assert_eq!(loaded.settings.kv_gpu_budget_mib, Some(512));
        assert_eq!(loaded.settings.kv_ram_budget_mib, None);
        assert_eq!(loaded.settings.kv_disk_budget_mib, Some(2048));
        assert_eq!(loaded.settings.kv_type, KvType::F32);
        assert_eq!(loaded.warnings.len(), 1);
        let bad = settings_from_rows(&rows(&[("kvType", "\"q8\"")]));
        assert_eq!(bad.settings.kv_type, KvType::F16);
        assert_eq!(bad.warnings.len(), 1);
    }

    #[test]
    fn each_bad_row_falls_back_alone() {
        let loaded = settings_from_rows(&rows(&[
            ("topK", "7"),
            ("topP", "1.5"),
            ("theme", "\"dark\""),
            ("temperature", "\"hot\""),
            ("seed", "{not json"),
            ("futureKey", "1"),
        ]));
        assert_eq!(loaded.settings.top_k, 7);
        assert_eq!(loaded.settings.theme, Theme::Dark);
        assert_eq!(loaded.settings.top_p, 0.95);
        assert_eq!(loaded.settings.temperature, 0.7);
        let keys: Vec<&str> = loaded.warnings.iter().map(|w| w.key.as_str()).collect();
        assert_eq!(keys, ["topP", "temperature", "seed"]);
    }
}
