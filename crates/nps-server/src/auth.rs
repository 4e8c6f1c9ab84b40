//! Sign-in (password, then TOTP code), tokens, and the enforcement of the
//! policy table declared in `nps_api::policy`.
//!
//! - Passwords: argon2id (the `argon2` crate's defaults), verified on a
//!   blocking thread. An unknown login is verified against a dummy hash, so it
//!   costs the same time as a wrong password and gets the same answer.
//! - TOTP: RFC 6238 via `totp-rs` (SHA-1, 6 digits, 30 s, ±1 step); each step
//!   is accepted once per user.
//! - Tokens: 256 random bits, base64url; only their SHA-256 is stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{phc::PasswordHash, PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use base64::Engine as _;
use chrono::Utc;
use nps_api::policy::{AuthPolicy, Role};
use sha2::{Digest, Sha256};
use slog::{warn, Logger};
use totp_rs::{Algorithm, Builder, Secret};
use uuid::Uuid;

use crate::config::AuthConfig;
use crate::store::{Store, StoreError, TokenKind, TokenRecord};

/// Name of the cookie `/signinBody` sets.
pub const SIGN_IN_COOKIE: &str = "NpsSignIn";

/// The signed-in caller of an operation.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: Uuid,
    pub login: String,
    pub role: Role,
}

/// Why a caller was turned away.
#[derive(Debug)]
pub enum AuthError {
    Unauthorized(String),
    Forbidden(String),
    Throttled(String),
    Store(StoreError),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        AuthError::Store(e)
    }
}

/// Random bytes from the OS.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the OS random source works");
    buf
}

/// A new token and its hash.
fn new_token() -> (String, [u8; 32]) {
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let hash = hash_token(&token);
    (token, hash)
}

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> String {
    // The salt is random, from the OS.
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("argon2 hashes any password")
        .to_string()
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new random TOTP secret, base32 (160 bits, as RFC 4226 recommends).
pub fn new_totp_secret() -> String {
    Secret::from(random_bytes::<20>()).to_base32()
}

/// The `otpauth://` URI an authenticator app reads.
pub fn otpauth_uri(login: &str, secret_base32: &str) -> String {
    let secret = Secret::try_from_base32(secret_base32).expect("a valid base32 secret");
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret)
        .with_issuer(Some("NPS"))
        .with_account_name(login)
        .build_noncompliant()
        .to_url()
        .unwrap_or_else(|_| format!("otpauth://totp/NPS:{login}?secret={secret_base32}&issuer=NPS"))
}

/// The step a code matches now (±1 step), if any.
fn totp_step(secret_base32: &str, code: &str, now_secs: u64) -> Option<u64> {
    let secret = Secret::try_from_base32(secret_base32).ok()?;
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .build_noncompliant();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp.check(code, now_secs)
}

/// The throttle's window, and how long a login stays blocked once it
/// reached the limit.
const MINUTE: Duration = Duration::from_secs(60);

/// Counts sign-in attempts per login and refuses a burst. An attempt counts
/// from its start, so concurrent attempts cannot go past the limit, and is
/// taken back when it succeeds (see [`Attempt`]).
struct Throttle {
    max_per_minute: u32,
    entries: Mutex<Entries>,
}

struct Entries {
    windows: HashMap<String, Window>,
    /// Windows past their minute are swept out once there are this many.
    sweep_at: usize,
}

/// One login's minute.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: Instant,
    /// Attempts running or failed in this window.
    counted: u32,
    /// Of those, the failed ones.
    failed: u32,
    /// Which minute of this login: an attempt of an earlier one changes
    /// nothing in this one.
    minute: u64,
}

impl Window {
    /// The `minute`th window of a login, beginning now.
    fn fresh(minute: u64) -> Window {
        Window {
            start: Instant::now(),
            counted: 0,
            failed: 0,
            minute,
        }
    }
}

/// Fewest windows kept before expired ones are swept out.
const SWEEP_AT: usize = 10_000;

impl Throttle {
    fn new(max_per_minute: u32) -> Throttle {
        Throttle {
            max_per_minute,
            entries: Mutex::new(Entries {
                windows: HashMap::new(),
                sweep_at: SWEEP_AT,
            }),
        }
    }

    fn key(login: &str) -> String {
        login.to_lowercase()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().expect("throttle lock")
    }

    /// Starts an attempt for `login`; `None` while the login is blocked.
    fn begin(&self, login: &str) -> Option<Attempt<'_>> {
        let mut entries = self.lock();
        if entries.windows.len() >= entries.sweep_at {
            // Not at every sign-in: only once the map has doubled since.
            entries.windows.retain(|_, w| w.start.elapsed() < MINUTE);
            entries.sweep_at = (entries.windows.len() * 2).max(SWEEP_AT);
        }
        let key = Throttle::key(login);
        let window = entries
            .windows
            .entry(key.clone())
            .or_insert_with(|| Window::fresh(0));
        if window.start.elapsed() >= MINUTE {
            *window = Window::fresh(window.minute + 1);
        }
        if window.counted >= self.max_per_minute {
            return None;
        }
        window.counted += 1;
        Some(Attempt {
            throttle: self,
            key,
            minute: window.minute,
            failed: false,
        })
    }
}

/// A sign-in attempt in progress. Dropped without [`Attempt::failed`] (it
/// succeeded, or the server could not tell), it no longer counts.
struct Attempt<'a> {
    throttle: &'a Throttle,
    key: String,
    minute: u64,
    failed: bool,
}

impl Attempt<'_> {
    /// Its login's window, unless a new minute began since it started.
    fn window<'e>(&self, entries: &'e mut Entries) -> Option<&'e mut Window> {
        entries
            .windows
            .get_mut(&self.key)
            .filter(|w| w.minute == self.minute)
    }

    /// The attempt failed, and stays counted. True for the failure that
    /// reached the limit: the login is then blocked for a minute from now.
    fn failed(mut self) -> bool {
        self.failed = true;
        let mut entries = self.throttle.lock();
        let Some(window) = self.window(&mut entries) else {
            return false;
        };
        window.failed += 1;
        let reached = window.failed == self.throttle.max_per_minute;
        if reached {
            window.start = Instant::now();
        }
        reached
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.failed {
            if let Some(window) = self.window(&mut self.throttle.lock()) {
                window.counted = window.counted.saturating_sub(1);
            }
        }
    }
}

/// Whether a login could exist: 1 to 256 characters, none of them control
/// characters (a line break in a login would forge lines of the log).
pub fn possible_login(login: &str) -> bool {
    !login.is_empty() && login.chars().count() <= 256 && !login.chars().any(char::is_control)
}

/// A login as the server's log shows it: control characters escaped, and
/// cut to 64 characters (a sign-in may send any text as its login).
fn shown_login(login: &str) -> String {
    let mut shown: String = login
        .chars()
        .take(64)
        .flat_map(char::escape_debug)
        .collect();
    if login.chars().count() > 64 {
        shown.push('…');
    }
    shown
}

/// A pre-MFA token found valid, waiting for its code.
pub struct PreMfa {
    hash: [u8; 32],
    record: TokenRecord,
}

pub struct Auth {
    store: Arc<dyn Store>,
    config: AuthConfig,
    throttle: Throttle,
    /// argon2 verifications running at once (each takes about 19 MiB and a
    /// core's time): the others wait their turn, so a flood of sign-ins
    /// cannot take the memory or the CPU the other requests need.
    verifying: tokio::sync::Semaphore,
    /// MFA tokens already verified (none is revoked before it expires).
    cache: RwLock<HashMap<[u8; 32], TokenRecord>>,
    dummy_hash: String,
    log: Logger,
}

impl Auth {
    pub fn new(store: Arc<dyn Store>, config: AuthConfig, log: Logger) -> Auth {
        let dummy_hash = hash_password(&Uuid::new_v4().to_string());
        Auth {
            store,
            throttle: Throttle::new(config.max_failures_per_minute),
            config,
            verifying: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            cache: RwLock::new(HashMap::new()),
            dummy_hash,
            log,
        }
    }

    fn throttled(&self) -> AuthError {
        AuthError::Throttled(
            "Too many failed sign-ins for this login. Wait a minute, then try again.".into(),
        )
    }

    fn record_failure(&self, attempt: Attempt<'_>, login: &str, address: &str, what: &str) {
        let login = shown_login(login);
        if attempt.failed() {
            warn!(self.log, "sign-in throttled after repeated failures";
                "login" => login, "address" => address, "failure" => what);
        } else {
            warn!(self.log, "sign-in failed"; "login" => login, "address" => address, "failure" => what);
        }
    }

    /// `/signinBody`: answers a pre-MFA token.
    pub async fn sign_in(
        &self,
        login: &str,
        password: &str,
        address: &str,
    ) -> Result<String, AuthError> {
        let wrong = || AuthError::Unauthorized("Wrong login or password.".to_string());
        if !possible_login(login) {
            // No user has it: nothing to throttle or look up.
            warn!(self.log, "sign-in failed"; "login" => shown_login(login), "address" => address,
                "failure" => "not a possible login");
            return Err(wrong());
        }
        let Some(attempt) = self.throttle.begin(login) else {
            return Err(self.throttled());
        };
        let user = self.store.user_by_login(login).await?;
        // An unknown login is checked against a dummy hash: same time, same answer.
        let hash = user
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |u| u.password_hash.clone());
        let password = password.to_string();
        let ok = {
            let _turn = self.verifying.acquire().await.expect("never closed");
            tokio::task::spawn_blocking(move || verify_password(&password, &hash))
                .await
                .unwrap_or(false)
        };
        let user = match (user, ok) {
            (Some(u), true) => u,
            _ => {
                self.record_failure(attempt, login, address, "wrong login or password");
                return Err(wrong());
            }
        };
        let (token, hash) = new_token();
        let expires =
            Utc::now() + chrono::Duration::minutes(self.config.pre_mfa_token_minutes as i64);
        self.store
            .insert_token(hash, user.id, TokenKind::PreMfa, expires)
            .await?;
        Ok(token)
    }

    /// `/signin2fa`, first step: the pre-MFA token, checked before the code
    /// is read (as ASP.NET authorizes before it binds the body).
    pub async fn pre_mfa(&self, pre_token: Option<&str>) -> Result<PreMfa, AuthError> {
        let pre_token = pre_token.ok_or_else(|| {
            AuthError::Unauthorized(
                "Send the token of POST /signinBody as `Authorization: Bearer <token>`.".into(),
            )
        })?;
        let hash = hash_token(pre_token);
        let record = self
            .store
            .token(hash)
            .await?
            .filter(|t| t.kind == TokenKind::PreMfa && !t.revoked && t.expires_at > Utc::now());
        let record = record.ok_or_else(|| {
            AuthError::Unauthorized(
                "The sign-in token is unknown, expired or revoked: sign in again with POST /signinBody.".into(),
            )
        })?;
        Ok(PreMfa { hash, record })
    }

    /// `/signin2fa`: checks the code against the pre-MFA token's user and
    /// answers an MFA token.
    pub async fn sign_in_2fa(
        &self,
        pre: PreMfa,
        code: &str,
        address: &str,
    ) -> Result<String, AuthError> {
        let PreMfa { hash, record } = pre;
        let Some(attempt) = self.throttle.begin(&record.login) else {
            return Err(self.throttled());
        };
        let user = self
            .store
            .user_by_id(record.user_id)
            .await?
            .ok_or_else(|| AuthError::Unauthorized("The user no longer exists.".into()))?;
        // The try counts before the code is checked, so that concurrent
        // codes cannot go past the token's limit.
        let Some(count) = self
            .store
            .count_code_try(hash, self.config.max_wrong_codes)
            .await?
        else {
            return Err(AuthError::Unauthorized(
                "Too many wrong codes: this sign-in is revoked. Sign in again with POST /signinBody.".into(),
            ));
        };
        let now = Utc::now().timestamp().max(0) as u64;
        let step = totp_step(&user.totp_secret, code, now);
        let accepted = match step {
            Some(step) => self.store.use_totp_step(user.id, step).await?,
            None => false,
        };
        if !accepted {
            let revoked = count >= self.config.max_wrong_codes;
            if revoked {
                self.store.revoke_token(hash).await?;
            }
            self.record_failure(attempt, &user.login, address, "wrong or reused MFA code");
            let detail = if revoked {
                warn!(self.log, "pre-MFA token revoked after wrong codes"; "login" => shown_login(&user.login), "count" => count);
                "Too many wrong codes: this sign-in is revoked. Sign in again with POST /signinBody.".to_string()
            } else if step.is_some() {
                "This code was used already: wait for the next one.".to_string()
            } else {
                format!(
                    "Wrong code ({count} of {} tries). Send the six digits your authenticator shows now.",
                    self.config.max_wrong_codes
                )
            };
            return Err(AuthError::Unauthorized(detail));
        }
        // The pre-MFA token has done its job.
        self.store.revoke_token(hash).await?;
        let (token, mfa_hash) = new_token();
        let expires = Utc::now() + chrono::Duration::minutes(self.config.mfa_token_minutes as i64);
        self.store
            .insert_token(mfa_hash, user.id, TokenKind::Mfa, expires)
            .await?;
        Ok(token)
    }

    /// Enforces an operation's policy on a request's bearer token.
    pub async fn authorize(
        &self,
        policy: AuthPolicy,
        bearer: Option<&str>,
    ) -> Result<Option<Caller>, AuthError> {
        let required_role = match policy {
            AuthPolicy::Anonymous | AuthPolicy::PreMfaToken => return Ok(None),
            AuthPolicy::MfaRequired { role } => role,
        };
        let token = bearer.ok_or_else(|| {
            AuthError::Unauthorized(
                "This operation needs `Authorization: Bearer <token>` with the token of POST /signin2fa.".into(),
            )
        })?;
        let hash = hash_token(token);
        let cached = self.cache.read().expect("token cache").get(&hash).cloned();
        let record = match cached {
            Some(r) => r,
            None => {
                let r = self.store.token(hash).await?.ok_or_else(|| {
                    AuthError::Unauthorized(
                        "The token is not valid: sign in with POST /signinBody and POST /signin2fa."
                            .into(),
                    )
                })?;
                if r.kind == TokenKind::Mfa && !r.revoked {
                    let mut cache = self.cache.write().expect("token cache");
                    if cache.len() > 100_000 {
                        cache.clear();
                    }
                    cache.insert(hash, r.clone());
                }
                r
            }
        };
        if record.revoked {
            return Err(AuthError::Unauthorized(
                "The token was revoked: sign in again.".into(),
            ));
        }
        if record.expires_at <= Utc::now() {
            self.cache.write().expect("token cache").remove(&hash);
            return Err(AuthError::Unauthorized(
                "The token expired: sign in again.".into(),
            ));
        }
        if record.kind != TokenKind::Mfa {
            return Err(AuthError::Unauthorized(
                "This operation needs MFA: send the code to POST /signin2fa and use the token it answers.".into(),
            ));
        }
        if let Some(role) = required_role {
            if record.role != role {
                return Err(AuthError::Forbidden(format!(
                    "This operation needs the {} role.",
                    role.as_str()
                )));
            }
        }
        Ok(Some(Caller {
            user_id: record.user_id,
            login: record.login,
            role: record.role,
        }))
    }
}

/// The token of `Authorization: Bearer <token>`, if any.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The value of the sign-in cookie, if any.
pub fn sign_in_cookie(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SIGN_IN_COOKIE)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moves `login`'s minute back by `by`, as if it had begun that long ago.
    fn age(throttle: &Throttle, login: &str, by: Duration) {
        let mut entries = throttle.lock();
        let window = entries.windows.get_mut(login).unwrap();
        window.start -= by;
    }

    #[test]
    fn a_login_that_reaches_the_limit_late_in_its_minute_is_blocked_a_full_minute() {
        let throttle = Throttle::new(3);
        for _ in 0..2 {
            throttle.begin("alice").unwrap().failed();
        }
        age(&throttle, "alice", Duration::from_secs(59));
        let third = throttle.begin("Alice").expect("under the limit");
        assert!(third.failed(), "the third failure reaches the limit");
        assert!(throttle.begin("alice").is_none(), "blocked");
        let window = throttle.lock().windows["alice"];
        assert!(
            window.start.elapsed() < Duration::from_secs(30),
            "the block's minute starts at the failure that reached the limit, \
             not at the first failure 59 s before"
        );
    }

    #[test]
    fn concurrent_attempts_cannot_pass_the_limit_and_successes_give_theirs_back() {
        let throttle = Throttle::new(3);
        let running: Vec<_> = (0..3).map(|_| throttle.begin("bob").unwrap()).collect();
        assert!(
            throttle.begin("bob").is_none(),
            "three running: a fourth waits"
        );
        assert!(
            throttle.begin("carol").is_some(),
            "another login is not affected"
        );
        drop(running); // all three succeeded
        let attempts: Vec<_> = (0..3).map(|_| throttle.begin("bob").unwrap()).collect();
        let reached: Vec<bool> = attempts.into_iter().map(Attempt::failed).collect();
        assert_eq!(reached, [false, false, true]);
        assert!(throttle.begin("bob").is_none());
    }

    #[test]
    fn attempts_of_an_earlier_minute_change_nothing_in_the_next() {
        let throttle = Throttle::new(2);
        let old_success = throttle.begin("erin").unwrap();
        let old_failure = throttle.begin("erin").unwrap();
        age(&throttle, "erin", Duration::from_secs(61));
        let new: Vec<_> = (0..2).map(|_| throttle.begin("erin").unwrap()).collect();
        drop(old_success);
        assert!(!old_failure.failed(), "an old failure does not count now");
        assert!(
            throttle.begin("erin").is_none(),
            "two running in this minute"
        );
        let reached: Vec<bool> = new.into_iter().map(Attempt::failed).collect();
        assert_eq!(reached, [false, true]);
    }

    #[test]
    fn logins_that_cannot_exist_and_how_the_log_shows_them() {
        assert!(possible_login("alice"));
        assert!(!possible_login(""));
        assert!(!possible_login(&"x".repeat(257)));
        assert!(!possible_login("eve\nINFO forged"));
        assert_eq!(shown_login("eve\n\u{1b}[2J"), "eve\\n\\u{1b}[2J");
        assert_eq!(
            shown_login(&"x".repeat(100)),
            format!("{}…", "x".repeat(64))
        );
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let h = hash_password("s3cret");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("s3cret!", &h));
    }

    #[test]
    fn totp_accepts_one_step_of_skew() {
        let secret = new_totp_secret();
        let totp = Builder::new()
            .with_secret(Secret::try_from_base32(&secret).unwrap())
            .build_noncompliant();
        let now = 1_700_000_000u64;
        let code = totp.generate(now).to_string();
        assert_eq!(totp_step(&secret, &code, now), Some(now / 30));
        assert_eq!(totp_step(&secret, &code, now + 30), Some(now / 30));
        assert_eq!(totp_step(&secret, &code, now + 90), None);
        assert_eq!(totp_step(&secret, "12a456", now), None);
    }

    #[test]
    fn bearer_and_cookie_parse() {
        let mut h = http::HeaderMap::new();
        h.insert("authorization", "bearer abc".parse().unwrap());
        h.insert("cookie", "x=1; NpsSignIn=tok".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        assert_eq!(sign_in_cookie(&h), Some("tok"));
    }
}
