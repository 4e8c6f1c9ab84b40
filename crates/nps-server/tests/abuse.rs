//! Abuse, against the real `nps-server` binary: tokens that must not open
//! anything, input built to break parsers and SQL, and bursts of wrong
//! passwords and codes. Every refusal is a ProblemDetails with a 4xx status
//! (401, 403, 404 for tokens; a 4xx that names the bad field for input), and
//! the database is the same afterwards.

use std::time::{SystemTime, UNIX_EPOCH};

use nps_testkit::{
    assert_problem, authed_client, code_at_step, create_session, current_step, get_session,
    sessions_url, Credentials, TestServer,
};
use reqwest::{Method, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Asserts a 4xx ProblemDetails whose detail names `field`.
async fn names(resp: Response, status: u16, field: &str, what: &str) {
    let body = assert_problem(resp, &[status], what).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains(field),
        "{what}: the detail does not name {field:?}: {detail}"
    );
}

/// One request of every secured operation on session `id`.
fn secured_requests(
    http: &reqwest::Client,
    url: &str,
    id: &str,
) -> Vec<(String, reqwest::RequestBuilder)> {
    let base = sessions_url(url);
    vec![
        ("CreateAsync".into(), http.post(&base).json(&json!({}))),
        (
            "GetAllActivitySessionsByStatusAsync".into(),
            http.get(&base),
        ),
        ("GetByIdAsync".into(), http.get(format!("{base}/{id}"))),
        ("DeleteAsync".into(), http.delete(format!("{base}/{id}"))),
        (
            "ExtendAsync".into(),
            http.post(format!("{base}/{id}/Extend")).json(&10),
        ),
        (
            "GetSessionLogsAsync".into(),
            http.get(format!("{base}/{id}/Log")),
        ),
    ]
}

async fn pre_mfa_token(url: &str, login: &str, password: &str) -> String {
    let resp = reqwest::Client::new()
        .post(format!("{url}/signinBody"))
        .json(&json!({"Login": login, "Password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "signinBody for {login}");
    resp.json().await.unwrap()
}

async fn send_code(url: &str, pre: &str, code: &str) -> Response {
    reqwest::Client::new()
        .post(format!("{url}/signin2fa"))
        .bearer_auth(pre)
        .json(&code)
        .send()
        .await
        .unwrap()
}

/// Six digits that are not a valid code of this secret right now.
fn wrong_code(secret: &str) -> String {
    let step = current_step();
    let valid: Vec<String> = (step - 1..=step + 2)
        .map(|s| code_at_step(secret, s))
        .collect();
    (0..10)
        .map(|d| format!("{d}{d}{d}{d}{d}{d}"))
        .find(|c| !valid.contains(c))
        .unwrap()
}

/// Every session and every log line, as the Admin sees them.
async fn everything(http: &reqwest::Client, url: &str) -> Value {
    let sessions: Value = http
        .get(format!("{}?take=1000", sessions_url(url)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut all = Vec::new();
    for s in sessions.as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        let log: Value = http
            .get(format!("{}/{id}/Log?take=1000", sessions_url(url)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all.push(json!({"session": s, "log": log}));
    }
    Value::Array(all)
}

#[tokio::test]
async fn tokens_that_are_forged_pre_mfa_expired_revoked_or_someone_elses_open_nothing() {
    let server = TestServer::start();
    let url = server.url.clone();
    let admin = authed_client(&server.admin_token());
    let admins = create_session(&admin, &url, json!({"note": "the admin's"})).await;
    let admins_id = admins["id"].as_str().unwrap().to_string();
    let before = everything(&admin, &url).await;

    // Forged, malformed or missing: 401 on every secured operation.
    let forged = [
        "forged".to_string(),
        "A".repeat(43),
        format!("{}x", server.admin_token()),
        Uuid::new_v4().to_string(),
    ];
    for token in &forged {
        for (op, req) in secured_requests(&authed_client(token), &url, &admins_id) {
            assert_problem(
                req.send().await.unwrap(),
                &[401],
                &format!("{op} with forged token {token:?}"),
            )
            .await;
        }
    }
    let anonymous = reqwest::Client::new();
    for (op, req) in secured_requests(&anonymous, &url, &admins_id) {
        assert_problem(
            req.send().await.unwrap(),
            &[401],
            &format!("{op} without a token"),
        )
        .await;
    }
    for header in ["Basic YWRtaW46eA==", "Bearer", "Bearer  ", "bearer\tx"] {
        let resp = anonymous
            .get(format!("{}/{admins_id}", sessions_url(&url)))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_problem(resp, &[401], &format!("Authorization: {header:?}")).await;
    }

    // Pre-MFA: the token of /signinBody opens only /signin2fa.
    let pre = pre_mfa_token(&url, "admin", nps_testkit::ADMIN_PASSWORD).await;
    for (op, req) in secured_requests(&authed_client(&pre), &url, &admins_id) {
        let body = assert_problem(
            req.send().await.unwrap(),
            &[401],
            &format!("{op} with a pre-MFA token"),
        )
        .await;
        assert!(body["detail"].as_str().unwrap().contains("MFA"), "{body}");
    }
    // ... and an MFA token does not stand in for it at /signin2fa.
    let resp = send_code(
        &url,
        &server.admin_token(),
        &code_at_step(nps_testkit::ADMIN_TOTP_SECRET, current_step()),
    )
    .await;
    assert_problem(resp, &[401], "signin2fa with an MFA token").await;

    // Expired: a token whose lifetime has passed (its expiry is moved into
    // the past in the database, as eight hours of waiting would).
    let dora = server.add_user("dora", "user");
    let expired = nps_testkit::sign_in(&url, &dora).await;
    let conn = rusqlite::Connection::open(server.database()).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    let past = (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64)
        - 1_000_000;
    let hash: [u8; 32] = Sha256::digest(expired.as_bytes()).into();
    let changed = conn
        .execute(
            "UPDATE tokens SET expires_at = ?1 WHERE hash = ?2",
            rusqlite::params![past, hash.to_vec()],
        )
        .unwrap();
    assert_eq!(changed, 1, "the token's row");
    drop(conn);
    for (op, req) in secured_requests(&authed_client(&expired), &url, &admins_id) {
        let body = assert_problem(
            req.send().await.unwrap(),
            &[401],
            &format!("{op} with an expired token"),
        )
        .await;
        assert!(
            body["detail"].as_str().unwrap().contains("expired"),
            "{body}"
        );
    }

    // Revoked after the MFA lockout: five wrong codes revoke the pre-MFA
    // token, and then even the right code is refused with it.
    let erin = server.add_user("erin", "user");
    let pre = pre_mfa_token(&url, &erin.login, &erin.password).await;
    let wrong = wrong_code(&erin.totp_secret);
    for attempt in 1..=5 {
        let body = assert_problem(
            send_code(&url, &pre, &wrong).await,
            &[401],
            &format!("wrong code {attempt}"),
        )
        .await;
        if attempt == 5 {
            assert!(
                body["detail"].as_str().unwrap().contains("revoked"),
                "{body}"
            );
        }
    }
    let right = code_at_step(&erin.totp_secret, current_step());
    assert_problem(
        send_code(&url, &pre, &right).await,
        &[401],
        "the right code with a revoked token",
    )
    .await;
    for (op, req) in secured_requests(&authed_client(&pre), &url, &admins_id) {
        assert_problem(
            req.send().await.unwrap(),
            &[401],
            &format!("{op} with a revoked pre-MFA token"),
        )
        .await;
    }

    // Another user's session: 404 as if it did not exist, on every operation
    // on one session; the Admin's listing is 403 for a User.
    let alice = authed_client(&server.token_for(&server.add_user("alice", "user")));
    let bob = authed_client(&server.token_for(&server.add_user("bob", "user")));
    let bobs = create_session(&bob, &url, json!({"note": "bob's"})).await;
    let bobs_id = bobs["id"].as_str().unwrap().to_string();
    let bobs_before = get_session(&bob, &url, &bobs_id).await;
    for victim in [&admins_id, &bobs_id] {
        for (op, req) in secured_requests(&alice, &url, victim) {
            let expected: &[u16] = match op.as_str() {
                // Creating is allowed, and creates Alice's own session.
                "CreateAsync" => continue,
                "GetAllActivitySessionsByStatusAsync" => &[403],
                _ => &[404],
            };
            assert_problem(
                req.send().await.unwrap(),
                expected,
                &format!("Alice: {op} on {victim}"),
            )
            .await;
        }
    }
    // Claiming to be someone else in the body changes nothing either.
    let mine = create_session(
        &alice,
        &url,
        json!({"createdBy": admins["createdBy"], "createdByUserName": "admin", "createdFromAddress": "10.0.0.1"}),
    )
    .await;
    assert_eq!(mine["createdByUserName"], "alice");
    assert_ne!(mine["createdBy"], admins["createdBy"]);
    assert_eq!(mine["createdFromAddress"], "127.0.0.1");

    // Nothing the refused requests aimed at has changed.
    assert_eq!(get_session(&bob, &url, &bobs_id).await, bobs_before);
    let after = everything(&admin, &url).await;
    let untouched: Vec<&Value> = after
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            before
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["session"]["id"] == e["session"]["id"])
        })
        .collect();
    assert_eq!(
        Value::Array(untouched.into_iter().cloned().collect()),
        before
    );
}

#[tokio::test]
async fn hostile_input_is_a_4xx_problem_naming_the_field_and_changes_nothing() {
    let server = TestServer::start();
    let url = server.url.clone();
    let admin = authed_client(&server.admin_token());

    // SQL and LIKE metacharacters are data: stored and read back verbatim,
    // and so are tabs and line breaks (a note may have lines).
    let hostile = json!({
        "activityName": "x'); DROP TABLE sessions; --",
        "managedResourceName": "%",
        "note": "100% _done_ \\ [a-z]* ? \" ' ` ; -- /* */\r\n\tline two",
        "ticket": "' OR '1'='1",
        "credentialUsername": "_",
        "customFields": [{"name": "%'_", "value": "\u{fffd}\u{10ffff}"}],
    });
    let s = create_session(&admin, &url, hostile.clone()).await;
    let read = get_session(&admin, &url, s["id"].as_str().unwrap()).await;
    for field in ["activityName", "managedResourceName", "note", "ticket"] {
        assert_eq!(read[field], hostile[field], "{field}");
    }
    assert_eq!(read["loginAccountName"], "_");
    let fields: Value = serde_json::from_str(read["customFields"].as_str().unwrap()).unwrap();
    assert_eq!(fields[0]["name"], "%'_");
    assert_eq!(fields[0]["value"], "\u{fffd}\u{10ffff}");

    // filterText is a plain substring: % and _ are not wildcards, quotes are
    // not SQL. A login with all three puts them into a log line.
    let odd = server.add_user("o'brien_%", "user");
    let odd_http = authed_client(&server.token_for(&odd));
    let theirs = create_session(&odd_http, &url, json!({})).await;
    let id = theirs["id"].as_str().unwrap();
    let count = |filter: &'static str| {
        let admin = admin.clone();
        let url = url.clone();
        let id = id.to_string();
        async move {
            let resp = admin
                .get(format!("{}/{id}/Log", sessions_url(&url)))
                .query(&[("filterText", filter)])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "filterText {filter:?}");
            let log: Value = resp.json().await.unwrap();
            log["totalCount"].as_i64().unwrap()
        }
    };
    assert_eq!(count("").await, 1);
    assert_eq!(count("o'brien_%").await, 1);
    assert_eq!(count("n_%").await, 1);
    assert_eq!(count("'").await, 1);
    // As LIKE patterns these would match the line; as text they do not.
    assert_eq!(count("b%n").await, 0);
    assert_eq!(count("o_brien").await, 0);
    assert_eq!(count("%%").await, 0);
    assert_eq!(count("' OR '1'='1").await, 0);
    assert_eq!(count("\\").await, 0);
    // A search may hold what CreateAsync refuses: what a program printed.
    assert_eq!(count("\u{1b}[31m").await, 0);

    // Unknown properties are ignored, as ASP.NET does: none sets what the
    // server decides.
    let forced_id = Uuid::new_v4();
    let s = create_session(
        &admin,
        &url,
        json!({"note": "u", "bogus": {"x": [1]}, "status": "Complete", "id": forced_id, "Locked": true}),
    )
    .await;
    assert_eq!(s["status"], "Active");
    assert_ne!(s["id"], json!(forced_id));
    assert_eq!(s["locked"], false);

    let before = everything(&admin, &url).await;
    let base = sessions_url(&url);
    let some_id = s["id"].as_str().unwrap();

    // A non-UUID id.
    for (method, path) in [
        (Method::GET, format!("{base}/not-a-uuid")),
        (Method::DELETE, format!("{base}/123")),
        (Method::GET, format!("{base}/{some_id}x/Log")),
    ] {
        let resp = admin.request(method.clone(), &path).send().await.unwrap();
        names(resp, 400, "sessionId", &format!("{method} {path}")).await;
    }
    let resp = admin
        .post(format!("{base}/zzz/Extend"))
        .json(&5)
        .send()
        .await
        .unwrap();
    names(resp, 400, "sessionId", "Extend on zzz").await;

    // Bodies of CreateAsync.
    let long = "n".repeat(5000);
    for (body, field) in [
        (
            json!({"startDateTimeUtc": "10000-01-01T00:00:00Z"}),
            "startDateTimeUtc",
        ),
        (
            json!({"startDateTimeUtc": "2024-02-30T00:00:00Z"}),
            "startDateTimeUtc",
        ),
        (
            json!({"startDateTimeUtc": "9999-12-31T23:00:00Z"}),
            "startDateTimeUtc",
        ),
        (
            json!({"endDateTimeUtc": "2020-01-01T00:00:00Z"}),
            "endDateTimeUtc",
        ),
        (
            json!({"endDateTimeUtc": "9999-12-31T23:59:59Z"}),
            "endDateTimeUtc",
        ),
        (
            json!({"endDateTimeUtc": "-0001-01-01T00:00:00Z"}),
            "endDateTimeUtc",
        ),
        (json!({"activityId": "not-a-uuid"}), "activityId"),
        (json!({"managedAccountId": 7}), "managedAccountId"),
        (
            json!({"customFields": [{"name": 5}]}),
            "customFields[0].name",
        ),
        (
            json!({"customFields": [{"customFieldDataType": "Blob"}]}),
            "customFields[0].customFieldDataType",
        ),
        (json!({"customFields": "x"}), "customFields"),
        (
            json!({"customFields": [[null, null, "a", "b"]]}),
            "customFields[0]",
        ),
        (json!({"note": long}), "note"),
        // A NUL would keep every action of the session from starting (so it
        // could never end); escapes would reach operators' terminals.
        (
            json!({"managedResourceName": "web01\u{0}"}),
            "managedResourceName",
        ),
        (json!({"activityName": "\u{1b}[2J"}), "activityName"),
        (
            json!({"customFields": [{"name": "a", "value": "\u{7f}"}]}),
            "customFields[].value",
        ),
        (json!({"ticket": ["a"]}), "ticket"),
    ] {
        let resp = admin.post(&base).json(&body).send().await.unwrap();
        names(
            resp,
            400,
            field,
            &format!(
                "CreateAsync {}",
                body.to_string().chars().take(80).collect::<String>()
            ),
        )
        .await;
    }
    for raw in [
        "[null, null]",
        "{\"note\": \"x\"} trailing",
        "{\"note\": ",
        "null",
        "\"text\"",
    ] {
        let resp = admin
            .post(&base)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        names(resp, 400, "JSON body", &format!("CreateAsync {raw:?}")).await;
    }

    // Query parameters: negative, huge, malformed.
    for (query, field) in [
        ("skip=-1", "skip"),
        ("take=-5", "take"),
        ("take=1001", "take"),
        ("take=99999999999", "take"),
        ("skip=abc", "skip"),
        ("status=bogus", "status"),
        ("targetId=zz", "targetId"),
    ] {
        let resp = admin.get(format!("{base}?{query}")).send().await.unwrap();
        names(resp, 400, field, &format!("list ?{query}")).await;
    }
    let long_filter = "f".repeat(5000);
    for (query, field) in [
        ("startDate=99999-01-01T00:00:00Z".to_string(), "startDate"),
        ("endDate=2024-13-01T00:00:00Z".to_string(), "endDate"),
        ("logLevel=Fatal".to_string(), "logLevel"),
        ("take=5000".to_string(), "take"),
        ("skip=-3".to_string(), "skip"),
        ("orderDescending=maybe".to_string(), "orderDescending"),
        (format!("filterText={long_filter}"), "filterText"),
    ] {
        let resp = admin
            .get(format!("{base}/{some_id}/Log?{query}"))
            .send()
            .await
            .unwrap();
        names(
            resp,
            400,
            field,
            &format!("logs ?{}", &query[..query.len().min(40)]),
        )
        .await;
    }

    // Minutes of ExtendAsync: the body is the field.
    for (raw, field) in [
        ("-5", "minutes"),
        ("0", "minutes"),
        ("100000", "minutes"),
        ("2147483648", "JSON body"),
        ("1.5", "JSON body"),
        ("\"ten\"", "JSON body"),
    ] {
        let resp = admin
            .post(format!("{base}/{some_id}/Extend"))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        names(resp, 400, field, &format!("Extend {raw}")).await;
    }

    // Over the size limit (64 KiB by default): 413.
    let huge = json!({"note": "x".repeat(100 * 1024)});
    let body = assert_problem(
        admin.post(&base).json(&huge).send().await.unwrap(),
        &[413],
        "a 100 KiB body",
    )
    .await;
    assert_eq!(body["title"], "Payload Too Large");

    // Wrong content types: 415, even with a JSON body.
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "multipart/form-data; boundary=x",
    ] {
        let resp = admin
            .post(&base)
            .header("content-type", ct)
            .body("{}")
            .send()
            .await
            .unwrap();
        names(resp, 415, "application/json", &format!("Content-Type {ct}")).await;
    }
    let resp = reqwest::Client::new()
        .post(format!("{url}/signinBody"))
        .header("content-type", "text/plain")
        .body(r#"{"Login": "admin", "Password": "x"}"#)
        .send()
        .await
        .unwrap();
    assert_problem(resp, &[415], "signinBody as text/plain").await;

    // None of that changed anything.
    assert_eq!(everything(&admin, &url).await, before);
    // JSON with a charset parameter is still JSON.
    let resp = admin
        .post(&base)
        .header("content-type", "application/json; charset=utf-8")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

#[tokio::test]
async fn bursts_of_wrong_passwords_and_codes_are_throttled_and_logged() {
    let server = TestServer::start();
    let url = server.url.clone();
    let http = reqwest::Client::new();
    let sign_in = |login: String, password: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            http.post(format!("{url}/signinBody"))
                .json(&json!({"Login": login, "Password": password}))
                .send()
                .await
                .unwrap()
        }
    };

    // Wrong passwords: ten are answered 401, then the login is refused with
    // 429 for a minute, even with the right password.
    let mut refused = 0;
    for i in 0..10 {
        let resp = sign_in("admin".into(), format!("wrong {i}")).await;
        assert_problem(resp, &[401], &format!("wrong password {i}")).await;
        refused += 1;
    }
    let body = assert_problem(
        sign_in("admin".into(), nps_testkit::ADMIN_PASSWORD.into()).await,
        &[429],
        "the right password after ten wrong ones",
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("Too many failed sign-ins"),
        "{body}"
    );
    assert_eq!(refused, 10);
    // An unknown login is throttled the same way (nothing tells it apart).
    for i in 0..10 {
        assert_problem(
            sign_in("nobody".into(), format!("p{i}")).await,
            &[401],
            "unknown login",
        )
        .await;
    }
    assert_problem(
        sign_in("nobody".into(), "p".into()).await,
        &[429],
        "unknown login, 11th",
    )
    .await;

    // Wrong codes: five revoke the pre-MFA token; five more on a new one
    // reach the limit, and then even the password step is refused.
    let frank: Credentials = server.add_user("frank", "user");
    let wrong = wrong_code(&frank.totp_secret);
    for round in 0..2 {
        let pre = pre_mfa_token(&url, &frank.login, &frank.password).await;
        for attempt in 1..=5 {
            assert_problem(
                send_code(&url, &pre, &wrong).await,
                &[401],
                &format!("round {round}, wrong code {attempt}"),
            )
            .await;
        }
    }
    assert_problem(
        sign_in(frank.login.clone(), frank.password.clone()).await,
        &[429],
        "frank's password after ten wrong codes",
    )
    .await;
    // Others are not affected.
    let other = server.add_user("grace", "user");
    assert_eq!(sign_in(other.login, other.password).await.status(), 200);

    // The log records each failure and the moment the throttle shut. It is
    // written through an asynchronous drain: wait for the last lines.
    let expected: [&[&str]; 4] = [
        &[
            "sign-in throttled after repeated failures",
            "admin",
            "wrong login or password",
        ],
        &["sign-in throttled after repeated failures", "nobody"],
        &[
            "sign-in throttled after repeated failures",
            "frank",
            "wrong or reused MFA code",
        ],
        &["pre-MFA token revoked after wrong codes", "frank"],
    ];
    let has =
        |log: &str, needle: &[&str]| log.lines().any(|l| needle.iter().all(|n| l.contains(n)));
    let admin_failures = |log: &str| {
        log.lines()
            .filter(|l| l.contains("sign-in failed") && l.contains("admin"))
            .count()
    };
    let log = server
        .log_when(|log| expected.iter().all(|e| has(log, e)) && admin_failures(log) >= 9)
        .await;
    for needle in expected {
        assert!(has(&log, needle), "no line with {needle:?} in:\n{log}");
    }
    assert!(admin_failures(&log) >= 9, "{log}");
}
