//! Checkpoints off the writer's path.
//!
//! In WAL mode a commit appends pages to the `-wal` file; a checkpoint copies
//! them back into the database file and syncs it. SQLite's automatic
//! checkpoint runs inside the commit that crosses 1,000 pages, on the writer
//! thread, so every request of that batch waited for it (tens of ms once
//! the table is larger than the caches). Here the writer's connection has
//! automatic checkpoints off, and this thread runs a PASSIVE checkpoint
//! (which never blocks the writer or readers) shortly after commits.
//! Durability does not depend on it: a commit is on disk in the WAL.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

/// Least time between two checkpoints: the same page written many times in
/// that interval is copied once.
const INTERVAL: Duration = Duration::from_millis(50);

/// Tells the checkpointer that a transaction committed.
#[derive(Clone)]
pub(super) struct Committed(mpsc::SyncSender<()>);

impl Committed {
    pub(super) fn notify(&self) {
        // A full channel already holds a wake-up.
        let _ = self.0.try_send(());
    }
}

/// Starts the checkpointer on its own connection to `path`.
pub(super) fn start(path: &Path) -> anyhow::Result<Committed> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let (tx, rx) = mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("nps-sqlite-checkpoint".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                std::thread::sleep(INTERVAL);
                // A failure (e.g. a full disk) leaves the pages in the WAL,
                // where they are durable; the next commit tries again.
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
        })?;
    Ok(Committed(tx))
}
