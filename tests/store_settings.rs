//! hearth::store settings: defaults, round trip, field-named validation, untrusted rows.

use hearth::store::{KvType, Settings, Store, StoreError, Theme};

async fn store() -> Store {
    Store::open_in_memory().await.expect("in-memory store")
}

async fn put_row(s: &Store, key: &str, value: &str) {
    sqlx::query("INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)")
        .bind(key)
        .bind(value)
        .execute(s.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_fresh_store_has_the_documented_defaults() {
    let loaded = store().await.load_settings().await.unwrap();
    assert!(loaded.warnings.is_empty());
    let d = loaded.settings;
    assert_eq!(
        (
            d.context_length,
            d.temperature,
            d.top_p,
            d.top_k,
            d.min_p,
            d.repeat_penalty,
            d.seed,
            d.max_tokens
        ),
        (4096, 0.7, 0.95, 40, 0.05, 1.1, 0, 1024)
    );
    assert_eq!(
        (d.system_prompt.as_str(), d.theme, d.last_model_path),
        ("", Theme::System, None)
    );
}

#[tokio::test]
async fn save_and_load_round_trip_including_clearing_the_model_path() {
    let s = store().await;
    let mut settings = Settings {
        context_length: 2048,
        temperature: 1.25,
        top_p: 1.0,
        top_k: 0,
        min_p: 0.0,
        repeat_penalty: 1.0,
        seed: (1 << 53) - 1,
        system_prompt: "Answer in French.\nBe kind. \"Quotes\" and ünïcödé".into(),
        theme: Theme::Light,
        max_tokens: 1,
        last_model_path: Some("/home/me/models/qwen2.5-7b-q4_k_m.gguf".into()),
        kv_gpu_budget_mib: Some(512),
        kv_ram_budget_mib: Some(4096),
        kv_disk_budget_mib: Some(2048),
        kv_type: KvType::F32,
    };
    assert_eq!(s.save_settings(&settings).await.unwrap(), settings);
    assert_eq!(s.load_settings().await.unwrap().settings, settings);

    settings.last_model_path = None;
    s.save_settings(&settings).await.unwrap();
    let loaded = s.load_settings().await.unwrap();
    assert_eq!(loaded.settings, settings);
    assert!(loaded.warnings.is_empty());
    let path_rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM settings WHERE key = 'lastModelPath'")
            .fetch_one(s.pool())
            .await
            .unwrap();
    assert_eq!(path_rows, 0);
}

#[tokio::test]
async fn save_rejects_bad_values_by_field_name_and_changes_nothing() {
    let s = store().await;
    let good = Settings {
        top_k: 5,
        ..Settings::default()
    };
    s.save_settings(&good).await.unwrap();

    let cases: Vec<(&str, Settings)> = vec![
        (
            "contextLength",
            Settings {
                context_length: 0,
                ..good.clone()
            },
        ),
        (
            "contextLength",
            Settings {
                context_length: 10_000_000,
                ..good.clone()
            },
        ),
        (
            "temperature",
            Settings {
                temperature: -0.1,
                ..good.clone()
            },
        ),
        (
            "temperature",
            Settings {
                temperature: f64::NAN,
                ..good.clone()
            },
        ),
        (
            "topP",
            Settings {
                top_p: 1.5,
                ..good.clone()
            },
        ),
        (
            "topK",
            Settings {
                top_k: 1_000_000,
                ..good.clone()
            },
        ),
        (
            "minP",
            Settings {
                min_p: f64::INFINITY,
                ..good.clone()
            },
        ),
        (
            "repeatPenalty",
            Settings {
                repeat_penalty: 0.0,
                ..good.clone()
            },
        ),
        (
            "seed",
            Settings {
                seed: 1 << 53,
                ..good.clone()
            },
        ),
        (
            "maxTokens",
            Settings {
                max_tokens: 0,
                ..good.clone()
            },
        ),
        (
            "systemPrompt",
            Settings {
                system_prompt: "x".repeat(300 * 1024),
                ..good.clone()
            },
        ),
        (
            "lastModelPath",
            Settings {
                last_model_path: Some("  ".into()),
                ..good.clone()
            },
        ),
        (
            "lastModelPath",
            Settings {
                last_model_path: Some("a\0b".into()),
                ..good.clone()
            },
        ),
    ];
    for (field, bad) in cases {
        match s.save_settings(&bad).await {
            Err(StoreError::InvalidSetting {
                field: f,
                ref reason,
            }) => {
                assert_eq!(f, field, "{reason}");
                let shown = s.save_settings(&bad).await.unwrap_err().to_string();
                assert!(shown.contains(field), "{shown}");
            }
            other => panic!("{field}: expected InvalidSetting, got {other:?}"),
        }
    }
    assert_eq!(s.load_settings().await.unwrap().settings, good);
}

#[tokio::test]
async fn bad_stored_rows_fall_back_one_by_one_with_warnings() {
    let s = store().await;
    s.save_settings(&Settings {
        top_k: 7,
        theme: Theme::Dark,
        max_tokens: 300,
        ..Settings::default()
    })
    .await
    .unwrap();
    put_row(&s, "topP", "2.5").await; // out of range
    put_row(&s, "temperature", "\"warm\"").await; // wrong type
    put_row(&s, "contextLength", "4096.5").await; // not an integer
    put_row(&s, "seed", "-1").await; // negative
    put_row(&s, "theme", "\"purple\"").await; // unknown variant
    put_row(&s, "systemPrompt", "{oops").await; // not JSON
    put_row(&s, "lastModelPath", "null").await; // null is fine: no model
    put_row(&s, "someFutureSetting", "[1,2]").await; // unknown keys are left alone

    let loaded = s.load_settings().await.unwrap();
    let d = Settings::default();
    let got = &loaded.settings;
    assert_eq!(
        (got.top_p, got.temperature, got.context_length, got.seed),
        (d.top_p, d.temperature, d.context_length, d.seed)
    );
    assert_eq!((got.theme, got.system_prompt.as_str()), (Theme::System, ""));
    // Good rows survive beside the bad ones.
    assert_eq!(
        (got.top_k, got.max_tokens, got.last_model_path.as_deref()),
        (7, 300, None)
    );

    let mut warned: Vec<&str> = loaded.warnings.iter().map(|w| w.key.as_str()).collect();
    warned.sort();
    assert_eq!(
        warned,
        [
            "contextLength",
            "seed",
            "systemPrompt",
            "temperature",
            "theme",
            "topP"
        ]
    );
    let top_p = loaded.warnings.iter().find(|w| w.key == "topP").unwrap();
    assert_eq!(top_p.value, "2.5");
    assert!(top_p.problem.contains("topP"), "{top_p}");

    // Saving the loaded settings repairs the rows.
    s.save_settings(&loaded.settings).await.unwrap();
    assert!(s.load_settings().await.unwrap().warnings.is_empty());
}

#[test]
fn settings_json_fills_missing_fields_with_defaults() {
    let s: Settings = serde_json::from_str(r#"{"topK": 3, "theme": "dark"}"#).unwrap();
    assert_eq!(
        s,
        Settings {
            top_k: 3,
            theme: Theme::Dark,
            ..Settings::default()
        }
    );
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["repeatPenalty"], 1.1);
    assert!(json["lastModelPath"].is_null());
}
