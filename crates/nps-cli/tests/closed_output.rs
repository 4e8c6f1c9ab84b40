//! `nps session list | head -1`, `nps session end <id> | true`: when the
//! reader of standard output goes away, `nps` ends as a Unix tool does,
//! killed by SIGPIPE without a word (it used to panic with "failed printing
//! to stdout: Broken pipe" and exit 101), and what it did is done. An output
//! that cannot be written for another reason is an error that says so, and a
//! closed standard error costs nothing but the messages.
//!
//! Standard output here is a pipe whose read end is closed before `nps`
//! starts, so its first write fails every time (`| true` can lose that race).

#![cfg(unix)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};

use common::{server, Nps};
use nps_testkit::{code_at_step, current_step, Credentials};

const SIGPIPE: i32 = 13;

#[test]
fn every_command_ends_quietly_by_sigpipe_when_its_reader_is_gone() {
    let server = server();
    let nps = Nps::new(&server);

    let admin = Credentials::admin();
    let code = code_at_step(&admin.totp_secret, current_step());
    let mut login = nps.command(&[
        "login",
        "--url",
        &server.url,
        "--login",
        &admin.login,
        "--mfa-code",
        &code,
    ]);
    login.env("NPS_PASSWORD", &admin.password);
    expect_sigpipe(&["login"], login);
    // The token was saved before the output failed.
    nps.run(&["session", "list"]).expect_code(0);

    let id = nps.create("Patch web01");
    for args in [
        vec!["session", "get", &id],
        vec!["session", "get", &id, "-o", "json"],
        vec!["session", "list"],
        vec!["session", "extend", &id, "5"],
        vec!["session", "log", &id],
        vec!["session", "end", &id],
    ] {
        expect_sigpipe(&args, nps.command(&args));
    }
    // The end went through.
    let after = nps
        .run(&["session", "get", &id, "-o", "json"])
        .expect_code(0)
        .json();
    assert!(
        after["status"] == "Cancelling" || after["status"] == "Cancelled",
        "{after}"
    );

    // `end --wait` follows the session on standard error, then dies on its
    // one write to standard output, the session Cancelled.
    let id = nps.create("Patch web02");
    let args = ["session", "end", &id, "--wait"];
    let (status, stderr) = run_with_closed_stdout(nps.command(&args));
    assert_eq!(
        status.signal(),
        Some(SIGPIPE),
        "{args:?}: {status}\n{stderr}"
    );
    assert!(stderr.contains("Cancelled"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[cfg(target_os = "linux")]
#[test]
fn an_output_that_cannot_be_written_is_an_error_that_says_why() {
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);
    let id = nps.create("Patch web01");
    let mut cmd = nps.command(&["session", "get", &id]);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    cmd.stdout(full);
    let run = Nps::run_command(cmd).expect_code(1);
    assert!(
        run.stderr
            .contains("cannot write to standard output: No space left on device"),
        "{run:#?}"
    );
    assert!(!run.stderr.contains("panicked"), "{run:#?}");
}

#[test]
fn a_closed_standard_error_loses_the_notes_and_nothing_else() {
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);
    // "slow" sessions are still Cancelling after the 202, so `end` has a
    // note for standard error.
    let id = nps.create("slow");
    let mut cmd = nps.command(&["session", "end", &id, "-o", "json"]);
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    cmd.stderr(writer);
    let run = Nps::run_command(cmd).expect_code(0);
    assert_eq!(run.json()["status"], "Cancelling");
}

fn expect_sigpipe(args: &[&str], cmd: Command) {
    let (status, stderr) = run_with_closed_stdout(cmd);
    assert_eq!(
        status.signal(),
        Some(SIGPIPE),
        "{args:?}: {status}\n{stderr}"
    );
    assert_eq!(stderr, "", "{args:?}: nothing is said");
}

/// Runs `cmd` with a standard output nobody reads, and answers how it
/// ended and what it wrote on standard error.
fn run_with_closed_stdout(mut cmd: Command) -> (ExitStatus, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let output = cmd
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run nps");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
