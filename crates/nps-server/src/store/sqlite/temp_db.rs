//! A database file in a directory of its own, removed when dropped, and a
//! user to add: for the store's tests, which run on real files.

use std::path::PathBuf;

use nps_api::policy::Role;
use uuid::Uuid;

use crate::store::NewUser;

/// A user with this login (the hash and secret are never checked here).
pub(super) fn new_user(login: &str) -> NewUser {
    NewUser {
        login: login.into(),
        role: Role::User,
        password_hash: "not a hash".into(),
        totp_secret: "JBSWY3DPEHPK3PXP".into(),
    }
}

pub(super) struct TempDb(PathBuf);

impl TempDb {
    pub(super) fn new() -> TempDb {
        let dir = std::env::temp_dir().join(format!("nps-store-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDb(dir)
    }

    pub(super) fn path(&self) -> PathBuf {
        self.0.join("nps.db")
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
