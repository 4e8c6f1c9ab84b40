//! The `nps-server` process under test: started on a free loopback port with
//! the benchmark's database, bootstrapping a known Admin on first start;
//! stopped with SIGKILL (no shutdown of any kind, so what survives is what
//! was on disk); and its memory, read from `/proc`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The Admin the first start creates; the benchmark signs in as it.
pub const LOGIN: &str = "bench-admin";
pub const PASSWORD: &str = "bench password on loopback only";
/// Base32, 20 bytes.
pub const TOTP_SECRET: &str = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU";

/// How to start the server.
pub struct Launch<'a> {
    pub binary: &'a Path,
    pub database: &'a Path,
    /// A `--config` file (end actions), if any.
    pub config: Option<&'a Path>,
    /// Where its stderr (its log) goes; appended to.
    pub log: &'a Path,
}

/// A running server, killed when dropped.
pub struct Server {
    child: Option<Child>,
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    pub pid: u32,
}

/// The server's memory, in KiB, from `/proc/<pid>/status`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// Resident now.
    pub rss_kib: u64,
    /// Highest resident since the process started.
    pub peak_kib: u64,
}

impl Server {
    pub fn start(launch: &Launch) -> Result<Server, String> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(launch.log)
            .map_err(|e| format!("cannot open {}: {e}", launch.log.display()))?;
        let mut cmd = Command::new(launch.binary);
        cmd.arg("--bind")
            .arg("127.0.0.1:0")
            .arg("--database")
            .arg(launch.database)
            // Per-request logging off: the baseline pays it as much as the
            // API does, and at info level it drops lines under load anyway.
            .args(["--log-level", "warn"]);
        if let Some(config) = launch.config {
            cmd.arg("--config").arg(config);
        }
        cmd.env("NPS_BOOTSTRAP_LOGIN", LOGIN)
            .env("NPS_BOOTSTRAP_PASSWORD", PASSWORD)
            .env("NPS_BOOTSTRAP_TOTP_SECRET", TOTP_SECRET)
            .env_remove("NPS_CONFIG")
            .env_remove("NPS_BIND")
            .env_remove("NPS_DATABASE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", launch.binary.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Read to the end so the server never blocks on a full pipe.
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(url) = line.trim().strip_prefix("nps-server listening on ") {
                        let _ = tx.send(url.to_string());
                        sent = true;
                    }
                }
            }
        });
        let pid = child.id();
        let mut server = Server {
            child: Some(child),
            url: String::new(),
            pid,
        };
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => {
                server.url = url;
                Ok(server)
            }
            Err(_) => {
                server.stop();
                Err(format!(
                    "nps-server did not start listening; see its log {}",
                    launch.log.display()
                ))
            }
        }
    }

    pub fn memory(&self) -> Result<Memory, String> {
        let path = PathBuf::from(format!("/proc/{}/status", self.pid));
        let status = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let field = |name: &str| -> Result<u64, String> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .ok_or_else(|| format!("no {name} in {}", path.display()))
        };
        Ok(Memory {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
        })
    }

    /// CPU time the server has used so far, all threads, user and system,
    /// in seconds (`/proc/<pid>/stat`).
    pub fn cpu_seconds(&self) -> Result<f64, String> {
        let path = PathBuf::from(format!("/proc/{}/stat", self.pid));
        let stat = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        // After the command name (in parentheses): state is field 0, utime
        // 11 and stime 12, in clock ticks.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| -> Result<f64, String> {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| format!("cannot parse {}", path.display()))
        };
        Ok((ticks(11)? + ticks(12)?) / clock_ticks_per_second())
    }

    /// SIGKILL, then reap the process.
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `getconf CLK_TCK` (100 on Linux unless configured otherwise).
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}
