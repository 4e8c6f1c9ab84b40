//! A database file in a directory of its own, removed when dropped: for the
//! store's tests, which run on real files.

use std::path::PathBuf;

use uuid::Uuid;

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
