//! The session lifecycle engine against the real `nps-server` binary: start
//! and end actions configured in TOML (programs and webhooks), retries and
//! failure, scheduled starts and ends, restarts and SIGKILL, a flood of
//! expiring sessions, and configuration mistakes caught at start-up.
//!
//! Actions here are `/bin/sh` scripts written inline in the configuration:
//! they append lines to files in a scratch directory, and the tests read those
//! files. That is how concurrency and repeats are measured: from the actions
//! themselves, never from inside the server.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use nps_client::types::{ActivitySession, ActivitySessionRequest, SessionStatus};
use nps_testkit::{authed_client, eventually, ServerOptions, TestServer};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::RwLock;
use uuid::Uuid;

/// Tests that measure time take this lock shared; the flood of expiring
/// sessions takes it alone, so it does not skew their clocks on small CI
/// machines.
static CLOCK: RwLock<()> = RwLock::const_new(());

#[tokio::test]
async fn a_command_action_runs_once_at_the_start_and_once_at_the_end_with_the_session_in_its_environment(
) {
    let scratch = Scratch::new();
    let calls = scratch.file("calls");
    let record = r#"echo "$1 $NPS_ACTION $NPS_SESSION_ID|$NPS_ACTIVITY_NAME|$NPS_RESOURCE_NAME|$NPS_LOGIN|$NPS_ACTION_KEY" >> "$2"; echo "provisioned $NPS_RESOURCE_NAME""#;
    let nps = Nps::start(&format!(
        "[[actions.start]]\n{}\n[[actions.end]]\n{}",
        sh(record, &["grant", &calls]),
        sh(record, &["revoke", &calls]),
    ))
    .await;

    let session = nps
        .create(ActivitySessionRequest {
            activity_name: Some("Domain Admin".into()),
            managed_resource_name: Some("srv-01".into()),
            ..Default::default()
        })
        .await;
    let id = session.id;
    assert_eq!(session.status, SessionStatus::Active);
    nps.wait_for_log(id, "start pipeline finished").await;
    let ended = nps
        .api
        .end_session_and_wait(&id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(ended.status, SessionStatus::Cancelled);

    assert_eq!(
        lines(&calls),
        [
            format!("grant start {id}|Domain Admin|srv-01|admin|{id}:start:0"),
            format!("revoke end {id}|Domain Admin|srv-01|admin|{id}:end:0"),
        ]
    );
    // What the program printed is in the session's log.
    let log = nps.log(id).await;
    assert!(
        contains(
            &log,
            "start action 1 of 1 (command) succeeded: exit 0; stdout: provisioned srv-01"
        ),
        "{log:#?}"
    );
    assert!(
        contains(&log, "end action 1 of 1 (command) succeeded"),
        "{log:#?}"
    );
}

#[tokio::test]
async fn a_webhook_receives_the_session_as_json_with_the_same_idempotency_key_on_every_try() {
    // The receiver answers 503 once, then 200: the retry carries the same key.
    let mut hook = WebhookReceiver::start(vec![503]).await;
    let nps = Nps::start(&format!(
        "[actions]\nbackoff_initial_ms = 50\n\n[[actions.end]]\nkind = \"webhook\"\nurl = \"{}/nps/ended\"\n",
        hook.url
    ))
    .await;
    let session = nps
        .create(ActivitySessionRequest {
            activity_name: Some("Patch web01".into()),
            ..Default::default()
        })
        .await;
    let id = session.id;
    let ended = nps
        .api
        .end_session_and_wait(&id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(ended.status, SessionStatus::Cancelled);

    let first = hook.next().await;
    let second = hook.next().await;
    for request in [&first, &second] {
        assert_eq!(request.request_line, "POST /nps/ended HTTP/1.1");
        assert!(request
            .header("user-agent")
            .is_some_and(|a| a.starts_with("nps-server/")));
        assert_eq!(
            request.header("idempotency-key"),
            Some(format!("{id}:end:0").as_str())
        );
        assert_eq!(request.header("x-nps-action"), Some("end"));
        assert!(request
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")));
        let body: Value = serde_json::from_slice(&request.body).expect("a JSON body");
        assert_eq!(body["id"], id.to_string());
        assert_eq!(body["activityName"], "Patch web01");
        assert_eq!(body["createdByUserName"], "admin");
    }
    let log = nps.log(id).await;
    assert!(
        contains(&log, "answered 503 Service Unavailable"),
        "{log:#?}"
    );
}

#[tokio::test]
async fn an_end_action_that_keeps_failing_is_tried_max_attempts_times_then_the_session_is_failed_and_the_log_says_why(
) {
    let scratch = Scratch::new();
    let tries = scratch.file("tries");
    let nps = Nps::start(&format!(
        "[actions]\nmax_attempts = 3\nbackoff_initial_ms = 50\n\n[[actions.end]]\n{}",
        sh(
            r#"echo try >> "$1"; echo "cannot reach the directory server" >&2; exit 3"#,
            &[&tries]
        ),
    ))
    .await;
    let id = nps.create(ActivitySessionRequest::default()).await.id;
    let ended = nps
        .api
        .end_session_and_wait(&id, Duration::from_secs(10))
        .await
        .unwrap();

    assert_eq!(ended.status, SessionStatus::Failed);
    assert_eq!(lines(&tries).len(), 3);
    let log = nps.log(id).await;
    assert_eq!(
        log.iter().filter(|l| l.contains("retrying in")).count(),
        2,
        "{log:#?}"
    );
    let last = log.last().unwrap();
    assert!(
        last.starts_with("Cancelling -> Failed by system: end action 1 of 1 (command) failed 3 time(s), giving up: /bin/sh failed with exit status: 3; stderr: cannot reach the directory server"),
        "{log:#?}"
    );
}

/// Access may remain on a Failed session: ending it again, once the cause
/// is fixed, runs its end actions again (same key) and it reads Cancelled.
#[tokio::test]
async fn ending_a_failed_session_again_retries_its_end_actions() {
    let scratch = Scratch::new();
    let tries = scratch.file("tries");
    let fixed = scratch.file("fixed");
    let nps = Nps::start(&format!(
        "[actions]\nmax_attempts = 1\n\n[[actions.end]]\n{}",
        sh(
            r#"echo "$NPS_ACTION_KEY" >> "$1"; [ -e "$2" ] || { echo "directory down" >&2; exit 3; }"#,
            &[&tries, &fixed]
        ),
    ))
    .await;
    let id = nps.create(ActivitySessionRequest::default()).await.id;
    let failed = nps
        .api
        .end_session_and_wait(&id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(failed.status, SessionStatus::Failed);

    std::fs::write(&fixed, "").unwrap();
    let again = nps.api.delete_async(&id).await.unwrap().into_inner();
    assert_eq!(again.status, SessionStatus::Cancelling);
    // Ending, not ended: the failed end's time is gone until it ends.
    assert!(again.actual_end_date_time_utc.is_none());
    let ended = nps.wait_for(id, SessionStatus::Cancelled).await;
    assert!(ended.cancelled_by.is_some());
    assert_eq!(
        lines(&tries),
        [format!("{id}:end:0"), format!("{id}:end:0")]
    );
    let log = nps.log(id).await;
    assert!(contains(&log, "Failed -> Cancelling by admin"), "{log:#?}");
    // Ended now: a third DELETE changes nothing.
    let third = nps.api.delete_async(&id).await.unwrap().into_inner();
    assert_eq!(third.status, SessionStatus::Cancelled);
    assert_eq!(lines(&tries).len(), 2);
}

#[tokio::test]
async fn a_flaky_end_action_that_succeeds_on_its_third_try_ends_the_session_cancelled() {
    let scratch = Scratch::new();
    let tries = scratch.file("tries");
    let nps = Nps::start(&format!(
        "[actions]\nmax_attempts = 5\nbackoff_initial_ms = 50\n\n[[actions.end]]\n{}",
        sh(
            r#"echo try >> "$1"; [ "$(wc -l < "$1")" -ge 3 ] || { echo "busy, try later" >&2; exit 1; }"#,
            &[&tries]
        ),
    ))
    .await;
    let id = nps.create(ActivitySessionRequest::default()).await.id;
    let ended = nps
        .api
        .end_session_and_wait(&id, Duration::from_secs(10))
        .await
        .unwrap();

    assert_eq!(ended.status, SessionStatus::Cancelled);
    assert_eq!(lines(&tries).len(), 3);
    let log = nps.log(id).await;
    assert_eq!(
        log.iter()
            .filter(|l| l.contains("retrying in") && l.contains("busy, try later"))
            .count(),
        2,
        "{log:#?}"
    );
}

#[tokio::test]
async fn a_webhook_that_answers_a_redirect_has_not_taken_the_session() {
    let mut hook = WebhookReceiver::start(vec![308, 302]).await;
    let nps = Nps::start(&format!(
        "[actions]\nmax_attempts = 2\nbackoff_initial_ms = 50\n\n\
         [[actions.end]]\nkind = \"webhook\"\nurl = \"{}/moved\"\n",
        hook.url
    ))
    .await;
    let id = nps.create(ActivitySessionRequest::default()).await.id;
    let ended = nps
        .api
        .end_session_and_wait(&id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(ended.status, SessionStatus::Failed);
    assert_eq!(hook.next().await.request_line, "POST /moved HTTP/1.1");
    assert_eq!(hook.next().await.request_line, "POST /moved HTTP/1.1");
    let log = nps.log(id).await;
    assert!(contains(&log, "answered 302 Found"), "{log:#?}");
}

/// A receiver's credentials go in the webhook's URL (user name, password,
/// path, query); the session's log, which its owner reads, shows only the
/// scheme, host and port, and says why the request failed.
#[tokio::test]
async fn a_webhook_that_cannot_be_reached_is_logged_with_the_cause_and_without_credentials() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nps = Nps::start(&format!(
        "[actions]\nmax_attempts = 1\n\n[[actions.end]]\nkind = \"webhook\"\n\
         url = \"http://hookuser:s3cret@127.0.0.1:{port}/services/T0/B0/pathsecret?token=abc123\"\n"
    ))
    .await;
    let id = nps.create(ActivitySessionRequest::default()).await.id;
    let ended = nps
        .api
        .end_session_and_wait(&id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(ended.status, SessionStatus::Failed);
    let log = nps.log(id).await.join("\n");
    assert!(
        !log.contains("s3cret")
            && !log.contains("hookuser")
            && !log.contains("abc123")
            && !log.contains("pathsecret"),
        "{log}"
    );
    assert!(
        log.contains(&format!("http://127.0.0.1:{port}/…:")),
        "{log}"
    );
    assert!(log.to_lowercase().contains("connection refused"), "{log}");
}

#[tokio::test]
async fn an_action_past_its_timeout_is_killed_with_what_it_started_and_counts_as_a_failure() {
    let scratch = Scratch::new();
    let pids = scratch.file("pids");
    let nps = Nps::start(&format!(
        "[actions]\nmax_attempts = 1\n\n[[actions.end]]\ntimeout_secs = 1\n{}",
        sh(r#"sleep 60 & echo "$$ $!" > "$1"; wait"#, &[&pids])
    ))
    .await;
    let id = nps.create(ActivitySessionRequest::default()).await.id;
    let asked = Instant::now();
    let ended = nps
        .api
        .end_session_and_wait(&id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(ended.status, SessionStatus::Failed);
    assert!(asked.elapsed() < Duration::from_secs(5));
    let log = nps.log(id).await;
    assert!(
        contains(&log, "/bin/sh timed out after 1 s and was killed"),
        "{log:#?}"
    );
    // Both the shell and the sleep it started are gone.
    for pid in lines(&pids)[0].split(' ') {
        assert!(!running(pid), "process {pid} outlived the timeout");
    }
}

#[tokio::test]
async fn ending_a_session_stops_its_running_start_action_and_revokes_at_once() {
    // The start action would grant after a minute: the end must not wait for
    // it (nor for its timeout), and it must never grant. "Grant only" has no
    // end actions: it reads Cancelled only once its start action is stopped.
    let scratch = Scratch::new();
    let calls = scratch.file("calls");
    let grant = |pids: &str| {
        sh(
            r#"sleep 60 & echo "$$ $!" > "$1"; wait; echo "granted $NPS_ACTIVITY_NAME" >> "$2""#,
            &[pids, &calls],
        )
    };
    let (pids, only_pids) = (scratch.file("pids"), scratch.file("only-pids"));
    let nps = Nps::start(&format!(
        "[[actions.start]]\ntimeout_secs = 120\n{}\n[[actions.end]]\n{}\n\
         [[actions.activity.\"Grant only\".start]]\ntimeout_secs = 120\n{}",
        grant(&pids),
        sh(r#"echo "revoked $NPS_ACTIVITY_NAME" >> "$1""#, &[&calls]),
        grant(&only_pids),
    ))
    .await;
    let mut started = Vec::new();
    for (activity, pids) in [("Domain Admin", &pids), ("Grant only", &only_pids)] {
        let id = nps
            .create(ActivitySessionRequest {
                activity_name: Some(activity.into()),
                ..Default::default()
            })
            .await
            .id;
        eventually(
            Duration::from_secs(10),
            "the start action to run",
            || async { (!lines(pids).is_empty()).then_some(()) },
        )
        .await;
        started.push((id, pids));
    }

    let asked = Instant::now();
    for (id, _) in &started {
        let ended = nps
            .api
            .end_session_and_wait(id, Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(ended.status, SessionStatus::Cancelled);
    }
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "the ends waited {:?} for the start actions",
        asked.elapsed()
    );
    assert_eq!(lines(&calls), ["revoked Domain Admin"], "nothing granted");
    for (id, pids) in &started {
        for pid in lines(pids)[0].split(' ') {
            assert!(
                !running(pid),
                "process {pid} of a stopped start action runs on"
            );
        }
        let log = nps.log(*id).await;
        let at = |text: &str| log.iter().position(|l| l.contains(text));
        let stopped = at("start action 1 of 1 (command) stopped: the session is ending");
        let cancelled = at("-> Cancelled");
        assert!(
            stopped.is_some() && stopped < cancelled,
            "stopped, then Cancelled: {log:#?}"
        );
    }
}

#[tokio::test]
async fn a_failed_start_runs_the_end_actions_and_leaves_the_session_failed() {
    let scratch = Scratch::new();
    let ends = scratch.file("ends");
    let nps = Nps::start(&format!(
        "[actions]\nmax_attempts = 2\nbackoff_initial_ms = 50\n\n\
         [[actions.start]]\n{}\n[[actions.end]]\n{}",
        sh("echo 'no such group' >&2; exit 1", &[]),
        sh(r#"echo "$NPS_ACTION_KEY" >> "$1""#, &[&ends]),
    ))
    .await;
    let id = nps.create(ActivitySessionRequest::default()).await.id;

    let failed = nps.wait_for(id, SessionStatus::Failed).await;
    assert!(failed.actual_end_date_time_utc.is_some());
    assert_eq!(lines(&ends), [format!("{id}:end:0")]);
    let log = nps.log(id).await;
    assert!(
        contains(
            &log,
            "start action 1 of 1 (command) failed 2 time(s), giving up"
        ) && contains(&log, "no such group"),
        "{log:#?}"
    );

    // Its end actions ran to the end: nothing is owed, so ending it again
    // changes nothing and runs nothing.
    let again = nps.api.delete_async(&id).await.unwrap().into_inner();
    assert_eq!(again.status, SessionStatus::Failed);
    assert_eq!(
        again.actual_end_date_time_utc,
        failed.actual_end_date_time_utc
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(lines(&ends), [format!("{id}:end:0")]);
}

#[tokio::test]
async fn a_session_reads_complete_within_a_second_of_its_scheduled_end() {
    let _clock = CLOCK.read().await;
    let scratch = Scratch::new();
    let ends = scratch.file("ends");
    let nps = Nps::start(&format!(
        "[[actions.end]]\n{}",
        sh(r#"echo "$NPS_SESSION_ID" >> "$1""#, &[&ends])
    ))
    .await;
    let end = Utc::now() + chrono::Duration::seconds(3);
    let id = nps.create_ending(end).await;

    let done = nps.wait_for(id, SessionStatus::Complete).await;
    let seen_after = Utc::now() - end;
    let ended_after = done.actual_end_date_time_utc.unwrap() - end;
    println!(
        "scheduled end reached: actual end {} ms after it, read Complete {} ms after it",
        ended_after.num_milliseconds(),
        seen_after.num_milliseconds()
    );
    assert!(ended_after >= chrono::Duration::zero(), "ended early");
    assert!(
        seen_after < chrono::Duration::milliseconds(1200),
        "read Complete {} ms after the scheduled end",
        seen_after.num_milliseconds()
    );
    assert_eq!(lines(&ends), [id.to_string()]);
    let log = nps.log(id).await;
    assert!(
        contains(
            &log,
            "Active -> Cancelling by system: scheduled end reached"
        ),
        "{log:#?}"
    );
}

#[tokio::test]
async fn a_pending_session_starts_at_its_scheduled_start_and_runs_its_start_actions() {
    let _clock = CLOCK.read().await;
    let scratch = Scratch::new();
    let starts = scratch.file("starts");
    let nps = Nps::start(&format!(
        "[[actions.start]]\n{}",
        sh(r#"echo "$NPS_ACTION_KEY" >> "$1""#, &[&starts])
    ))
    .await;
    let start = Utc::now() + chrono::Duration::seconds(2);
    let session = nps
        .create(ActivitySessionRequest {
            start_date_time_utc: Some(start),
            end_date_time_utc: Some(start + chrono::Duration::minutes(5)),
            ..Default::default()
        })
        .await;
    assert_eq!(session.status, SessionStatus::Pending);
    assert!(lines(&starts).is_empty());

    let started = nps.wait_for(session.id, SessionStatus::Active).await;
    let seen_after = Utc::now() - start;
    let actual = started.actual_start_date_time_utc.unwrap();
    assert!(actual >= start, "started early: {actual} < {start}");
    assert!(
        seen_after < chrono::Duration::milliseconds(1200),
        "read Active {} ms after the scheduled start",
        seen_after.num_milliseconds()
    );
    // Active from the scheduled start; its start action runs right after
    // (the read above may come before it did).
    let want = [format!("{}:start:0", session.id)];
    eventually(Duration::from_secs(5), "the start action to run", || {
        let done = lines(&starts) == want;
        async move { done.then_some(()) }
    })
    .await;
    // Once only.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(lines(&starts), [format!("{}:start:0", session.id)]);
}

#[tokio::test]
async fn extending_a_session_moves_its_scheduled_end() {
    let _clock = CLOCK.read().await;
    let nps = Nps::start("").await;
    let end = whole_millis(Utc::now() + chrono::Duration::seconds(2));
    let id = nps.create_ending(end).await;
    let extended = nps.api.extend_async(&id, 1).await.unwrap();
    assert_eq!(
        extended.scheduled_end_date_time_utc,
        Some(end + chrono::Duration::minutes(1))
    );

    // Proving that nothing happens needs a wait: one second past the old end.
    tokio::time::sleep(until(end) + Duration::from_secs(1)).await;
    let still = nps.get(id).await;
    assert_eq!(still.status, SessionStatus::Active);
    assert!(still.actual_end_date_time_utc.is_none());
}

#[tokio::test]
async fn a_session_past_its_scheduled_end_cannot_be_extended_into_the_past() {
    // A start action that outlasts the session's scheduled end holds the end
    // up; an extension counted from the old end would end in the past.
    let _clock = CLOCK.read().await;
    let nps = Nps::start(&format!("[[actions.start]]\n{}", sh("sleep 4", &[]))).await;
    let end = whole_millis(Utc::now() + chrono::Duration::seconds(2));
    let id = nps.create_ending(end).await;
    tokio::time::sleep(until(end) + Duration::from_millis(500)).await;
    assert_eq!(
        nps.get(id).await.status,
        SessionStatus::Active,
        "still starting"
    );
    let refused = nps.api.extend_async(&id, 1).await.unwrap_err();
    assert_eq!(
        refused.status().map(|s| s.as_u16()),
        Some(409),
        "{refused:?}"
    );
    assert!(format!("{refused:?}").contains("has passed"), "{refused:?}");
    let complete = nps.wait_for(id, SessionStatus::Complete).await;
    assert_eq!(complete.session_extension_count, 0, "no extension was used");
    assert_eq!(complete.scheduled_end_date_time_utc, Some(end));
}

#[tokio::test]
async fn sessions_due_while_the_server_was_down_start_and_end_as_it_starts_again() {
    let scratch = Scratch::new();
    let calls = scratch.file("calls");
    let record = r#"echo "$NPS_ACTION_KEY" >> "$1""#;
    let mut nps = Nps::start(&format!(
        "[[actions.start]]\n{}\n[[actions.end]]\n{}",
        sh(record, &[&calls]),
        sh(record, &[&calls]),
    ))
    .await;
    let soon = Utc::now() + chrono::Duration::seconds(2);
    let expiring = nps
        .create(ActivitySessionRequest {
            end_date_time_utc: Some(soon),
            ..Default::default()
        })
        .await;
    let starting = nps
        .create(ActivitySessionRequest {
            start_date_time_utc: Some(soon),
            end_date_time_utc: Some(soon + chrono::Duration::minutes(5)),
            ..Default::default()
        })
        .await;
    nps.wait_for_log(expiring.id, "start pipeline finished")
        .await;

    nps.server.kill();
    tokio::time::sleep(until(soon) + Duration::from_millis(500)).await;
    nps.restart().await;

    let complete = nps.wait_for(expiring.id, SessionStatus::Complete).await;
    assert!(complete.actual_end_date_time_utc.unwrap() > soon);
    let active = nps.wait_for(starting.id, SessionStatus::Active).await;
    assert!(active.actual_start_date_time_utc.unwrap() > soon);
    eventually(Duration::from_secs(10), "the late start action", || async {
        (lines(&calls).len() == 3).then_some(())
    })
    .await;
    let mut calls = lines(&calls);
    calls.sort();
    let mut expected = vec![
        format!("{}:start:0", expiring.id),
        format!("{}:end:0", expiring.id),
        format!("{}:start:0", starting.id),
    ];
    expected.sort();
    assert_eq!(calls, expected);
}

#[tokio::test]
async fn sigkill_during_a_slow_end_action_runs_it_again_after_restart_and_the_session_ends() {
    let scratch = Scratch::new();
    let runs = scratch.file("runs");
    let mut nps = Nps::start(&format!(
        "[[actions.end]]\n{}",
        sh(
            r#"echo "begin $NPS_ACTION_KEY" >> "$1"; sleep 2; echo "done $NPS_ACTION_KEY" >> "$1""#,
            &[&runs]
        )
    ))
    .await;
    let id = nps.create(ActivitySessionRequest::default()).await.id;
    let answer = nps.api.delete_async(&id).await.unwrap();
    assert_eq!(answer.status, SessionStatus::Cancelling);
    eventually(
        Duration::from_secs(10),
        "the end action to begin",
        || async { (lines(&runs).len() == 1).then_some(()) },
    )
    .await;

    nps.server.kill();
    assert_eq!(
        lines(&runs),
        [format!("begin {id}:end:0")],
        "it was still running"
    );
    nps.restart().await;

    let ended = nps.wait_for(id, SessionStatus::Cancelled).await;
    assert!(ended.actual_end_date_time_utc.is_some());
    let runs = lines(&runs);
    assert_eq!(
        runs.iter().filter(|l| l.starts_with("begin")).count(),
        2,
        "the interrupted action ran again: {runs:?}"
    );
    assert!(runs.contains(&format!("done {id}:end:0")), "{runs:?}");
    let still_ending: Vec<Value> = nps
        .http
        .get(format!(
            "{}/api/v1/ActivitySession?status=active",
            nps.server.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        still_ending.is_empty(),
        "left Active or Cancelling: {still_ending:#?}"
    );
}

#[tokio::test]
async fn a_thousand_sessions_expiring_at_once_all_complete_with_at_most_workers_actions_running() {
    const SESSIONS: usize = 1000;
    const WORKERS: usize = 4;
    let _clock = CLOCK.write().await;
    let scratch = Scratch::new();
    let runs = scratch.file("runs");
    // Each end action holds its slot for 20 ms between its two lines. Appends
    // are atomic and ordered (O_APPEND), and the server starts an action
    // only after an earlier one exited, so the file's order is a faithful
    // record of how many ran at once.
    let nps = Nps::start(&format!(
        "[actions]\nworkers = {WORKERS}\n\n[[actions.end]]\n{}",
        sh(
            r#"echo "start $NPS_ACTION_KEY" >> "$1"; sleep 0.02; echo "end $NPS_ACTION_KEY" >> "$1""#,
            &[&runs]
        )
    ))
    .await;

    let end = Utc::now() + chrono::Duration::seconds(5);
    let created = Instant::now();
    let ids = nps.create_many(SESSIONS, end).await;
    println!(
        "created {SESSIONS} sessions in {} ms",
        created.elapsed().as_millis()
    );
    assert!(
        Utc::now() < end,
        "creating the sessions took past their end"
    );
    tokio::time::sleep(until(end)).await;

    // While they drain, the HTTP server keeps answering promptly.
    let drained = Instant::now();
    let mut slowest_read = Duration::ZERO;
    let sessions = loop {
        let asked = Instant::now();
        nps.get(ids[0]).await;
        slowest_read = slowest_read.max(asked.elapsed());
        let finished: Vec<ActivitySession> = nps
            .http
            .get(format!(
                "{}/api/v1/ActivitySession?status=historical&take=1000",
                nps.server.url
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if finished.len() == SESSIONS {
            break finished;
        }
        assert!(
            drained.elapsed() < Duration::from_secs(120),
            "only {} of {SESSIONS} sessions ended within 120 s",
            finished.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let last_end = sessions
        .iter()
        .map(|s| {
            s.actual_end_date_time_utc
                .expect("an ended session has an actual end")
        })
        .max()
        .unwrap();
    println!(
        "{SESSIONS} sessions expiring at once: the last read Complete {} ms after the scheduled end \
         (drained in {} ms with {WORKERS} workers); the slowest GetByIdAsync during the drain took {} ms",
        (last_end - end).num_milliseconds(),
        drained.elapsed().as_millis(),
        slowest_read.as_millis()
    );
    assert!(sessions.iter().all(|s| s.status == SessionStatus::Complete));
    let wanted: std::collections::HashSet<Uuid> = ids.into_iter().collect();
    assert!(sessions.iter().all(|s| wanted.contains(&s.id)));
    assert!(
        slowest_read < Duration::from_secs(3),
        "GetByIdAsync took {} ms during the drain",
        slowest_read.as_millis()
    );

    // Concurrency as the actions saw it.
    let mut running = 0usize;
    let mut most = 0usize;
    let mut runs_per_key: HashMap<String, (u32, u32)> = HashMap::new();
    for line in lines(&runs) {
        let (what, key) = line
            .split_once(' ')
            .expect("a `start KEY` or `end KEY` line");
        let counts = runs_per_key.entry(key.to_string()).or_default();
        match what {
            "start" => {
                running += 1;
                counts.0 += 1;
            }
            "end" => {
                running -= 1;
                counts.1 += 1;
            }
            other => panic!("unexpected line {other:?}"),
        }
        most = most.max(running);
    }
    println!("at most {most} end actions ran at once (workers = {WORKERS})");
    assert!(most <= WORKERS, "{most} actions ran at once");
    assert!(most > 1, "the actions never ran in parallel");
    assert_eq!(runs_per_key.len(), SESSIONS);
    assert!(
        runs_per_key.values().all(|&c| c == (1, 1)),
        "an action ran more than once without a crash"
    );
}

#[tokio::test]
async fn per_activity_lists_replace_the_default_lists_for_that_activity() {
    let scratch = Scratch::new();
    let calls = scratch.file("calls");
    let record = |label: &str| sh(r#"echo "$1 $NPS_ACTION" >> "$2""#, &[label, &calls]);
    let nps = Nps::start(&format!(
        "[[actions.start]]\n{}\n[[actions.end]]\n{}\n\
         [[actions.activity.\"Domain Admin\".start]]\n{}\n\
         [[actions.activity.\"Domain Admin\".end]]\n{}\n\
         [[actions.activity.\"Domain Admin\".end]]\n{}",
        record("default"),
        record("default"),
        record("domain-admin"),
        record("domain-admin-1"),
        record("domain-admin-2"),
    ))
    .await;
    for activity in ["Domain Admin", "Patch web01"] {
        let id = nps
            .create(ActivitySessionRequest {
                activity_name: Some(activity.into()),
                ..Default::default()
            })
            .await
            .id;
        nps.wait_for_log(id, "start pipeline finished").await;
        let ended = nps
            .api
            .end_session_and_wait(&id, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(ended.status, SessionStatus::Cancelled);
    }
    assert_eq!(
        lines(&calls),
        [
            "domain-admin start",
            "domain-admin-1 end",
            "domain-admin-2 end",
            "default start",
            "default end"
        ]
    );
}

#[tokio::test]
async fn placeholders_fill_single_arguments_from_the_session_and_never_reach_a_shell() {
    let scratch = Scratch::new();
    let args = scratch.file("args");
    let pwned = scratch.file("pwned");
    // printf gets each argument as it arrived, one per line.
    let nps = Nps::start(&format!(
        "[[actions.end]]\n{}",
        sh(
            r#"out="$1"; shift; printf '%s\n' "$@" >> "$out""#,
            &[
                &args,
                "{session_id}",
                "{login}",
                "{activity_name}",
                "{resource_name}",
                "{phase}",
                "{action_key}",
                "host={resource_name};",
                "{not_a_placeholder",
            ]
        )
    ))
    .await;
    // A resource name that a shell would run, and that names another placeholder.
    let resource = format!("x; touch {pwned} #{{login}}");
    let id = nps
        .create(ActivitySessionRequest {
            activity_name: Some("$(id)".into()),
            managed_resource_name: Some(resource.clone()),
            ..Default::default()
        })
        .await
        .id;
    nps.api
        .end_session_and_wait(&id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        lines(&args),
        [
            id.to_string(),
            "admin".into(),
            "$(id)".into(),
            resource.clone(),
            "end".into(),
            format!("{id}:end:0"),
            format!("host={resource};"),
            "{not_a_placeholder".into(),
        ]
    );
    assert!(!Path::new(&pwned).exists());
}

#[tokio::test]
async fn actions_get_bounded_output_in_the_log_and_none_of_the_servers_secrets() {
    let nps = Nps::start(&format!(
        "[[actions.end]]\n{}",
        sh(
            // 100 kB on stdout, then its NPS_ environment on stderr.
            r#"i=0; while [ $i -lt 1000 ]; do printf '%0100d' 0; i=$((i+1)); done; env | grep ^NPS_ >&2"#,
            &[]
        )
    ))
    .await;
    let id = nps.create(ActivitySessionRequest::default()).await.id;
    let ended = nps
        .api
        .end_session_and_wait(&id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(ended.status, SessionStatus::Cancelled);
    let log = nps.log(id).await;
    let line = log
        .iter()
        .find(|l| l.contains("end action 1 of 1 (command) succeeded"))
        .expect("the action's log line");
    assert!(line.contains("[truncated]"), "{line}");
    assert!(
        line.len() < 6 * 1024,
        "{} bytes in one log line",
        line.len()
    );
    assert!(line.contains("NPS_ACTION_KEY="), "{line}");
    assert!(!line.contains("NPS_BOOTSTRAP"), "{line}");
    assert!(!line.contains(nps_testkit::ADMIN_PASSWORD), "{line}");
}

#[tokio::test]
async fn an_action_that_leaves_a_background_process_does_not_hold_up_the_session() {
    let scratch = Scratch::new();
    let pid = scratch.file("pid");
    // The background sleep inherits stdout and stderr: the action is over
    // when its program exits, not when every inheritor closed them.
    let nps = Nps::start(&format!(
        "[[actions.end]]\n{}",
        sh(
            r#"sleep 60 & echo $! > "$1"; echo "daemon started""#,
            &[&pid]
        )
    ))
    .await;
    let id = nps.create(ActivitySessionRequest::default()).await.id;
    let ended = nps
        .api
        .end_session_and_wait(&id, Duration::from_secs(10))
        .await;
    if let Ok(pid) = std::fs::read_to_string(&pid) {
        let _ = Command::new("kill").arg(pid.trim()).status();
    }
    assert_eq!(ended.unwrap().status, SessionStatus::Cancelled);
    let log = nps.log(id).await;
    assert!(contains(&log, "stdout: daemon started"), "{log:#?}");
}

#[tokio::test]
async fn an_invalid_configuration_stops_the_server_naming_the_file_line_and_problem() {
    let scratch = Scratch::new();
    let cases = [
        (
            "[actions]\nworkers = 2\n\n[[actions.end]]\nkind = \"email\"\n",
            "5:8: unknown action kind \"email\": use \"command\" or \"webhook\"",
        ),
        (
            "[[actions.start]]\nkind = \"command\"\nargs = [\"grant\"]\n",
            "1:1: a command action needs `program`, the path of the program to run",
        ),
        (
            "[[actions.end]]\nkind = \"command\"\nprogram = \"/usr/local/bin/no-such-revoke\"\n",
            "3:11: program \"/usr/local/bin/no-such-revoke\" is not an executable file",
        ),
        (
            "[[actions.activity.\"Domain Admin\".end]]\nkind = \"webhook\"\nurl = \"http//hooks.example.com\"\n",
            "3:7: \"http//hooks.example.com\" is not an http or https URL",
        ),
        (
            "[actions]\nmax_attempts = 0\n",
            "2:16: actions.max_attempts must be at least 1",
        ),
        (
            "[[actions.end]]\nkind = \"command\"\nprogram = \"/bin/sh\"\nargs = [\"-c\", \"revoke\", \"{sesion_id}\"]\n",
            "4:25: unknown placeholder {sesion_id}: use {session_id}, {login}",
        ),
        (
            "[sessions]\nallow_extension = true\nmax_length_minutes = 0\n",
            "3:22: sessions.max_length_minutes must be at least 1",
        ),
        (
            "[[actions.end]]\nkind = \"command\"\nprogram = \"/bin/echo\"\nargs = [\"a\\u0000b\"]\n",
            "4:9: an argument cannot hold a NUL character",
        ),
        (
            "[[actions.end]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/h\"\nargs = [\"{session_id}\"]\n",
            "4:9: a webhook action has no args",
        ),
        (
            "[[actions.end]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook/{session_id}\"\n",
            "3:7: a webhook's url takes no placeholders",
        ),
    ];
    for (i, (toml, expected)) in cases.iter().enumerate() {
        let config = scratch.file(&format!("bad-{i}.toml"));
        std::fs::write(&config, toml).unwrap();
        let (success, stderr) = run_to_exit(
            Command::new(nps_testkit::server_binary())
                .args(["--bind", "127.0.0.1:0", "--config", &config, "--database"])
                .arg(Path::new(&scratch.0).join(format!("db-{i}.db"))),
        );
        assert!(!success, "the server accepted {toml}");
        assert!(
            stderr.contains(&format!("{config}:{expected}")),
            "for\n{toml}\nexpected `{config}:{expected}` in stderr:\n{stderr}"
        );
        assert!(
            !Path::new(&scratch.0).join(format!("db-{i}.db")).exists(),
            "the database was created before the configuration was checked"
        );
    }
}

#[tokio::test]
async fn the_readme_example_configuration_starts_and_ends_a_session() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/actions.toml");
    let nps = Nps::start_with(ServerOptions {
        args: vec!["--config".into(), example.into()],
        ..Default::default()
    })
    .await;
    let id = nps
        .create(ActivitySessionRequest {
            activity_name: Some("Domain Admin".into()),
            managed_resource_name: Some("srv-01".into()),
            ..Default::default()
        })
        .await
        .id;
    nps.wait_for_log(id, "start pipeline finished").await;
    let ended = nps
        .api
        .end_session_and_wait(&id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(ended.status, SessionStatus::Cancelled);
    let log = nps.log(id).await;
    assert!(
        contains(
            &log,
            &format!("stdout: grant admin access to srv-01 for Domain Admin (session {id})")
        ),
        "{log:#?}"
    );
    assert!(
        contains(
            &log,
            &format!("stdout: revoke admin access to srv-01 (key {id}:end:0)")
        ),
        "{log:#?}"
    );
}

// ---- helpers -----------------------------------------------------------------

/// A server and clients signed in as its Admin.
struct Nps {
    server: TestServer,
    api: nps_client::Client,
    http: reqwest::Client,
}

impl Nps {
    /// A server with this configuration (TOML).
    async fn start(config: &str) -> Nps {
        Nps::start_with(ServerOptions {
            config_toml: Some(config.to_string()),
            ..Default::default()
        })
        .await
    }

    async fn start_with(options: ServerOptions) -> Nps {
        let server = tokio::task::spawn_blocking(move || TestServer::start_with(options))
            .await
            .unwrap();
        let mut nps = Nps {
            api: nps_client::Client::new(&server.url),
            http: reqwest::Client::new(),
            server,
        };
        nps.sign_in().await;
        nps
    }

    async fn sign_in(&mut self) {
        let token = self.server.admin_token();
        self.http = authed_client(&token);
        self.api = nps_client::Client::new_with_client(&self.server.url, self.http.clone());
    }

    /// Starts the server again on the same database (it listens on a new port).
    async fn restart(&mut self) {
        self.server.restart();
        self.sign_in().await;
    }

    async fn create(&self, request: ActivitySessionRequest) -> ActivitySession {
        self.api
            .create_async(&request)
            .await
            .expect("CreateAsync answers 201")
            .into_inner()
    }

    /// Creates a session that starts now and ends at `end`.
    async fn create_ending(&self, end: DateTime<Utc>) -> Uuid {
        self.create(ActivitySessionRequest {
            end_date_time_utc: Some(end),
            ..Default::default()
        })
        .await
        .id
    }

    /// Creates `n` sessions that all end at `end`, 32 requests at a time.
    async fn create_many(&self, n: usize, end: DateTime<Utc>) -> Vec<Uuid> {
        let limit = Arc::new(tokio::sync::Semaphore::new(32));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let api = self.api.clone();
            let limit = Arc::clone(&limit);
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await.unwrap();
                let request = ActivitySessionRequest {
                    managed_resource_name: Some(format!("srv-{i:04}")),
                    end_date_time_utc: Some(end),
                    ..Default::default()
                };
                api.create_async(&request)
                    .await
                    .expect("CreateAsync answers 201")
                    .into_inner()
                    .id
            });
        }
        tasks.join_all().await
    }

    async fn get(&self, id: Uuid) -> ActivitySession {
        self.api.get_by_id_async(&id).await.unwrap().into_inner()
    }

    /// Polls the session until it has this status (10 s at most).
    async fn wait_for(&self, id: Uuid, status: SessionStatus) -> ActivitySession {
        eventually(
            Duration::from_secs(10),
            &format!("session {id} to read {status}"),
            || async {
                let session = self.get(id).await;
                (session.status == status).then_some(session)
            },
        )
        .await
    }

    /// Polls the session's log until a line contains `text` (10 s at most).
    async fn wait_for_log(&self, id: Uuid, text: &str) {
        eventually(
            Duration::from_secs(10),
            &format!("a log line of {id} with {text:?}"),
            || async { contains(&self.log(id).await, text).then_some(()) },
        )
        .await
    }

    /// The messages of a session's log, in order.
    async fn log(&self, id: Uuid) -> Vec<String> {
        self.api
            .get_session_logs_async(&id, None, None, None, None, None, None, Some(1000))
            .await
            .unwrap()
            .into_inner()
            .lines
            .into_iter()
            .map(|l| l.log_message.unwrap_or_default())
            .collect()
    }
}

fn contains(log: &[String], text: &str) -> bool {
    log.iter().any(|l| l.contains(text))
}

/// `t` without its sub-millisecond part (the server keeps microseconds).
fn whole_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap()
}

/// How long until `t` (zero when it has passed).
fn until(t: DateTime<Utc>) -> Duration {
    (t - Utc::now()).to_std().unwrap_or_default()
}

/// A TOML string (JSON string syntax is valid TOML basic string syntax).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// The keys of a command action that runs `/bin/sh -c SCRIPT sh ARGS...`:
/// the script sees ARGS as `$1`, `$2`, ...
fn sh(script: &str, args: &[&str]) -> String {
    let mut all = vec![quoted("-c"), quoted(script), quoted("sh")];
    all.extend(args.iter().map(|a| quoted(a)));
    format!(
        "kind = \"command\"\nprogram = \"/bin/sh\"\nargs = [{}]\n",
        all.join(", ")
    )
}

/// The lines of a file (none when it does not exist yet).
fn lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A directory for the files actions write; removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "nps-lifecycle-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// A path in the directory, as a string for the configuration.
    fn file(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Whether a process runs (a zombie, dead but not yet reaped, does not).
fn running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

/// Runs a command that should exit by itself; kills it after 30 s.
fn run_to_exit(cmd: &mut Command) -> (bool, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.success(), stderr)
}

/// A request the webhook receiver got.
struct HookRequest {
    request_line: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl HookRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A minimal HTTP/1.1 server on loopback that records each request and
/// answers the given statuses in turn, then 200 (each with a Location, so a
/// redirect could be followed).
struct WebhookReceiver {
    url: String,
    requests: tokio::sync::mpsc::UnboundedReceiver<HookRequest>,
}

impl WebhookReceiver {
    async fn start(statuses: Vec<u16>) -> WebhookReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, requests) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut statuses = statuses.into_iter();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let Some(request) = read_request(&mut stream).await else {
                    continue;
                };
                let status = statuses.next().unwrap_or(200);
                let _ = tx.send(request);
                let answer = format!(
                    "HTTP/1.1 {status} Whatever\r\nlocation: /elsewhere\r\n\
                     content-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        WebhookReceiver { url, requests }
    }

    async fn next(&mut self) -> HookRequest {
        tokio::time::timeout(Duration::from_secs(10), self.requests.recv())
            .await
            .expect("a webhook request within 10 s")
            .expect("the receiver is running")
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<HookRequest> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut head_lines = head.split("\r\n");
    let request_line = head_lines.next()?.to_string();
    let headers: BTreeMap<String, String> = head_lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&buf[..n]);
    }
    Some(HookRequest {
        request_line,
        headers,
        body,
    })
}

/// The README shows `examples/actions.toml` verbatim, so the example a reader
/// copies is the one the test above runs.
#[test]
fn the_readme_shows_the_actions_example_verbatim() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let example = std::fs::read_to_string(format!("{root}/examples/actions.toml")).unwrap();
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    assert!(
        readme.contains(&format!("```toml\n{example}```")),
        "README.md's actions example differs from examples/actions.toml: copy the file into the README"
    );
}

/// Promoting a due session needs no worker: with every worker busy on a slow
/// end action and more ends queued behind them than the engine dispatches at
/// once, a later scheduled end still turns its session Cancelling on time.
#[tokio::test]
async fn a_scheduled_end_is_on_time_while_every_worker_is_busy() {
    let _clock = CLOCK.read().await;
    let server = TestServer::start_with(ServerOptions {
        config_toml: Some(
            "[actions]\nworkers = 1\n\n[[actions.end]]\nkind = \"command\"\nprogram = \"sleep\"\nargs = [\"8\"]\n"
                .into(),
        ),
        ..Default::default()
    });
    let http = authed_client(&server.admin_token());
    let url = &server.url;
    // Six sessions end together: more than workers * 4 become runnable at once.
    let first_end = Utc::now() + chrono::Duration::seconds(2);
    for _ in 0..6 {
        nps_testkit::create_session(
            &http,
            url,
            serde_json::json!({ "endDateTimeUtc": first_end }),
        )
        .await;
    }
    let end = first_end + chrono::Duration::seconds(2);
    let s =
        nps_testkit::create_session(&http, url, serde_json::json!({ "endDateTimeUtc": end })).await;
    let id = s["id"].as_str().unwrap().to_string();
    let seen = eventually(
        Duration::from_secs(20),
        "the scheduled end to begin",
        || async {
            let s = nps_testkit::get_session(&http, url, &id).await;
            (s["status"] == "Cancelling").then(Utc::now)
        },
    )
    .await;
    let late = seen - end;
    assert!(
        late < chrono::Duration::milliseconds(1200),
        "the scheduled end began {} ms late",
        late.num_milliseconds()
    );
}

/// SIGTERM (`systemctl stop`, `docker stop`): the server stops listening,
/// lets a running action finish within its grace period and records it,
/// kills one that takes longer with everything it started, without counting
/// that as a failure, and exits 0; the killed action runs again at the next
/// start and its session ends.
#[tokio::test]
async fn sigterm_lets_a_short_action_finish_and_kills_a_long_one_which_runs_again_after_restart() {
    let scratch = Scratch::new();
    let runs = scratch.file("runs");
    let pids = scratch.file("pids");
    let once = scratch.file("slow-once");
    let mut nps = Nps::start(&format!(
        "[actions]\nmax_attempts = 1\n\n[[actions.end]]\n{}",
        sh(
            r#"echo "begin $NPS_ACTIVITY_NAME" >> "$1"
               if [ "$NPS_ACTIVITY_NAME" = slow ] && [ ! -e "$3" ]; then
                 touch "$3"; sleep 60 & echo "$$ $!" > "$2"; wait
               else
                 sleep 1
               fi
               echo "done $NPS_ACTIVITY_NAME" >> "$1""#,
            &[&runs, &pids, &once]
        )
    ))
    .await;
    let named = |name: &str| ActivitySessionRequest {
        activity_name: Some(name.into()),
        ..Default::default()
    };
    let quick = nps.create(named("quick")).await.id;
    let slow = nps.create(named("slow")).await.id;
    nps.api.delete_async(&quick).await.unwrap();
    nps.api.delete_async(&slow).await.unwrap();
    eventually(
        Duration::from_secs(10),
        "both end actions to begin",
        || async { (lines(&runs).len() == 2 && !lines(&pids).is_empty()).then_some(()) },
    )
    .await;

    let status = nps.server.terminate(Duration::from_secs(15));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{}",
        nps.server.log()
    );
    let log = nps.server.log();
    assert!(
        log.contains("stopping") && log.contains("nps-server stopped"),
        "{log}"
    );
    let seen = lines(&runs);
    assert!(seen.contains(&"done quick".to_string()), "{seen:?}");
    assert!(!seen.contains(&"done slow".to_string()), "{seen:?}");
    for pid in lines(&pids)[0].split(' ') {
        assert!(!running(pid), "process {pid} outlived the server");
    }

    nps.restart().await;
    let ended = nps.wait_for(slow, SessionStatus::Cancelled).await;
    assert!(ended.actual_end_date_time_utc.is_some());
    let quick_now = nps.api.get_by_id_async(&quick).await.unwrap().into_inner();
    assert_eq!(quick_now.status, SessionStatus::Cancelled);
    let seen = lines(&runs);
    assert_eq!(
        seen.iter().filter(|l| *l == "begin quick").count(),
        1,
        "the finished action ran again: {seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|l| *l == "begin slow").count(),
        2,
        "{seen:?}"
    );
    let slow_log = nps.log(slow).await;
    assert!(!contains(&slow_log, "failed"), "{slow_log:#?}");
    // The log says why the first run stopped, rather than showing two
    // runs of the same attempt one after the other.
    assert!(
        contains(&slow_log, "stopped: the server was stopping"),
        "{slow_log:#?}"
    );
}

/// A second signal while the server stops: it exits 1 at once, kills what
/// the running action started, and its log says so (the line used to be
/// lost: the process ended before the logger's thread wrote it).
#[tokio::test]
async fn a_second_signal_stops_at_once_and_the_log_says_so() {
    let scratch = Scratch::new();
    let pids = scratch.file("pids");
    let mut nps = Nps::start(&format!(
        "[actions]\nmax_attempts = 1\n\n[[actions.end]]\n{}",
        sh(r#"sleep 60 & echo "$!" > "$1"; wait"#, &[&pids])
    ))
    .await;
    let id = nps.create(ActivitySessionRequest::default()).await.id;
    nps.api.delete_async(&id).await.unwrap();
    eventually(
        Duration::from_secs(10),
        "the end action to begin",
        || async { (!lines(&pids).is_empty()).then_some(()) },
    )
    .await;
    let pid = nps.server.pid().expect("running").to_string();
    let first = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(first.success());
    // Well within the 5 s the first signal gives the action.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = nps.server.terminate(Duration::from_secs(3));
    let log = nps.server.log();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{status:?}\n{log}");
    assert!(log.contains("stopping at once"), "{log}");
    assert!(
        !running(&lines(&pids)[0]),
        "the action's process outlived the server"
    );
}

/// A session whose whole window passed while the server was down: at the
/// next start it completes without granting access after its end (nor
/// revoking what was never granted).
#[tokio::test]
async fn a_window_that_passed_while_the_server_was_down_grants_nothing() {
    let _clock = CLOCK.read().await;
    let scratch = Scratch::new();
    let ran = scratch.file("ran");
    let mut nps = Nps::start(&format!(
        "[[actions.start]]\n{}\n[[actions.end]]\n{}",
        sh(r#"echo start >> "$1""#, &[&ran]),
        sh(r#"echo end >> "$1""#, &[&ran])
    ))
    .await;
    let start = Utc::now() + chrono::Duration::seconds(2);
    let session = nps
        .create(ActivitySessionRequest {
            start_date_time_utc: Some(start),
            end_date_time_utc: Some(start + chrono::Duration::seconds(2)),
            ..Default::default()
        })
        .await;
    assert_eq!(session.status, SessionStatus::Pending);
    nps.server.kill();
    tokio::time::sleep(Duration::from_secs(5)).await;
    nps.restart().await;

    let ended = nps.wait_for(session.id, SessionStatus::Complete).await;
    assert!(ended.actual_start_date_time_utc.is_none(), "{ended:?}");
    assert!(lines(&ran).is_empty(), "actions ran: {:?}", lines(&ran));
    nps.wait_for_log(session.id, "before the session started")
        .await;
}

/// A receiver that answers an error with an endless body: its first 2 KiB
/// are logged, marked as cut, and no more is read (it used to be read
/// whole into the server's memory).
#[tokio::test]
async fn a_webhook_error_body_is_read_only_as_far_as_it_is_logged() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = read_request(&mut stream).await;
                let head = "HTTP/1.1 500 Oops\r\ncontent-length: 1000000000\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                // 64 MB at most, then the connection stays open.
                for _ in 0..1024 {
                    if stream.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        }
    });
    let nps = Nps::start(&format!(
        "[actions]\nmax_attempts = 1\n\n\
         [[actions.end]]\nkind = \"webhook\"\nurl = \"{url}/hook\"\ntimeout_secs = 20\n"
    ))
    .await;
    let id = nps.create(ActivitySessionRequest::default()).await.id;
    let ended = nps
        .api
        .end_session_and_wait(&id, Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(ended.status, SessionStatus::Failed);
    let log = nps.log(id).await;
    assert!(
        contains(&log, "answered 500 Internal Server Error: xxxx")
            || contains(&log, "answered 500 Oops: xxxx"),
        "{log:#?}"
    );
    assert!(contains(&log, "[truncated]"), "{log:#?}");
}

/// Grants and revocations have workers of their own: with one worker, a
/// grant that hangs does not hold up another session's revocation.
#[tokio::test]
async fn a_hung_grant_does_not_hold_up_another_sessions_revocation() {
    let scratch = Scratch::new();
    let began = scratch.file("began");
    let nps = Nps::start(&format!(
        "[actions]\nworkers = 1\n\n[[actions.activity.\"Grant\".start]]\n{}\n\
         [[actions.activity.\"Plain\".end]]\nkind = \"command\"\nprogram = \"/bin/true\"\n",
        sh(r#"echo begun >> "$1"; sleep 30"#, &[&began])
    ))
    .await;
    let named = |name: &str| ActivitySessionRequest {
        activity_name: Some(name.into()),
        ..Default::default()
    };
    let grant = nps.create(named("Grant")).await.id;
    eventually(Duration::from_secs(10), "the grant to begin", || async {
        (!lines(&began).is_empty()).then_some(())
    })
    .await;
    let plain = nps.create(named("Plain")).await.id;
    nps.api.delete_async(&plain).await.unwrap();
    // Within wait_for's 10 s, while the grant still has 20 s to go.
    nps.wait_for(plain, SessionStatus::Cancelled).await;
    assert_eq!(nps.get(grant).await.status, SessionStatus::Active);
    // A second grant waits for the one start worker; ended meanwhile, it
    // does not wait behind the first.
    let queued = nps.create(named("Grant")).await.id;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(lines(&began).len(), 1, "the second grant is still queued");
    nps.api.delete_async(&queued).await.unwrap();
    nps.wait_for(queued, SessionStatus::Cancelled).await;
    assert_eq!(lines(&began).len(), 1, "the ended grant never ran");
    nps.api.delete_async(&grant).await.unwrap();
    nps.wait_for(grant, SessionStatus::Cancelled).await;
}
