//! `nps-server`: parses flags and wires the layers together
//! (HTTP handlers → sessions service → storage and lifecycle engine).

mod auth;
mod bootstrap;
mod config;
mod http;
mod lifecycle;
mod sessions;
mod store;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use dropshot::{
    ConfigDropshot, ConfigLogging, ConfigLoggingIfExists, ConfigLoggingLevel, ConfigTls,
};
use nps_api::policy::{policy_for, Role};
use slog::{info, warn};

use crate::config::Config;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;

#[derive(Parser)]
#[command(
    name = "nps-server",
    version,
    about = "NPS ActivitySession API server (embedded SQLite)",
    after_help = "With no subcommand, runs the server. On first start with an empty user store it creates an Admin \
                  from NPS_BOOTSTRAP_LOGIN, NPS_BOOTSTRAP_PASSWORD and NPS_BOOTSTRAP_TOTP_SECRET (base32), or \
                  generates a password and TOTP secret and prints them once."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Address to listen on: IP:PORT, such as 127.0.0.1:6500, 0.0.0.0:6500
    /// or [::]:6500 (an IP address, not a host name).
    #[arg(long, env = "NPS_BIND", default_value = "127.0.0.1:6500")]
    bind: String,

    /// The SQLite database file: created when missing; the server (not
    /// `user add`) migrates one written by an earlier version when it starts.
    #[arg(
        long,
        env = "NPS_DATABASE",
        default_value = "./nps-data/nps.db",
        global = true
    )]
    database: PathBuf,

    /// Optional TOML configuration (actions, limits, token lifetimes).
    #[arg(long, env = "NPS_CONFIG")]
    config: Option<PathBuf>,

    /// PEM certificate chain: serve HTTPS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1, unencrypted).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Allow listening on a non-loopback address without TLS (bearer tokens
    /// then cross the network in clear).
    #[arg(long)]
    allow_insecure_bind: bool,

    /// Log level.
    #[arg(long, value_enum, default_value = "info")]
    log_level: LogLevel,

    /// Write the log as JSON lines (bunyan) to this file instead of stderr.
    #[arg(long)]
    log_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; prints a generated password and TOTP secret once.
    Add {
        /// The login to sign in with (spaces around it are dropped).
        #[arg(long)]
        login: String,
        /// admin or user.
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("{s:?} is not a role: use admin or user"))
}

#[derive(Clone, Copy, ValueEnum)]
enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// mimalloc rather than glibc's malloc: a GetByIdAsync allocates and frees
/// dozens of small buffers (the row's strings, the JSON body, hyper's and
/// dropshot's own), and glibc's allocator took about a tenth of the server's
/// CPU time on them (perf, `cargo xtask bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// SQLite allocates with glibc's malloc, not the global allocator. The
/// writer's savepoints (one a job) journal the pages they change in memory
/// and free it all at each commit; glibc then gave the freed top of the
/// heap back to the kernel (its trim threshold starts at 128 KiB) and took
/// it again, page fault by page fault, in the next batch: about 6% of the
/// server's CPU time in a burst of DeleteAsync (perf). Up to 32 MiB of free
/// heap is kept instead. (Other C libraries have no such setting.)
fn keep_sqlite_heap() {
    // SAFETY: mallopt(3) only sets an allocator parameter; it is called
    // before any other thread exists.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
    }
}

fn main() -> ExitCode {
    keep_sqlite_heap();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nps-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Some(Command::User {
                command: UserCommand::Add { login, role },
            }) => bootstrap::add_user_command(&cli.database, login, *role).await,
            None => serve(&cli).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nps-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--bind`, read when the server starts (not by `user add`, which does
/// not listen), naming both places it may come from.
fn bind_address(text: &str) -> anyhow::Result<SocketAddr> {
    text.trim().parse().map_err(|_| {
        anyhow::anyhow!(
            "--bind (or NPS_BIND) `{text}` is not IP:PORT: give an IP address and a port, \
             such as 127.0.0.1:6500, 0.0.0.0:6500 or [::]:6500 (not a host name)"
        )
    })
}

async fn serve(cli: &Cli) -> anyhow::Result<()> {
    let bind = bind_address(&cli.bind)?;
    let config = match &cli.config {
        Some(path) => Config::load(path).map_err(anyhow::Error::msg)?,
        None => Config::default(),
    };
    let tls = match (&cli.tls_cert, &cli.tls_key) {
        (Some(cert), Some(key)) => Some(ConfigTls::Dynamic(tls::load(cert, key)?)),
        _ => None,
    };
    if tls.is_none() && !bind.ip().is_loopback() && !cli.allow_insecure_bind {
        anyhow::bail!(
            "refusing to listen on {} without TLS: bearer tokens would cross the network in clear. \
             Give --tls-cert and --tls-key, or --allow-insecure-bind if a TLS proxy sits in front.",
            bind
        );
    }

    let level = match cli.log_level {
        LogLevel::Debug => ConfigLoggingLevel::Debug,
        LogLevel::Info => ConfigLoggingLevel::Info,
        LogLevel::Warn => ConfigLoggingLevel::Warn,
        LogLevel::Error => ConfigLoggingLevel::Error,
    };
    let slog_level = slog::Level::from(&level);
    if let Some(path) = &cli.log_file {
        // It records sign-in attempts (a mistyped password can land in the
        // login) and addresses: its owner's alone, as the database is.
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| anyhow::anyhow!("--log-file {}: {e}", path.display()))?;
    }
    let logging = match &cli.log_file {
        Some(path) => ConfigLogging::File {
            level,
            path: path
                .to_str()
                .ok_or_else(|| anyhow::anyhow!("--log-file must be a UTF-8 path"))?
                .into(),
            if_exists: ConfigLoggingIfExists::Append,
        },
        None => ConfigLogging::StderrTerminal { level },
    };
    let log = logging
        .to_logger("nps-server")
        .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))?;
    // dropshot's logger applies the level on its async thread, after every
    // record (one "request completed" per request) has been copied into the
    // channel. Records below the level are dropped here instead, before
    // they cost anything: that was about 3% of the server's CPU time under
    // GetByIdAsync at --log-level warn (perf).
    let log = slog::Logger::root(
        slog::Drain::ignore_res(slog::LevelFilter::new(log, slog_level)),
        slog::o!(),
    );

    // Whatever keeps the server from listening is said now, before the
    // database is created and the first Admin's password printed (and lost
    // with a start that fails after it).
    std::net::TcpListener::bind(bind).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                ": another process listens there; stop it, or choose another address with --bind"
            }
            std::io::ErrorKind::PermissionDenied => {
                ": ports below 1024 need privileges; choose a port of 1024 or more with --bind"
            }
            std::io::ErrorKind::AddrNotAvailable => {
                ": no interface of this machine has that address; see `ip addr`"
            }
            _ => "",
        };
        anyhow::anyhow!("cannot listen on {}: {e}{hint}", bind)
    })?;
    if tls.is_none() && !bind.ip().is_loopback() {
        warn!(log, "listening without TLS on a non-loopback address: tokens cross the network in clear";
            "bind" => %bind);
    }
    let sqlite = Arc::new(SqliteStore::open(&cli.database)?);
    let store: Arc<dyn Store> = sqlite.clone();
    if crate::store::sqlite::readable_by_others(&cli.database) {
        warn!(log, "the database file can be read by other users of this machine, and it holds \
                    password hashes and TOTP secrets: make it private with chmod 600 (and its \
                    -wal and -shm files)";
            "database" => %cli.database.display());
    }
    if let Some(path) = cli
        .log_file
        .as_ref()
        .filter(|p| crate::store::sqlite::readable_by_others(p))
    {
        warn!(log, "the log file can be read by other users of this machine, and it records \
                    sign-in attempts: make it private with chmod 600";
            "log_file" => %path.display());
    }
    bootstrap::first_admin(store.as_ref()).await?;
    if store.admin_count().await? == 0 {
        warn!(log, "no user has the Admin role: nobody can list sessions or read other users' \
                    sessions; add one with `nps-server user add --role admin --login NAME`";
            "database" => %cli.database.display());
    }
    let node_id = store.node_id().await?;

    let engine = lifecycle::Engine::new(Arc::clone(&store), config.actions.clone(), log.clone());
    let state = Arc::new(http::AppState {
        auth: auth::Auth::new(Arc::clone(&store), config.auth.clone(), log.clone()),
        sessions: sessions::Sessions::new(
            Arc::clone(&store),
            Arc::clone(&engine),
            config.sessions.clone(),
            node_id,
        ),
        tls: tls.is_some(),
        pre_mfa_token_minutes: config.auth.pre_mfa_token_minutes,
    });

    // The policy table must cover every operation: building the document
    // checks the published ones, and the unpublished ping is checked here.
    nps_api::document::openapi_document().map_err(anyhow::Error::msg)?;
    if policy_for("Ping").is_none() {
        anyhow::bail!("operation Ping has no auth policy in nps_api::policy::OPERATION_POLICIES");
    }
    let api = nps_api::nps_api_mod::api_description::<http::NpsServerImpl>()
        .map_err(|e| anyhow::anyhow!("the API description is invalid: {e}"))?;
    let dropshot_config = ConfigDropshot {
        bind_address: bind,
        default_request_body_max_bytes: config.request_body_max_bytes,
        ..ConfigDropshot::default()
    };
    let using_tls = tls.is_some();
    let server = dropshot::ServerBuilder::new(api, Arc::clone(&state), log.clone())
        .config(dropshot_config)
        .tls(tls)
        .start()
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", bind))?;
    let addr = server.local_addr();
    let url = format!("{}://{addr}", if using_tls { "https" } else { "http" });

    engine.start();
    tokio::spawn(purge_tokens(Arc::clone(&store), log.clone()));

    info!(log, "nps-server started"; "url" => &url, "database" => %cli.database.display(), "node_id" => %node_id);
    say(&format!(
        "nps-server listening on {url}\n\
         Sign in: POST {url}/signinBody {{\"Login\": ..., \"Password\": ...}}, then POST {url}/signin2fa with the TOTP code (see README.md)."
    ));
    let signal = tokio::select! {
        result = server.wait_for_shutdown() => {
            return result.map_err(|e| anyhow::anyhow!("the server stopped: {e}"));
        }
        signal = stop_signal() => signal?,
    };
    // No action starts from now on.
    engine.begin_stop();
    // A second signal while stopping: stop now (what runs is owed still,
    // and runs again at the next start, as after a crash).
    let impatient = log.clone();
    tokio::spawn(async move {
        if let Ok(again) = stop_signal().await {
            warn!(impatient, "stopping at once"; "signal" => again);
            // The log is written by a thread of its own: give it the time to
            // write the line above before the process ends (and nothing
            // else, or the graceful stop could end first and exit 0).
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            lifecycle::actions::kill_running();
            std::process::exit(1);
        }
    });
    info!(log, "stopping: no new connections, requests in progress and running actions finish";
        "signal" => signal, "grace_secs" => STOP_GRACE.as_secs());
    // Requests and actions finish side by side, within one grace period.
    let (closed, ()) = tokio::join!(
        tokio::time::timeout(STOP_GRACE, server.close()),
        engine.stop(STOP_GRACE)
    );
    match closed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(log, "the HTTP server did not stop cleanly"; "error" => e),
        Err(_) => warn!(log, "requests still in progress after the grace period are cut off";
            "grace_secs" => STOP_GRACE.as_secs()),
    }
    if let Err(e) = sqlite.checkpoint_at_stop(&cli.database) {
        warn!(log, "the WAL was not copied into the database file; it is read at the next start";
            "error" => %e, "database" => %cli.database.display());
    }
    info!(log, "nps-server stopped"; "signal" => signal);
    say("nps-server stopped");
    Ok(())
}

/// How long a server told to stop waits for requests in progress and
/// running actions (side by side) before it cuts them off. With the 2 s it
/// then gives killed actions' pipelines, it stops within the 10 s that
/// container runtimes give before SIGKILL (systemd gives 90 s).
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The first SIGTERM (what `systemctl stop`, `docker stop` and `kill` send)
/// or SIGINT (Ctrl-C) from now.
async fn stop_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let listen =
        |kind| signal(kind).map_err(|e| anyhow::anyhow!("cannot listen for stop signals: {e}"));
    let mut term = listen(SignalKind::terminate())?;
    let mut int = listen(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

/// Prints a line for the person who started the server. A closed or broken
/// stdout must not stop a running server (println! would panic), so write
/// errors are ignored: the log on stderr has the same facts.
pub fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Deletes expired tokens every hour.
async fn purge_tokens(store: Arc<dyn Store>, log: slog::Logger) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        match store.purge_expired_tokens(chrono::Utc::now()).await {
            Ok(n) if n > 0 => info!(log, "purged expired tokens"; "count" => n),
            Ok(_) => {}
            Err(e) => warn!(log, "cannot purge expired tokens"; "error" => %e),
        }
    }
}
