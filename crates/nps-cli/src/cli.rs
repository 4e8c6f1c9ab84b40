//! The command line: every command, flag and environment variable of `nps`.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use nps_client::types::{ActionLogType, SessionCategory};
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "nps",
    version,
    about = "Netwrix Privilege Secure activity sessions from the command line",
    after_long_help = include_str!("exit_codes.md"),
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The server's base URL [default: the server of the last `nps login`,
    /// else http://127.0.0.1:6500]
    #[arg(long, env = "NPS_URL", global = true)]
    pub url: Option<String>,

    /// Tables for people, JSON for scripts
    #[arg(
        long,
        short = 'o',
        env = "NPS_OUTPUT",
        value_enum,
        default_value_t = Output::Table,
        global = true
    )]
    pub output: Output,

    /// Also trust the CA certificates of this PEM file (for a server whose
    /// certificate an internal CA signed)
    #[arg(long, env = "NPS_CA_CERT", value_name = "PEM_FILE", global = true)]
    pub ca_cert: Option<PathBuf>,

    /// Accept any server certificate, as PowerShell's -SkipCertificateCheck:
    /// lab servers only, since anyone on the path can then read the password
    /// and the token
    #[arg(long, global = true)]
    pub skip_certificate_check: bool,

    /// Where `nps login` saves tokens [default: the user's config directory]
    #[arg(long, env = "NPS_CONFIG_DIR", value_name = "DIR", global = true)]
    pub config_dir: Option<PathBuf>,

    /// Seconds to wait for each answer of the server (connecting included);
    /// past it the request may or may not have been carried out (exit 8)
    #[arg(
        long,
        env = "NPS_REQUEST_TIMEOUT",
        value_name = "SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=86_400),
        global = true
    )]
    pub request_timeout: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in (password, then MFA code) and save the token for later commands
    #[command(
        long_about = "Sign in (password, then MFA code) and save the token for later commands.\n\n\
            Asks for what is not given, without echo for the password and the code. \
            For scripts: --login (or NPS_LOGIN), NPS_PASSWORD, --mfa-code (or NPS_MFA_CODE). \
            The password has no flag, so that it never shows in the process list."
    )]
    Login(LoginArgs),
    /// Create, read, list, extend and end activity sessions
    #[command(
        subcommand,
        long_about = "Create, read, list, extend and end activity sessions.\n\n\
            Each command sends the token `nps login` saved for the server, or NPS_TOKEN when set."
    )]
    Session(SessionCommand),
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The login to sign in with [default: ask]
    #[arg(long, env = "NPS_LOGIN")]
    pub login: Option<String>,
    /// The current six-digit TOTP code [default: ask, without echo]
    #[arg(long, env = "NPS_MFA_CODE", hide_env_values = true)]
    pub mfa_code: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Create and start a session (CreateAsync)
    Create(CreateArgs),
    /// Show one session (GetByIdAsync)
    Get {
        /// The session's id
        id: Uuid,
    },
    /// List sessions, newest first (GetAllActivitySessionsByStatusAsync)
    List(ListArgs),
    /// Extend a session by some minutes (ExtendAsync)
    Extend {
        /// The session's id
        id: Uuid,
        /// How many minutes to add
        #[arg(allow_negative_numbers = true)]
        minutes: i32,
    },
    /// End a session as soon as possible (DeleteAsync)
    End(EndArgs),
    /// Show a session's log: its state changes and end actions (GetSessionLogsAsync)
    Log(LogArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The activity's name
    #[arg(long)]
    pub activity_name: Option<String>,
    /// The activity's id
    #[arg(long)]
    pub activity_id: Option<Uuid>,
    /// The managed resource's name
    #[arg(long)]
    pub resource_name: Option<String>,
    /// The managed resource's id
    #[arg(long)]
    pub resource_id: Option<Uuid>,
    /// The managed account's id
    #[arg(long)]
    pub account_id: Option<Uuid>,
    /// The credential's id
    #[arg(long)]
    pub credential_id: Option<Uuid>,
    /// The access control policy's id
    #[arg(long)]
    pub policy_id: Option<Uuid>,
    /// When the session starts, RFC 3339 (e.g. 2030-01-31T09:00:00Z) [default: now]
    #[arg(long)]
    pub start: Option<DateTime<Utc>>,
    /// When the session ends, RFC 3339 [default: start plus the server's maximum]
    #[arg(long)]
    pub end: Option<DateTime<Utc>>,
    /// A note
    #[arg(long)]
    pub note: Option<String>,
    /// A ticket number
    #[arg(long)]
    pub ticket: Option<String>,
    /// Read the whole ActivitySessionRequest as JSON from this file (`-` for
    /// standard input): property names match without regard to case, and a
    /// property the request does not have is refused; the flags above
    /// override its properties
    #[arg(long, value_name = "FILE")]
    pub from_json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only sessions of this category
    #[arg(long, value_enum)]
    pub status: Option<Category>,
    /// Only sessions on this host
    #[arg(long)]
    pub target_id: Option<Uuid>,
    /// Only sessions of this host user
    #[arg(long)]
    pub target_user_id: Option<Uuid>,
    /// Skip this many sessions
    #[arg(long, allow_negative_numbers = true)]
    pub skip: Option<i32>,
    /// Show at most this many sessions [server default: 100, at most 1000]
    #[arg(long, allow_negative_numbers = true)]
    pub take: Option<i32>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Category {
    /// Pending or ApprovalRequired
    Pending,
    /// Active or Cancelling
    Active,
    /// Complete, Failed, Cancelled, ApprovalDenied, ApprovalFailed
    Historical,
}

impl From<Category> for SessionCategory {
    fn from(c: Category) -> SessionCategory {
        match c {
            Category::Pending => SessionCategory::Pending,
            Category::Active => SessionCategory::Active,
            Category::Historical => SessionCategory::Historical,
        }
    }
}

#[derive(Debug, Args)]
pub struct EndArgs {
    /// The session's id
    pub id: Uuid,
    /// Wait until the session is Cancelled, Complete or Failed, showing its
    /// status and end actions as they run
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 300, requires = "wait")]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// The session's id
    pub id: Uuid,
    /// Only lines of this level
    #[arg(long, value_enum)]
    pub level: Option<Level>,
    /// Only lines whose message contains this text
    #[arg(long)]
    pub filter: Option<String>,
    /// Only lines at or after this time, RFC 3339
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// Only lines at or before this time, RFC 3339
    #[arg(long)]
    pub until: Option<DateTime<Utc>>,
    /// Newest first
    #[arg(long)]
    pub newest_first: bool,
    /// Skip this many lines
    #[arg(long, allow_negative_numbers = true)]
    pub skip: Option<i32>,
    /// Show at most this many lines [server default: 100, at most 1000]
    #[arg(long, allow_negative_numbers = true)]
    pub take: Option<i32>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl From<Level> for ActionLogType {
    fn from(l: Level) -> ActionLogType {
        match l {
            Level::Debug => ActionLogType::Debug,
            Level::Info => ActionLogType::Info,
            Level::Warn => ActionLogType::Warn,
            Level::Error => ActionLogType::Error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn timeout_needs_wait() {
        let id = Uuid::nil().to_string();
        assert!(Cli::try_parse_from(["nps", "session", "end", &id, "--timeout", "5"]).is_err());
        assert!(
            Cli::try_parse_from(["nps", "session", "end", &id, "--wait", "--timeout", "5"]).is_ok()
        );
    }
}
