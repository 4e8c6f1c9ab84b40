//! Users that exist before anyone can sign in: the first Admin on first
//! start, and `nps-server user add`.

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use nps_api::policy::Role;
use totp_rs::Secret;

use crate::auth::{hash_password, new_totp_secret, otpauth_uri, random_bytes};
use crate::store::sqlite;
use crate::store::{NewUser, Store};

fn generated_password() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<15>())
}

/// Shown once and never again: unlike the server's other lines, a failure
/// to write them (standard output closed, a full disk) is an error, and the
/// user is not created.
fn print_credentials(
    heading: &str,
    login: &str,
    password: Option<&str>,
    secret: Option<&str>,
) -> anyhow::Result<()> {
    let mut text = format!("{heading}\n  login: {login}");
    if let Some(p) = password {
        text.push_str(&format!("\n  password: {p}"));
    }
    // The otpauth URI carries the secret: shown only with it, never for a
    // secret the deployer gave (and may keep out of logs on purpose).
    if let Some(s) = secret {
        text.push_str(&format!(
            "\n  TOTP secret: {s}\n  otpauth: {}",
            otpauth_uri(login, s)
        ));
    }
    if password.is_some() || secret.is_some() {
        text.push_str("\n  Store these now: they are not shown again.");
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot write the credentials of {login} to standard output ({e}): they are \
                 shown only once, so the user was not created; run again with standard \
                 output open"
            )
        })
}

/// A secret as generators print it: in groups, in lower case, padded.
fn normalized_secret(given: &str) -> String {
    given
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .collect::<String>()
        .to_uppercase()
}

/// A login as a person types it (see [`crate::auth::possible_login`]).
fn check_login(login: &str, what: &str) -> anyhow::Result<()> {
    if !crate::auth::possible_login(login) {
        anyhow::bail!(
            "{what} must be 1 to 256 characters, none of them control characters \
             (line breaks, tabs)"
        );
    }
    Ok(())
}

/// Fewest characters of a password given in NPS_BOOTSTRAP_PASSWORD (the
/// generated ones have 20).
const MIN_PASSWORD: usize = 12;

/// argon2 takes a while: hash on a blocking thread.
async fn hash_off_thread(password: &str) -> anyhow::Result<String> {
    let password = password.to_string();
    Ok(tokio::task::spawn_blocking(move || hash_password(&password)).await?)
}

/// On an empty user store, creates the first Admin from `NPS_BOOTSTRAP_*`
/// or with a generated password and secret, printed once.
pub async fn first_admin(store: &dyn Store) -> anyhow::Result<()> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if store.user_count().await? > 0 {
        if [
            "NPS_BOOTSTRAP_LOGIN",
            "NPS_BOOTSTRAP_PASSWORD",
            "NPS_BOOTSTRAP_TOTP_SECRET",
        ]
        .iter()
        .any(|name| env(name).is_some())
        {
            crate::say(
                "NPS_BOOTSTRAP_* ignored: the database has users already (they apply to an \
                 empty one only; add users with `nps-server user add`).",
            );
        }
        return Ok(());
    }
    // Trimmed as `user add` trims: a space left in an env file would make a
    // login nobody types.
    let login = env("NPS_BOOTSTRAP_LOGIN")
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| "admin".to_string());
    check_login(&login, "NPS_BOOTSTRAP_LOGIN")?;
    let given_password = env("NPS_BOOTSTRAP_PASSWORD");
    if given_password
        .as_ref()
        .is_some_and(|p| p.chars().count() < MIN_PASSWORD)
    {
        anyhow::bail!(
            "NPS_BOOTSTRAP_PASSWORD must have at least {MIN_PASSWORD} characters \
             (or leave it unset: a password is generated and printed once)"
        );
    }
    let given_secret = env("NPS_BOOTSTRAP_TOTP_SECRET").map(|s| normalized_secret(&s));
    if let Some(s) = &given_secret {
        let bytes = Secret::try_from_base32(s).map_err(|_| {
            anyhow::anyhow!("NPS_BOOTSTRAP_TOTP_SECRET is not base32 (letters A-Z and digits 2-7)")
        })?;
        if bytes.len() < 16 {
            anyhow::bail!(
                "NPS_BOOTSTRAP_TOTP_SECRET must encode at least 128 bits (26 base32 characters)"
            );
        }
    }
    let password = given_password.clone().unwrap_or_else(generated_password);
    let secret = given_secret.clone().unwrap_or_else(new_totp_secret);
    let hash = hash_off_thread(&password).await?;
    // Shown before the user is stored: credentials nobody saw would lock
    // the only Admin out.
    print_credentials(
        "Created the first Admin user:",
        &login,
        given_password.is_none().then_some(password.as_str()),
        given_secret.is_none().then_some(secret.as_str()),
    )?;
    store
        .add_user(NewUser {
            login: login.clone(),
            role: Role::Admin,
            password_hash: hash,
            totp_secret: secret.clone(),
        })
        .await
        .map_err(|e| {
            anyhow::anyhow!("cannot create {login} (the credentials above are void): {e}")
        })?;
    Ok(())
}

/// `nps-server user add --login L --role admin|user`.
pub async fn add_user_command(database: &Path, login: &str, role: Role) -> anyhow::Result<()> {
    let login = login.trim();
    check_login(login, "--login")?;
    let password = generated_password();
    let secret = new_totp_secret();
    let hash = hash_off_thread(&password).await?;
    let new_file = !database.exists();
    // Not `SqliteStore::open`: the server may be running on this file, and
    // its journal and sessions are its own to apply.
    sqlite::add_user_alongside(
        database,
        NewUser {
            login: login.to_string(),
            role,
            password_hash: hash,
            totp_secret: secret.clone(),
        },
        // Inside the INSERT's transaction: shown, or not added.
        || {
            print_credentials(
                &format!("Added {} user:", role.as_str()),
                login,
                Some(&password),
                Some(&secret),
            )
        },
    )
    .map_err(|e| anyhow::anyhow!("cannot add {login}: {e}"))?;
    if new_file {
        // A mistyped --database (or a relative one from another directory)
        // would otherwise go unnoticed until the user cannot sign in.
        crate::say(&format!(
            "Note: {} did not exist and was created: no server has used it yet. If you \
             meant the database of a running server, give its --database path.",
            database.display()
        ));
    }
    Ok(())
}
