//! Activity sessions over HTTP against the real `nps-server` binary: the
//! reference flow, who may see what, durability across restarts and SIGKILL,
//! and ending one session from many clients at once.

use std::time::Duration;

use nps_client::types::{ActivitySessionRequest, SessionStatus};
use nps_testkit::{
    assert_problem, authed_client, create_session, eventually, get_session, log_messages,
    ServerOptions, TestServer,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

fn client(server: &TestServer, token: &str) -> nps_client::Client {
    nps_client::Client::new_with_client(&server.url, authed_client(token))
}

/// GET of a JSON answer.
async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: String) -> T {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

async fn wait_for_status(http: &reqwest::Client, url: &str, id: &str, status: &str) -> Value {
    eventually(
        Duration::from_secs(20),
        &format!("session {id} to read {status}"),
        || async {
            let s = get_session(http, url, id).await;
            (s["status"] == status).then_some(s)
        },
    )
    .await
}

#[tokio::test]
async fn the_reference_flow_ends_a_session_and_logs_each_step() {
    let server = TestServer::start();
    // signinBody -> signin2fa, as the PowerShell samples do.
    let token = server.admin_token();
    let api = client(&server, &token);

    let created = api
        .create_async(&ActivitySessionRequest {
            activity_name: Some("Domain Admin".into()),
            managed_resource_name: Some("srv-01".into()),
            ..Default::default()
        })
        .await
        .expect("CreateAsync answers 201");
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.id;
    assert_eq!(
        created.headers()["location"],
        format!("/api/v1/ActivitySession/{id}").as_str()
    );
    assert_eq!(created.status, SessionStatus::Active);
    assert_eq!(created.created_by_user_name.as_deref(), Some("admin"));
    assert_eq!(created.created_from_address.as_deref(), Some("127.0.0.1"));
    assert!(created.actual_start_date_time_utc.is_some());

    let ended = api
        .delete_async(&id)
        .await
        .expect("DeleteAsync answers 202");
    assert_eq!(ended.status(), StatusCode::ACCEPTED);
    assert_eq!(
        ended.headers()["location"],
        format!("/api/v1/ActivitySession/{id}").as_str()
    );
    assert!(matches!(
        ended.status,
        SessionStatus::Cancelling | SessionStatus::Cancelled
    ));

    let http = authed_client(&token);
    let done = wait_for_status(&http, &server.url, &id.to_string(), "Cancelled").await;
    assert!(done["actualEndDateTimeUtc"].is_string());
    assert_eq!(done["cancelledBy"], done["createdBy"]);

    let log = log_messages(&http, &server.url, &id.to_string()).await;
    assert!(
        log[0].starts_with("Created by admin from 127.0.0.1: Active"),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("Active -> Cancelling by admin from 127.0.0.1")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("Cancelling -> Cancelled by system")),
        "{log:?}"
    );

    // Ending an ended session is accepted and changes nothing.
    let again = api.delete_async(&id).await.unwrap();
    assert_eq!(again.status, SessionStatus::Cancelled);
    assert_eq!(
        log_messages(&http, &server.url, &id.to_string())
            .await
            .len(),
        log.len()
    );
}

#[tokio::test]
async fn the_curl_sample_of_delete_async_works_with_a_cookie_jar() {
    let server = TestServer::start();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/reference-flow.sh"
    );
    let out = std::process::Command::new("bash")
        .arg(script)
        .env("NPS_URL", &server.url)
        .env("NPS_LOGIN", nps_testkit::ADMIN_LOGIN)
        .env("NPS_PASSWORD", nps_testkit::ADMIN_PASSWORD)
        .env("NPS_TOTP_SECRET", nps_testkit::ADMIN_TOTP_SECRET)
        .env("NPS_COOKIE_JAR", server.dir().join("cookies.txt"))
        .output()
        .expect("run the script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("HTTP/1.1 202"), "{stdout}");
    assert!(stdout.trim_end().ends_with("Cancelled"), "{stdout}");
}

#[tokio::test]
async fn failures_are_problem_details_with_the_right_status() {
    let server = TestServer::start();
    let url = &server.url;
    let admin = authed_client(&server.admin_token());
    let user_creds = server.add_user("alice", "user");
    let alice = authed_client(&server.token_for(&user_creds));
    let anonymous = reqwest::Client::new();

    // Unknown id: 404. Not a UUID: 400.
    let unknown = Uuid::new_v4();
    let body = assert_problem(
        admin
            .delete(format!("{url}/api/v1/ActivitySession/{unknown}"))
            .send()
            .await
            .unwrap(),
        &[404],
        "",
    )
    .await;
    assert_eq!(body["title"], "Not Found");
    assert!(body["instance"]
        .as_str()
        .unwrap()
        .starts_with("urn:nps:request:"));
    assert_problem(
        admin
            .get(format!("{url}/api/v1/ActivitySession/not-a-uuid"))
            .send()
            .await
            .unwrap(),
        &[400],
        "",
    )
    .await;

    // No token, a forged token, a pre-MFA token: 401.
    let id = {
        let s = create_session(&admin, url, json!({})).await;
        s["id"].as_str().unwrap().to_string()
    };
    for client in [anonymous.clone(), authed_client("forged-token")] {
        assert_problem(
            client
                .delete(format!("{url}/api/v1/ActivitySession/{id}"))
                .send()
                .await
                .unwrap(),
            &[401],
            "",
        )
        .await;
    }
    let pre: String = anonymous
        .post(format!("{url}/signinBody"))
        .json(&json!({"Login": "admin", "Password": nps_testkit::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let body = assert_problem(
        authed_client(&pre)
            .get(format!("{url}/api/v1/ActivitySession/{id}"))
            .send()
            .await
            .unwrap(),
        &[401],
        "",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("MFA"), "{body}");

    // A User on an Admin operation: 403.
    assert_problem(
        alice
            .get(format!("{url}/api/v1/ActivitySession?status=active"))
            .send()
            .await
            .unwrap(),
        &[403],
        "",
    )
    .await;

    // The token is checked before the input, as ASP.NET does: malformed
    // requests without a valid token are 401 (or 403), not 400, 413 or 415.
    let sessions = format!("{url}/api/v1/ActivitySession");
    for (request, status) in [
        (
            anonymous
                .post(&sessions)
                .header("content-type", "application/json")
                .body("{bad"),
            401,
        ),
        (
            anonymous
                .post(&sessions)
                .json(&json!({"note": "x".repeat(70_000)})),
            401,
        ),
        (
            anonymous
                .post(&sessions)
                .header("content-type", "text/plain")
                .body("hi"),
            401,
        ),
        (anonymous.delete(format!("{sessions}/not-a-uuid")), 401),
        (
            authed_client("forged-token").get(format!("{sessions}/not-a-uuid")),
            401,
        ),
        (alice.get(format!("{sessions}?take=abc")), 403),
        // The pre-MFA token too, before the code is read.
        (
            anonymous
                .post(format!("{url}/signin2fa"))
                .header("content-type", "application/json")
                .body("{bad"),
            401,
        ),
        (
            authed_client("forged-token")
                .post(format!("{url}/signin2fa"))
                .header("content-type", "text/plain")
                .body("123456"),
            401,
        ),
    ] {
        let body = assert_problem(request.send().await.unwrap(), &[status], "").await;
        assert!(body["instance"].is_string(), "{body}");
    }
    // With a valid token, the input's own failure names its request.
    for (request, status) in [
        (
            admin
                .post(&sessions)
                .header("content-type", "application/json")
                .body("{bad"),
            400,
        ),
        (
            admin
                .post(&sessions)
                .json(&json!({"note": "x".repeat(70_000)})),
            413,
        ),
        (
            admin
                .post(&sessions)
                .header("content-type", "text/plain")
                .body("hi"),
            415,
        ),
        (admin.get(format!("{sessions}?take=abc")), 400),
    ] {
        let body = assert_problem(request.send().await.unwrap(), &[status], "").await;
        assert!(
            body["instance"]
                .as_str()
                .is_some_and(|i| i.starts_with("urn:nps:request:")),
            "{body}"
        );
    }

    // Another user's session: 404, as if it did not exist, for every operation.
    for resp in [
        alice
            .get(format!("{url}/api/v1/ActivitySession/{id}"))
            .send()
            .await
            .unwrap(),
        alice
            .delete(format!("{url}/api/v1/ActivitySession/{id}"))
            .send()
            .await
            .unwrap(),
        alice
            .get(format!("{url}/api/v1/ActivitySession/{id}/Log"))
            .send()
            .await
            .unwrap(),
        alice
            .post(format!("{url}/api/v1/ActivitySession/{id}/Extend"))
            .json(&10)
            .send()
            .await
            .unwrap(),
    ] {
        assert_problem(resp, &[404], "").await;
    }
    // ... and the admin's session is untouched.
    assert_eq!(get_session(&admin, url, &id).await["status"], "Active");

    // Alice sees her own session.
    let mine = create_session(&alice, url, json!({"note": "mine"})).await;
    let mine_id = mine["id"].as_str().unwrap();
    assert_eq!(get_session(&alice, url, mine_id).await["note"], "mine");
}

#[tokio::test]
async fn create_schedules_validates_and_lists_newest_first() {
    let server = TestServer::start();
    let url = &server.url;
    let admin = authed_client(&server.admin_token());
    let post = |body: Value| {
        let admin = admin.clone();
        async move {
            admin
                .post(format!("{url}/api/v1/ActivitySession"))
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };

    // A start in the future is Pending; ending it cancels it at once.
    let start = chrono::Utc::now() + chrono::Duration::hours(1);
    let pending: Value = post(json!({"startDateTimeUtc": start, "activityName": "later"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pending["status"], "Pending");
    assert!(pending["actualStartDateTimeUtc"].is_null());
    let id = pending["id"].as_str().unwrap();
    let ended: Value = admin
        .delete(format!("{url}/api/v1/ActivitySession/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ended["status"], "Cancelled");

    // Property names are matched without regard to case, as NPS (ASP.NET)
    // does: a PascalCase request is scheduled as asked, not started now.
    let end = start + chrono::Duration::hours(1);
    let pascal: Value = post(json!({"StartDateTimeUtc": start, "EndDateTimeUtc": end,
        "ActivityName": "pascal", "Note": "n"}))
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(pascal["status"], "Pending", "{pascal}");
    assert_eq!(pascal["activityName"], "pascal");
    assert_eq!(pascal["note"], "n");
    let scheduled_end =
        chrono::DateTime::parse_from_rfc3339(pascal["scheduledEndDateTimeUtc"].as_str().unwrap())
            .unwrap();
    assert!(
        (scheduled_end.with_timezone(&chrono::Utc) - end)
            .num_seconds()
            .abs()
            < 1,
        "{pascal}"
    );

    // Default end: start + the configured maximum length (8 h).
    let now: Value = post(json!({})).await.json().await.unwrap();
    let s =
        chrono::DateTime::parse_from_rfc3339(now["scheduledStartDateTimeUtc"].as_str().unwrap())
            .unwrap();
    let e = chrono::DateTime::parse_from_rfc3339(now["scheduledEndDateTimeUtc"].as_str().unwrap())
        .unwrap();
    assert_eq!(e - s, chrono::Duration::hours(8));

    // Bad input: 400 naming the field; nothing is stored.
    let before: Vec<Value> = get_json(&admin, format!("{url}/api/v1/ActivitySession")).await;
    let body = assert_problem(
        post(json!({"startDateTimeUtc": start, "endDateTimeUtc": start - chrono::Duration::minutes(1)})).await, &[400], "")
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("endDateTimeUtc"),
        "{body}"
    );
    let body = assert_problem(post(json!({"note": "x".repeat(5000)})).await, &[400], "").await;
    assert!(body["detail"].as_str().unwrap().contains("note"), "{body}");
    let body = assert_problem(post(json!({"managedAccountId": "nope"})).await, &[400], "").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("managedAccountId"),
        "{body}"
    );
    let after: Vec<Value> = get_json(&admin, format!("{url}/api/v1/ActivitySession")).await;
    assert_eq!(before.len(), after.len());

    // Listing: newest first, by category, bounded by skip/take.
    assert_eq!(after[0]["id"], now["id"]);
    let active: Vec<Value> = get_json(
        &admin,
        format!("{url}/api/v1/ActivitySession?status=active"),
    )
    .await;
    assert!(active.iter().all(|s| s["status"] == "Active"));
    assert_eq!(active.len(), 1);
    let historical: Vec<Value> = get_json(
        &admin,
        format!("{url}/api/v1/ActivitySession?status=historical"),
    )
    .await;
    assert_eq!(historical.len(), 1);
    assert_eq!(historical[0]["status"], "Cancelled");
    let page: Vec<Value> = get_json(
        &admin,
        format!("{url}/api/v1/ActivitySession?skip=1&take=1"),
    )
    .await;
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["id"], after[1]["id"]);
    let body = assert_problem(
        admin
            .get(format!("{url}/api/v1/ActivitySession?take=5000"))
            .send()
            .await
            .unwrap(),
        &[400],
        "",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("take"), "{body}");
    // Query names and the status are read without regard to case, as NPS
    // (ASP.NET) reads them: a filter is never dropped for its spelling.
    let list = |query: &'static str| {
        get_json::<Vec<Value>>(&admin, format!("{url}/api/v1/ActivitySession?{query}"))
    };
    let pending = list("status=pending").await;
    assert!(!pending.is_empty());
    assert_eq!(list("Status=Pending").await, pending);
    assert_eq!(list("STATUS=pending&Take=1").await.len(), 1);
    assert!(list("").await.len() > pending.len());
}

#[tokio::test]
async fn extend_honours_its_limits() {
    let server = TestServer::start_with(ServerOptions {
        config_toml: Some("[sessions]\nmax_extensions = 2\nmax_extension_minutes = 30\n".into()),
        ..Default::default()
    });
    let url = &server.url;
    let admin = authed_client(&server.admin_token());
    let s = create_session(&admin, url, json!({})).await;
    let id = s["id"].as_str().unwrap();
    let end0 = chrono::DateTime::parse_from_rfc3339(s["scheduledEndDateTimeUtc"].as_str().unwrap())
        .unwrap();
    let extend = |minutes: i64| {
        let admin = admin.clone();
        async move {
            admin
                .post(format!("{url}/api/v1/ActivitySession/{id}/Extend"))
                .json(&minutes)
                .send()
                .await
                .unwrap()
        }
    };
    let once: Value = extend(30).await.json().await.unwrap();
    let end1 =
        chrono::DateTime::parse_from_rfc3339(once["scheduledEndDateTimeUtc"].as_str().unwrap())
            .unwrap();
    assert_eq!(end1 - end0, chrono::Duration::minutes(30));
    assert_eq!(once["sessionExtensionCount"], 1);
    assert_eq!(once["sessionExtensionMinutes"], 30);
    for minutes in [0, -1, 31] {
        let body = assert_problem(extend(minutes).await, &[400], "").await;
        assert!(
            body["detail"].as_str().unwrap().contains("minutes"),
            "{body}"
        );
    }
    // An unknown session is a 404, whatever the minutes.
    let unknown = format!("{url}/api/v1/ActivitySession/{}", uuid::Uuid::new_v4());
    let response = admin
        .post(format!("{unknown}/Extend"))
        .json(&-1)
        .send()
        .await
        .unwrap();
    assert_problem(response, &[404], "").await;
    assert_eq!(extend(5).await.status(), 200);
    let body = assert_problem(extend(5).await, &[400], "").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("extended 2 times"),
        "{body}"
    );

    admin
        .delete(format!("{url}/api/v1/ActivitySession/{id}"))
        .send()
        .await
        .unwrap();
    wait_for_status(&admin, url, id, "Cancelled").await;
    let body = assert_problem(extend(5).await, &[409], "").await;
    // A refusal of the store names its request like every other failure.
    assert!(
        body["instance"]
            .as_str()
            .is_some_and(|i| i.starts_with("urn:nps:request:")),
        "{body}"
    );
}

#[tokio::test]
async fn a_restart_keeps_users_tokens_sessions_and_logs() {
    let mut server = TestServer::start();
    let token = server.admin_token();
    let http = authed_client(&token);
    let s = create_session(&http, &server.url, json!({"ticket": "CHG-1"})).await;
    let id = s["id"].as_str().unwrap().to_string();
    let log_before = log_messages(&http, &server.url, &id).await;

    server.restart();
    // The old token still works; the session and its log are there.
    let again = get_session(&http, &server.url, &id).await;
    assert_eq!(again["ticket"], "CHG-1");
    assert_eq!(again["status"], "Active");
    assert_eq!(log_messages(&http, &server.url, &id).await, log_before);
    // The first start's bootstrap does not run again: no new credentials printed.
    assert!(!server.startup_output.contains("Created the first Admin"));
}

#[tokio::test]
async fn sigkill_while_cancelling_finishes_the_end_after_restart() {
    // The end action hangs the first time it runs (as if the server died
    // mid-revocation); run again after the restart, it succeeds.
    let dir = std::env::temp_dir().join(format!("nps-sigkill-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let runs = dir.join("runs");
    let script = format!(
        "echo \"$NPS_ACTION_KEY\" >> '{runs}'; if [ $(wc -l < '{runs}') -eq 1 ]; then sleep 60; fi",
        runs = runs.display()
    );
    let config = format!(
        "[[actions.end]]\nkind = \"command\"\nprogram = \"/bin/sh\"\nargs = [\"-c\", {script:?}]\ntimeout_secs = 120\n"
    );
    let mut server = TestServer::start_with(ServerOptions {
        config_toml: Some(config),
        ..Default::default()
    });
    let http = authed_client(&server.admin_token());
    let s = create_session(&http, &server.url, json!({})).await;
    let id = s["id"].as_str().unwrap().to_string();
    let resp = http
        .delete(format!("{}/api/v1/ActivitySession/{id}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    // The action is running (it wrote its line): kill the server.
    eventually(
        Duration::from_secs(10),
        "the end action to start",
        || async {
            std::fs::read_to_string(&runs)
                .ok()
                .filter(|s| !s.is_empty())
        },
    )
    .await;
    assert_eq!(
        get_session(&http, &server.url, &id).await["status"],
        "Cancelling"
    );
    server.kill();

    server.restart();
    let done = wait_for_status(&http, &server.url, &id, "Cancelled").await;
    assert_eq!(done["status"], "Cancelled");
    let lines: Vec<String> = std::fs::read_to_string(&runs)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    // At least once: the interrupted action ran again, with the same key.
    assert_eq!(lines, vec![format!("{id}:end:0"), format!("{id}:end:0")]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn fifty_concurrent_deletes_all_get_202_and_end_once() {
    let dir = std::env::temp_dir().join(format!("nps-fifty-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let runs = dir.join("runs");
    let config = format!(
        "[[actions.end]]\nkind = \"command\"\nprogram = \"/bin/sh\"\nargs = [\"-c\", \"echo $NPS_ACTION_KEY >> '{}'\"]\n",
        runs.display()
    );
    let server = TestServer::start_with(ServerOptions {
        config_toml: Some(config),
        ..Default::default()
    });
    let http = authed_client(&server.admin_token());
    let s = create_session(&http, &server.url, json!({})).await;
    let id = s["id"].as_str().unwrap().to_string();

    let url = format!("{}/api/v1/ActivitySession/{id}", server.url);
    let answers = futures::future::join_all((0..50).map(|_| {
        let http = http.clone();
        let url = url.clone();
        async move { http.delete(url).send().await.unwrap().status().as_u16() }
    }))
    .await;
    assert_eq!(answers, vec![202; 50]);

    wait_for_status(&http, &server.url, &id, "Cancelled").await;
    let log = log_messages(&http, &server.url, &id).await;
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("Active -> Cancelling"))
            .count(),
        1,
        "{log:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&runs).unwrap().lines().count(),
        1,
        "the end action ran more than once"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
