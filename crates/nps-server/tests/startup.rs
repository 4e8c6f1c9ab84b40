//! What a deployer sees when starting `nps-server`: the first Admin's
//! credentials printed once, the refusal to send tokens in clear, and the
//! refusal to start a second server on a database another one is using.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use nps_testkit::{server_binary, sign_in, Credentials, ServerOptions, TestServer};

/// `nps-server user add --role user --login LOGIN --database DATABASE`.
fn user_add(login: &str, database: &std::path::Path) -> Command {
    let mut cmd = Command::new(server_binary());
    cmd.args([
        "user",
        "add",
        "--role",
        "user",
        "--login",
        login,
        "--database",
    ])
    .arg(database);
    cmd
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nps-startup-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_non_loopback_address_without_tls_is_refused() {
    let dir = temp_dir("insecure");
    let out = Command::new(server_binary())
        .args(["--bind", "0.0.0.0:0", "--database"])
        .arg(dir.join("nps.db"))
        .env_remove("NPS_BIND")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without TLS")
            && stderr.contains("--allow-insecure-bind"),
        "{stderr}"
    );
    // Nothing was created: the check runs before the database is opened.
    assert!(!dir.join("nps.db").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_first_start_prints_generated_credentials_once_and_they_sign_in() {
    let dir = temp_dir("bootstrap");
    let start = || {
        let mut child = Command::new(server_binary())
            .args(["--bind", "127.0.0.1:0", "--database"])
            .arg(dir.join("nps.db"))
            .env_remove("NPS_BOOTSTRAP_LOGIN")
            .env_remove("NPS_BOOTSTRAP_PASSWORD")
            .env_remove("NPS_BOOTSTRAP_TOTP_SECRET")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut printed = String::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            let line = lines.next().expect("server printed its address").unwrap();
            printed.push_str(&line);
            printed.push('\n');
            if let Some(url) = line.strip_prefix("nps-server listening on ") {
                break url.to_string();
            }
        };
        (child, url, printed)
    };

    let (mut first, url, printed) = start();
    let field = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {name} in:\n{printed}"))
    };
    let creds = Credentials {
        login: field("login:"),
        password: field("password:"),
        totp_secret: field("TOTP secret:"),
    };
    assert_eq!(creds.login, "admin");
    assert!(field("otpauth:").starts_with("otpauth://totp/"));
    assert!(printed.contains("they are not shown again"));
    sign_in(&url, &creds).await;
    first.kill().unwrap();
    first.wait().unwrap();

    // The second start creates nobody and prints no secret.
    let (mut second, _, printed) = start();
    assert!(!printed.contains("password:"), "{printed}");
    assert!(!printed.contains(&creds.totp_secret), "{printed}");
    second.kill().unwrap();
    second.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_second_server_on_a_database_in_use_is_refused_and_the_first_goes_on() {
    let mut first = TestServer::start();
    let mut second = first.command();
    let out = second.stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another process is using the database") && stderr.contains("--database"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
    // The first still answers; once it is gone (SIGKILL: the kernel drops
    // its lock), a server starts on the same file.
    sign_in(&first.url, &Credentials::admin()).await;
    first.restart();
    sign_in(&first.url, &Credentials::admin()).await;
}

/// Throttles sign-in after one failure, so that a wrong password logs a
/// warning: a line at warn level to wait for.
const THROTTLE_AT_ONE: &str = "[auth]\nmax_failures_per_minute = 1\n";

/// Pings the server, then fails a sign-in, and answers the log once the
/// throttle's warning is in it.
async fn log_after_a_ping_and_a_warning(server: &TestServer) -> String {
    let http = reqwest::Client::new();
    let ping = http
        .get(format!("{}/ping", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 200);
    let wrong = http
        .post(format!("{}/signinBody", server.url))
        .json(&serde_json::json!({"Login": "admin", "Password": "guess"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    server
        .log_when(|log| log.contains("sign-in throttled"))
        .await
}

#[tokio::test]
async fn the_log_level_keeps_records_below_it_out_of_the_log() {
    let warn = TestServer::start_with(ServerOptions {
        config_toml: Some(THROTTLE_AT_ONE.into()),
        args: vec!["--log-level".into(), "warn".into()],
        ..ServerOptions::default()
    });
    let log = log_after_a_ping_and_a_warning(&warn).await;
    assert!(log.contains("sign-in throttled"), "{log}");
    // The records are written in order: the ping's would be before the
    // warning.
    assert!(!log.contains("request completed"), "{log}");

    let info = TestServer::start_with(ServerOptions {
        config_toml: Some(THROTTLE_AT_ONE.into()),
        ..ServerOptions::default()
    });
    let log = log_after_a_ping_and_a_warning(&info).await;
    assert!(log.contains("sign-in throttled"), "{log}");
    assert!(log.contains("request completed"), "{log}");
}

/// The mode bits of a file or directory.
#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The log file records sign-in attempts and addresses: its owner's alone.
#[cfg(unix)]
#[test]
fn the_log_file_is_created_private() {
    let dir = temp_dir("log-mode");
    let log = dir.join("server.log");
    let start = || {
        Command::new(server_binary())
            .args(["--bind", "127.0.0.1:0", "--database"])
            .arg(dir.join("nps.db"))
            .arg("--log-file")
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = start();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while !lines
        .next()
        .expect("server printed its address")
        .unwrap()
        .starts_with("nps-server listening on ")
    {}
    assert_eq!(mode(&log), 0o600);
    child.kill().unwrap();
    child.wait().unwrap();

    // One an earlier version created readable by everyone: a warning in it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut child = start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("the log file can be read by other users")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no warning in the log"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The database holds password hashes and TOTP secrets: whatever the
/// umask, what the server creates is its owner's alone; a file it finds
/// readable by others gets a warning.
#[cfg(unix)]
#[tokio::test]
async fn the_database_and_its_files_are_created_private() {
    let dir = temp_dir("modes");
    let data = dir.join("data");
    let database = data.join("nps.db");
    let admin = Credentials::admin();
    let start = |database: &std::path::Path| {
        let mut child = Command::new(server_binary())
            .args(["--bind", "127.0.0.1:0", "--database"])
            .arg(database)
            .env("NPS_BOOTSTRAP_LOGIN", &admin.login)
            .env("NPS_BOOTSTRAP_PASSWORD", &admin.password)
            .env("NPS_BOOTSTRAP_TOTP_SECRET", &admin.totp_secret)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            let line = lines.next().expect("server printed its address").unwrap();
            if let Some(url) = line.strip_prefix("nps-server listening on ") {
                break url.to_string();
            }
        };
        (child, url)
    };
    let (mut server, url) = start(&database);
    // A sign-in writes (a token), so the WAL and shared memory exist.
    sign_in(&url, &admin).await;
    assert_eq!(mode(&data), 0o700, "the directory it created");
    for name in ["nps.db", "nps.db-wal", "nps.db-shm", "nps.db.lock"] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
    server.kill().unwrap();
    server.wait().unwrap();

    // A file an earlier version created readable by everyone: a warning.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (mut server, _) = start(&database);
    // The log is written asynchronously: read it until the warning comes.
    let (lines, log) = std::sync::mpsc::channel();
    let stderr = BufReader::new(server.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let warning = std::iter::from_fn(|| log.recv_timeout(std::time::Duration::from_secs(10)).ok())
        .find(|line| line.contains("can be read by other users"));
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(
        warning.is_some_and(|w| w.contains("chmod 600")),
        "no warning about the file's mode"
    );

    // A link to a file that does not exist: refused, nothing created.
    let link = dir.join("link.db");
    std::os::unix::fs::symlink(dir.join("missing.db"), &link).unwrap();
    let out = Command::new(server_binary())
        .args(["--bind", "127.0.0.1:0", "--database"])
        .arg(&link)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert!(!dir.join("missing.db").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts the server with these arguments on a fresh database and answers
/// whether it succeeded, what it wrote on stderr, and whether the database
/// was created. For starts that must fail before listening.
fn failed_start(args: &[&str]) -> (std::process::ExitStatus, String, bool) {
    let dir = temp_dir("refused");
    let out = Command::new(server_binary())
        .args(args)
        .arg("--database")
        .arg(dir.join("nps.db"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let created = dir.join("nps.db").exists();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        created,
    )
}

/// A port another process listens on: refused with the OS's reason and what
/// to do, before the database (and the first Admin, whose password would be
/// printed by a start that then fails) is created.
#[test]
fn a_port_in_use_is_refused_before_anything_is_created() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    let (status, stderr, created) = failed_start(&["--bind", &bind]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {bind}"))
            && stderr.contains("in use")
            && stderr.contains("--bind"),
        "{stderr}"
    );
    assert!(!created);
}

/// Certificate mistakes are one line saying what to do, not a panic, and
/// nothing is created; keys in the usual PEM forms all serve.
#[tokio::test]
async fn tls_files_are_checked_before_anything_is_created() {
    let pki = nps_testkit::pki::Pki::create();
    let path = |name: &str| pki.path(name).to_str().unwrap().to_string();
    let tls = |cert: &str, key: &str| {
        failed_start(&[
            "--bind",
            "127.0.0.1:0",
            "--tls-cert",
            &path(cert),
            "--tls-key",
            &path(key),
        ])
    };
    for (cert, key, says) in [
        (
            "server.pem",
            "ca.key",
            "the key must be the private key of the first certificate",
        ),
        ("server.key", "server.key", "holds no certificate"),
        ("server.pem", "server.pem", "holds no private key"),
        ("server.pem", "missing.key", "No such file"),
    ] {
        let (status, stderr, created) = tls(cert, key);
        assert_eq!(status.code(), Some(1), "{cert} {key}: {stderr}");
        assert!(stderr.contains(says), "{cert} {key}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!created, "{cert} {key}");
    }
    // The key as SEC1 (`BEGIN EC PRIVATE KEY`), not PKCS#8: it serves.
    nps_testkit::pki::openssl(
        &pki.path(""),
        &["ec", "-in", "server.key", "-out", "server-sec1.key"],
    );
    assert!(std::fs::read_to_string(pki.path("server-sec1.key"))
        .unwrap()
        .contains("BEGIN EC PRIVATE KEY"));
    let server = TestServer::start_with(ServerOptions {
        args: vec![
            "--tls-cert".into(),
            path("server.pem"),
            "--tls-key".into(),
            path("server-sec1.key"),
        ],
        ..ServerOptions::default()
    });
    assert!(server.url.starts_with("https://"), "{}", server.url);
}

/// A first Admin from NPS_BOOTSTRAP_*: the secret the deployer gave is not
/// printed (nor the otpauth URI that carries it), a short password or a
/// login with a line break is refused, and on a database with users the
/// variables are said to be ignored.
#[test]
fn bootstrap_variables_are_checked_and_a_given_secret_is_not_printed() {
    let mut server = TestServer::start();
    let secret = Credentials::admin().totp_secret;
    assert!(
        !server.startup_output.contains(&secret) && !server.startup_output.contains("otpauth"),
        "{}",
        server.startup_output
    );
    server.restart();
    assert!(
        server.startup_output.contains("NPS_BOOTSTRAP_* ignored"),
        "{}",
        server.startup_output
    );
    drop(server);

    for (name, value, says) in [
        ("NPS_BOOTSTRAP_PASSWORD", "short", "at least 12 characters"),
        (
            "NPS_BOOTSTRAP_LOGIN",
            "eve\nINFO forged",
            "control characters",
        ),
    ] {
        let dir = temp_dir("bootstrap-refused");
        let out = Command::new(server_binary())
            .args(["--bind", "127.0.0.1:0", "--database"])
            .arg(dir.join("nps.db"))
            .env(name, value)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(name) && stderr.contains(says), "{stderr}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    let dir = temp_dir("user-add-refused");
    let out = user_add("bob\nINFO forged", &dir.join("nps.db"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("control characters"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `user add` on a path where no database is says it created one (a
/// mistyped --database would otherwise go unnoticed); on a server's file it
/// does not.
#[test]
fn user_add_says_when_it_created_the_database() {
    let dir = temp_dir("user-add-new");
    let add = |database: &std::path::Path| user_add("carol", database).output().unwrap();
    let stdout = |out: std::process::Output| {
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let printed = stdout(add(&dir.join("typo").join("nps.db")));
    assert!(
        printed.contains("did not exist and was created") && printed.contains("--database"),
        "{printed}"
    );
    let server = TestServer::start();
    let printed = stdout(add(&server.database()));
    assert!(!printed.contains("did not exist"), "{printed}");
    // A login taken is said as such, not as the database's constraint.
    let again = add(&server.database());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("a user with login carol exists") && !stderr.contains("UNIQUE"),
        "{stderr}"
    );
    // Nothing printed for a user that was not added.
    assert!(
        !String::from_utf8_lossy(&again.stdout).contains("password:"),
        "{again:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Credentials are shown only once: when they cannot be written (standard
/// output on a full disk), nobody is created, and a second try works.
#[test]
fn credentials_that_cannot_be_shown_create_no_user() {
    let dir = temp_dir("unshown");
    let db = dir.join("nps.db");
    let full = || {
        Stdio::from(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
    };

    let add = |stdout: Stdio| {
        user_add("dave", &db)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    };
    let out = add(full());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write the credentials of dave") && stderr.contains("not created"),
        "{stderr}"
    );
    let out = add(Stdio::piped());
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("login: dave"));

    // The first Admin of a new file: the server stops and creates nobody.
    let db = dir.join("first.db");
    let out = Command::new(server_binary())
        .args(["--bind", "127.0.0.1:0", "--database"])
        .arg(&db)
        .env_remove("NPS_BOOTSTRAP_LOGIN")
        .env_remove("NPS_BOOTSTRAP_PASSWORD")
        .env_remove("NPS_BOOTSTRAP_TOTP_SECRET")
        .stdin(Stdio::null())
        .stdout(full())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write the credentials of admin"),
        "{stderr}"
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    let users: i64 = conn
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A bootstrap secret as generators print it (lower case, in groups,
/// padded) and a login with spaces around it, as an env file may leave it.
#[tokio::test]
async fn bootstrap_values_are_taken_as_people_write_them() {
    let dir = temp_dir("bootstrap-lenient");
    let admin = Credentials::admin();
    let grouped = admin
        .totp_secret
        .to_lowercase()
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new(server_binary())
        .args(["--bind", "127.0.0.1:0", "--database"])
        .arg(dir.join("nps.db"))
        .env("NPS_BOOTSTRAP_LOGIN", " root ")
        .env("NPS_BOOTSTRAP_PASSWORD", &admin.password)
        .env("NPS_BOOTSTRAP_TOTP_SECRET", format!("{grouped}===="))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the server stopped: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        if let Some(url) = line.strip_prefix("nps-server listening on ") {
            break url.to_string();
        }
    };
    sign_in(
        &url,
        &Credentials {
            login: "root".into(),
            ..admin
        },
    )
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file that is not a database: named, with what to do.
#[test]
fn a_file_that_is_not_a_database_is_named_with_what_to_do() {
    let dir = temp_dir("not-a-database");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("notes.db");
    std::fs::write(&file, "hello\n".repeat(200)).unwrap();
    let out = Command::new(server_binary())
        .args(["--bind", "127.0.0.1:0", "--database"])
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{} is not an SQLite database", file.display())),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// After a clean stop the database file alone holds everything, so a copy
/// of it is a whole backup: here a user added by `user add` beside the
/// running server, whose write went to the WAL.
#[test]
fn a_clean_stop_leaves_everything_in_the_database_file() {
    let mut server = TestServer::start();
    server.add_user("bob", "user");
    let status = server.terminate(std::time::Duration::from_secs(15));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", server.log());
    let copy = temp_dir("backup").join("nps.db");
    std::fs::copy(server.database(), &copy).unwrap();
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let logins: Vec<String> = conn
        .prepare("SELECT login FROM users ORDER BY login")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(logins.contains(&"bob".to_string()), "{logins:?}");
    let _ = std::fs::remove_dir_all(copy.parent().unwrap());
}

/// A host name where an address is wanted: said with both places it may
/// come from, before anything is created; `user add`, which does not
/// listen, does not care.
#[test]
fn a_bind_that_is_not_ip_and_port_says_so_and_user_add_ignores_it() {
    let (status, stderr, created) = failed_start(&["--bind", "localhost:6500"]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--bind (or NPS_BIND) `localhost:6500` is not IP:PORT"),
        "{stderr}"
    );
    assert!(!created);

    let dir = temp_dir("bind-user-add");
    let out = user_add("erin", &dir.join("nps.db"))
        .env("NPS_BIND", "garbage")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A database with only User accounts (`user add --role user` on a new
/// file): the server starts, and says that nobody can administer it.
#[test]
fn a_server_without_an_admin_says_so() {
    let dir = temp_dir("no-admin");
    let db = dir.join("nps.db");
    assert!(user_add("frank", &db).output().unwrap().status.success());
    let mut child = Command::new(server_binary())
        .args(["--bind", "127.0.0.1:0", "--database"])
        .arg(&db)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = lines
        .map_while(Result::ok)
        .any(|l| l.starts_with("nps-server listening on "));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(listening, "{stderr}");
    assert!(
        stderr.contains("no user has the Admin role") && stderr.contains("--role admin"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
