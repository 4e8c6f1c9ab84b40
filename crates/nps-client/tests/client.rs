//! The hand-written client against the real server: one call signs in,
//! refusals carry the server's ProblemDetails, and ending a session waits for
//! its terminal state.

use std::time::Duration;

use nps_client::types::{ActivitySessionRequest, SessionStatus};
use nps_client::{Connection, Error, Progress, WaitOptions};
use nps_testkit::{code_at_step, current_step, Credentials, ServerOptions, TestServer};

/// One end action that succeeds for every session; one that never finishes
/// in time for activity "slow".
const SERVER_CONFIG: &str = r#"
[[actions.end]]
kind = "command"
program = "/bin/sh"
args = ["-c", "echo revoked {session_id}"]

[[actions.activity."slow".end]]
kind = "command"
program = "/bin/sleep"
args = ["5"]
"#;

fn server() -> TestServer {
    TestServer::start_with(ServerOptions {
        config_toml: Some(SERVER_CONFIG.into()),
        ..ServerOptions::default()
    })
}

fn admin_code() -> String {
    code_at_step(&Credentials::admin().totp_secret, current_step())
}

async fn sign_in(server: &TestServer) -> nps_client::Client {
    let admin = Credentials::admin();
    nps_client::sign_in(&server.url, &admin.login, &admin.password, &admin_code())
        .await
        .expect("sign in")
        .client
}

async fn create(nps: &nps_client::Client, activity: &str) -> uuid::Uuid {
    let request = ActivitySessionRequest {
        activity_name: Some(activity.into()),
        ..Default::default()
    };
    nps.create_async(&request).await.unwrap().into_inner().id
}

#[tokio::test]
async fn one_call_signs_in_and_every_request_carries_the_token() {
    let server = server();
    let admin = Credentials::admin();
    let signed_in = nps_client::sign_in(&server.url, &admin.login, &admin.password, &admin_code())
        .await
        .unwrap();
    assert!(signed_in.expires_around() > signed_in.signed_in_at + chrono::TimeDelta::hours(7));

    let id = create(&signed_in.client, "Patch web01").await;
    let read = signed_in
        .client
        .get_by_id_async(&id)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.activity_name.as_deref(), Some("Patch web01"));
    assert_eq!(read.created_by_user_name.as_deref(), Some("admin"));

    // The token also works from a fresh client, as the CLI uses it.
    let again = Connection::new(&server.url)
        .unwrap()
        .client_with_token(&signed_in.token)
        .unwrap();
    assert_eq!(
        again.get_by_id_async(&id).await.unwrap().into_inner().id,
        id
    );
}

#[tokio::test]
async fn a_wrong_password_is_a_401_problem_with_the_servers_words() {
    let server = server();
    let error = Connection::new(&server.url)
        .unwrap()
        .sign_in("admin", "not the password", "123456")
        .await
        .unwrap_err();
    let problem = error.problem().expect("a ProblemDetails");
    assert_eq!(problem.status, 401);
    assert_eq!(problem.title, "Unauthorized");
    assert!(!problem.detail.is_empty());
    assert!(
        error.to_string().starts_with("Unauthorized (HTTP 401): "),
        "{error}"
    );
}

#[tokio::test]
async fn a_wrong_code_can_be_retried_with_the_right_one() {
    let server = server();
    let admin = Credentials::admin();
    let pending = Connection::new(&server.url)
        .unwrap()
        .begin_sign_in(&admin.login, &admin.password)
        .await
        .unwrap();
    let step = current_step();
    let accepted: Vec<String> = (step - 1..=step + 2)
        .map(|s| code_at_step(&admin.totp_secret, s))
        .collect();
    let wrong = ["000000", "111111", "222222"]
        .into_iter()
        .find(|c| !accepted.iter().any(|a| a == c))
        .unwrap();
    let error = pending.complete(wrong).await.unwrap_err();
    assert_eq!(error.status(), Some(401), "{error}");
    let signed_in = pending.complete(&admin_code()).await.unwrap();
    create(&signed_in.client, "after a retry").await;
}

#[tokio::test]
async fn an_unknown_session_is_a_404_problem() {
    let server = server();
    let nps = sign_in(&server).await;
    let error: Error = nps
        .delete_async(&uuid::Uuid::new_v4())
        .await
        .unwrap_err()
        .into();
    assert_eq!(error.status(), Some(404), "{error}");
    assert_eq!(error.problem().unwrap().title, "Not Found");
}

#[tokio::test]
async fn ending_a_session_waits_for_cancelled_and_reports_each_step() {
    let server = server();
    let nps = sign_in(&server).await;
    let id = create(&nps, "Patch web01").await;

    let options = WaitOptions {
        follow_log: true,
        ..WaitOptions::with_timeout(Duration::from_secs(60))
    };
    let mut statuses = Vec::new();
    let mut lines = Vec::new();
    let ended = nps
        .end_session_and_watch(&id, &options, |progress| match progress {
            Progress::Status(s) => statuses.push(s.status),
            Progress::Log(l) => lines.push(l.log_message.clone().unwrap_or_default()),
        })
        .await
        .unwrap();

    assert_eq!(ended.status, SessionStatus::Cancelled);
    assert_eq!(statuses.first(), Some(&SessionStatus::Cancelling));
    assert_eq!(statuses.last(), Some(&SessionStatus::Cancelled));
    let succeeded = lines
        .iter()
        .position(|l| l.contains("end action 1 of 1 (command) succeeded"));
    let cancelled = lines.iter().position(|l| l.contains("-> Cancelled"));
    assert!(
        succeeded.is_some() && succeeded < cancelled,
        "the end action's line comes before the Cancelled one: {lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("Created")),
        "only lines written since the end was asked: {lines:#?}"
    );

    // Ending an ended session changes nothing, and waiting returns at once.
    let again = nps
        .end_session_and_wait(&id, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(again.status, SessionStatus::Cancelled);
}

#[tokio::test]
async fn a_session_still_ending_at_the_timeout_is_a_timeout_error_with_the_session() {
    let server = server();
    let nps = sign_in(&server).await;
    let id = create(&nps, "slow").await;
    let error = nps
        .end_session_and_wait(&id, Duration::from_millis(500))
        .await
        .unwrap_err();
    match &error {
        Error::Timeout { session, waited } => {
            assert_eq!(session.id, id);
            assert_eq!(session.status, SessionStatus::Cancelling);
            assert!(*waited >= Duration::from_millis(500));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(error.to_string().contains("still Cancelling"), "{error}");

    // Someone else's wait sees it through.
    let ended = nps
        .wait_until_terminal(&id, &WaitOptions::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(ended.status, SessionStatus::Cancelled);
}

#[test]
fn the_end_session_example_runs_against_a_live_server() {
    let server = server();
    let admin = Credentials::admin();
    let output = std::process::Command::new(example("end_session"))
        .env("NPS_URL", &server.url)
        .env("NPS_LOGIN", &admin.login)
        .env("NPS_PASSWORD", &admin.password)
        .env("NPS_MFA_CODE", admin_code())
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("status: Cancelling"), "{stdout}");
    assert!(
        stdout.contains("log:    end action 1 of 1 (command) succeeded"),
        "{stdout}"
    );
    assert!(stdout.contains("ended Cancelled"), "{stdout}");
}

/// `target/<profile>/examples/<name>`, built if a filtered `cargo test` did
/// not build it.
fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "-p", "nps-client", "--example", name]);
        if profile_dir.file_name().and_then(|n| n.to_str()) == Some("release") {
            cmd.arg("--release");
        }
        assert!(
            cmd.status().unwrap().success(),
            "cargo build --example {name}"
        );
    }
    path
}
