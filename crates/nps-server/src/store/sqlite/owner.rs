//! One server per database file. The server counts its own commits to know
//! when a reader's snapshot is stale (see `readers.rs`) and applies its own
//! journal of ends; a second server on the same file would write behind the
//! first one's back, which would then answer from stale snapshots. So the
//! server holds an exclusive lock on `<database>.lock` for as long as it
//! runs; the kernel drops it when the process ends, SIGKILL included.
//!
//! `nps-server user add` takes the same lock when it can: holding it, it may
//! create or migrate the file; finding it held, it knows a server is running
//! and only inserts its user.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// The lock while held; released when dropped.
pub(super) struct Owner {
    _file: File,
}

/// The lock file beside the database, named after its real path (its
/// directory's symbolic links resolved) so that two names for one file
/// share one lock.
pub(super) fn lock_path(database: &Path) -> PathBuf {
    // A file not created yet: its directory exists (the caller made it).
    let in_real_dir = || {
        let dir = database
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Some(std::fs::canonicalize(dir).ok()?.join(database.file_name()?))
    };
    let real = std::fs::canonicalize(database)
        .ok()
        .or_else(in_real_dir)
        .unwrap_or_else(|| database.to_path_buf());
    let mut name = real.into_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the lock, or answers `None` when another process holds it.
pub(super) fn try_own(database: &Path) -> anyhow::Result<Option<Owner>> {
    let path = lock_path(database);
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open the lock file {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(Owner { _file: file })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(anyhow::anyhow!("cannot lock {}: {e}", path.display())),
    }
}

/// Takes the lock for a server, or says who holds it and what to do. It
/// waits a little first: `nps-server user add` holds it for a moment.
pub(super) fn own(database: &Path) -> anyhow::Result<Owner> {
    for _ in 0..20 {
        if let Some(owner) = try_own(database)? {
            return Ok(owner);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    try_own(database)?.ok_or_else(|| {
        anyhow::anyhow!(
            "another process is using the database {} (it holds {}): an nps-server \
             already running on it, or `nps-server user add` for a moment. Stop that \
             server, or give this one a database of its own with --database",
            database.display(),
            lock_path(database).display()
        )
    })
}
