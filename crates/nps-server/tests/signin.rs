//! Sign-in as the reference pages' PowerShell samples perform it:
//! `POST /signinBody`, then `POST /signin2fa` with the TOTP code, against the
//! real `nps-server` binary.

use nps_testkit::{code_at_step, current_step, Credentials, TestServer, ADMIN_PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn sign_in_body(http: &reqwest::Client, url: &str, body: Value) -> reqwest::Response {
    http.post(format!("{url}/signinBody"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn pre_token(http: &reqwest::Client, url: &str, creds: &Credentials) -> String {
    let resp = sign_in_body(
        http,
        url,
        json!({"Login": creds.login, "Password": creds.password}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn two_fa(
    http: &reqwest::Client,
    url: &str,
    pre: Option<&str>,
    code: Value,
) -> reqwest::Response {
    let mut req = http.post(format!("{url}/signin2fa")).json(&code);
    if let Some(pre) = pre {
        req = req.bearer_auth(pre);
    }
    req.send().await.unwrap()
}

async fn detail(resp: reqwest::Response) -> (StatusCode, String) {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16(), "{body}");
    (
        status,
        body["detail"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn unknown_login_and_wrong_password_get_the_same_answer() {
    let server = TestServer::start();
    let http = reqwest::Client::new();
    let url = &server.url;
    let unknown =
        detail(sign_in_body(&http, url, json!({"Login": "nobody", "Password": "x"})).await).await;
    let wrong =
        detail(sign_in_body(&http, url, json!({"Login": "admin", "Password": "x"})).await).await;
    assert_eq!(unknown.0, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown, wrong);
}

#[tokio::test]
async fn property_names_match_without_case_and_codes_may_be_numbers_or_strings() {
    let server = TestServer::start();
    let http = reqwest::Client::new();
    let url = &server.url;
    let admin = Credentials::admin();
    // ASP.NET matches property names without regard to case.
    let resp = sign_in_body(
        &http,
        url,
        json!({"login": "ADMIN", "PASSWORD": ADMIN_PASSWORD, "rememberMe": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("NpsSignIn=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let pre: String = resp.json().await.unwrap();

    // PowerShell sends the bare code: a JSON number (leading zeros lost).
    let step = current_step();
    let code = code_at_step(&admin.totp_secret, step);
    let number: u32 = code.parse().unwrap();
    let resp = two_fa(&http, url, Some(&pre), json!(number)).await;
    assert_eq!(resp.status(), 200);
    let mfa: String = resp.json().await.unwrap();
    assert_ne!(mfa, pre);
    assert!(mfa.len() >= 43, "tokens carry at least 256 bits: {mfa}");

    // The pre-MFA token did its job: it cannot be used again.
    let next = code_at_step(&admin.totp_secret, step + 1);
    let (status, _) = detail(two_fa(&http, url, Some(&pre), json!(next)).await).await;
    assert_eq!(status, 401);

    // A string code, with a new pre-MFA token; the code of the step just
    // used is refused (each code is accepted once), the next one works.
    let pre = pre_token(&http, url, &admin).await;
    let (status, message) = detail(two_fa(&http, url, Some(&pre), json!(code)).await).await;
    assert_eq!(status, 401);
    assert!(message.contains("used already"), "{message}");
    let resp = two_fa(&http, url, Some(&pre), json!(next)).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_bare_code_with_leading_zeros_is_read_as_the_code() {
    // PowerShell's `-Body $MfaCode` sends the code as typed, and one code in
    // ten starts with 0: `012345` is not JSON, yet it is the code.
    let server = TestServer::start();
    let http = reqwest::Client::new();
    let url = &server.url;
    let admin = Credentials::admin();
    let bare = |pre: &str, text: &str| {
        http.post(format!("{url}/signin2fa"))
            .bearer_auth(pre)
            .header("content-type", "application/json")
            .body(text.to_string())
            .send()
    };
    let pre = pre_token(&http, url, &admin).await;
    let step = current_step();
    let wrong = (0..)
        .map(|n| format!("0{n:05}"))
        .find(|c| (step - 1..=step + 2).all(|s| code_at_step(&admin.totp_secret, s) != *c))
        .unwrap();
    let (status, message) = detail(bare(&pre, &wrong).await.unwrap()).await;
    assert_eq!(status, 401, "{message}");
    // No code at all: with a good token, a 400 (the token is checked first).
    let (status, message) = detail(bare(&pre, "{bad").await.unwrap()).await;
    assert_eq!(status, 400, "{message}");
    // The right code, as typed (with its leading zero when it has one).
    let code = code_at_step(&admin.totp_secret, current_step());
    let resp = bare(&pre, &code).await.unwrap();
    assert_eq!(resp.status(), 200, "{code}: {:?}", resp.text().await);
}

#[tokio::test]
async fn the_cookie_of_signin_body_carries_the_sign_in_to_signin2fa() {
    let server = TestServer::start();
    let url = &server.url;
    let user = server.add_user("bob", "user");
    // A client that keeps cookies, as the samples' -WebSession does.
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    pre_token(&http, url, &user).await;
    let code = code_at_step(&user.totp_secret, current_step());
    let resp = two_fa(&http, url, None, json!(code)).await;
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
}

#[tokio::test]
async fn five_wrong_codes_revoke_the_pre_mfa_token() {
    let server = TestServer::start();
    let http = reqwest::Client::new();
    let url = &server.url;
    let user = server.add_user("carol", "user");
    let pre = pre_token(&http, url, &user).await;
    let right = code_at_step(&user.totp_secret, current_step());
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for i in 1..=5 {
        let (status, message) = detail(two_fa(&http, url, Some(&pre), json!(wrong)).await).await;
        assert_eq!(status, 401);
        if i < 5 {
            assert!(message.contains(&format!("{i} of 5")), "{message}");
        } else {
            assert!(message.contains("revoked"), "{message}");
        }
    }
    let (status, _) = detail(two_fa(&http, url, Some(&pre), json!(right)).await).await;
    assert_eq!(
        status, 401,
        "a revoked sign-in must not accept even the right code"
    );
    // A new sign-in works.
    let pre = pre_token(&http, url, &user).await;
    assert_eq!(
        two_fa(&http, url, Some(&pre), json!(right)).await.status(),
        200
    );
}

#[tokio::test]
async fn a_burst_of_wrong_passwords_is_throttled_and_logged() {
    let server = TestServer::start();
    let http = reqwest::Client::new();
    let url = &server.url;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let resp = sign_in_body(&http, url, json!({"Login": "admin", "Password": "guess"})).await;
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(&statuses[10..], &[429, 429]);
    // Even the right password waits out the throttle.
    let (status, message) = detail(
        sign_in_body(
            &http,
            url,
            json!({"Login": "admin", "Password": ADMIN_PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 429);
    assert!(message.contains("Wait a minute"), "{message}");
    let log = server
        .log_when(|log| log.contains("sign-in throttled"))
        .await;
    assert!(log.contains("sign-in throttled"), "{log}");
}

#[tokio::test]
async fn concurrent_tries_cannot_pass_the_limits() {
    // Forty passwords at once for one login: ten are checked (401), the
    // rest refused (429); forty codes at once on one pre-MFA token: five
    // are checked (four say how many tries are left, the fifth revokes it).
    let server = TestServer::start();
    let http = reqwest::Client::new();
    let url = &server.url;
    let guesses =
        (0..40).map(|_| sign_in_body(&http, url, json!({"Login": "admin", "Password": "guess"})));
    let statuses: Vec<u16> = futures::future::join_all(guesses)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    assert_eq!(checked, 10, "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|&&s| s == 429).count(),
        30,
        "{statuses:?}"
    );

    let user = server.add_user("dave", "user");
    let pre = pre_token(&http, url, &user).await;
    let right = code_at_step(&user.totp_secret, current_step());
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let tries =
        (0..40).map(|_| async { detail(two_fa(&http, url, Some(&pre), json!(wrong)).await).await });
    let answers = futures::future::join_all(tries).await;
    let counted = answers
        .iter()
        .filter(|(_, m)| m.contains(" of 5 tries"))
        .count();
    assert_eq!(counted, 4, "{answers:#?}");
    // The server's log has each code it checked: five, and one revocation.
    let checked = |log: &str| log.matches("wrong or reused MFA code").count();
    server
        .log_when(|log| checked(log) >= 5 && log.contains("pre-MFA token revoked"))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let log = server.log_when(|_| true).await;
    assert_eq!(checked(&log), 5, "{log}");
    assert_eq!(log.matches("pre-MFA token revoked").count(), 1, "{log}");
    // The others: the token revoked, or the login throttled by then.
    assert!(
        answers.iter().all(|(s, _)| *s == 401 || *s == 429),
        "{answers:#?}"
    );
}

#[tokio::test]
async fn a_login_cannot_forge_lines_of_the_servers_log() {
    let server = TestServer::start();
    let http = reqwest::Client::new();
    let url = &server.url;
    let forged = "eve\nINFO sign-in succeeded, login: admin\u{1b}[2J";
    let (status, _) =
        detail(sign_in_body(&http, url, json!({"Login": forged, "Password": "x"})).await).await;
    assert_eq!(status, 401);
    let long = "x".repeat(60_000);
    let (status, _) =
        detail(sign_in_body(&http, url, json!({"Login": long, "Password": "x"})).await).await;
    assert_eq!(status, 401);
    let log = server
        .log_when(|log| log.matches("sign-in failed").count() >= 2)
        .await;
    assert!(!log.contains("\nINFO sign-in succeeded"), "{log}");
    assert!(!log.contains('\u{1b}'), "{log}");
    assert!(log.contains(r"eve\nINFO"), "{log}");
    assert!(!log.contains(&"x".repeat(65)), "a login is cut in the log");
}
