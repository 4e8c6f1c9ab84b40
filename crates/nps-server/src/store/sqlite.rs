//! The embedded SQLite backend.
//!
//! - WAL mode with `synchronous = FULL`: a committed write is on disk.
//! - One writer thread owns the write connection and commits concurrent
//!   writes together (group commit): each write runs in its own savepoint, so
//!   one failing write does not undo the others, and every caller is answered
//!   only after the shared COMMIT returned. Many concurrent DELETEs cost one
//!   fsync, not one each.
//! - Reads use a small pool of read-only connections, each keeping its
//!   snapshot while nothing commits (see `readers.rs`).
//! - Every value is bound as a parameter; no input is pasted into SQL.

use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use nps_api::policy::Role;
use nps_api::{ActionLogDto, ActionLogType, ActivitySession, SessionStatus};
use rusqlite::config::DbConfig;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, ToSql};
use uuid::Uuid;

use super::*;
use crate::lifecycle::state::{self, Event, Outcome, Phase, Work};

mod checkpoint;
mod journal;
mod migrate;
mod owner;
mod readers;
#[cfg(test)]
mod temp_db;
mod writer;

use journal::PendingEnds;
use readers::{Epoch, Readers};
use writer::{Job, Tx, WriteJob};

const SCHEMA: &str = include_str!("schema.sql");

/// Microseconds since the epoch: how times are stored.
fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

fn map_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::*;
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ReadOnly | DiskFull | DatabaseBusy | DatabaseLocked | CannotOpen | SystemIoFailure => {
                StoreError::Unavailable(e.to_string())
            }
            ConstraintViolation => StoreError::Constraint(e.to_string()),
            _ => StoreError::Internal(e.to_string()),
        },
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        _ => StoreError::Internal(e.to_string()),
    }
}

pub struct SqliteStore {
    writer: Mutex<mpsc::Sender<Box<dyn WriteJob>>>,
    readers: Arc<Readers>,
    /// Ends journalled by DeleteAsync and not yet applied to their rows.
    pending: Arc<PendingEnds>,
    /// Where the engine's next slice resumes reading the journal.
    cursor: Arc<journal::Cursor>,
    /// This process is the file's one server (see owner.rs).
    _owner: owner::Owner,
}

/// Runs `f` in one immediate transaction on `conn` (outside the writer
/// thread: at open), committed when it succeeds and rolled back otherwise.
fn in_transaction<T>(conn: &Connection, f: impl FnOnce() -> StoreResult<T>) -> StoreResult<T> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(map_err)?;
    let result = f();
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    conn.execute_batch(end).map_err(map_err)?;
    result
}

/// Prepared statements each connection keeps. The writer alone runs more
/// distinct statements than rusqlite's default of 16, and a statement pushed
/// out is parsed and planned again on the writer's one thread.
const STATEMENT_CACHE: usize = 64;

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // One plan per statement, whatever its parameters. Without this, SQLite
    // re-parses and re-plans a statement at every new binding when its plan
    // might depend on the value: APPEND_LOG's `MAX(line) ... WHERE
    // session_id = ?1` did, about a fifth of the writer's time while the
    // engine applied ends (perf, `cargo xtask bench`). The plans are then
    // also the ones the query-plan tests see with unbound parameters.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA foreign_keys = ON;")?;
    Ok(())
}

/// Creates the directory the database file goes in: readable by its owner
/// only (directories that exist keep their mode).
fn create_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir).map_err(|e| {
                anyhow::anyhow!("cannot create the directory {}: {e}", dir.display())
            })?;
        }
    }
    Ok(())
}

/// Creates a missing database file readable and writable by its owner only:
/// it holds password hashes and TOTP secrets, which with the password (or
/// a guess of it) sign in. SQLite gives the WAL and shared-memory files it
/// creates beside it the same mode, whatever the umask.
fn create_private(path: &Path) -> anyhow::Result<()> {
    // A symbolic link to a missing file: SQLite would create the target
    // with the umask's mode.
    if !path.exists() && std::fs::symlink_metadata(path).is_ok() {
        anyhow::bail!(
            "the database {} is a symbolic link to a file that does not exist: \
             give the real path with --database, or create the file (mode 600)",
            path.display()
        );
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(anyhow::anyhow!(
            "cannot create the database {}: {e}",
            path.display()
        )),
    }
}

/// Whether the database file can be read by users other than its owner
/// (a file created by an earlier version, or copied with a wide umask).
pub fn readable_by_others(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// `error`, which stopped the server from using the database at `path`,
/// with the file named and what to do about the usual causes.
fn unusable(path: &Path, error: anyhow::Error) -> anyhow::Error {
    let text = format!("{error:#}");
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.display().to_string(),
        _ => ".".into(),
    };
    let hint = if text.contains("readonly") {
        format!(
            "the server must be able to write {} and to create its -wal and -shm files in \
             {dir}: check the permissions of both for the user the server runs as",
            path.display()
        )
    } else if text.contains("not a database") {
        format!(
            "{} is not an SQLite database: give --database the path of the server's \
             database, or of a file to create",
            path.display()
        )
    } else if text.contains("locked") {
        "another program holds a lock on the file (an open sqlite3 shell, a backup \
         tool): close it, then start the server again"
            .into()
    } else if text.contains("unable to open") {
        format!(
            "{} cannot be opened as a file: is it a directory, or is {dir} not writable?",
            path.display()
        )
    } else {
        return error;
    };
    let named = if text.contains(&path.display().to_string()) {
        text
    } else {
        format!("cannot use the database {}: {text}", path.display())
    };
    anyhow::anyhow!("{named}\n  {hint}")
}

/// A read-write connection to the file at `path` (created if missing).
fn connect(path: &Path) -> anyhow::Result<Connection> {
    create_private(path)?;
    let conn = Connection::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open the database {}: {e}", path.display()))?;
    configure(&conn)?;
    Ok(conn)
}

/// Opens the database file at `path` in WAL mode, creating and migrating
/// it when needed: only by a process that holds the file's lock (see
/// owner.rs), so no server is running on it meanwhile.
fn open_file(path: &Path, _owner: &owner::Owner) -> anyhow::Result<Connection> {
    let conn = connect(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    let rebuilt = migrate::migrate(&conn, SCHEMA)
        .map_err(|e| anyhow::anyhow!("cannot migrate the database {}: {e}", path.display()))?;
    if rebuilt {
        // The rebuild wrote the whole table into the WAL (600 MB at a
        // million sessions): copy it back and empty the file now, before
        // anything else uses it. (Should another process hold a read, the
        // writer's `journal_size_limit` cuts the file back later.)
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    let existing: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'node_id'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if existing.is_none() {
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('node_id', ?1)",
            params![Uuid::new_v4().to_string()],
        )?;
    }

    Ok(conn)
}

/// Adds a user from a process other than the server's (`nps-server user
/// add`), which may run beside a server on the same file: one INSERT in a
/// transaction of its own, with no journal applied and no session touched.
/// It creates a new file when no server holds it, but never migrates an
/// existing one: a server of an earlier version, which took no lock, may be
/// running on it, so that is left to this version's server when it starts.
/// `show` runs inside its transaction, once the user is inserted: when it
/// fails (the credentials could not be shown), the user is not added.
pub fn add_user_alongside(
    path: &Path,
    user: NewUser,
    show: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<User> {
    create_parent(path)?;
    let owner = owner::try_own(path)?;
    let conn = connect(path)?;
    if !migrate::is_current(&conn, SCHEMA)? {
        let empty: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))?;
        drop(conn);
        match owner {
            Some(owner) if empty == 0 => {
                let conn = open_file(path, &owner)?;
                return insert_and_show(&conn, user, show);
            }
            Some(_) => anyhow::bail!(
                "{} was written by an earlier nps-server: start this version's \
                 nps-server on it once (it migrates the file), then add the user",
                path.display()
            ),
            None => anyhow::bail!(
                "{} is in use by another process (a running nps-server, or another \
                 `nps-server user add`) and does not have this version's schema yet: \
                 if an earlier nps-server is running on it, restart it with this \
                 version (it migrates the file when it starts), then add the user",
                path.display()
            ),
        }
    }
    insert_and_show(&conn, user, show)
}

fn insert_and_show(
    conn: &Connection,
    user: NewUser,
    show: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<User> {
    let mut not_shown = None;
    let added = in_transaction(conn, || {
        let added = insert_user(conn, user)?;
        show().map_err(|e| {
            let message = e.to_string();
            not_shown = Some(e);
            StoreError::Internal(message)
        })?;
        Ok(added)
    });
    match not_shown {
        Some(e) => Err(e),
        None => Ok(added?),
    }
}

/// The one INSERT of a user, for the writer and [`add_user_alongside`].
fn insert_user(c: &Connection, user: NewUser) -> StoreResult<User> {
    let id = Uuid::new_v4();
    c.execute(
        "INSERT INTO users (id, login, role, password_hash, totp_secret, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            id.to_string(),
            user.login,
            user.role.as_str(),
            user.password_hash,
            user.totp_secret,
            to_micros(Utc::now())
        ],
    )
    .map_err(|e| match map_err(e) {
        StoreError::Constraint(_) => {
            StoreError::Conflict(format!("a user with login {} exists", user.login))
        }
        other => other,
    })?;
    Ok(User {
        id,
        login: user.login,
        password_hash: user.password_hash,
        totp_secret: user.totp_secret,
    })
}

impl SqliteStore {
    /// At a clean stop, once nothing writes any more: copies the WAL into
    /// the database file at `path` and empties it, so that the file alone
    /// holds everything (a copy of it taken after the stop is whole). What
    /// this cannot copy stays in the WAL, durable, and is read at the next
    /// start.
    pub fn checkpoint_at_stop(&self, path: &Path) -> anyhow::Result<()> {
        self.readers.release_all();
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(2))?;
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy != 0 {
            anyhow::bail!("another connection was still using the database");
        }
        Ok(())
    }

    /// Takes the file's lock (one server per file, see owner.rs), opens
    /// (creating and migrating when needed) the database at `path`, applies
    /// the end requests it journalled and starts its writer.
    pub fn open(path: &Path) -> anyhow::Result<SqliteStore> {
        create_parent(path)?;
        let owner = owner::own(path)?;
        let conn = open_file(path, &owner).map_err(|e| unusable(path, e))?;
        journal::replay(&conn).map_err(|e| {
            unusable(
                path,
                anyhow::anyhow!(
                    "cannot apply the end requests journalled in {}: {e}",
                    path.display()
                ),
            )
        })?;

        // Each write job runs in a savepoint, whose undo pages SQLite keeps
        // in a statement journal; past 64 KiB it spills them to a temporary
        // file, created, written and deleted again on the writer's path
        // (while the engine applied ends: server CPU per sustained end went
        // from 180-199 us to about 158 us in `cargo xtask bench --quick`).
        // They are the pages a job changes: a few for a request, at most a
        // few hundred for a slice of journalled ends, and for the periodic
        // purge of expired tokens one page per few dozen tokens (10,000
        // tokens expired since the last purge: about 1 MB). Memory holds
        // that. (Set after the migration, whose index builds may sort more
        // than memory should.)
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // Checkpoints run on their own thread (see checkpoint.rs); the
        // writer's own, past 4,000 pages, only finishes what that thread
        // left, so that the WAL can start over (see there).
        conn.pragma_update(None, "wal_autocheckpoint", checkpoint::WRITER_PAGES)?;
        // When the WAL starts over, its file is cut back to this size: one
        // large transaction (a migration's rebuild: 600 MB at a million
        // sessions) would otherwise leave it that large for good.
        conn.pragma_update(None, "journal_size_limit", checkpoint::WAL_FILE_LIMIT)?;
        let epoch = Arc::new(Epoch::default());
        let readers = Arc::new(Readers::new(path, Arc::clone(&epoch)));
        let committed = checkpoint::start(path, epoch, Arc::clone(&readers))?;
        let pending = Arc::new(PendingEnds::default());
        let (tx, rx) = mpsc::channel::<Box<dyn WriteJob>>();
        let writer_pending = Arc::clone(&pending);
        std::thread::Builder::new()
            .name("nps-sqlite-writer".into())
            .spawn(move || writer::writer_loop(conn, &writer_pending, &committed, rx))?;
        Ok(SqliteStore {
            writer: Mutex::new(tx),
            readers,
            pending,
            cursor: Arc::default(),
            _owner: owner,
        })
    }

    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx) -> StoreResult<T> + Send + 'static,
    {
        self.submit(f, false).await
    }

    /// A write that yields to requests waiting for the writer.
    async fn write_background<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx) -> StoreResult<T> + Send + 'static,
    {
        self.submit(f, true).await
    }

    async fn submit<T, F>(&self, f: F, background: bool) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx) -> StoreResult<T> + Send + 'static,
    {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job: Box<dyn WriteJob> = Box::new(Job {
            f: Some(f),
            background,
            result: None,
            reply,
        });
        self.writer
            .lock()
            .expect("writer lock")
            .send(job)
            .map_err(|_| StoreError::Internal("the writer thread stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Internal("the writer thread dropped a write".into()))?
    }

    /// A read in a transaction of its own: for users and tokens, which
    /// another process (`nps-server user add`) may have written.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.read_on_blocking_thread(f, false).await
    }

    /// A read of the sessions, their logs or the journal (the tables only
    /// this process writes), from a kept snapshot (see readers.rs).
    async fn read_sessions<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.read_on_blocking_thread(f, true).await
    }

    async fn read_on_blocking_thread<T, F>(&self, f: F, kept: bool) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            if kept {
                readers.kept(f)
            } else {
                readers.fresh(f)
            }
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }

    /// A lookup by primary key, run on the calling thread. With its pages
    /// cached it takes microseconds, less than the two thread switches of
    /// [`Self::read`] (to a blocking thread and back), which were most of the
    /// cost of a GetByIdAsync on a two-core machine (`cargo xtask bench`).
    /// Sessions only: from a kept snapshot, as [`Self::read_sessions`].
    fn read_now<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        self.readers.kept(f)
    }
}

// ---- rows ----------------------------------------------------------------

/// The columns of `sessions` in the order [`session_from_row`] reads them,
/// as a literal so that statements are built at compile time.
macro_rules! session_columns {
    () => {
        "id, created_by, created_by_login, created_from, created_at, \
        modified_at, status, status_description, scheduled_start, actual_start, scheduled_end, \
        actual_end, cancelled_by, activity_id, activity_name, activity_session_group_id, \
        access_policy_id, managed_account_id, managed_resource_id, managed_resource_name, \
        credential_id, login_account_name, note, ticket, custom_fields, target_id, target_user_id, \
        node_id, allow_extension, extension_count, extension_minutes, work_phase, work_index, \
        work_attempts, work_due, end_target"
    };
}

/// The rowid of a session's row: the first 64 bits of its id, in the order
/// `Uuid` keeps them (see `sessions` in schema.sql). Every statement that
/// finds a session by id says `id_key = row_key(id) AND id = id`: the first
/// finds the row in the table's own B-tree, the second makes sure it is this
/// session; without the first, SQLite reads the whole table.
pub(super) fn row_key(id: Uuid) -> i64 {
    id.as_u64_pair().0 as i64
}

/// A new row, or none when its key is taken (see `insert_session`).
const INSERT_SESSION: &str = concat!(
    "INSERT INTO sessions (",
    session_columns!(),
    ", id_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
     ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, \
     ?33, ?34, ?35, ?36, ?37) ON CONFLICT (id_key) DO NOTHING"
);

/// The statements that find a session by id; a test checks that each finds
/// it by key ([`row_key`]).
const LOAD_SESSION: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE id_key = ?1 AND id = ?2"
);
const WRITE_ROW: &str = "UPDATE sessions SET status = ?2, status_description = ?3, \
    modified_at = ?4, actual_start = ?5, actual_end = ?6, cancelled_by = ?7, work_phase = ?8, \
    work_index = ?9, work_attempts = ?10, work_due = ?11, end_target = ?12 \
    WHERE id_key = ?13 AND id = ?1";
const EXTEND: &str = "UPDATE sessions SET scheduled_end = ?2, \
    extension_count = extension_count + 1, extension_minutes = extension_minutes + ?3, \
    modified_at = ?4 WHERE id_key = ?5 AND id = ?1";

fn uuid_col(row: &Row, idx: usize) -> rusqlite::Result<Uuid> {
    let s: String = row.get(idx)?;
    Uuid::parse_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn opt_uuid_col(row: &Row, idx: usize) -> rusqlite::Result<Option<Uuid>> {
    let s: Option<String> = row.get(idx)?;
    s.map(|s| {
        Uuid::parse_str(&s).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
        })
    })
    .transpose()
}

fn status_col(row: &Row, idx: usize) -> rusqlite::Result<SessionStatus> {
    let s: String = row.get(idx)?;
    SessionStatus::from_name(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            format!("unknown status {s}").into(),
        )
    })
}

fn session_from_row(row: &Row) -> rusqlite::Result<StoredSession> {
    let opt_time = |idx: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        Ok(row.get::<_, Option<i64>>(idx)?.map(from_micros))
    };
    let session = ActivitySession {
        id: uuid_col(row, 0)?,
        created_by: opt_uuid_col(row, 1)?,
        created_by_user_name: row.get(2)?,
        created_from_address: row.get(3)?,
        created_date_time_utc: from_micros(row.get(4)?),
        modified_date_time_utc: from_micros(row.get(5)?),
        status: status_col(row, 6)?,
        status_description: row.get(7)?,
        scheduled_start_date_time_utc: from_micros(row.get(8)?),
        actual_start_date_time_utc: opt_time(9)?,
        scheduled_end_date_time_utc: opt_time(10)?,
        actual_end_date_time_utc: opt_time(11)?,
        cancelled_by: opt_uuid_col(row, 12)?,
        activity_id: uuid_col(row, 13)?,
        activity_name: row.get(14)?,
        activity_session_group_id: opt_uuid_col(row, 15)?,
        access_control_policy_id: opt_uuid_col(row, 16)?,
        managed_account_id: opt_uuid_col(row, 17)?,
        managed_resource_id: opt_uuid_col(row, 18)?,
        managed_resource_name: row.get(19)?,
        credential_id: opt_uuid_col(row, 20)?,
        login_account_name: row.get(21)?,
        note: row.get(22)?,
        ticket: row.get(23)?,
        custom_fields: row.get(24)?,
        target_id: opt_uuid_col(row, 25)?,
        target_user_id: opt_uuid_col(row, 26)?,
        node_id: uuid_col(row, 27)?,
        allow_session_extension: row.get(28)?,
        session_extension_count: row.get(29)?,
        session_extension_minutes: row.get(30)?,
        locked: false,
    };
    let phase: Option<String> = row.get(31)?;
    let end_target = row
        .get::<_, Option<String>>(35)?
        .and_then(|s| SessionStatus::from_name(&s));
    // With no work owed, `end_target` is a failed end's owed revocation.
    let (work, owed_end) = match phase.as_deref().and_then(Phase::parse) {
        None => (None, end_target),
        Some(phase) => (
            Some(Work {
                phase,
                next_action: row.get::<_, i64>(32)? as u32,
                attempts: row.get::<_, i64>(33)? as u32,
                due: from_micros(row.get(34)?),
                end_target,
            }),
            None,
        ),
    };
    Ok(StoredSession {
        session,
        work,
        owed_end,
    })
}

fn load_session(conn: &Connection, id: Uuid) -> StoreResult<Option<StoredSession>> {
    conn.prepare_cached(LOAD_SESSION)
        .map_err(map_err)?
        .query_row(params![row_key(id), id.to_string()], session_from_row)
        .optional()
        .map_err(map_err)
}

/// A session's next log line: numbered after its last.
const APPEND_LOG: &str = "INSERT INTO session_log (session_id, line, level, message, at) VALUES \
    (?1, (SELECT COALESCE(MAX(line), 0) + 1 FROM session_log WHERE session_id = ?1), ?2, ?3, ?4)";

fn append_log(
    conn: &Connection,
    id: Uuid,
    level: ActionLogType,
    message: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    conn.prepare_cached(APPEND_LOG)
        .map_err(map_err)?
        .execute(params![
            id.to_string(),
            level.as_str(),
            message,
            to_micros(at)
        ])
        .map_err(map_err)?;
    Ok(())
}

fn opt_str(u: Option<Uuid>) -> Option<String> {
    u.map(|u| u.to_string())
}

/// The work columns of a row, as bound (all NULL when no work is owed, but
/// `end_target` for a Failed session's owed revocation).
struct WorkColumns {
    phase: Option<&'static str>,
    next_action: Option<i64>,
    attempts: Option<i64>,
    due: Option<i64>,
    end_target: Option<&'static str>,
}

impl WorkColumns {
    fn of(work: Option<&Work>, owed_end: Option<SessionStatus>) -> WorkColumns {
        WorkColumns {
            phase: work.map(|w| w.phase.as_str()),
            next_action: work.map(|w| w.next_action as i64),
            attempts: work.map(|w| w.attempts as i64),
            due: work.map(|w| to_micros(w.due)),
            end_target: match work {
                Some(w) => w.end_target.map(SessionStatus::as_str),
                None => owed_end.map(SessionStatus::as_str),
            },
        }
    }

    /// Then the row's key: the last six parameters of [`INSERT_SESSION`]
    /// and of [`WRITE_ROW`], in this order.
    fn and_key<'a>(&'a self, key: &'a i64) -> [&'a dyn ToSql; 6] {
        [
            &self.phase,
            &self.next_action,
            &self.attempts,
            &self.due,
            &self.end_target,
            key,
        ]
    }
}

/// Inserts a session's row; answers false, and writes nothing, when
/// another row has its key.
fn insert_session_row(
    conn: &Connection,
    s: &ActivitySession,
    work: Option<&Work>,
    creator_login: &str,
) -> StoreResult<bool> {
    let (w, key) = (WorkColumns::of(work, None), row_key(s.id));
    conn.prepare_cached(INSERT_SESSION)
        .map_err(map_err)?
        .execute(params_from_iter(
            params![
                s.id.to_string(),
                opt_str(s.created_by),
                creator_login,
                s.created_from_address,
                to_micros(s.created_date_time_utc),
                to_micros(s.modified_date_time_utc),
                s.status.as_str(),
                s.status_description,
                to_micros(s.scheduled_start_date_time_utc),
                s.actual_start_date_time_utc.map(to_micros),
                s.scheduled_end_date_time_utc.map(to_micros),
                s.actual_end_date_time_utc.map(to_micros),
                opt_str(s.cancelled_by),
                s.activity_id.to_string(),
                s.activity_name,
                opt_str(s.activity_session_group_id),
                opt_str(s.access_control_policy_id),
                opt_str(s.managed_account_id),
                opt_str(s.managed_resource_id),
                s.managed_resource_name,
                opt_str(s.credential_id),
                s.login_account_name,
                s.note,
                s.ticket,
                s.custom_fields,
                opt_str(s.target_id),
                opt_str(s.target_user_id),
                s.node_id.to_string(),
                s.allow_session_extension,
                s.session_extension_count,
                s.session_extension_minutes,
            ]
            .iter()
            .chain(&w.and_key(&key)),
        ))
        .map(|inserted| inserted == 1)
        .map_err(map_err)
}

/// Applies an event to a loaded row (inside the writer's transaction).
fn apply_event(
    conn: &Connection,
    id: Uuid,
    event: &Event,
    actor: &Actor,
    message: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<Applied> {
    let current = load_session(conn, id)?.ok_or(StoreError::NotFound)?;
    let Some(step) = Step::plan(&current, event, actor, message, now) else {
        return Ok(Applied {
            session: current,
            changed: false,
        });
    };
    write_row(conn, &step.next)?;
    step.log(conn, id)?;
    Ok(Applied {
        session: step.next,
        changed: true,
    })
}

/// An event applied to a session in memory: the row it leaves, and the log
/// line that says so. Several steps can be planned one on the other and
/// written once ([`write_row`], then each [`Step::log`]).
struct Step {
    next: StoredSession,
    line: Option<(ActionLogType, String, DateTime<Utc>)>,
}

impl Step {
    /// None when the event changes nothing (see [`state::transition`]).
    fn plan(
        current: &StoredSession,
        event: &Event,
        actor: &Actor,
        message: Option<&str>,
        now: DateTime<Utc>,
    ) -> Option<Step> {
        // As stored, so that what is returned is what a read gives back.
        let now = from_micros(to_micros(now));
        let change = match state::transition(
            current.session.status,
            current.work.as_ref(),
            current.owed_end,
            event,
            now,
        ) {
            Outcome::NoChange => return None,
            Outcome::Apply(change) => change,
        };
        let next = current.with_change(&change, actor, now);
        let (was, is) = (current.session.status, next.session.status);
        let line = match (message, is != was) {
            (Some(m), true) => Some(format!("{was} -> {is} by {}: {m}", actor.describe())),
            (None, true) => Some(format!("{was} -> {is} by {}", actor.describe())),
            (Some(m), false) => Some(m.to_string()),
            (None, false) => None,
        };
        Some(Step {
            next,
            line: line.map(|l| (state::log_level(event), l, now)),
        })
    }

    fn log(&self, conn: &Connection, id: Uuid) -> StoreResult<()> {
        match &self.line {
            Some((level, line, at)) => append_log(conn, id, *level, line, *at),
            None => Ok(()),
        }
    }
}

/// Writes what a transition changes of a session's row.
fn write_row(conn: &Connection, next: &StoredSession) -> StoreResult<()> {
    let s = &next.session;
    let (w, key) = (
        WorkColumns::of(next.work.as_ref(), next.owed_end),
        row_key(s.id),
    );
    conn.prepare_cached(WRITE_ROW)
        .map_err(map_err)?
        .execute(params_from_iter(
            params![
                s.id.to_string(),
                s.status.as_str(),
                s.status_description,
                to_micros(s.modified_date_time_utc),
                s.actual_start_date_time_utc.map(to_micros),
                s.actual_end_date_time_utc.map(to_micros),
                opt_str(s.cancelled_by),
            ]
            .iter()
            .chain(&w.and_key(&key)),
        ))
        .map_err(map_err)?;
    Ok(())
}

fn user_from_row(row: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: uuid_col(row, 0)?,
        login: row.get(1)?,
        password_hash: row.get(3)?,
        totp_secret: row.get(4)?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn node_id(&self) -> StoreResult<Uuid> {
        self.read(|c| {
            let s: String = c
                .query_row("SELECT value FROM meta WHERE key = 'node_id'", [], |r| {
                    r.get(0)
                })
                .map_err(map_err)?;
            Uuid::parse_str(&s).map_err(|e| StoreError::Internal(e.to_string()))
        })
        .await
    }

    async fn user_count(&self) -> StoreResult<u64> {
        self.read(|c| {
            c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(map_err)
        })
        .await
    }

    async fn admin_count(&self) -> StoreResult<u64> {
        self.read(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM users WHERE role = ?1",
                params![Role::Admin.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }

    async fn add_user(&self, user: NewUser) -> StoreResult<User> {
        self.write(move |c| insert_user(c, user)).await
    }

    async fn user_by_login(&self, login: &str) -> StoreResult<Option<User>> {
        let login = login.to_string();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT id, login, role, password_hash, totp_secret FROM users WHERE login = ?1",
            )
            .map_err(map_err)?
            .query_row(params![login], user_from_row)
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<User>> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT id, login, role, password_hash, totp_secret FROM users WHERE id = ?1",
            )
            .map_err(map_err)?
            .query_row(params![id.to_string()], user_from_row)
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn use_totp_step(&self, user_id: Uuid, step: u64) -> StoreResult<bool> {
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE users SET last_totp_step = ?2 WHERE id = ?1 AND last_totp_step < ?2",
                    params![user_id.to_string(), step as i64],
                )
                .map_err(map_err)?;
            Ok(n == 1)
        })
        .await
    }

    async fn insert_token(
        &self,
        hash: [u8; 32],
        user_id: Uuid,
        kind: TokenKind,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO tokens (hash, user_id, kind, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    hash.to_vec(),
                    user_id.to_string(),
                    kind.as_str(),
                    to_micros(expires_at),
                    to_micros(Utc::now())
                ],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn token(&self, hash: [u8; 32]) -> StoreResult<Option<TokenRecord>> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT t.user_id, u.login, u.role, t.kind, t.expires_at, t.revoked \
                 FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1",
            )
            .map_err(map_err)?
            .query_row(params![hash.to_vec()], |r| {
                let role: String = r.get(2)?;
                let kind: String = r.get(3)?;
                Ok(TokenRecord {
                    user_id: uuid_col(r, 0)?,
                    login: r.get(1)?,
                    role: Role::parse(&role).unwrap_or(Role::User),
                    kind: if kind == "mfa" {
                        TokenKind::Mfa
                    } else {
                        TokenKind::PreMfa
                    },
                    expires_at: from_micros(r.get(4)?),
                    revoked: r.get(5)?,
                })
            })
            .optional()
            .map_err(map_err)
        })
        .await
    }

    async fn count_code_try(&self, hash: [u8; 32], limit: u32) -> StoreResult<Option<u32>> {
        self.write(move |c| {
            let counted = c
                .execute(
                    "UPDATE tokens SET failed_codes = failed_codes + 1 \
                     WHERE hash = ?1 AND revoked = 0 AND failed_codes < ?2",
                    params![hash.to_vec(), limit],
                )
                .map_err(map_err)?;
            if counted == 0 {
                return Ok(None);
            }
            c.query_row(
                "SELECT failed_codes FROM tokens WHERE hash = ?1",
                params![hash.to_vec()],
                |r| Ok(Some(r.get::<_, i64>(0)? as u32)),
            )
            .map_err(map_err)
        })
        .await
    }

    async fn revoke_token(&self, hash: [u8; 32]) -> StoreResult<()> {
        self.write(move |c| {
            c.execute(
                "UPDATE tokens SET revoked = 1 WHERE hash = ?1",
                params![hash.to_vec()],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn purge_expired_tokens(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM tokens WHERE expires_at < ?1",
                params![to_micros(before)],
            )
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }

    async fn insert_session(&self, new: NewSession, actor: &Actor) -> StoreResult<StoredSession> {
        let actor_name = actor.name.clone();
        self.write(move |c| {
            let mut new = new;
            // Random ids share their first 64 bits (the row's key) about once
            // in 2^60 pairs; the newcomer then takes another id.
            while !insert_session_row(c, &new.session, new.work.as_ref(), &actor_name)? {
                new.session.id = Uuid::new_v4();
            }
            let s = &new.session;
            append_log(
                c,
                s.id,
                ActionLogType::Info,
                &new.log_message,
                s.created_date_time_utc,
            )?;
            Ok(StoredSession {
                session: new.session,
                work: new.work,
                owed_end: None,
            })
        })
        .await
    }

    async fn session(&self, id: Uuid) -> StoreResult<Option<StoredSession>> {
        // The journal first, the row second: an end leaves the journal only
        // after its row was committed, so one of the two shows it.
        let pending = self.pending.get(id);
        let row = self.read_now(|c| load_session(c, id))?;
        Ok(match (row, pending) {
            (Some(stored), Some(p)) => Some(p.overlay(stored)),
            (row, _) => row,
        })
    }

    async fn list_sessions(&self, filter: &SessionFilter) -> StoreResult<Vec<ActivitySession>> {
        let statuses: Vec<String> = filter
            .category
            .map(|c| {
                c.statuses()
                    .iter()
                    .map(|s| s.as_str().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let target = opt_str(filter.target_id);
        let target_user = opt_str(filter.target_user_id);
        let (skip, take) = (filter.skip as i64, filter.take as i64);
        // Ends still in the journal are shown on their rows. A journalled end
        // never moves a session out of its category (Active stays in Active:
        // Cancelling), so the filter can run on the rows as stored.
        let pending = self.pending.snapshot();
        let rows = self
            .read_sessions(move |c| {
                // Up to five statuses per category; unused slots are NULL.
                let slot = |i: usize| statuses.get(i).cloned();
                let mut stmt = c
                    .prepare_cached(concat!(
                        "SELECT ",
                        session_columns!(),
                        " FROM sessions \
                     WHERE (?1 IS NULL OR status IN (?1, ?2, ?3, ?4, ?5)) \
                     AND (?6 IS NULL OR target_id = ?6) AND (?7 IS NULL OR target_user_id = ?7) \
                     ORDER BY created_at DESC, id DESC LIMIT ?8 OFFSET ?9"
                    ))
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map(
                        params![
                            slot(0),
                            slot(1),
                            slot(2),
                            slot(3),
                            slot(4),
                            target,
                            target_user,
                            take,
                            skip
                        ],
                        session_from_row,
                    )
                    .map_err(map_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|s| match pending.get(&s.session.id) {
                Some(p) => p.overlay(s).session,
                None => s.session,
            })
            .collect())
    }

    async fn apply(
        &self,
        id: Uuid,
        event: Event,
        actor: &Actor,
        message: Option<String>,
    ) -> StoreResult<Applied> {
        let actor = actor.clone();
        self.write(move |c| {
            journal::settle(c, id)?;
            apply_event(c, id, &event, &actor, message.as_deref(), Utc::now())
        })
        .await
    }

    async fn request_end(
        &self,
        id: Uuid,
        actor: &Actor,
        message: String,
        visible: Visible,
    ) -> StoreResult<Applied> {
        let at = from_micros(to_micros(Utc::now()));
        let actor = actor.clone();
        self.write(move |c| journal::request_end(c, id, &actor, &message, at, &*visible))
            .await
    }

    async fn apply_end_requests(&self, no_end_actions: NoEndActions) -> StoreResult<EndsApplied> {
        if self.pending.rows() == 0 {
            return Ok(EndsApplied::default());
        }
        let cursor = Arc::clone(&self.cursor);
        self.write_background(move |c| journal::apply_slice(c, &cursor, &*no_end_actions))
            .await
    }

    async fn extend(
        &self,
        id: Uuid,
        minutes: i32,
        limits: ExtensionLimits,
        actor: &Actor,
    ) -> StoreResult<StoredSession> {
        let actor = actor.clone();
        self.write(move |c| {
            let now = Utc::now();
            journal::settle(c, id)?;
            let current = load_session(c, id)?.ok_or(StoreError::NotFound)?;
            let s = &current.session;
            if !matches!(s.status, SessionStatus::Active | SessionStatus::Pending)
                || current.work.as_ref().is_some_and(|w| w.phase == Phase::End)
            {
                return Err(StoreError::Conflict(format!(
                    "the session is {}: only a Pending or Active session can be extended",
                    s.status
                )));
            }
            if !s.allow_session_extension {
                return Err(StoreError::Refused(
                    "this session does not allow extension".into(),
                ));
            }
            if s.session_extension_count >= limits.max_extensions {
                return Err(StoreError::Refused(format!(
                    "the session was extended {} times already, the most allowed",
                    s.session_extension_count
                )));
            }
            let old_end = s
                .scheduled_end_date_time_utc
                .unwrap_or(s.scheduled_start_date_time_utc);
            if old_end <= now {
                // Due to end (a start action still running holds it up):
                // an extension from then would end in the past.
                return Err(StoreError::Conflict(format!(
                    "the session's scheduled end ({}) has passed: it is ending",
                    old_end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )));
            }
            let new_end = old_end
                .checked_add_signed(chrono::Duration::minutes(minutes as i64))
                .filter(|t| chrono::Datelike::year(t) <= 9999)
                .ok_or_else(|| {
                    StoreError::Refused("the session cannot end after the year 9999".into())
                })?;
            c.execute(
                EXTEND,
                params![
                    id.to_string(),
                    to_micros(new_end),
                    minutes,
                    to_micros(now),
                    row_key(id)
                ],
            )
            .map_err(map_err)?;
            append_log(
                c,
                id,
                ActionLogType::Info,
                &format!(
                    "Extended by {minutes} min by {}: ends {} instead of {}",
                    actor.describe(),
                    new_end.to_rfc3339(),
                    old_end.to_rfc3339()
                ),
                now,
            )?;
            load_session(c, id)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn log(&self, id: Uuid, level: ActionLogType, message: String) -> StoreResult<()> {
        // A pending end's line comes first: it happened first.
        self.write(move |c| {
            journal::settle(c, id)?;
            append_log(c, id, level, &message, Utc::now())
        })
        .await
    }

    async fn logs(&self, id: Uuid, filter: &LogFilter) -> StoreResult<(Vec<ActionLogDto>, i32)> {
        let level = filter.level.map(|l| l.as_str().to_string());
        let text = filter.filter_text.clone().filter(|t| !t.is_empty());
        let start = filter.start.map(to_micros);
        let end = filter.end.map(to_micros);
        let (skip, take, desc) = (filter.skip as i64, filter.take as i64, filter.descending);
        if self.pending.get(id).is_some() {
            // Its end's log line is written when the end is applied: now.
            self.write(move |c| journal::settle(c, id)).await?;
        }
        self.read_sessions(move |c| {
            // instr() matches the text literally: % and _ are not wildcards.
            let conditions = "session_id = ?1 AND (?2 IS NULL OR level = ?2) \
                AND (?3 IS NULL OR instr(message, ?3) > 0) \
                AND (?4 IS NULL OR at >= ?4) AND (?5 IS NULL OR at <= ?5)";
            let total: i64 = c
                .prepare_cached(&format!(
                    "SELECT COUNT(*) FROM session_log WHERE {conditions}"
                ))
                .map_err(map_err)?
                .query_row(params![id.to_string(), level, text, start, end], |r| {
                    r.get(0)
                })
                .map_err(map_err)?;
            let order = if desc { "DESC" } else { "ASC" };
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT line, level, message, at FROM session_log WHERE {conditions} \
                     ORDER BY line {order} LIMIT ?6 OFFSET ?7"
                ))
                .map_err(map_err)?;
            let lines = stmt
                .query_map(
                    params![id.to_string(), level, text, start, end, take, skip],
                    |r| {
                        let level: String = r.get(1)?;
                        let level = ActionLogType::from_name(&level).unwrap_or(ActionLogType::Info);
                        Ok(ActionLogDto {
                            line_number: r.get(0)?,
                            status: level,
                            status_string: Some(level.as_str().to_string()),
                            log_message: Some(r.get(2)?),
                            timestamp: from_micros(r.get(3)?),
                            version: None,
                        })
                    },
                )
                .map_err(map_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(map_err)?;
            Ok((lines, total.min(i32::MAX as i64) as i32))
        })
        .await
    }

    async fn promote_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        has_start_actions: &(dyn for<'a> Fn(Option<&'a str>) -> bool + Send + Sync),
    ) -> StoreResult<Promoted> {
        // Which sessions are due is read first; whether each has start
        // actions is the caller's configuration, decided here, outside the
        // writer. Here and in next_due the partial indexes are named: without
        // statistics SQLite preferred the index by status of earlier files
        // (status = ?) and walked every Active session, 0.2 s per query at a
        // million, on every tick; no query may fall back to such a walk.
        let now_us = to_micros(now);
        let due = self
            .read_sessions(move |c| {
                let starts = c
                    .prepare_cached(
                        "SELECT id, activity_name FROM sessions INDEXED BY sessions_pending_start \
                         WHERE status = 'Pending' AND scheduled_start <= ?1 \
                         ORDER BY scheduled_start LIMIT ?2",
                    )
                    .map_err(map_err)?
                    .query_map(params![now_us, limit + 1], |r| {
                        Ok((uuid_col(r, 0)?, r.get::<_, Option<String>>(1)?))
                    })
                    .map_err(map_err)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(map_err)?;
                let ends = c
                    .prepare_cached(
                        "SELECT id FROM sessions INDEXED BY sessions_active_end \
                         WHERE status = 'Active' AND work_phase IS NULL AND scheduled_end <= ?1 \
                         ORDER BY scheduled_end LIMIT ?2",
                    )
                    .map_err(map_err)?
                    .query_map(params![now_us, limit + 1], |r| uuid_col(r, 0))
                    .map_err(map_err)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(map_err)?;
                Ok((starts, ends))
            })
            .await?;
        let (mut starts, mut ends) = due;
        let more = starts.len() > limit as usize || ends.len() > limit as usize;
        starts.truncate(limit as usize);
        ends.truncate(limit as usize);
        let starts: Vec<(Uuid, bool)> = starts
            .into_iter()
            .map(|(id, name): (Uuid, Option<String>)| {
                let has = has_start_actions(name.as_deref());
                (id, has)
            })
            .collect();
        if starts.is_empty() && ends.is_empty() {
            return Ok(Promoted::default());
        }
        self.write(move |c| {
            let system = Actor::system();
            let mut promoted = Promoted {
                more,
                ..Promoted::default()
            };
            for (id, has_start_actions) in starts {
                // A window that passed whole while the server was down:
                // it ends without granting anything after its end.
                let window_passed = load_session(c, id)?
                    .and_then(|s| s.session.scheduled_end_date_time_utc)
                    .is_some_and(|end| end <= now);
                let (event, message) = if window_passed {
                    (
                        Event::EndDue,
                        "scheduled end reached before the session started: no action runs",
                    )
                } else {
                    (
                        Event::StartDue { has_start_actions },
                        "scheduled start reached",
                    )
                };
                let applied = apply_event(c, id, &event, &system, Some(message), now)?;
                if window_passed {
                    promoted.ending += applied.changed as usize;
                } else {
                    promoted.started += applied.changed as usize;
                }
            }
            for id in ends {
                // Chosen by a read before this transaction: an ExtendAsync
                // committed in between may have moved the end.
                journal::settle(c, id)?;
                let still_due = load_session(c, id)?
                    .and_then(|s| s.session.scheduled_end_date_time_utc)
                    .is_some_and(|end| end <= now);
                if !still_due {
                    continue;
                }
                let applied = apply_event(
                    c,
                    id,
                    &Event::EndDue,
                    &system,
                    Some("scheduled end reached"),
                    now,
                )?;
                promoted.ending += applied.changed as usize;
            }
            Ok(promoted)
        })
        .await
    }

    async fn runnable(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<(Uuid, Phase)>> {
        let now_us = to_micros(now);
        self.read_sessions(move |c| {
            let mut due = Vec::new();
            for phase in [Phase::End, Phase::Start] {
                let ids = c
                    .prepare_cached(
                        "SELECT id FROM sessions WHERE work_phase IS NOT NULL AND work_due <= ?1 \
                         AND work_phase = ?2 ORDER BY work_due LIMIT ?3",
                    )
                    .map_err(map_err)?
                    .query_map(params![now_us, phase.as_str(), limit], |r| uuid_col(r, 0))
                    .map_err(map_err)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(map_err)?;
                due.extend(ids.into_iter().map(|id| (id, phase)));
            }
            Ok(due)
        })
        .await
    }

    async fn next_due(&self, now: DateTime<Utc>) -> StoreResult<Option<DateTime<Utc>>> {
        let now_us = to_micros(now);
        self.read_sessions(move |c| {
            let t: Option<i64> = c
                .prepare_cached(
                    "SELECT MIN(t) FROM ( \
                     SELECT MIN(scheduled_start) AS t FROM sessions INDEXED BY sessions_pending_start \
                     WHERE status = 'Pending' \
                     UNION ALL SELECT MIN(scheduled_end) FROM sessions INDEXED BY sessions_active_end \
                     WHERE status = 'Active' AND work_phase IS NULL \
                     UNION ALL SELECT MIN(work_due) FROM sessions WHERE work_phase IS NOT NULL AND work_due > ?1)",
                )
                .map_err(map_err)?
                .query_row(params![now_us], |r| r.get(0))
                .map_err(map_err)?;
            Ok(t.map(from_micros))
        })
        .await
    }
}
