//! A gateway in a child process (`sluice serve` of this very binary), for the benchmarks that
//! kill it or watch its memory: its config, its readiness, its resident memory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Gateway {
    pub child: Child,
    pub base: String,
}

impl Gateway {
    /// Starts `sluice serve --config <dir>/gateway.toml` on a free loopback port (`{LISTEN}` in
    /// `config` is replaced by it), its log appended to `<dir>/gateway.log`, and waits (up to
    /// `ready_within`) for `/readyz`.
    pub async fn start(
        config: &str,
        dir: &Path,
        ready_within: Duration,
    ) -> Result<Gateway, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let listen = format!("127.0.0.1:{port}");
        let path = dir.join("gateway.toml");
        std::fs::write(&path, config.replace("{LISTEN}", &listen)).map_err(|e| e.to_string())?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("gateway.log"))
            .map_err(|e| e.to_string())?;
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let child = Command::new(exe)
            .args(["serve", "--config"])
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start the gateway: {e}"))?;
        let mut g = Gateway {
            child,
            base: format!("http://{listen}"),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + ready_within;
        loop {
            if let Ok(r) = http.get(format!("{}/readyz", g.base)).send().await {
                if r.status().is_success() {
                    return Ok(g);
                }
            }
            if let Ok(Some(status)) = g.child.try_wait() {
                return Err(format!(
                    "the gateway exited ({status}); see {}",
                    dir.join("gateway.log").display()
                ));
            }
            if Instant::now() > deadline {
                g.kill();
                return Err(format!("the gateway was not ready within {ready_within:?}"));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Resident memory (VmRSS), bytes.
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The models directory as an absolute path (the child runs with the same working directory,
/// but a config file states it plainly).
pub fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}
