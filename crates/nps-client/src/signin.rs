//! Sign-in as the NPS samples do it: `POST /signinBody` with a login and
//! password answers a pre-MFA token (and sets it as a cookie), then
//! `POST /signin2fa` with that token and a TOTP code answers the MFA token
//! that every `/api/v1` call carries as `Authorization: Bearer`.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::types::{MfaCode, SignInBody};
use crate::{Client, Connection, Error};

/// How long the server keeps an MFA token valid unless configured otherwise
/// (`mfa_token_minutes`). The server does not say when a token expires, so
/// an expiry computed from this is a guess that a server configured
/// otherwise makes wrong: `nps` does not show one.
pub const DEFAULT_TOKEN_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::hours(8);

/// An authenticated client and the token it sends.
#[derive(Clone)]
pub struct SignedIn {
    /// Sends `Authorization: Bearer <token>` on every request and keeps the
    /// cookies the server set during sign-in.
    pub client: Client,
    /// The MFA token, to save for later runs (see
    /// [`Connection::client_with_token`]). Treat it as a password.
    pub token: String,
    /// When the server issued the token (this machine's clock).
    pub signed_in_at: DateTime<Utc>,
}

impl SignedIn {
    /// When the token expires if the server keeps the default lifetime (a
    /// guess: see [`DEFAULT_TOKEN_LIFETIME`]).
    pub fn expires_around(&self) -> DateTime<Utc> {
        self.signed_in_at + DEFAULT_TOKEN_LIFETIME
    }
}

/// Halfway through sign-in: the password was accepted, a TOTP code is
/// needed. The pre-MFA token is good for five minutes.
pub struct PendingSignIn {
    connection: Connection,
    cookies: Arc<reqwest::cookie::Jar>,
    pre_mfa_token: String,
}

// Tokens are secrets: debug output shows that they are there, not what they are.
impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("client", &self.client)
            .field("token", &"<redacted>")
            .field("signed_in_at", &self.signed_in_at)
            .finish()
    }
}

impl std::fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("connection", &self.connection)
            .field("pre_mfa_token", &"<redacted>")
            .finish()
    }
}

impl Connection {
    /// Signs in with a login, a password and the current TOTP code, and
    /// answers an authenticated client.
    pub async fn sign_in(
        &self,
        login: &str,
        password: &str,
        mfa_code: &str,
    ) -> Result<SignedIn, Error> {
        self.begin_sign_in(login, password)
            .await?
            .complete(mfa_code)
            .await
    }

    /// The first step of sign-in: checks the login and password. A person
    /// can then be asked for the TOTP code only once the password is known
    /// to be right.
    pub async fn begin_sign_in(&self, login: &str, password: &str) -> Result<PendingSignIn, Error> {
        let cookies = Arc::new(reqwest::cookie::Jar::default());
        let client = Client::new_with_client(self.base_url(), self.http(None, cookies.clone())?);
        let body = SignInBody {
            login: login.to_string(),
            password: password.to_string(),
        };
        let pre_mfa_token = client.sign_in_body(&body).await?.into_inner();
        Ok(PendingSignIn {
            connection: self.clone(),
            cookies,
            pre_mfa_token,
        })
    }
}

impl PendingSignIn {
    /// The second step: sends the TOTP code (six digits, spaces ignored).
    /// A wrong code can be retried with the next code, up to the server's
    /// limit of five.
    pub async fn complete(&self, mfa_code: &str) -> Result<SignedIn, Error> {
        let code: String = mfa_code.chars().filter(|c| !c.is_whitespace()).collect();
        let pre = Client::new_with_client(
            self.connection.base_url(),
            self.connection
                .http(Some(&self.pre_mfa_token), self.cookies.clone())?,
        );
        let token = pre.sign_in2fa(&MfaCode::String(code)).await?.into_inner();
        let signed_in_at = Utc::now();
        let http = self.connection.http(Some(&token), self.cookies.clone())?;
        Ok(SignedIn {
            client: Client::new_with_client(self.connection.base_url(), http),
            token,
            signed_in_at,
        })
    }
}

/// Signs in to the server at `base_url` with the default settings: the
/// one-call form of [`Connection::sign_in`].
pub async fn sign_in(
    base_url: &str,
    login: &str,
    password: &str,
    mfa_code: &str,
) -> Result<SignedIn, Error> {
    Connection::new(base_url)?
        .sign_in(login, password, mfa_code)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_token() {
        let connection = Connection::new("http://127.0.0.1:6500").unwrap();
        let signed_in = SignedIn {
            client: connection.client_with_token("secret-token").unwrap(),
            token: "secret-token".into(),
            signed_in_at: Utc::now(),
        };
        let pending = PendingSignIn {
            connection,
            cookies: Arc::default(),
            pre_mfa_token: "secret-pre-token".into(),
        };
        let shown = format!("{signed_in:?} {pending:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
