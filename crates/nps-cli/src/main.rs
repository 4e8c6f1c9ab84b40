//! `nps`: the command line of the NPS ActivitySession API.
//!
//! ```text
//! nps login --url https://nps.example.com --login alice
//! nps session create --activity-name "Patch web01" --resource-name web01
//! nps session list --status active
//! nps session end 7d3f...-... --wait
//! nps session log 7d3f...-... --output json
//! ```
//!
//! # Why hand-written
//!
//! progenitor can generate a CLI from `openapi.json`, but only on top of its
//! builder-style client; `nps-client` is generated with the positional
//! interface, which reads better in hand-written code. So this CLI is
//! written by hand, one thin command per operation, and it is kept in
//! lockstep with the spec by its tests: every command runs against the real
//! server in `tests/`. A change of an operation's arguments in `nps-api`
//! regenerates the client, and the CLI then no longer compiles or its tests
//! fail until it follows.
//!
//! # Modules
//!
//! - [`cli`]: every command, flag and environment variable.
//! - [`login`]: `nps login`, asking on the terminal or reading the
//!   environment, and [`credentials`], where tokens are saved (0600).
//! - [`session`]: the `nps session` commands, printed by [`output`] as
//!   [`table`]s or JSON, with a [`status_line`] while `end --wait` runs.
//! - [`failure`]: what is printed when a command fails, and its exit code.
//! - [`console`]: every write to stdout and stderr, without panics: a closed
//!   stdout ends the process by SIGPIPE.
//!
//! # Exit codes
//!
//! ```text
#![doc = include_str!("exit_codes.md")]
//! ```

mod cli;
mod console;
mod credentials;
mod failure;
mod login;
mod output;
mod request_file;
mod session;
mod status_line;
mod table;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use nps_client::{Client, Connection, DEFAULT_URL};

use cli::{Cli, Command, Global};
use credentials::{Credentials, Store};
use failure::{Failure, Kind};

/// Set but empty (`NPS_URL=` in a script), a variable clap reads for a
/// flag was taken as the flag given with no value ("a value is required
/// for '--config-dir'", a flag nobody typed): empty is unset, as for
/// NPS_TOKEN and NPS_PASSWORD. The variables are those the flags declare,
/// so a new one is covered.
fn unset_empty_flag_variables(command: &clap::Command) {
    for name in command.get_arguments().filter_map(|a| a.get_env()) {
        if std::env::var_os(name).is_some_and(|v| v.is_empty()) {
            // Single-threaded still: nothing else reads the environment.
            std::env::remove_var(name);
        }
    }
    for sub in command.get_subcommands() {
        unset_empty_flag_variables(sub);
    }
}

fn main() -> ExitCode {
    unset_empty_flag_variables(&Cli::command());
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("start the async runtime");
    match runtime.block_on(nps_client::remember_answers(run(cli))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) if failure.kind == Kind::ClosedOutput => console::end_by_sigpipe(),
        Err(failure) => {
            console::note(&failure.to_string());
            failure.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let store = Store::new(cli.global.config_dir.clone())?;
    let credentials = store.load()?;
    let connection = connect(&cli.global, &credentials)?;
    let output = cli.global.output;
    match cli.command {
        Command::Login(args) => login::run(args, connection, store, output).await,
        Command::Session(command) => {
            let nps = authenticated(&connection, &credentials, cli.global.url.is_some())?;
            session::run(command, &nps, output)
                .await
                .map_err(|failure| explain_refused_token(failure, &connection, &credentials))
        }
    }
}

/// The server of `--url`, else of the last `nps login`, else the default;
/// with the TLS settings of the flags.
fn connect(global: &Global, credentials: &Credentials) -> Result<Connection, Failure> {
    let url = global
        .url
        .as_deref()
        .or(credentials.last_url.as_deref())
        .unwrap_or(DEFAULT_URL);
    let mut connection =
        Connection::new(url)?.with_timeout(std::time::Duration::from_secs(global.request_timeout));
    if let Some(ca) = &global.ca_cert {
        connection = connection.with_ca_certificate_file(ca)?;
    }
    if global.skip_certificate_check {
        console::note(
            "warning: the server's certificate is not checked (--skip-certificate-check)",
        );
        connection = connection.skip_certificate_check();
    }
    Ok(connection)
}

/// A client with the token of `NPS_TOKEN`, else the one `nps login` saved
/// for this server. `NPS_TOKEN` goes only to a server named with it
/// (`--url` or `NPS_URL`): which server issued it is not known, and the
/// last one `nps login` used may be another.
fn authenticated(
    connection: &Connection,
    credentials: &Credentials,
    url_given: bool,
) -> Result<Client, Failure> {
    let url = connection.base_url();
    let token = match env_token() {
        Some(_) if !url_given => {
            return Err(Failure::new(
                Kind::Usage,
                format!("NPS_TOKEN is set, but no server is named: it would go to {url}"),
            )
            .with_hint(
                "name the server that issued it with --url or NPS_URL, or unset NPS_TOKEN \
                 to use the token `nps login` saved",
            ));
        }
        Some(token) => token,
        None => match credentials.servers.get(url) {
            Some(saved) => saved.token.clone(),
            None => {
                return Err(
                    Failure::new(Kind::NotSignedIn, format!("not signed in to {url}"))
                        .with_hint(format!("run `nps login --url {url}`")),
                )
            }
        },
    };
    Ok(connection.client_with_token(&token)?)
}

/// A 401 on a saved token: say whose token it was and when it was saved.
/// Not when it expires: the server does not say, and its token lifetime is
/// configurable.
fn explain_refused_token(
    failure: Failure,
    connection: &Connection,
    credentials: &Credentials,
) -> Failure {
    if failure.kind != Kind::NotSignedIn || failure.hint.is_some() {
        return failure;
    }
    let url = connection.base_url();
    let hint = match credentials.servers.get(url) {
        _ if env_token().is_some() => format!(
            "the token in NPS_TOKEN was refused (it may have expired, or be another \
             server's): replace it, or unset NPS_TOKEN and run `nps login --url {url}`"
        ),
        Some(saved) => format!(
            "the token of {} saved at {} was refused (it may have expired): \
             run `nps login --url {url}`",
            saved.login,
            output::time(&saved.signed_in_at),
        ),
        None => format!("the token was refused: run `nps login --url {url}`"),
    };
    failure.with_hint(hint)
}

/// `NPS_TOKEN`, unless unset or empty.
fn env_token() -> Option<String> {
    std::env::var("NPS_TOKEN").ok().filter(|t| !t.is_empty())
}
