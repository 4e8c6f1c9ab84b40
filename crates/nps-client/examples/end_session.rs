//! Ends an activity session on a live server and waits until it is over,
//! printing each state and log line on the way: the client's whole loop in
//! one file (sign in, end, watch).
//!
//! ```text
//! NPS_URL=https://nps.example.com NPS_LOGIN=alice NPS_PASSWORD=... NPS_MFA_CODE=123456 \
//!     cargo run -p nps-client --example end_session -- <SESSION_ID>
//! ```
//!
//! Without a session id it first creates a session, so that there is one to
//! end. `NPS_CA_CERT=ca.pem` trusts a private CA; `NPS_SKIP_CERTIFICATE_CHECK=1`
//! accepts any certificate (lab servers only). Exits 0 when the session ends
//! Cancelled or Complete, 1 otherwise.

use std::process::ExitCode;
use std::time::Duration;

use nps_client::types::ActivitySessionRequest;
use nps_client::{ended_cleanly, Connection, Error, Progress, WaitOptions};

fn setting(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| Error::Settings(format!("set {name}")))
}

async fn run() -> Result<bool, Error> {
    let mut connection = Connection::new(&setting("NPS_URL")?)?;
    if let Ok(ca) = std::env::var("NPS_CA_CERT") {
        connection = connection.with_ca_certificate_file(ca)?;
    }
    if std::env::var("NPS_SKIP_CERTIFICATE_CHECK").as_deref() == Ok("1") {
        connection = connection.skip_certificate_check();
    }
    let nps = connection
        .sign_in(
            &setting("NPS_LOGIN")?,
            &setting("NPS_PASSWORD")?,
            &setting("NPS_MFA_CODE")?,
        )
        .await?
        .client;

    let session_id = match std::env::args().nth(1) {
        Some(id) => id
            .parse()
            .map_err(|e| Error::Settings(format!("`{id}` is not a session id: {e}")))?,
        None => {
            let request = ActivitySessionRequest {
                activity_name: Some("end_session example".into()),
                ..Default::default()
            };
            let created = nps.create_async(&request).await?.into_inner();
            println!("created session {} ({})", created.id, created.status);
            created.id
        }
    };

    let options = WaitOptions {
        timeout: Duration::from_secs(120),
        follow_log: true,
        ..WaitOptions::default()
    };
    let ended = nps
        .end_session_and_watch(&session_id, &options, |progress| match progress {
            Progress::Status(s) => println!(
                "status: {} {}",
                s.status,
                s.status_description.as_deref().unwrap_or_default()
            ),
            Progress::Log(line) => println!(
                "log:    {}",
                line.log_message.as_deref().unwrap_or_default()
            ),
        })
        .await?;
    println!("session {} ended {}", ended.id, ended.status);
    Ok(ended_cleanly(ended.status))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
