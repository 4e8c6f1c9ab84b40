//! `nps login`: password, then MFA code, then the token saved for later
//! commands.
//!
//! What is not given is asked for on the terminal: the login with echo, the
//! password and the code without. Scripts give `--login` (or `NPS_LOGIN`),
//! `NPS_PASSWORD` and `--mfa-code` (or `NPS_MFA_CODE`); the password has no
//! flag so that it never shows in the process list.

use std::io::{BufRead, IsTerminal};

use nps_client::{Connection, Error};
use serde_json::json;

use crate::cli::{LoginArgs, Output};
use crate::console;
use crate::credentials::{SavedToken, Store};
use crate::failure::{Failure, Kind};

/// A person gets this many tries at the MFA code when it is asked for.
const CODE_TRIES: usize = 3;

pub async fn run(
    args: LoginArgs,
    connection: Connection,
    store: Store,
    output: Output,
) -> Result<(), Failure> {
    let login = match args.login {
        Some(login) => login,
        None => ask_login()?,
    };
    let password = match std::env::var("NPS_PASSWORD") {
        Ok(password) => password,
        Err(_) => ask_secret("Password: ", "the password", "set NPS_PASSWORD")?,
    };
    let pending = connection
        .begin_sign_in(&login, &password)
        .await
        .map_err(|e| sign_in_failure(e, "check the login and password"))?;

    let signed_in = match args.mfa_code {
        Some(code) => pending
            .complete(&code)
            .await
            .map_err(|e| sign_in_failure(e, "check the code and the clock of the authenticator"))?,
        None => {
            let mut tries = 1;
            loop {
                let code = ask_secret("MFA code: ", "the MFA code", "give --mfa-code")?;
                match pending.complete(&code).await {
                    Ok(signed_in) => break signed_in,
                    Err(Error::Problem(p)) if p.status == 401 && tries < CODE_TRIES => {
                        console::note(&format!(
                            "{}: {}. Try the next code.",
                            p.title,
                            p.detail.trim_end_matches('.')
                        ));
                        tries += 1;
                    }
                    Err(e) => return Err(sign_in_failure(e, "run `nps login` again")),
                }
            }
        }
    };

    let url = connection.base_url().to_string();
    let saved = SavedToken {
        login: login.clone(),
        token: signed_in.token.clone(),
        signed_in_at: signed_in.signed_in_at,
    };
    let path = store.save(&url, saved.clone())?;
    match output {
        Output::Json => console::print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({
                "url": url,
                "login": login,
                "signedInAt": saved.signed_in_at,
                "credentialsFile": path,
            }))
            .expect("JSON")
        )),
        // No expiry: the server does not say when the token expires, and
        // how long tokens last is its configuration.
        Output::Table => console::print(&format!(
            "Signed in to {url} as {login}.\n\
             The token is saved in {}. It lasts as long as the server allows: \
             when it is refused, run `nps login` again.\n",
            path.display(),
        )),
    }
}

fn sign_in_failure(error: Error, what_to_check: &str) -> Failure {
    let mut failure = Failure::from(error);
    if failure.kind == Kind::NotSignedIn {
        failure = failure.with_hint(format!("sign-in refused: {what_to_check}"));
    }
    failure
}

fn ask_login() -> Result<String, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(
            Failure::new(Kind::Usage, "no login given").with_hint("give --login or NPS_LOGIN")
        );
    }
    console::write_stderr("Login: ");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::new(Kind::Other, format!("cannot read the login: {e}")))?;
    let login = line.trim().to_string();
    if login.is_empty() {
        return Err(
            Failure::new(Kind::Usage, "no login given").with_hint("give --login or NPS_LOGIN")
        );
    }
    Ok(login)
}

/// Asks on the terminal without echo.
fn ask_secret(prompt: &str, what: &str, otherwise: &str) -> Result<String, Failure> {
    rpassword::prompt_password(prompt).map_err(|e| {
        Failure::new(
            Kind::Usage,
            format!("cannot ask for {what} (no terminal?): {e}"),
        )
        .with_hint(otherwise.to_string())
    })
}
