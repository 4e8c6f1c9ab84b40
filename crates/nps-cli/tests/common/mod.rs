//! Runs the `nps` binary against a real server started by nps-testkit, with
//! its own config directory, as a script would.

#![allow(dead_code)] // each test file uses its own part

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nps_testkit::{code_at_step, current_step, Credentials, ServerOptions, TestServer};

/// End actions that show up in the log: two that succeed for every session,
/// one that fails for activity "doomed", one that takes long for "slow";
/// and a start that fails for "bad start", whose end action succeeds.
pub const SERVER_CONFIG: &str = r#"
[actions]
max_attempts = 1

[[actions.end]]
kind = "command"
program = "/bin/sleep"
args = ["0.3"]

[[actions.end]]
kind = "command"
program = "/bin/sh"
args = ["-c", "echo revoked {login}"]

[[actions.activity."doomed".end]]
kind = "command"
program = "/bin/sh"
args = ["-c", "echo host unreachable >&2; exit 3"]

[[actions.activity."slow".end]]
kind = "command"
program = "/bin/sleep"
args = ["5"]

[[actions.activity."noisy".end]]
kind = "command"
program = "/bin/sh"
args = ["-c", "printf '\\033]0;pwned\\007\\033[31mhost down\\n' >&2; exit 3"]

[[actions.activity."bad start".start]]
kind = "command"
program = "/bin/false"

[[actions.activity."bad start".end]]
kind = "command"
program = "/bin/true"
"#;

/// Environment variables of `nps` that must not leak in from the test's own.
const NPS_ENV: [&str; 10] = [
    "NPS_REQUEST_TIMEOUT",
    "NPS_URL",
    "NPS_OUTPUT",
    "NPS_CA_CERT",
    "NPS_CONFIG_DIR",
    "NPS_LOGIN",
    "NPS_PASSWORD",
    "NPS_MFA_CODE",
    "NPS_TOKEN",
    "NPS_CONFIG",
];

pub fn server() -> TestServer {
    TestServer::start_with(ServerOptions {
        config_toml: Some(SERVER_CONFIG.into()),
        ..ServerOptions::default()
    })
}

/// `nps` with a config directory of its own inside the server's directory.
pub struct Nps<'a> {
    pub server: &'a TestServer,
    pub config_dir: PathBuf,
}

/// What one run of `nps` did.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts the exit code, showing everything the run printed if it differs.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(self.code, Some(code), "{self:#?}");
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

pub fn nps_binary() -> &'static str {
    env!("CARGO_BIN_EXE_nps")
}

impl<'a> Nps<'a> {
    pub fn new(server: &'a TestServer) -> Nps<'a> {
        Nps {
            server,
            config_dir: server.dir().join("nps-config"),
        }
    }

    /// The command with a clean environment: only the config directory set.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(nps_binary());
        for name in NPS_ENV {
            cmd.env_remove(name);
        }
        cmd.env("NPS_CONFIG_DIR", &self.config_dir).args(args);
        cmd
    }

    pub fn run_command(mut cmd: Command) -> Run {
        let output = cmd
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run nps");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Nps::run_command(self.command(args))
    }

    /// `nps login` as a script does it: login by flag, password from the
    /// environment, the current TOTP code by flag.
    /// Creates a session of this activity and answers its id.
    pub fn create(&self, activity: &str) -> String {
        let created = self
            .run(&[
                "session",
                "create",
                "--activity-name",
                activity,
                "-o",
                "json",
            ])
            .expect_code(0)
            .json();
        created["id"].as_str().unwrap().to_string()
    }

    pub fn login(&self) -> Run {
        let admin = Credentials::admin();
        let code = code_at_step(&admin.totp_secret, current_step());
        let mut cmd = self.command(&[
            "login",
            "--url",
            &self.server.url,
            "--login",
            &admin.login,
            "--mfa-code",
            &code,
        ]);
        cmd.env("NPS_PASSWORD", &admin.password);
        Nps::run_command(cmd)
    }
}

/// A tmux server of this test alone (its own socket), running one command
/// in a pseudo-terminal; killed when dropped.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn start(env: &[(&str, &str)], command: &str) -> Tmux {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let socket = format!(
            "nps-cli-test-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        );
        let mut cmd = Command::new("tmux");
        cmd.args([
            "-L",
            &socket,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "40",
        ]);
        for (name, value) in env {
            cmd.arg("-e").arg(format!("{name}={value}"));
        }
        cmd.arg(command);
        for name in ["NPS_LOGIN", "NPS_PASSWORD", "NPS_MFA_CODE", "NPS_TOKEN"] {
            cmd.env_remove(name);
        }
        let status = cmd.status().unwrap_or_else(|e| {
            panic!("this test needs tmux for a pseudo-terminal (apt-get install tmux): {e}")
        });
        assert!(status.success(), "tmux new-session failed");
        Tmux { socket }
    }

    pub fn screen(&self) -> String {
        let output = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-J"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits until the screen shows `text`, and answers the screen.
    pub fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no `{text}` on the screen after 30 s:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `text` and Enter, once the program had time to turn echo off
    /// after showing its prompt.
    pub fn type_line(&self, text: &str) {
        std::thread::sleep(Duration::from_millis(300));
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-l", text])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "Enter"])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// An HTTP proxy in front of the server that forwards every request as it
/// is until [`TokenSwapper::refuse_tokens`]; from then on it replaces the
/// Bearer token with one the server never issued, so that the server itself
/// answers 401, as it does to a token that expired. One request per
/// connection (it asks the server to close, and so tells the client).
pub struct TokenSwapper {
    pub url: String,
    refuse: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl TokenSwapper {
    pub fn start(server: &TestServer) -> TokenSwapper {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = server.url.trim_start_matches("http://").to_string();
        let refuse = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = refuse.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let (upstream, flag) = (upstream.clone(), flag.clone());
                std::thread::spawn(move || {
                    let _ = forward(client, &upstream, flag.load(Ordering::SeqCst));
                });
            }
        });
        return TokenSwapper { url, refuse };

        fn forward(mut client: TcpStream, upstream: &str, refuse: bool) -> std::io::Result<()> {
            use std::io::{BufRead, BufReader, Read, Write};
            let mut reader = BufReader::new(client.try_clone()?);
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                let lower = line.to_ascii_lowercase();
                if let Some(value) = lower.strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
                if lower.starts_with("connection:") {
                    continue;
                }
                if refuse && lower.starts_with("authorization:") {
                    head.push_str("authorization: Bearer a-token-the-server-never-issued\r\n");
                    continue;
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            let mut server = TcpStream::connect(upstream)?;
            server.write_all(head.as_bytes())?;
            server.write_all(b"connection: close\r\n\r\n")?;
            server.write_all(&body)?;
            let mut answer = Vec::new();
            server.read_to_end(&mut answer)?;
            client.write_all(&answer)
        }
    }

    /// From now on, requests carry a token the server refuses.
    pub fn refuse_tokens(&self) {
        self.refuse.store(true, Ordering::SeqCst);
    }
}

/// A stand-in for what a wrong `--url` or a failing proxy answers: every
/// request gets this status, content type and body.
pub struct FakeServer {
    pub url: String,
}

impl FakeServer {
    pub fn start(status: &str, content_type: &str, body: &str) -> FakeServer {
        FakeServer::raw(format!(
            "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        ))
    }

    /// A server that reads each request's head and never answers, holding
    /// the connection open.
    pub fn silent() -> FakeServer {
        use std::io::{BufRead, BufReader};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                held.push(client);
            }
        });
        FakeServer { url }
    }

    /// A server that reads each request's head, writes `answer` as it is
    /// (empty: nothing) and closes the connection.
    pub fn raw(answer: String) -> FakeServer {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let _ = client.write_all(answer.as_bytes());
            }
        });
        FakeServer { url }
    }
}
