//! The writer thread: the one connection that writes, and group commit.
//!
//! Callers queue jobs; the thread takes every job waiting (up to
//! [`MAX_BATCH`]), runs each in its own savepoint inside one transaction, and
//! answers them only after the shared COMMIT returned. A job that fails rolls
//! back to its savepoint and does not undo the others.
//!
//! Background jobs (the engine applying journalled end requests) yield to
//! requests: one runs, in a transaction of its own, at once when requests
//! come one at a time, but while they flow (concurrent requests, batched)
//! only once they pause for [`QUIET`] or when it has waited [`MAX_DEFER`]
//! (and at once past [`DEFER_BACKLOG`] journalled ends), so a burst of
//! DeleteAsync is not slowed by the work its own 202s queued, and a flood
//! does not pile up ends waiting to be applied.
//!
//! What a job did to the journal of end requests ([`JournalEffects`]) is
//! published to [`PendingEnds`] only after its transaction committed, and
//! before its caller is answered.

use std::cell::RefCell;
use std::ops::Deref;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use uuid::Uuid;

use super::checkpoint::Committed;
use super::journal::{JournalEffects, PendingEnd, PendingEnds};
use super::map_err;
use crate::store::{StoreError, StoreResult};

/// Most jobs committed together.
const MAX_BATCH: usize = 512;
/// A background job runs once no request has come for this long...
///
/// Not shorter: a client's next request after its answer can take a few
/// milliseconds to arrive on a loaded two-core machine, and at 2 ms those
/// gaps inside a steady flow passed for pauses, so a slice of the engine
/// (5 ms and its commit) went in front of the waiting requests again and
/// again: a burst of 999 DeleteAsync ran at 2,100-3,200 a second against
/// 6,100-7,400 with 10 ms (medians of `cargo xtask bench --quick`, same
/// machine and hour; see BENCHMARKS.md). Ends still wait at most
/// [`MAX_DEFER`] under a flood, and not at all when requests come one at a
/// time.
const QUIET: Duration = Duration::from_millis(10);
/// ...or once it has waited this long...
const MAX_DEFER: Duration = Duration::from_millis(50);
/// ...and at once while the journal holds more ends than this: about a
/// quarter of a second of applying them at a million sessions. A flood of
/// DeleteAsync then alternates with the engine's slices, so the time from a
/// 202 to the revocation stays bounded instead of the backlog growing.
const DEFER_BACKLOG: usize = 2_000;

/// The writer's connection inside a job, with the journal as this job sees
/// it: committed entries, plus those accepted earlier in the same batch or
/// by this job.
pub(super) struct Tx<'a> {
    conn: &'a Connection,
    pending: &'a PendingEnds,
    batch: &'a JournalEffects,
    job: RefCell<JournalEffects>,
}

impl Deref for Tx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Tx<'_> {
    /// The oldest end request accepted for `id` and not yet applied: the
    /// committed one first, then those of earlier jobs of this batch, then
    /// this job's; one already applied in this batch or job is skipped.
    pub(super) fn pending_end(&self, id: Uuid) -> Option<Arc<PendingEnd>> {
        let job = self.job.borrow();
        let applied =
            |p: &PendingEnd| self.batch.has_settled(id, p.seq) || job.has_settled(id, p.seq);
        self.pending
            .get(id)
            .into_iter()
            .chain(self.batch.accepted_for(id))
            .chain(job.accepted_for(id))
            .find(|p| !applied(p))
    }

    /// Rows in the journal, as of the last commit.
    pub(super) fn journal_rows(&self) -> usize {
        self.pending.rows()
    }

    /// Notes effects to publish once the transaction commits.
    pub(super) fn effects(&self) -> std::cell::RefMut<'_, JournalEffects> {
        self.job.borrow_mut()
    }
}

/// A write run by the writer thread inside the shared transaction.
pub(super) trait WriteJob: Send {
    fn background(&self) -> bool;
    /// Runs the job in its savepoint; returns what it did to the journal
    /// (nothing when it failed and was rolled back).
    fn run(
        &mut self,
        conn: &Connection,
        pending: &PendingEnds,
        batch: &JournalEffects,
    ) -> JournalEffects;
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

pub(super) struct Job<T, F> {
    pub(super) f: Option<F>,
    pub(super) background: bool,
    pub(super) result: Option<StoreResult<T>>,
    pub(super) reply: tokio::sync::oneshot::Sender<StoreResult<T>>,
}

impl<T: Send, F> WriteJob for Job<T, F>
where
    F: FnOnce(&Tx) -> StoreResult<T> + Send,
{
    fn background(&self) -> bool {
        self.background
    }

    fn run(
        &mut self,
        conn: &Connection,
        pending: &PendingEnds,
        batch: &JournalEffects,
    ) -> JournalEffects {
        let f = self.f.take().expect("a job runs once");
        let tx = Tx {
            conn,
            pending,
            batch,
            job: RefCell::new(JournalEffects::default()),
        };
        let (result, effects) = match run_cached(conn, "SAVEPOINT job") {
            Err(e) => (Err(map_err(e)), JournalEffects::default()),
            Ok(()) => {
                let r = f(&tx);
                let effects = tx.job.into_inner();
                let undo = || conn.execute_batch("ROLLBACK TO job; RELEASE job");
                if r.is_err() {
                    (undo().map_err(map_err).and(r), JournalEffects::default())
                } else {
                    match run_cached(conn, "RELEASE job") {
                        Ok(()) => (r, effects),
                        Err(e) => {
                            // Its changes must not be committed unannounced.
                            let _ = undo();
                            (Err(map_err(e)), JournalEffects::default())
                        }
                    }
                }
            }
        };
        self.result = Some(result);
        effects
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let result = match commit {
            Ok(()) => self
                .result
                .unwrap_or_else(|| Err(StoreError::Internal("job did not run".into()))),
            Err(e) => Err(StoreError::Unavailable(e)),
        };
        let _ = self.reply.send(result);
    }
}

/// A statement the writer runs for every job: parsed once.
pub(super) fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// The writer thread's loop; returns when every sender is gone.
pub(super) fn writer_loop(
    conn: Connection,
    pending: &PendingEnds,
    committed: &Committed,
    rx: mpsc::Receiver<Box<dyn WriteJob>>,
) {
    let mut deferred: Option<(Box<dyn WriteJob>, Instant)> = None;
    // Requests are flowing from a batch of several until a pause of QUIET.
    let mut last_request = Instant::now();
    let mut flowing = false;
    loop {
        let mut batch: Vec<Box<dyn WriteJob>> = Vec::new();
        match &deferred {
            None => match rx.recv() {
                Ok(job) => route(job, &mut batch, &mut deferred),
                Err(_) => return,
            },
            Some((_, since)) => {
                let quiet_in = if flowing && pending.rows() <= DEFER_BACKLOG {
                    QUIET.saturating_sub(last_request.elapsed())
                } else {
                    Duration::ZERO
                };
                let wait = quiet_in.min(MAX_DEFER.saturating_sub(since.elapsed()));
                if !wait.is_zero() {
                    match rx.recv_timeout(wait) {
                        Ok(job) => route(job, &mut batch, &mut deferred),
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => {
                            // The store is gone: answer the background job.
                            if let Some((job, _)) = deferred.take() {
                                run_batch(&conn, pending, committed, vec![job]);
                            }
                            return;
                        }
                    }
                }
            }
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => route(job, &mut batch, &mut deferred),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            // Concurrent requests share a batch; requests one at a time
            // (a client, the engine's own steps) let a background job run.
            flowing = batch.len() > 1 || (flowing && last_request.elapsed() < QUIET);
            last_request = Instant::now();
            run_batch(&conn, pending, committed, batch);
        }
        // A background job runs in a transaction of its own, so that
        // requests do not wait for its commit, once requests have paused.
        let due = deferred.as_ref().is_some_and(|(_, since)| {
            !flowing
                || pending.rows() > DEFER_BACKLOG
                || last_request.elapsed() >= QUIET
                || since.elapsed() >= MAX_DEFER
        });
        if due {
            if let Some((job, _)) = deferred.take() {
                run_batch(&conn, pending, committed, vec![job]);
            }
        }
    }
}

/// A background job waits in `deferred` (the engine sends one at a time).
fn route(
    job: Box<dyn WriteJob>,
    batch: &mut Vec<Box<dyn WriteJob>>,
    deferred: &mut Option<(Box<dyn WriteJob>, Instant)>,
) {
    if job.background() && deferred.is_none() {
        *deferred = Some((job, Instant::now()));
    } else {
        batch.push(job);
    }
}

fn run_batch(
    conn: &Connection,
    pending: &PendingEnds,
    committed: &Committed,
    mut batch: Vec<Box<dyn WriteJob>>,
) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        for job in batch {
            job.finish(Err(e.to_string()));
        }
        return;
    }
    let mut effects = JournalEffects::default();
    for job in batch.iter_mut() {
        let done = job.run(conn, pending, &effects);
        effects.extend(done);
    }
    let commit = conn.execute_batch("COMMIT").map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        e.to_string()
    });
    if commit.is_ok() {
        // Counted before anyone can learn of the commit (readers.rs).
        committed.notify();
        pending.publish(effects);
    }
    for job in batch {
        job.finish(commit.clone());
    }
}

#[cfg(test)]
mod tests {
    //! The order in which the writer runs jobs, on a real database file:
    //! which job ran when is recorded by the jobs themselves, so nothing
    //! here depends on how fast the machine is.

    use std::sync::{Arc, Mutex};

    use futures::poll;

    use crate::store::sqlite::temp_db::TempDb;
    use crate::store::sqlite::SqliteStore;

    type Order = Arc<Mutex<Vec<String>>>;

    fn record(order: &Order, what: String) {
        order.lock().unwrap().push(what);
    }

    /// Holds the writer inside a job until the returned sender is used, so
    /// that the jobs queued meanwhile reach it together, in the order sent.
    async fn hold_writer(
        store: &SqliteStore,
    ) -> (
        std::sync::mpsc::Sender<()>,
        impl std::future::Future<Output = ()> + '_,
    ) {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let mut held = Box::pin(store.write(move |_| {
            let _ = started_tx.send(());
            let _ = release_rx.recv();
            Ok(())
        }));
        assert!(poll!(&mut held).is_pending());
        started_rx.await.expect("the holding job started");
        (release_tx, async move { held.await.unwrap() })
    }

    #[tokio::test]
    async fn a_background_write_yields_to_the_requests_queued_after_it() {
        let db = TempDb::new();
        let store = SqliteStore::open(&db.path()).unwrap();
        let order: Order = Arc::default();
        let (release, held) = hold_writer(&store).await;

        // Queued in this order while the writer is held: the engine's
        // background write first, then three requests.
        let o = Arc::clone(&order);
        let mut background = Box::pin(store.write_background(move |_| {
            record(&o, "background".into());
            Ok(())
        }));
        assert!(poll!(&mut background).is_pending());
        let mut requests = Vec::new();
        for i in 0..3 {
            let o = Arc::clone(&order);
            let mut request = Box::pin(store.write(move |_| {
                record(&o, format!("request {i}"));
                Ok(())
            }));
            assert!(poll!(&mut request).is_pending());
            requests.push(request);
        }

        release.send(()).unwrap();
        held.await;
        for request in requests {
            request.await.unwrap();
        }
        background.await.unwrap();
        assert_eq!(
            *order.lock().unwrap(),
            ["request 0", "request 1", "request 2", "background"],
            "the requests, batched together, go first; the background write \
             queued before them runs after their batch"
        );
    }
}
