//! The pool of read-only connections, each keeping its read transaction
//! open while nothing commits.
//!
//! A read in autocommit mode begins and ends a transaction around every
//! statement: file locks (`fcntl`) on the database and the WAL index, and a
//! look at the WAL index for the latest commit, a tenth of a GetByIdAsync's
//! CPU time (`cargo xtask bench`, perf). All writes of this process go
//! through the writer thread, which counts its commits in an [`Epoch`]; a
//! pooled connection keeps the snapshot it took while that count has not
//! moved, and starts a new one as soon as it has.
//!
//! Reads stay as fresh as before: a commit is counted before any caller
//! learns of it (its reply, the memory of pending ends), so a read that
//! starts after a caller learned of a commit sees the new count and a new
//! snapshot. A commit of another process is not counted, so only the tables
//! this process alone writes are read from a kept snapshot ([`Readers::kept`]):
//! the sessions, their logs and the journal of end requests. Users and
//! tokens, which `nps-server user add` writes from its own process while the
//! server runs, are read in a transaction of their own ([`Readers::fresh`]).
//!
//! An open read transaction holds a slot of the WAL index, and while any
//! pooled connection holds one the WAL cannot start over from its beginning
//! (a snapshot older than the last commit also keeps a checkpoint from
//! copying the frames after it). So a connection ends an outdated snapshot
//! when it goes back to the pool, and the checkpointer ends those of idle
//! connections as soon as it is told of a commit ([`Readers::release_stale`])
//! and all of them once its checkpoint is done ([`Readers::release_all`]).
//! A read that begins when every frame is copied takes slot 0 (it reads the
//! database file alone), which the writer's next transaction does not need
//! to start the WAL over; a checkpoint does wait for it, but such a snapshot
//! is outdated by the next commit and ended by `release_stale` before the
//! checkpointer copies that commit, unless a request is reading from it at
//! that moment (the next checkpoint then copies what this one left).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

use super::{configure, map_err};
use crate::store::StoreResult;

/// Most idle connections kept.
const POOL: usize = 16;

/// How many transactions the writer has committed since the store opened.
#[derive(Default)]
pub(super) struct Epoch(AtomicU64);

impl Epoch {
    /// Called by the writer after a COMMIT returned, before it tells anyone.
    pub(super) fn advance(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }

    fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

struct Reader {
    conn: Connection,
    /// The epoch read just before its open transaction began; `None` when
    /// no transaction is open.
    snapshot: Option<u64>,
}

impl Reader {
    /// Ends its open transaction, if any. False when the connection could
    /// not get back to autocommit mode: it is dropped, not pooled.
    fn end(&mut self) -> bool {
        if self.snapshot.take().is_some() {
            // ROLLBACK rather than COMMIT: it ends a read transaction even
            // if a statement was left unfinished.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.conn.is_autocommit()
    }
}

pub(super) struct Readers {
    path: PathBuf,
    epoch: Arc<Epoch>,
    idle: Mutex<Vec<Reader>>,
    /// False while the WAL must start over (see checkpoint.rs): every read
    /// then runs in a transaction of its own, as [`Readers::fresh`].
    keeping: AtomicBool,
}

impl Readers {
    pub(super) fn new(path: &Path, epoch: Arc<Epoch>) -> Readers {
        Readers {
            path: path.to_path_buf(),
            epoch,
            idle: Mutex::new(Vec::new()),
            keeping: AtomicBool::new(true),
        }
    }

    /// Runs `f` on a pooled read-only connection in a read transaction of
    /// its own: it sees every commit, of this process or another, made
    /// before the call.
    pub(super) fn fresh<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        self.run(f, false)
    }

    /// Runs `f` on a pooled read-only connection, in the snapshot it kept if
    /// no commit of this process was counted since (else a new one). Only
    /// for the tables no other process writes (see the module's comment).
    pub(super) fn kept<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        self.run(f, true)
    }

    fn run<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>, keep: bool) -> StoreResult<T> {
        // While the WAL must start over (see checkpoint.rs) a read that
        // would keep its snapshot still runs in one transaction, so its
        // statements agree, but ends it when done.
        let wants_snapshot = keep;
        let keep = keep && self.keeping.load(Ordering::Relaxed);
        let epoch = self.epoch.current();
        let pooled = self.idle.lock().expect("reader pool").pop();
        let mut reader = match pooled {
            Some(mut r) => {
                if (keep && r.snapshot == Some(epoch)) || r.end() {
                    r
                } else {
                    // It could not end its old snapshot: dropped, and a new
                    // connection serves the read.
                    self.open()?
                }
            }
            None => self.open()?,
        };
        if wants_snapshot && reader.snapshot.is_none() {
            // DEFERRED: the snapshot is taken by the first statement of `f`,
            // after `epoch` was read, so it holds at least those commits.
            reader.conn.execute_batch("BEGIN").map_err(map_err)?;
            reader.snapshot = Some(epoch);
        }
        let result = f(&reader.conn);
        // After a failure the transaction may be in any state: start over.
        if result.is_err() && !reader.end() {
            return result;
        }
        // The epoch is compared under the pool's lock: a commit counted
        // after this is followed by a `release_stale`, which then finds
        // this connection in the pool.
        let mut idle = self.idle.lock().expect("reader pool");
        if (!keep || reader.snapshot != Some(self.epoch.current())) && !reader.end() {
            return result;
        }
        if idle.len() < POOL {
            idle.push(reader);
        }
        result
    }

    fn open(&self) -> StoreResult<Reader> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(map_err)?;
        configure(&conn).map_err(map_err)?;
        Ok(Reader {
            conn,
            snapshot: None,
        })
    }

    /// Whether reads may keep their snapshots (the checkpointer's call).
    pub(super) fn keep_snapshots(&self, keep: bool) {
        self.keeping.store(keep, Ordering::Relaxed);
    }

    /// Ends the outdated snapshots of idle connections, so that they hold
    /// back neither the writer's checkpoints nor the WAL.
    pub(super) fn release_stale(&self) {
        let epoch = self.epoch.current();
        self.idle
            .lock()
            .expect("reader pool")
            .retain_mut(|reader| reader.snapshot.is_none_or(|s| s == epoch) || reader.end());
    }

    /// Ends every idle connection's snapshot (the checkpointer calls this
    /// after a checkpoint): the next read of each begins a new one, which
    /// holds only slot 0 of the WAL index if every frame has been copied,
    /// and that slot does not keep the writer from starting the WAL over.
    pub(super) fn release_all(&self) {
        self.idle
            .lock()
            .expect("reader pool")
            .retain_mut(|reader| reader.end());
    }
}

#[cfg(test)]
mod tests {
    //! On a real database file: pooled readers keep their snapshot between
    //! reads, yet see every commit made before a read starts, and do not
    //! keep the WAL from starting over while idle.

    use std::time::Duration;

    use rusqlite::Connection;
    use uuid::Uuid;

    use crate::store::sqlite::temp_db::{new_user, TempDb};
    use crate::store::sqlite::SqliteStore;
    use crate::store::Store;

    /// Whether the connection's snapshot holds `login` (users stand in for
    /// any table here: the store writes them through its writer too).
    fn sees(c: &Connection, login: &str) -> bool {
        c.query_row(
            "SELECT COUNT(*) FROM users WHERE login = ?1",
            [login],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    }

    /// The size of the file's WAL (0 before there is one).
    fn wal_len(db: &TempDb) -> u64 {
        std::fs::metadata(db.path().with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Whether a kept-snapshot read finds `login`.
    fn kept_sees(store: &SqliteStore, login: &str) -> bool {
        store.readers.kept(|c| Ok(sees(c, login))).unwrap()
    }

    #[tokio::test]
    async fn a_kept_snapshot_read_sees_every_commit_of_the_store_made_before_it() {
        let db = TempDb::new();
        let store = SqliteStore::open(&db.path()).unwrap();
        // Two pooled connections, each with a snapshot: a read inside a read
        // takes a second connection, and the pool hands them out last in,
        // first out, so the outer read gets the same one every time.
        let both_see = |login: &str| -> (bool, bool) {
            let mut inner = false;
            let outer = store
                .readers
                .kept(|c| {
                    let outer = sees(c, login);
                    inner = kept_sees(&store, login);
                    Ok(outer)
                })
                .unwrap();
            (outer, inner)
        };
        for i in 0..50 {
            let login = format!("user{i}");
            // Both snapshots were taken after the previous commit, before this one.
            assert_eq!(both_see(&login), (false, false));
            store.add_user(new_user(&login)).await.unwrap();
            assert_eq!(
                both_see(&login),
                (true, true),
                "(outer, inner) reads after commit {i}"
            );
        }
    }

    #[tokio::test]
    async fn users_and_tokens_are_read_fresh_when_another_process_wrote_them() {
        let db = TempDb::new();
        let store = SqliteStore::open(&db.path()).unwrap();
        store.add_user(new_user("first")).await.unwrap();
        assert!(kept_sees(&store, "first"));
        assert!(store.user_by_login("second").await.unwrap().is_none());
        // What `nps-server user add` does while the server runs: a commit
        // the store's writer never counted.
        let other = Connection::open(db.path()).unwrap();
        other
            .execute(
                "INSERT INTO users (id, login, role, password_hash, totp_secret, created_at) \
                 VALUES (?1, 'second', 'user', 'x', 'JBSWY3DPEHPK3PXP', 0)",
                [Uuid::new_v4().to_string()],
            )
            .unwrap();
        assert!(store.user_by_login("second").await.unwrap().is_some());
        assert_eq!(store.user_count().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn idle_readers_let_the_wal_start_over() {
        let db = TempDb::new();
        let store = SqliteStore::open(&db.path()).unwrap();
        let wal = || wal_len(&db);
        let mut grew = 0;
        let mut last = 0;
        for i in 0..15 {
            store.add_user(new_user(&format!("user{i}"))).await.unwrap();
            // A read right after the commit keeps its snapshot, idle, while
            // the checkpointer copies the commit. The writer's next commit
            // starts the WAL over only if no idle reader holds it then.
            assert!(kept_sees(&store, &format!("user{i}")));
            tokio::time::sleep(Duration::from_millis(200)).await;
            let size = wal();
            if i >= 3 && size > last {
                grew += 1;
            }
            last = size;
        }
        // Left to grow, it grows by each commit (12 of 12); a slow machine
        // may miss a restart now and then.
        assert!(grew <= 3, "the WAL grew after {grew} of 12 commits");
    }

    #[tokio::test]
    async fn the_wal_file_is_cut_back_after_one_large_transaction() {
        use crate::store::sqlite::checkpoint::WAL_FILE_LIMIT;

        let db = TempDb::new();
        let store = SqliteStore::open(&db.path()).unwrap();
        let wal = || wal_len(&db);
        // One transaction larger than the limit, as a migration's rebuild
        // (made by another connection here: the store has no such write).
        let big = WAL_FILE_LIMIT as usize + (8 << 20);
        {
            let conn = Connection::open(db.path()).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            conn.execute_batch(&format!(
                "BEGIN; CREATE TABLE filler (b BLOB); \
                 WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < {}) \
                 INSERT INTO filler SELECT randomblob(4000) FROM k; COMMIT;",
                big / 4000
            ))
            .unwrap();
        }
        assert!(wal() > big as u64, "the WAL holds the transaction");
        // The store's commits let the checkpointer copy it all; the WAL then
        // starts over, and its file is cut back.
        for i in 0..50 {
            store.add_user(new_user(&format!("user{i}"))).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            if wal() <= WAL_FILE_LIMIT as u64 {
                return;
            }
        }
        panic!("the WAL's file is still {} MB", wal() >> 20);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_steady_reads_and_writes() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;

        let db = TempDb::new();
        let store = Arc::new(SqliteStore::open(&db.path()).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        // Two threads reading without a pause, as GetByIdAsync under load.
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        kept_sees(&store, "nobody");
                    }
                })
            })
            .collect();
        let wal = || wal_len(&db);
        // 20,000 commits, 16 at a time: about 120 MB of WAL if it never
        // started over (it did not, before the fallback in checkpoint.rs).
        let mut peak = 0;
        for round in 0..1_250 {
            let batch: Vec<_> = (0..16)
                .map(|k| {
                    let store = Arc::clone(&store);
                    tokio::spawn(async move {
                        store
                            .add_user(new_user(&format!("user{round}-{k}")))
                            .await
                            .unwrap()
                    })
                })
                .collect();
            for b in batch {
                b.await.unwrap();
            }
            peak = peak.max(wal());
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        // It starts over past WRITER_PAGES (16 MB) and a little more.
        assert!(peak < 48 << 20, "the WAL reached {} MB", peak >> 20);
    }
}
