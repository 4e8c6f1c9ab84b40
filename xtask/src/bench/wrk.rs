//! The load generator: wrk from Debian's packages, driven by the Lua scripts
//! in `xtask/bench/`. Each script's `done()` prints one `BENCH-RESULT {json}`
//! line, which is all that is read of wrk's output.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The Debian package version installed when wrk is missing (bookworm's).
pub const DEBIAN_VERSION: &str = "4.1.0-3+b2";

/// wrk's version line, installing it first when it is missing.
pub fn ensure_installed() -> Result<String, String> {
    if let Some(version) = version() {
        return Ok(version);
    }
    println!("wrk is not installed: installing Debian's wrk={DEBIAN_VERSION}");
    let apt = |args: &[&str]| -> Result<(), String> {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("apt-get {} failed ({status})", args.join(" ")))
        }
    };
    let package = format!("wrk={DEBIAN_VERSION}");
    let install = ["install", "-y", "--no-install-recommends", package.as_str()];
    if apt(&install).is_err() {
        // A fresh machine has no package lists yet.
        apt(&["update"])?;
        apt(&install).map_err(|e| {
            format!("{e}\nInstall wrk {DEBIAN_VERSION} (Debian bookworm) as root, then rerun.")
        })?;
    }
    version().ok_or_else(|| "wrk was installed but does not run".to_string())
}

fn version() -> Option<String> {
    let out = Command::new("wrk").arg("-v").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .filter(|l| l.starts_with("wrk "))
        .map(|l| l.split(" Copyright").next().unwrap_or(l).trim().to_string())
}

/// The directory of the Lua scripts.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench")
}

/// One wrk run.
pub struct Run<'a> {
    pub script: &'a str,
    /// e.g. `http://127.0.0.1:41234/ping`.
    pub url: String,
    pub duration: Duration,
    pub threads: u32,
    pub connections: u32,
    pub bearer: Option<&'a str>,
    pub script_args: Vec<String>,
    /// Interrupt wrk once this many threads printed `thread-done` (the
    /// DeleteAsync script, when its ids run out before the duration).
    pub stop_when_threads_done: bool,
}

/// What a script's `done()` reported.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Requests answered.
    pub requests: u64,
    /// Answered requests per second over the whole run.
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Answers of 400 or more.
    pub status_errors: u64,
    pub socket_errors: u64,
    /// Every field, including a script's own.
    pub raw: Value,
}

impl Outcome {
    pub fn field(&self, name: &str) -> f64 {
        self.raw[name].as_f64().unwrap_or(0.0)
    }
}

pub fn run(run: &Run) -> Result<Outcome, String> {
    let script = scripts_dir().join(run.script);
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("--threads={}", run.threads))
        .arg(format!("--connections={}", run.connections))
        .arg(format!("--duration={}s", run.duration.as_secs().max(1)))
        .arg("--timeout=10s")
        .arg(format!("--script={}", script.display()));
    if let Some(token) = run.bearer {
        cmd.arg(format!("--header=Authorization: Bearer {token}"));
    }
    cmd.arg(&run.url).arg("--").args(&run.script_args);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut result = None;
    let mut done_threads = 0;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if line.trim() == "thread-done" {
            done_threads += 1;
            if run.stop_when_threads_done && done_threads == run.threads {
                // wrk sleeps for the whole duration; SIGINT ends the sleep
                // and it reports at once.
                unsafe {
                    libc::kill(child.id() as libc::pid_t, libc::SIGINT);
                }
            }
        } else if let Some(json) = line.strip_prefix("BENCH-RESULT ") {
            result = Some(
                serde_json::from_str::<Value>(json)
                    .map_err(|e| format!("wrk's script printed bad JSON ({e}): {json}"))?,
            );
        }
    }
    let status = child.wait().map_err(|e| format!("wrk: {e}"))?;
    let stderr = stderr_reader.join().unwrap_or_default();
    let raw = match (status.success(), result) {
        (true, Some(raw)) => raw,
        _ => return Err(format!("wrk {} failed ({status}):\n{stderr}", run.script)),
    };
    if !stderr.trim().is_empty() {
        eprintln!("wrk {}: {}", run.script, stderr.trim());
    }
    let num = |k: &str| raw[k].as_f64().unwrap_or(0.0);
    let requests = num("requests") as u64;
    let duration_s = num("duration_us") / 1e6;
    Ok(Outcome {
        requests,
        rps: if duration_s > 0.0 {
            requests as f64 / duration_s
        } else {
            0.0
        },
        p50_us: num("p50_us"),
        p99_us: num("p99_us"),
        status_errors: num("status_errors") as u64,
        socket_errors: num("socket_errors") as u64,
        raw,
    })
}
