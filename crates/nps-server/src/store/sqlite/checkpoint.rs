//! Checkpoints off the writer's path.
//!
//! In WAL mode a commit appends pages to the `-wal` file; a checkpoint copies
//! them back into the database file and syncs it. SQLite's automatic
//! checkpoint runs inside the commit that crosses 1,000 pages, on the writer
//! thread, so every request of that batch waited for it (tens of ms once
//! the table is larger than the caches). Here this thread runs a PASSIVE
//! checkpoint (which never blocks the writer or readers) shortly after
//! commits, so the pages are copied off the writer's path.
//!
//! It cannot let the WAL start over, though: the WAL is reused from its
//! beginning only when a checkpoint has copied every frame, and under a
//! steady flow of writes the writer has always appended more by the time
//! this thread is done (a sustained DeleteAsync run grew it to 460 MB). So
//! the writer keeps SQLite's automatic checkpoint too, at [`WRITER_PAGES`]:
//! by then this thread has copied nearly everything, the writer's checkpoint
//! copies the few frames left with no write in between, and its next
//! transaction starts the WAL over.
//!
//! Pooled readers keep their snapshots (see readers.rs), and under a steady
//! flow of reads as well as writes some reader nearly always holds one when
//! the writer would start the WAL over: it grew by 28 MB a second in a test
//! with two threads reading and one writing. So when a checkpoint finds more
//! than [`WRITER_PAGES`] in the WAL, readers stop keeping snapshots until
//! a checkpoint finds it started over; reads then cost what they did before
//! snapshots were kept.
//!
//! Durability does not depend on checkpoints: a commit is on disk in the WAL.

use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rusqlite::Connection;

use super::readers::{Epoch, Readers};

/// The writer's automatic checkpoint threshold, in WAL pages (SQLite's
/// default is 1,000): about 16 MB of WAL at most between restarts.
pub(super) const WRITER_PAGES: i64 = 4_000;

/// The size, in bytes, the WAL's file is cut back to when the WAL starts
/// over (`journal_size_limit`): above what [`WRITER_PAGES`] lets it reach.
pub(super) const WAL_FILE_LIMIT: i64 = 32 * 1024 * 1024;

/// Least time between two checkpoints: the same page written many times in
/// that interval is copied once.
const INTERVAL: Duration = Duration::from_millis(50);

/// What the writer does right after each COMMIT: counts it (readers then
/// take a new snapshot) and wakes the checkpointer.
#[derive(Clone)]
pub(super) struct Committed {
    wake: mpsc::SyncSender<()>,
    epoch: Arc<Epoch>,
}

impl Committed {
    /// Called before the commit is made known to anyone (see readers.rs).
    pub(super) fn notify(&self) {
        self.epoch.advance();
        // A full channel already holds a wake-up.
        let _ = self.wake.try_send(());
    }
}

/// Starts the checkpointer on its own connection to `path`. It also ends
/// the snapshots idle `readers` keep, which would otherwise hold the WAL
/// (see readers.rs): the outdated ones as soon as it is told of a commit and
/// before it checkpoints, all of them once the checkpoint is done.
pub(super) fn start(
    path: &Path,
    epoch: Arc<Epoch>,
    readers: Arc<Readers>,
) -> anyhow::Result<Committed> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let (tx, rx) = mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("nps-sqlite-checkpoint".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                // At once, and again just before the checkpoint: an idle
                // outdated snapshot would also limit the writer's own
                // checkpoint, which a later COMMIT runs once the WAL passes
                // WRITER_PAGES.
                readers.release_stale();
                std::thread::sleep(INTERVAL);
                readers.release_stale();
                // A failure (e.g. a full disk) leaves the pages in the WAL,
                // where they are durable; the next commit tries again.
                let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                });
                // Past WRITER_PAGES the WAL did not start over when it
                // should have: snapshots kept by busy readers hold it (see
                // readers.rs). Reads then end theirs after each statement
                // until it has. A checkpoint that could not run (busy: the
                // writer's own was running; or an error) tells nothing of
                // the WAL's size, and changes nothing.
                if let Ok((0, frames @ 0..)) = result {
                    readers.keep_snapshots(frames < WRITER_PAGES);
                }
                readers.release_all();
            }
        })?;
    Ok(Committed { wake: tx, epoch })
}
