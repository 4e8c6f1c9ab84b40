//! `nps session ...` against a real server: every command once, the exit
//! codes of `end --wait`, and errors printed as the server's ProblemDetails.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{nps_binary, server, Nps, Run, Tmux, TokenSwapper};

#[test]
fn an_admin_creates_extends_lists_and_ends_a_session_and_reads_its_log() {
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);

    let created = nps
        .run(&[
            "session",
            "create",
            "--activity-name",
            "Patch web01",
            "--resource-name",
            "web01",
            "--note",
            "monthly patching",
            "--output",
            "json",
        ])
        .expect_code(0)
        .json();
    assert_eq!(created["status"], "Active");
    assert_eq!(created["note"], "monthly patching");
    let id = created["id"].as_str().unwrap().to_string();

    let get = nps.run(&["session", "get", &id]).expect_code(0);
    assert!(get.stdout.contains("Patch web01"), "{get:#?}");
    assert!(get.stdout.contains("Active"), "{get:#?}");

    let extended = nps
        .run(&["session", "extend", &id, "30", "-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(extended["sessionExtensionCount"], 1);
    assert_eq!(extended["sessionExtensionMinutes"], 30);

    let list = nps
        .run(&["session", "list", "--status", "active"])
        .expect_code(0);
    let header = list.stdout.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("ID") && header.contains("STATUS"),
        "{list:#?}"
    );
    assert!(list.stdout.contains(&id), "{list:#?}");

    // The session's end actions: sleep 0.3 s, then echo.
    let end = nps.run(&["session", "end", &id, "--wait"]).expect_code(0);
    assert!(end.stderr.contains("Cancelling"), "{end:#?}");
    assert!(
        end.stderr.contains("end action 1 of 2 (command) succeeded"),
        "{end:#?}"
    );
    assert!(end.stderr.contains("revoked admin"), "{end:#?}");
    assert!(end.stdout.contains("Cancelled"), "{end:#?}");

    let after = nps
        .run(&["session", "get", &id, "--output", "json"])
        .expect_code(0)
        .json();
    assert_eq!(after["status"], "Cancelled");

    let log = nps
        .run(&["session", "log", &id, "-o", "json"])
        .expect_code(0)
        .json();
    let messages: Vec<&str> = log["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["logMessage"].as_str().unwrap_or_default())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("Cancelling -> Cancelled")),
        "{messages:#?}"
    );
    let errors = nps
        .run(&["session", "log", &id, "--level", "error"])
        .expect_code(0);
    assert_eq!(
        errors.stdout.lines().count(),
        1,
        "only the header: {errors:#?}"
    );

    let historical = nps
        .run(&["session", "list", "--status", "historical", "-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(historical[0]["id"], id.as_str());
}

#[test]
fn ending_an_unknown_session_prints_the_404_title_and_exits_3() {
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);
    let unknown = uuid_like(7);
    for args in [
        vec!["session", "end", unknown.as_str()],
        vec!["session", "end", unknown.as_str(), "--wait"],
    ] {
        let run = nps.run(&args).expect_code(3);
        assert!(run.stderr.contains("Not Found (HTTP 404)"), "{run:#?}");
        assert!(
            !run.stderr.contains("ErrorResponse"),
            "no debug dump: {run:#?}"
        );
        assert!(run.stdout.is_empty(), "{run:#?}");
    }
}

#[test]
fn ending_without_wait_answers_at_once_with_the_session_as_it_stands() {
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);
    let id = nps.create("slow");
    let end = nps
        .run(&["session", "end", &id, "-o", "json"])
        .expect_code(0);
    assert_eq!(end.json()["status"], "Cancelling");
    assert!(end.stderr.contains("--wait"), "{end:#?}");
}

#[test]
fn a_failed_end_action_makes_end_wait_exit_6_with_the_reason() {
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);
    let id = nps.create("doomed");
    let end = nps.run(&["session", "end", &id, "--wait"]).expect_code(6);
    assert!(
        end.stderr.contains(&format!("session {id} ended Failed")),
        "{end:#?}"
    );
    assert!(end.stderr.contains("host unreachable"), "{end:#?}");
    assert!(end.stderr.contains("nps session log"), "{end:#?}");
}

#[test]
fn what_an_action_printed_reaches_the_terminal_with_its_control_characters_escaped() {
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);
    // Its end action writes a window title and a colour to its stderr.
    let id = nps.create("noisy");
    let end = nps.run(&["session", "end", &id, "--wait"]).expect_code(6);
    let log = nps.run(&["session", "log", &id]).expect_code(0);
    for (what, text) in [("end --wait", &end.stderr), ("log", &log.stdout)] {
        assert!(text.contains("host down"), "{what}: {text}");
        assert!(
            !text.contains(['\u{1b}', '\u{7}']),
            "{what} printed a raw control character: {text:?}"
        );
        assert!(text.contains("\\u{1b}]0;pwned\\u{7}"), "{what}: {text}");
    }
}

#[test]
fn create_from_json_matches_names_without_regard_to_case_and_refuses_unknown_ones() {
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);
    let file = nps.config_dir.join("request.json");
    // As PowerShell or a C# client writes it, which the server binds.
    std::fs::write(&file, r#"{"ActivityName": "Patch web01", "NOTE": "n"}"#).unwrap();
    let path = file.to_str().unwrap();
    let created = nps
        .run(&["session", "create", "--from-json", path, "-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(created["activityName"], "Patch web01", "{created:#}");
    assert_eq!(created["note"], "n", "{created:#}");

    std::fs::write(&file, r#"{"activityNmae": "Patch web01"}"#).unwrap();
    let run = nps
        .run(&["session", "create", "--from-json", path])
        .expect_code(2);
    assert!(
        run.stderr.contains("has no property `activityNmae`")
            && run.stderr.contains("activityName"),
        "{run:#?}"
    );
    let listed = nps
        .run(&["session", "list", "-o", "json"])
        .expect_code(0)
        .json();
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "nothing more was created"
    );
}

#[test]
fn end_wait_with_the_longest_timeout_waits_instead_of_failing() {
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);
    let id = nps.create("Patch web01");
    let longest = u64::MAX.to_string();
    let run = nps
        .run(&["session", "end", &id, "--wait", "--timeout", &longest])
        .expect_code(0);
    assert!(run.stdout.contains("Cancelled"), "{run:#?}");
}

#[test]
fn ending_an_ended_session_says_so_and_when() {
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);
    let id = nps.create("Patch web01");
    nps.run(&["session", "end", &id, "--wait"]).expect_code(0);
    for args in [
        vec!["session", "end", &id, "-o", "json"],
        vec!["session", "end", &id, "--wait", "-o", "json"],
    ] {
        let again = nps.run(&args).expect_code(0);
        assert_eq!(again.json()["status"], "Cancelled", "{again:#?}");
        assert!(
            again
                .stderr
                .contains(&format!("session {id} already ended (Cancelled at 20")),
            "{again:#?}"
        );
    }
}

#[test]
fn ending_a_session_whose_start_failed_says_nothing_is_owed() {
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);
    let id = nps.create("bad start");
    let deadline = Instant::now() + Duration::from_secs(10);
    while nps.run(&["session", "get", &id, "-o", "json"]).json()["status"] != "Failed" {
        assert!(Instant::now() < deadline, "session {id} did not end Failed");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Nothing is owed: the end succeeds, with or without --wait.
    let end = nps.run(&["session", "end", &id]).expect_code(0);
    let waited = nps.run(&["session", "end", &id, "--wait"]).expect_code(0);
    assert_eq!(end.stderr, waited.stderr);
    assert!(
        end.stderr
            .contains(&format!("session {id} already ended (Failed at 20")),
        "{end:#?}"
    );
    assert!(
        end.stderr.contains("its start failed") && end.stderr.contains("nothing is owed"),
        "{end:#?}"
    );
    assert!(!end.stderr.contains("may still be in place"), "{end:#?}");
    assert!(!end.stderr.contains("end actions again"), "{end:#?}");
}

#[test]
fn ending_a_failed_session_runs_its_end_actions_again_and_exits_6_if_they_fail() {
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);
    // Its end action always fails: the session is Failed, access may remain.
    let id = nps.create("doomed");
    nps.run(&["session", "end", &id, "--wait"]).expect_code(6);
    // Ending it again retries the end actions (the server's answer to a
    // DELETE of a Failed session), which is said.
    let again = nps
        .run(&["session", "end", &id, "-o", "json"])
        .expect_code(0);
    assert_eq!(again.json()["status"], "Cancelling", "{again:#?}");
    assert!(
        again
            .stderr
            .contains(&format!("Session {id} had ended Failed at 20")),
        "{again:#?}"
    );
    assert!(
        again.stderr.contains("runs its end actions again"),
        "{again:#?}"
    );
    // They fail again: --wait follows the retry and exits 6.
    let waited = nps.run(&["session", "end", &id, "--wait"]).expect_code(6);
    assert!(waited.stdout.contains("Failed"), "{waited:#?}");
    assert!(
        waited
            .stderr
            .contains(&format!("session {id} ended Failed")),
        "{waited:#?}"
    );
    assert!(
        waited.stderr.contains("end actions did not complete"),
        "{waited:#?}"
    );
    assert!(
        waited.stderr.contains(&format!("nps session log {id}")),
        "{waited:#?}"
    );
}

#[test]
fn ending_a_pending_session_cancels_it_now_and_is_not_called_already_ended() {
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);
    let start = (chrono::Utc::now() + chrono::TimeDelta::hours(24)).to_rfc3339();
    let created = nps
        .run(&[
            "session",
            "create",
            "--activity-name",
            "later",
            "--start",
            &start,
            "-o",
            "json",
        ])
        .expect_code(0)
        .json();
    assert_eq!(created["status"], "Pending", "{created}");
    let id = created["id"].as_str().unwrap();
    let end = nps
        .run(&["session", "end", id, "-o", "json"])
        .expect_code(0);
    assert_eq!(end.json()["status"], "Cancelled", "{end:#?}");
    assert!(!end.stderr.contains("already"), "{end:#?}");
}

#[test]
fn end_wait_gives_up_after_its_timeout_with_exit_7_and_the_session_as_last_read() {
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);
    let id = nps.create("slow");
    let end = nps
        .run(&[
            "session",
            "end",
            &id,
            "--wait",
            "--timeout",
            "1",
            "-o",
            "json",
        ])
        .expect_code(7);
    assert!(
        end.stderr.contains("still Cancelling after 1 s"),
        "{end:#?}"
    );
    // The end goes on: said, with how to see it end, and the session as
    // last read for scripts.
    assert!(end.stderr.contains("accepted (HTTP 202)"), "{end:#?}");
    assert!(
        end.stderr.contains(&format!("`nps session get {id}`")),
        "{end:#?}"
    );
    assert_eq!(end.json()["id"], id.as_str(), "{end:#?}");
    assert_eq!(end.json()["status"], "Cancelling", "{end:#?}");
}

#[test]
fn a_token_refused_while_end_wait_follows_the_session_says_the_end_goes_on() {
    use std::io::{BufRead, BufReader, Read};
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);
    let id = nps.create("slow");
    let proxy = TokenSwapper::start(&server);
    let mut cmd = nps.command(&[
        "session", "end", &id, "--wait", "-o", "json", "--url", &proxy.url,
    ]);
    cmd.env("NPS_TOKEN", server.admin_token())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run nps");
    // Its stderr is not a terminal: one plain line per state. Once it
    // follows the session, the DELETE was accepted; then the token "expires".
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("Cancelling:") {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "nps stopped before following the session: {seen}"
        );
        seen.push_str(&line);
    }
    proxy.refuse_tokens();
    stderr.read_to_string(&mut seen).unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    let run = Run {
        code: status.code(),
        stdout,
        stderr: seen,
    }
    .expect_code(4);
    assert!(
        run.stderr.contains(&format!(
            "the end of session {id} was accepted (HTTP 202) and goes on"
        )),
        "{run:#?}"
    );
    assert!(run.stderr.contains("Unauthorized (HTTP 401)"), "{run:#?}");
    assert!(
        run.stderr
            .contains(&format!("run `nps login`, then `nps session get {id}`")),
        "{run:#?}"
    );
    assert_eq!(run.json()["status"], "Cancelling", "{run:#?}");
    // And it does end.
    let ended = nps
        .run(&["session", "end", &id, "--wait", "-o", "json"])
        .expect_code(0);
    assert_eq!(ended.json()["status"], "Cancelled");
}

#[test]
fn an_unreachable_server_exits_5_and_says_what_to_check() {
    let server = server();
    let nps = Nps::new(&server);
    // A port nothing listens on: the server's own, once it is gone.
    let mut cmd = nps.command(&["session", "list", "--url", &server.url]);
    cmd.env("NPS_TOKEN", "any token");
    drop(server);
    let run = Nps::run_command(cmd).expect_code(5);
    assert!(
        run.stderr.contains("could not reach the server"),
        "{run:#?}"
    );
    assert!(run.stderr.contains("--url"), "{run:#?}");
}

#[test]
fn a_malformed_id_is_a_usage_error() {
    let server = server();
    let nps = Nps::new(&server);
    let run = nps.run(&["session", "get", "42"]).expect_code(2);
    assert!(run.stderr.contains("<ID>"), "{run:#?}");
}

/// A well-formed id that no server issued.
fn uuid_like(n: u8) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

#[test]
fn on_a_terminal_end_wait_shows_a_spinner_with_the_state_and_clears_it() {
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);
    // "slow" sessions take five seconds to end.
    let id = nps.create("slow");
    let tmux = Tmux::start(
        &[("NPS_CONFIG_DIR", nps.config_dir.to_str().unwrap())],
        &format!(
            "{} session end {id} --wait; echo exit=$?; sleep 60",
            nps_binary()
        ),
    );
    let running = tmux.wait_for("Cancelling:");
    let status_line = running
        .lines()
        .find(|l| l.contains("Cancelling:"))
        .unwrap_or_else(|| panic!("no status line:\n{running}"));
    assert!(
        SPINNER.iter().any(|frame| status_line.starts_with(*frame)),
        "{running}"
    );
    let done = tmux.wait_for("exit=");
    assert!(done.contains("exit=0"), "{done}");
    assert!(
        done.contains("end action 1 of 1 (command) succeeded"),
        "{done}"
    );
    assert!(
        !done
            .chars()
            .any(|c| SPINNER.iter().any(|f| f.starts_with(c))),
        "the status line was left on the screen:\n{done}"
    );
}

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

#[test]
fn negative_numbers_reach_the_server_which_says_what_is_allowed() {
    let server = server();
    let nps = Nps::new(&server);
    nps.login().expect_code(0);
    let id = nps.create("Patch web01");
    for args in [
        vec!["session", "list", "--skip", "-1"],
        vec!["session", "log", &id, "--take", "-5"],
        vec!["session", "extend", &id, "-5"],
    ] {
        let run = nps.run(&args).expect_code(3);
        assert!(run.stderr.contains("(HTTP 400)"), "{args:?}: {run:#?}");
        assert!(!run.stderr.contains("unexpected argument"), "{run:#?}");
    }
}
