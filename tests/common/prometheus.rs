//! A real Prometheus server (Debian's `prometheus` package) for tests: started on a free loopback
//! port with a temporary data dir, queried through its HTTP API, killed on drop (even on panic).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http;

/// The `prometheus` binary on `PATH`, or `None` after printing why (a failure when `CI` is set).
pub fn binary() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("prometheus"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus is missing and CI is set: scripts/setup.sh installs it (apt: prometheus)"
        );
        eprintln!("SKIP: prometheus is not installed (apt-get install prometheus)");
    }
    found
}

pub struct Prometheus {
    child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Runs `bin` on `config` (YAML text), waiting until it answers `/-/ready`.
    pub fn start(bin: &Path, config: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .args(["--log.level=warn", "--storage.tsdb.retention.time=1h"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let mut p = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        let ready = p.wait_for(Duration::from_secs(60), "/-/ready answers", |p| {
            std::net::TcpStream::connect(&p.addr).is_ok()
                && http::get(&p.addr, "/-/ready").status == 200
        });
        assert!(ready, "prometheus did not start: {}", p.log());
        p
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Polls `done` every 250 ms until it holds (true) or `timeout` passes (false); fails at
    /// once if Prometheus exits.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&Prometheus) -> bool,
    ) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "prometheus exited ({status}) waiting until {what}: {}",
                    self.log()
                );
            }
            if done(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        false
    }

    /// `GET /api/v1/PATH_AND_QUERY` (already encoded): the JSON reply, whatever its status.
    pub fn api(&self, path_and_query: &str) -> Value {
        let r = http::get(&self.addr, &format!("/api/v1/{path_and_query}"));
        serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("prometheus answered {}: {e}: {}", r.status, r.text()))
    }

    /// An instant query: `Ok(result)` (the `data.result` array) or `Err(error text)`.
    pub fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let v = self.api(&format!("query?query={}", encode(promql)));
        if v["status"] != "success" {
            return Err(format!("{}: {}", v["errorType"], v["error"]));
        }
        if v["data"]["resultType"] != "vector" {
            return Err(format!(
                "result type {} (not a vector)",
                v["data"]["resultType"]
            ));
        }
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// The values of `label` on series matching `selector` (`/api/v1/label/…/values`).
    pub fn label_values(&self, label: &str, selector: &str) -> Vec<String> {
        let v = self.api(&format!(
            "label/{label}/values?match[]={}",
            encode(selector)
        ));
        assert_eq!(v["status"], "success", "{v}");
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One sample's value of an instant-query result row (`"NaN"` parses to NaN).
pub fn sample_value(row: &Value) -> f64 {
    row["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}
