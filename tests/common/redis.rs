//! A private `redis-server` for a test: on a free loopback port, no persistence, killed on drop.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    /// Starts `redis-server` (from `$PATH`), or skips with a printed reason — a failure when
    /// `CI` is set — when it is not installed (`scripts/setup.sh` installs it).
    pub fn start() -> Option<RedisServer> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is missing and CI is set: run scripts/setup.sh"
            );
            eprintln!("SKIP: redis-server is missing (apt-get install redis-server)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let server = RedisServer { child, port };
        let start = Instant::now();
        while server.connection().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A connection that answers PING, if the server is up.
    pub fn connection(&self) -> Option<redis::Connection> {
        let mut c = redis::Client::open(self.url())
            .ok()?
            .get_connection_with_timeout(Duration::from_secs(1))
            .ok()?;
        redis::cmd("PING").query::<String>(&mut c).ok()?;
        Some(c)
    }

    pub fn conn(&self) -> redis::Connection {
        self.connection().expect("redis-server answers")
    }

    /// Every KV block key (not the TTL index).
    pub fn block_keys(&self) -> Vec<String> {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("hearth:kv:v1:*")
            .query(&mut self.conn())
            .unwrap();
        keys.into_iter()
            .filter(|k| k != hearth::store::kv_redis::TTL_INDEX_KEY)
            .collect()
    }

    /// Waits (at most 20 s) until `ok(block keys)` holds.
    pub fn wait_for_keys(&self, what: &str, ok: impl Fn(usize) -> bool) -> usize {
        let start = Instant::now();
        loop {
            let n = self.block_keys().len();
            if ok(n) {
                return n;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{what}: {n} block keys"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
