//! The one harness every integration test uses: it starts the real
//! `nps-server` binary on a free loopback port with a database in a fresh
//! temporary directory, bootstraps an Admin with a known password and TOTP
//! secret, and signs in over HTTP exactly as a client would (signinBody, then
//! signin2fa with a TOTP code computed here).
//!
//! The server binary is `target/<profile>/nps-server` next to the test
//! executable; when it is missing (a test of another crate run alone) it is
//! built first with `cargo build -p nps-server`.

pub mod pki;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Login of the bootstrapped Admin.
pub const ADMIN_LOGIN: &str = "admin";
/// Password of the bootstrapped Admin.
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
/// Base32 TOTP secret of the bootstrapped Admin (20 bytes).
pub const ADMIN_TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// A user's credentials.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub login: String,
    pub password: String,
    pub totp_secret: String,
}

impl Credentials {
    pub fn admin() -> Credentials {
        Credentials {
            login: ADMIN_LOGIN.into(),
            password: ADMIN_PASSWORD.into(),
            totp_secret: ADMIN_TOTP_SECRET.into(),
        }
    }
}

/// How to start a server.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Contents of a TOML file passed with `--config`.
    pub config_toml: Option<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Extra command-line arguments.
    pub args: Vec<String>,
}

/// A running `nps-server` process with its own data directory. Killed (and
/// the directory removed) when dropped.
pub struct TestServer {
    child: Option<Child>,
    dir: PathBuf,
    options: ServerOptions,
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// Everything the process printed on stdout before it was ready.
    pub startup_output: String,
    stderr_log: PathBuf,
    tokens: Mutex<Vec<(String, String)>>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn fresh_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "nps-test-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        nanos
    ));
    std::fs::create_dir_all(&dir).expect("create test directory");
    dir
}

/// Path of the `nps-server` binary, built if missing.
pub fn server_binary() -> PathBuf {
    binary("nps-server", "nps-server")
}

/// Path of a workspace binary next to the running test executable, built with
/// `cargo build -p <package>` if it is not there yet.
pub fn binary(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let path = profile_dir.join(name);
    static BUILD: Mutex<()> = Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", package, "--bin", name]);
        if profile_dir.file_name().and_then(|n| n.to_str()) == Some("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p {package} failed");
    }
    path
}

impl TestServer {
    /// Starts a server with the default options.
    pub fn start() -> TestServer {
        TestServer::start_with(ServerOptions::default())
    }

    /// Starts a server with these options on a fresh database.
    pub fn start_with(options: ServerOptions) -> TestServer {
        let dir = fresh_dir();
        let mut server = TestServer {
            child: None,
            dir,
            options,
            url: String::new(),
            startup_output: String::new(),
            stderr_log: PathBuf::new(),
            tokens: Mutex::new(Vec::new()),
        };
        server.spawn();
        server
    }

    /// The data directory (database, config, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database file.
    pub fn database(&self) -> PathBuf {
        self.dir.join("nps.db")
    }

    /// The server's log (its stderr) so far.
    ///
    /// The server logs through an asynchronous drain, so a line about a
    /// request may reach the file after its response: to check for one, use
    /// [`TestServer::log_when`].
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// The log as soon as `ready` holds for it, or as it stands after 10 s
    /// (the caller's assertions then fail with the whole log in hand).
    pub async fn log_when(&self, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if ready(&log) || Instant::now() >= deadline {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The command line the harness runs, for tests that need a variant.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(server_binary());
        cmd.arg("--bind")
            .arg("127.0.0.1:0")
            .arg("--database")
            .arg(self.database());
        if let Some(toml) = &self.options.config_toml {
            let path = self.dir.join("config.toml");
            std::fs::write(&path, toml).expect("write config");
            cmd.arg("--config").arg(path);
        }
        cmd.args(&self.options.args);
        cmd.env("NPS_BOOTSTRAP_LOGIN", ADMIN_LOGIN)
            .env("NPS_BOOTSTRAP_PASSWORD", ADMIN_PASSWORD)
            .env("NPS_BOOTSTRAP_TOTP_SECRET", ADMIN_TOTP_SECRET)
            .env_remove("NPS_CONFIG");
        for (k, v) in &self.options.env {
            cmd.env(k, v);
        }
        cmd
    }

    fn spawn(&mut self) {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        self.stderr_log = self.dir.join(format!("server-{n}.log"));
        let stderr = std::fs::File::create(&self.stderr_log).expect("create log file");
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(stderr)
            .stdin(Stdio::null())
            .spawn()
            .expect("start nps-server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut seen = String::new();
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let mut sent = false;
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                seen.push_str(&line);
                if !sent {
                    if let Some(rest) = line.trim().strip_prefix("nps-server listening on ") {
                        let _ = tx.send(Ok((rest.to_string(), seen.clone())));
                        sent = true;
                    }
                }
            }
            if !sent {
                let _ = tx.send(Err(seen));
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok((url, seen))) => {
                self.url = url;
                self.startup_output = seen;
            }
            Ok(Err(seen)) => {
                let _ = child.wait();
                panic!(
                    "nps-server exited before listening.\nstdout:\n{seen}\nstderr:\n{}",
                    self.log()
                );
            }
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "nps-server did not start within 60 s.\nstderr:\n{}",
                    self.log()
                );
            }
        }
        self.child = Some(child);
    }

    /// Kills the process with SIGKILL (no shutdown of any kind) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM (what `systemctl stop` and `docker stop` send) and
    /// answers the exit status, or `None` (after a SIGKILL) when the process
    /// was still running `within` later.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("wait for nps-server") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the server again on the same data directory (new port); a
    /// running one is killed first.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Adds a user through `nps-server user add` and answers its credentials.
    pub fn add_user(&self, login: &str, role: &str) -> Credentials {
        let output = Command::new(server_binary())
            .args([
                "user",
                "add",
                "--login",
                login,
                "--role",
                role,
                "--database",
            ])
            .arg(self.database())
            .output()
            .expect("run nps-server user add");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "user add failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let field = |name: &str| {
            stdout
                .lines()
                .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
                .unwrap_or_else(|| panic!("no `{name}` line in: {stdout}"))
        };
        Credentials {
            login: login.to_string(),
            password: field("password:"),
            totp_secret: field("TOTP secret:"),
        }
    }

    /// An MFA token for the Admin (signed in once, then reused).
    pub fn admin_token(&self) -> String {
        self.token_for(&Credentials::admin())
    }

    /// An MFA token for these credentials (signed in once, then reused).
    pub fn token_for(&self, creds: &Credentials) -> String {
        if let Some((_, t)) = self
            .tokens
            .lock()
            .unwrap()
            .iter()
            .find(|(l, _)| *l == creds.login)
        {
            return t.clone();
        }
        let token = block_on(sign_in(&self.url, creds));
        self.tokens
            .lock()
            .unwrap()
            .push((creds.login.clone(), token.clone()));
        token
    }

    /// A reqwest client that sends this bearer token on every request.
    pub fn http_with_token(&self, token: &str) -> reqwest::Client {
        authed_client(token)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!(
                "kept the data directory {} for inspection",
                self.dir.display()
            );
        }
    }
}

/// A reqwest client with `Authorization: Bearer <token>` on every request.
pub fn authed_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}")
            .parse()
            .expect("token is a header value"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("build client")
}

fn block_on<F>(f: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    // Tests may call this from inside or outside a runtime.
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(f)
        })
        .join()
        .expect("sign-in thread")
    })
}

/// The TOTP generator for a base32 secret: RFC 6238, SHA-1, 6 digits, 30 s.
pub fn totp(secret_base32: &str) -> Totp {
    let secret = Secret::try_from_base32(secret_base32).expect("base32 secret");
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .build_noncompliant()
}

/// The code for a given 30-second step.
pub fn code_at_step(secret_base32: &str, step: u64) -> String {
    totp(secret_base32).generate(step * 30).to_string()
}

/// The current 30-second step.
pub fn current_step() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

/// Signs in (signinBody, then signin2fa) and answers the MFA token. Each code
/// is accepted once per user, so when the current step's code was used
/// already it tries the next step's (within the ±1 step the server allows),
/// then waits for a fresh step.
pub async fn sign_in(url: &str, creds: &Credentials) -> String {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(95);
    loop {
        let pre: String = http
            .post(format!("{url}/signinBody"))
            .json(&serde_json::json!({"Login": creds.login, "Password": creds.password}))
            .send()
            .await
            .expect("signinBody")
            .error_for_status()
            .expect("signinBody answers 200")
            .json()
            .await
            .expect("token string");
        let step = current_step();
        for s in [step, step + 1] {
            let code = code_at_step(&creds.totp_secret, s);
            let resp = http
                .post(format!("{url}/signin2fa"))
                .bearer_auth(&pre)
                .json(&code)
                .send()
                .await
                .expect("signin2fa");
            if resp.status().is_success() {
                return resp.json().await.expect("MFA token string");
            }
        }
        assert!(
            Instant::now() < deadline,
            "could not sign in as {} within 95 s",
            creds.login
        );
        // Both codes used already: wait for the next step.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let wait = 30 - now.as_secs() % 30;
        tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(200)).await;
    }
}

/// Polls `check` every 20 ms until it answers `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `<url>/api/v1/ActivitySession`.
pub fn sessions_url(url: &str) -> String {
    format!("{url}/api/v1/ActivitySession")
}

/// CreateAsync with this body; asserts 201 and answers the session.
pub async fn create_session(
    http: &reqwest::Client,
    url: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let resp = http
        .post(sessions_url(url))
        .json(&body)
        .send()
        .await
        .expect("CreateAsync answers");
    assert_eq!(resp.status(), 201, "CreateAsync {body}");
    resp.json().await.expect("a session")
}

/// GetByIdAsync; asserts 200 and answers the session.
pub async fn get_session(http: &reqwest::Client, url: &str, id: &str) -> serde_json::Value {
    let resp = http
        .get(format!("{}/{id}", sessions_url(url)))
        .send()
        .await
        .expect("GetByIdAsync answers");
    assert_eq!(resp.status(), 200, "GetByIdAsync {id}");
    resp.json().await.expect("a session")
}

/// The messages of a session's log, oldest first.
pub async fn log_messages(http: &reqwest::Client, url: &str, id: &str) -> Vec<String> {
    let log: serde_json::Value = http
        .get(format!("{}/{id}/Log?take=1000", sessions_url(url)))
        .send()
        .await
        .expect("GetSessionLogsAsync answers")
        .json()
        .await
        .expect("an ActionLogCollection");
    log["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["logMessage"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Asserts a ProblemDetails answer (JSON, `type`, `title`, `detail`,
/// `instance`, and a `status` equal to the HTTP status) with one of the
/// `allowed` statuses; answers the body. `what` names the request in failures.
pub async fn assert_problem(
    resp: reqwest::Response,
    allowed: &[u16],
    what: &str,
) -> serde_json::Value {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.text().await.unwrap_or_default();
    assert!(
        allowed.contains(&status),
        "{what}: answered {status}, wanted one of {allowed:?}: {text}"
    );
    assert!(
        ct.starts_with("application/json"),
        "{what}: content type {ct:?}"
    );
    let body: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {text}"));
    assert_eq!(body["status"], status, "{what}: {body}");
    for field in ["type", "title", "detail"] {
        assert!(body[field].is_string(), "{what}: {field} missing in {body}");
    }
    assert!(
        body.get("instance").is_some(),
        "{what}: instance missing in {body}"
    );
    body
}
