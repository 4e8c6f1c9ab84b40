//! What the benchmark asks of the server one request at a time: signing in
//! (signinBody, then signin2fa with a TOTP code computed here), creating
//! sessions, and the end-latency probe. These measure the server, not load,
//! so they are plain sequential loops; load comes from wrk.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use totp_rs::{Algorithm, Builder, Secret};

use super::server;

/// The request body of every session the benchmark creates (and so, through
/// the template, of every seeded one).
pub fn session_request() -> Value {
    json!({
        "activityName": "Benchmark",
        "managedResourceName": "bench-target-01",
        "credentialUsername": "bench-user",
        "note": "created by cargo xtask bench",
    })
}

fn http_err(what: &str) -> impl Fn(reqwest::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// A client that sends `Authorization: Bearer <token>` on every request.
pub fn authed(token: &str) -> Result<Client, String> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}")
            .parse()
            .map_err(|_| "the token is not a header value".to_string())?,
    );
    Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(http_err("build an HTTP client"))
}

fn code_at_step(step: u64) -> Result<String, String> {
    let secret = Secret::try_from_base32(server::TOTP_SECRET)
        .map_err(|e| format!("the TOTP secret is not base32: {e:?}"))?;
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret)
        .build_noncompliant();
    Ok(totp.generate(step * 30).to_string())
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Signs in as the bootstrapped Admin and answers the MFA token. A code is
/// accepted once per user: when this step's has been used, the next step's
/// is tried (the server allows one step of skew), then a fresh step awaited.
pub async fn sign_in(url: &str) -> Result<String, String> {
    let http = Client::new();
    for _ in 0..3 {
        let pre: String = http
            .post(format!("{url}/signinBody"))
            .json(&json!({"Login": server::LOGIN, "Password": server::PASSWORD}))
            .send()
            .await
            .map_err(http_err("POST /signinBody"))?
            .error_for_status()
            .map_err(http_err("POST /signinBody"))?
            .json()
            .await
            .map_err(http_err("the answer of /signinBody"))?;
        let step = unix_now().as_secs() / 30;
        for s in [step, step + 1] {
            let resp = http
                .post(format!("{url}/signin2fa"))
                .bearer_auth(&pre)
                .json(&code_at_step(s)?)
                .send()
                .await
                .map_err(http_err("POST /signin2fa"))?;
            if resp.status().is_success() {
                return resp
                    .json()
                    .await
                    .map_err(http_err("the answer of /signin2fa"));
            }
        }
        let wait = 30 - unix_now().as_secs() % 30;
        tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(200)).await;
    }
    Err("could not sign in with a TOTP code in three steps".into())
}

/// CreateAsync; answers the new session's id.
pub async fn create_session(http: &Client, url: &str) -> Result<String, String> {
    let resp = http
        .post(format!("{url}/api/v1/ActivitySession"))
        .json(&session_request())
        .send()
        .await
        .map_err(http_err("CreateAsync"))?;
    if resp.status() != StatusCode::CREATED {
        return Err(format!("CreateAsync answered {}", resp.status()));
    }
    let body: Value = resp.json().await.map_err(http_err("CreateAsync's body"))?;
    body["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("CreateAsync answered no id: {body}"))
}

/// Round trips of GET /ping, one at a time: the baseline of the end latency.
pub async fn ping_latencies(url: &str, count: usize) -> Result<Vec<Duration>, String> {
    let http = Client::new();
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let t0 = Instant::now();
        let resp = http
            .get(format!("{url}/ping"))
            .send()
            .await
            .map_err(http_err("GET /ping"))?;
        let ok = resp.status().is_success();
        resp.bytes().await.map_err(http_err("GET /ping"))?;
        if !ok {
            return Err("GET /ping failed".into());
        }
        samples.push(t0.elapsed());
    }
    Ok(samples)
}

/// One session ended: the DELETE's answer, and the terminal state seen.
pub struct EndSample {
    /// From sending DELETE to its 202.
    pub accepted: Duration,
    /// From sending DELETE to GetByIdAsync first showing a terminal status.
    pub ended: Duration,
}

const TERMINAL: [&str; 5] = [
    "Complete",
    "Failed",
    "Cancelled",
    "ApprovalDenied",
    "ApprovalFailed",
];

/// For each session: DELETE, then GetByIdAsync back to back until the status
/// is terminal. One session at a time, so each figure is the pipeline's own
/// latency, not a queue's.
pub async fn end_latencies(
    http: &Client,
    url: &str,
    ids: &[String],
) -> Result<Vec<EndSample>, String> {
    let mut samples = Vec::with_capacity(ids.len());
    for id in ids {
        let session = format!("{url}/api/v1/ActivitySession/{id}");
        let t0 = Instant::now();
        let resp = http
            .delete(&session)
            .send()
            .await
            .map_err(http_err("DeleteAsync"))?;
        let status = resp.status();
        resp.bytes().await.map_err(http_err("DeleteAsync"))?;
        if status != StatusCode::ACCEPTED {
            return Err(format!("DeleteAsync of {id} answered {status}"));
        }
        let accepted = t0.elapsed();
        loop {
            let body: Value = http
                .get(&session)
                .send()
                .await
                .map_err(http_err("GetByIdAsync"))?
                .error_for_status()
                .map_err(http_err("GetByIdAsync"))?
                .json()
                .await
                .map_err(http_err("GetByIdAsync's body"))?;
            let status = body["status"].as_str().unwrap_or_default();
            if TERMINAL.contains(&status) {
                if status != "Cancelled" {
                    return Err(format!(
                        "session {id} ended {status}, not Cancelled: see its log"
                    ));
                }
                break;
            }
            if t0.elapsed() > Duration::from_secs(60) {
                return Err(format!("session {id} did not end within 60 s"));
            }
        }
        samples.push(EndSample {
            accepted,
            ended: t0.elapsed(),
        });
    }
    Ok(samples)
}
