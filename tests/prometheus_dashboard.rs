//! The Grafana dashboard tested without Grafana: a real Prometheus, run on the shipped scrape
//! config (`deploy/prometheus/prometheus.yml`: target and interval rewritten to this test's
//! server and 1 s, its `authorization` example uncommented with this test's key file), scrapes
//! a `hearth serve --api-key` that answers a bounded burst of requests sharing a
//! prefix (streamed and not); then every PromQL expression of `deploy/grafana/dashboards/
//! hearth.json` (panels, nested rows) runs through Prometheus's `/api/v1/query`. Grafana's
//! variables are replaced first: `$__rate_interval` and `$__range` by a window holding every
//! scrape since Prometheus started (at least 30 s), `$__interval` by `15s`, `$instance` by the
//! value its own `label_values` query finds; `$DS_PROMETHEUS` (the datasource) is in no query.
//! The test fails, listing them, on expressions that error, return no series, or return only
//! NaN, and on metric names missing from `docs/metrics.md`.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::cli::gpu_available;
use common::http::request;
use common::prometheus::{self, Prometheus, sample_value};
use common::serve::ServeProc;
use serde_json::{Value, json};

const MODEL: &str = "stories260K-q8_0.gguf";
/// Requests in the burst: each of `CLIENTS` threads sends one plain and one streamed request.
const CLIENTS: usize = 3;
const REQUESTS: usize = 2 * CLIENTS;
/// `hearth serve --api-key`, so the scrape config's `authorization` example is tested too.
const KEY: &str = "test-key-0123";

fn repo_file(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The shipped scrape config, pointed at `target`, scraping every second, with its
/// `authorization` example uncommented to read the API key from `key_file`.
fn scrape_config(target: &str, key_file: &str) -> String {
    let shipped = repo_file("deploy/prometheus/prometheus.yml");
    let auth = "    # authorization:\n    #   type: Bearer\n    #   credentials_file: \
                /etc/prometheus/hearth-api-key\n";
    for part in ["\"127.0.0.1:8080\"", "scrape_interval: 15s", auth] {
        assert!(shipped.contains(part), "no {part:?} in {shipped}");
    }
    let auth_on =
        format!("    authorization:\n      type: Bearer\n      credentials_file: {key_file}\n");
    shipped
        .replace("\"127.0.0.1:8080\"", &format!("\"{target}\""))
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace(auth, &auth_on)
}

/// Every `targets[].expr` of the dashboard's panels, rows' nested panels included:
/// (panel title, expression).
fn dashboard_exprs(panels: &Value, out: &mut Vec<(String, String)>) {
    for p in panels.as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push((p["title"].as_str().unwrap_or("?").to_string(), e.into()));
            }
        }
        dashboard_exprs(&p["panels"], out);
    }
}

/// `label_values(SELECTOR, LABEL)` of a query variable: (selector, label).
fn label_values_query(var: &Value) -> (String, String) {
    let q = var["query"]["query"]
        .as_str()
        .or(var["query"].as_str())
        .unwrap_or_else(|| panic!("variable without a query: {var}"));
    let args = q
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("only label_values(…) variables are tested: {q}"));
    let (selector, label) = args
        .rsplit_once(',')
        .expect("label_values(selector, label)");
    (selector.trim().to_string(), label.trim().to_string())
}

/// Replaces `$name` and `${name}` by each value.
fn substitute(expr: &str, vars: &[(String, String)]) -> String {
    let mut e = expr.to_string();
    for (name, value) in vars {
        e = e.replace(&format!("${{{name}}}"), value);
        e = e.replace(&format!("${name}"), value);
    }
    e
}

/// One request of the burst; all share a long system prompt, so all but the first reuse it.
fn ask(addr: &str, model: &str, question: &str, stream: bool) -> u64 {
    let body = json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a storyteller. ".repeat(6)},
            {"role": "user", "content": question},
        ],
        "temperature": 0,
        "max_tokens": 8,
        "stream": stream,
        "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null },
    });
    let auth = format!("Bearer {KEY}");
    let headers = [("Authorization", auth.as_str())];
    let r = request(
        addr,
        "POST",
        "/v1/chat/completions",
        &headers,
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let usage = if stream {
        let data = r.sse_data();
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
        let last: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
        last["usage"].clone()
    } else {
        r.json()["usage"].clone()
    };
    usage["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or_else(|| panic!("no cached_tokens in {usage}"))
}

#[test]
fn every_dashboard_expression_returns_data_from_a_real_prometheus() {
    let started = Instant::now();
    let Some(bin) = prometheus::binary() else {
        return;
    };
    let Some(model) = common::fixture_model(MODEL) else {
        return;
    };
    if !gpu_available() {
        return;
    }
    let dashboard: Value =
        serde_json::from_str(&repo_file("deploy/grafana/dashboards/hearth.json"))
            .expect("the dashboard is JSON");
    let docs = repo_file("docs/metrics.md");
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard["panels"], &mut exprs);
    assert!(exprs.len() >= 10, "{exprs:?}");

    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let key_file = format!("{dir}/api-key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let serve = ServeProc::start(&model, &["--data-dir", dir, "--api-key", KEY]);
    let mut prom = Prometheus::start(&bin, &scrape_config(&serve.addr, &key_file));
    let prom_started = Instant::now();
    let up = r#"up{job="hearth"} == 1"#;
    let scraped = prom.wait_for(Duration::from_secs(30), "the target is up", |p| {
        p.query(up).is_ok_and(|r| !r.is_empty())
    });
    assert!(
        scraped,
        "no successful scrape of {}: {}",
        serve.addr,
        prom.log()
    );

    // The burst: concurrent clients, so requests queue behind the single engine.
    let cached: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let (addr, id) = (serve.addr.as_str(), serve.model_id.as_str());
                s.spawn(move || {
                    let q = format!("Tell me about animal number {i}.");
                    [ask(addr, id, &q, false), ask(addr, id, &q, true)]
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        cached.iter().any(|&c| c > 0),
        "no request reused the shared system prompt: {cached:?}"
    );

    // Wait for a scrape that saw the whole burst.
    let all = format!("hearth_requests_total >= {REQUESTS}");
    let seen = prom.wait_for(Duration::from_secs(30), "the burst is scraped", |p| {
        p.query(&all).is_ok_and(|r| !r.is_empty())
    });
    assert!(
        seen,
        "the burst never showed up in Prometheus: {}",
        prom.log()
    );

    let window = format!("{}s", (prom_started.elapsed().as_secs() + 5).max(30));
    let mut vars = vec![
        ("__rate_interval".to_string(), window.clone()),
        ("__range".to_string(), window),
        ("__interval".to_string(), "15s".to_string()),
    ];
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        let name = var["name"].as_str().unwrap().to_string();
        if var["type"] != "query" {
            assert_eq!(var["type"], "datasource", "untested variable {name}");
            assert!(
                exprs.iter().all(|(_, e)| !e.contains(&name)),
                "{name} used in a query"
            );
            continue;
        }
        let (selector, label) = label_values_query(var);
        let values = prom.label_values(&label, &substitute(&selector, &vars));
        assert!(
            values.contains(&serve.addr),
            "${name}: {values:?} lacks {}",
            serve.addr
        );
        vars.push((name, serve.addr.replace('.', "\\\\.")));
    }

    let mut failures = Vec::new();
    for (title, expr) in &exprs {
        let q = substitute(expr, &vars);
        let names: Vec<&str> = q
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("hearth_"))
            .collect();
        for n in names {
            let base = n.strip_suffix("_bucket").unwrap_or(n);
            if !docs.contains(&format!("`{base}`")) {
                failures.push(format!("{title}: {n} is not in docs/metrics.md"));
            }
        }
        if q.contains('$') {
            failures.push(format!("{title}: unreplaced variable in {q}"));
            continue;
        }
        match prom.query(&q) {
            Err(e) => failures.push(format!("{title}: {q}: error {e}")),
            Ok(rows) if rows.is_empty() => failures.push(format!("{title}: {q}: no series")),
            Ok(rows) if rows.iter().all(|r| sample_value(r).is_nan()) => {
                failures.push(format!("{title}: {q}: only NaN: {rows:?}"))
            }
            Ok(rows) => eprintln!("ok  {title}: {q} -> {} series", rows.len()),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} dashboard expressions failed:\n{}",
        failures.len(),
        exprs.len(),
        failures.join("\n")
    );

    // The burst reused its shared prefix, so the hit-rate panel shows more than zero.
    let (_, hit_rate) = exprs
        .iter()
        .find(|(t, _)| t == "Token hit rate")
        .expect("a Token hit rate panel");
    let rows = prom.query(&substitute(hit_rate, &vars)).unwrap();
    assert!(sample_value(&rows[0]) > 0.0, "{rows:?}");
    eprintln!(
        "{} expressions checked in {:.1} s",
        exprs.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Every panel of the dashboard, rows' nested panels included.
fn all_panels(panels: &Value, out: &mut Vec<Value>) {
    for p in panels.as_array().into_iter().flatten() {
        out.push(p.clone());
        all_panels(&p["panels"], out);
    }
}

/// What Grafana needs of the JSON (no Prometheus or fixtures needed): unique panel ids, panels
/// inside the 24-column grid, unique `refId`s per panel, every query on the `DS_PROMETHEUS`
/// datasource variable, whose default is the provisioned datasource's uid.
#[test]
fn the_dashboard_json_is_well_formed_for_grafana() {
    let d: Value = serde_json::from_str(&repo_file("deploy/grafana/dashboards/hearth.json"))
        .expect("the dashboard is JSON");
    assert!(
        d["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "{}",
        d["schemaVersion"]
    );
    assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty()));
    let ds = json!({"type": "prometheus", "uid": "${DS_PROMETHEUS}"});
    let mut panels = Vec::new();
    all_panels(&d["panels"], &mut panels);
    let mut ids = std::collections::HashSet::new();
    for p in &panels {
        let title = p["title"].as_str().unwrap_or("?");
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "duplicate id: {title}"
        );
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().unwrap(), g["w"].as_u64().unwrap());
        assert!(
            w > 0 && x + w <= 24 && g["h"].as_u64().unwrap() > 0,
            "{title}: {g}"
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"], ds, "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}");
        let mut refs = std::collections::HashSet::new();
        for t in targets {
            assert_eq!(t["datasource"], ds, "{title}");
            assert!(refs.insert(t["refId"].as_str().unwrap()), "{title}: {t}");
        }
    }
    let vars = d["templating"]["list"].as_array().unwrap();
    let source = vars.iter().find(|v| v["name"] == "DS_PROMETHEUS").unwrap();
    assert_eq!(source["type"], "datasource");
    assert_eq!(source["query"], "prometheus");
    let uid = source["current"]["value"].as_str().unwrap();
    let provisioned = repo_file("deploy/grafana/provisioning/datasources/hearth.yml");
    assert!(
        provisioned.contains(&format!("uid: {uid}")),
        "{provisioned}"
    );
    for v in vars.iter().filter(|v| v["type"] == "query") {
        assert_eq!(v["datasource"], ds, "{v}");
    }
}
