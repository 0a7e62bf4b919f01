//! Starts `hearth serve` as a child process on a free loopback port and stops it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct ServeProc {
    pub child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub model_id: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl ServeProc {
    /// `hearth serve --model MODEL --port 0 EXTRA…`, waiting until it listens (and `/health`
    /// answers).
    pub fn start(model: &Path, extra: &[&str]) -> ServeProc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["serve", "--model", model.to_str().unwrap(), "--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hearth serve");
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let keep = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.trim().to_string());
                }
                keep.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("hearth serve did not start: {:?}", lines.lock().unwrap());
            }
        };
        let model_id = model.file_stem().unwrap().to_string_lossy().into_owned();
        let p = ServeProc {
            child,
            addr,
            model_id,
            stderr: lines,
        };
        let health = super::http::get(&p.addr, "/health");
        assert_eq!(health.status, 200, "{}", health.text());
        p
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Sends SIGTERM and waits (at most `timeout`) for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "hearth serve did not stop within {timeout:?}: {}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for ServeProc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
