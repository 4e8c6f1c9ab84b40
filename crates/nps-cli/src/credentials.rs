//! The tokens `nps login` saves: `credentials.json` in the user's config
//! directory (`$XDG_CONFIG_HOME/nps` or `~/.config/nps` on Linux,
//! `~/Library/Application Support/nps` on macOS, `%APPDATA%\nps` on Windows;
//! `--config-dir` or `NPS_CONFIG_DIR` to choose another), readable by its
//! owner only (mode 0600; the directory, when `nps` creates it, 0700). A
//! file that others can read is warned about at each command.
//!
//! A token is kept per server URL and only ever sent to the server that
//! issued it: `--url` naming another server needs its own `nps login`
//! (and `NPS_TOKEN` needs `--url` or `NPS_URL`, see main.rs).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::failure::{Failure, Kind};

const FILE_NAME: &str = "credentials.json";

/// The token of one server.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedToken {
    pub login: String,
    pub token: String,
    pub signed_in_at: DateTime<Utc>,
    // No expiry: the server does not say when a token expires, and its
    // lifetime is configurable. Files of earlier versions have an
    // `expiresAround` (sign-in plus 8 hours); it is ignored on load and
    // not written back.
}

/// The whole file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// The server of the last `nps login`: the default of `--url`.
    pub last_url: Option<String>,
    /// Tokens by server base URL.
    #[serde(default)]
    pub servers: BTreeMap<String, SavedToken>,
}

/// Where the credentials file lives.
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store in `dir`, or in the user's config directory.
    pub fn new(dir: Option<PathBuf>) -> Result<Store, Failure> {
        let dir = match dir {
            Some(dir) => dir,
            None => dirs::config_dir().map(|d| d.join("nps")).ok_or_else(|| {
                Failure::new(Kind::Other, "this system has no user config directory")
                    .with_hint("give one with --config-dir or NPS_CONFIG_DIR")
            })?,
        };
        Ok(Store { dir })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The saved credentials; none when nobody signed in yet.
    pub fn load(&self) -> Result<Credentials, Failure> {
        let path = self.path();
        match std::fs::read(&path) {
            Ok(bytes) => {
                warn_if_readable_by_others(&path);
                serde_json::from_slice(&bytes).map_err(|e| {
                    Failure::new(
                        Kind::Other,
                        format!("{} is not a credentials file: {e}", path.display()),
                    )
                    .with_hint("delete it and run `nps login` again")
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Credentials::default()),
            Err(e) => Err(Failure::new(
                Kind::Other,
                format!("cannot read {}: {e}", path.display()),
            )),
        }
    }

    /// Saves the token of `url` and makes `url` the default server. The file
    /// is replaced whole, never left half-written, and is created 0600.
    pub fn save(&self, url: &str, token: SavedToken) -> Result<PathBuf, Failure> {
        let mut credentials = self.load()?;
        credentials.last_url = Some(url.to_string());
        credentials.servers.insert(url.to_string(), token);
        let path = self.path();
        let fail = |what: &str, e: std::io::Error| {
            Failure::new(Kind::Other, format!("cannot {what}: {e}"))
                .with_hint("check the permissions, or choose another --config-dir")
        };
        create_private_dir(&self.dir)
            .map_err(|e| fail(&format!("create {}", self.dir.display()), e))?;
        let temporary = self.dir.join(format!("{FILE_NAME}.tmp"));
        let json = serde_json::to_vec_pretty(&credentials).expect("credentials serialize");
        write_private(&temporary, &json)
            .map_err(|e| fail(&format!("write {}", temporary.display()), e))?;
        std::fs::rename(&temporary, &path)
            .map_err(|e| fail(&format!("replace {}", path.display()), e))?;
        Ok(path)
    }
}

/// Tokens sign in as their user: a file others can read (copied in, or
/// from another tool) is said once per command; `nps login` rewrites it 0600.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
            crate::console::note(&format!(
                "warning: {} can be read by other users of this machine, and it holds \
                 sign-in tokens: make it private with chmod 600",
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Writes a new file that only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // A leftover file would keep its old mode: start afresh.
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temporary_store(name: &str) -> (Store, PathBuf) {
        let dir = std::env::temp_dir().join(format!("nps-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (
            Store {
                dir: dir.join("nps"),
            },
            dir,
        )
    }

    fn token(login: &str) -> SavedToken {
        SavedToken {
            login: login.into(),
            token: format!("token-of-{login}"),
            signed_in_at: Utc::now(),
        }
    }

    #[test]
    fn a_file_of_an_earlier_version_with_its_claimed_expiry_still_loads() {
        let (store, dir) = temporary_store("earlier");
        create_private_dir(&store.dir).unwrap();
        std::fs::write(
            store.path(),
            r#"{
  "lastUrl": "http://a:1",
  "servers": {
    "http://a:1": {
      "login": "alice",
      "token": "token-of-alice",
      "signedInAt": "2026-11-29T08:00:00Z",
      "expiresAround": "2026-11-29T16:00:00Z"
    }
  }
}"#,
        )
        .unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.servers["http://a:1"].token, "token-of-alice");
        // Saving again drops the claim.
        store.save("http://b:2", token("bob")).unwrap();
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains("expiresAround"), "{text}");
        assert!(text.contains("token-of-alice"), "{text}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn tokens_are_kept_per_server_and_the_last_is_the_default() {
        let (store, dir) = temporary_store("per-server");
        assert!(store.load().unwrap().servers.is_empty());
        store.save("http://a:1", token("alice")).unwrap();
        store.save("http://b:2", token("bob")).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.last_url.as_deref(), Some("http://b:2"));
        assert_eq!(loaded.servers["http://a:1"].login, "alice");
        assert_eq!(loaded.servers["http://b:2"].token, "token-of-bob");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let (store, dir) = temporary_store("mode");
        let path = store.save("http://a:1", token("alice")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_damaged_file_says_what_to_do() {
        let (store, dir) = temporary_store("damaged");
        create_private_dir(&store.dir).unwrap();
        std::fs::write(store.path(), "{not json").unwrap();
        let failure = store.load().unwrap_err();
        assert!(failure.hint.unwrap().contains("nps login"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
