//! The benchmark's direct access to the database file: seeding sessions by
//! SQL while the server is stopped (a million through the API would take most
//! of the run), choosing the ids each run uses, and checking afterwards what
//! reached the disk.
//!
//! Seeded rows copy a session the server itself created through CreateAsync
//! (the template): every column is the template's except the id and the
//! times, and each row gets the creation line of its log, worded as the
//! server words it. [`seed`] checks that wording against the template's own
//! line, so a change in the server shows up here as an error, not as rows
//! that differ from the real ones.

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use rusqlite::{params, Connection, OptionalExtension};

/// Columns of `sessions`, in the order of the seeding SELECT below.
const COLUMNS: &str = "id, created_by, created_by_login, created_from, created_at, \
    modified_at, status, status_description, scheduled_start, actual_start, scheduled_end, \
    actual_end, cancelled_by, activity_id, activity_name, activity_session_group_id, \
    access_policy_id, managed_account_id, managed_resource_id, managed_resource_name, \
    credential_id, login_account_name, note, ticket, custom_fields, target_id, target_user_id, \
    node_id, allow_extension, extension_count, extension_minutes, work_phase, work_index, \
    work_attempts, work_due, end_target";

/// A random version-4 UUID's first 64 bits as the server keys its row
/// (`row_key`): random, but for the version nibble (4).
const NEW_KEY: &str = "(random() & -61441) | 16384";

/// The version-4 UUID, lower case, as `Uuid::to_string` writes it, whose
/// first 64 bits are `key`; the rest is random.
fn uuid_of_key(key: &str) -> String {
    let h = format!("printf('%016x', {key})");
    format!(
        "substr({h}, 1, 8) || '-' || substr({h}, 9, 4) || '-' || substr({h}, 13, 4) || '-' \
         || substr('89ab', 1 + (random() & 3), 1) || substr(lower(hex(randomblob(2))), 2) \
         || '-' || lower(hex(randomblob(6)))"
    )
}

/// The row's key of the session `id` (the server's `row_key`): the first 64
/// bits of the UUID. Statements that find a session by id use it, or SQLite
/// reads the whole table.
fn row_key(id: &str) -> Result<i64, String> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.as_u64_pair().0 as i64)
        .map_err(|e| format!("session id {id:?} is not a UUID: {e}"))
}

/// Seeded sessions were created this far apart (microseconds), older than
/// every existing one: a million span 5.6 hours, within the 8-hour default
/// length, so none reaches its scheduled end during the benchmark.
const CREATED_EVERY_US: i64 = 20_000;

/// `chrono`'s `to_rfc3339()` of a time stored as microseconds: the fraction
/// has 0, 3 or 6 digits, as few as show it exactly.
fn rfc3339(col: &str) -> String {
    format!(
        "(strftime('%Y-%m-%dT%H:%M:%S', {col} / 1000000, 'unixepoch') || CASE \
         WHEN {col} % 1000000 = 0 THEN '' \
         WHEN {col} % 1000 = 0 THEN printf('.%03d', ({col} % 1000000) / 1000) \
         ELSE printf('.%06d', {col} % 1000000) END || '+00:00')"
    )
}

/// The log line `Sessions::create` writes, from a row's columns.
fn creation_message() -> String {
    format!(
        "'Created by ' || created_by_login || ' from ' || created_from || ': ' || status \
         || ', scheduled ' || {} || ' to ' || {}",
        rfc3339("scheduled_start"),
        rfc3339("scheduled_end")
    )
}

fn sql_err(what: &str) -> impl Fn(rusqlite::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

pub fn open(db: &Path) -> Result<Connection, String> {
    let conn = Connection::open(db)
        .map_err(|e| format!("cannot open the database {}: {e}", db.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(sql_err("busy_timeout"))?;
    Ok(conn)
}

pub fn count_sessions(db: &Path) -> Result<u64, String> {
    open(db)?
        .query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
        .map_err(sql_err("count sessions"))
}

/// Sessions the lifecycle engine still owes work: ends journalled by
/// DeleteAsync and not yet applied, and sessions with work (e.g. Cancelling).
/// Safe to call while the server runs (WAL readers do not block its writer).
pub fn pending_work(db: &Path) -> Result<u64, String> {
    open(db)?
        .query_row(
            "SELECT (SELECT COUNT(*) FROM end_requests) \
             + (SELECT COUNT(*) FROM sessions WHERE work_phase IS NOT NULL)",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .map_err(sql_err("count pending work"))
}

pub struct Seeded {
    pub added: u64,
    pub total: u64,
    pub seconds: f64,
}

/// Adds Active sessions, copies of `template`, until the table holds `total`.
/// The server must be stopped.
pub fn seed(db: &Path, template: &str, total: u64) -> Result<Seeded, String> {
    let started = Instant::now();
    let conn = open(db)?;
    let existing = conn
        .query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get::<_, i64>(0))
        .map_err(sql_err("count sessions"))? as u64;
    check_template(&conn, template)?;
    if existing >= total {
        return Ok(Seeded {
            added: 0,
            total: existing,
            seconds: 0.0,
        });
    }
    let add = total - existing;
    // A bulk load into a stopped server's file: no WAL, no fsync per step,
    // a large cache; the server turns WAL back on when it opens the file.
    conn.execute_batch(
        "PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF; PRAGMA cache_size = -1000000;",
    )
    .map_err(sql_err("prepare the bulk load"))?;
    let oldest: i64 = conn
        .query_row("SELECT MIN(created_at) FROM sessions", [], |r| r.get(0))
        .map_err(sql_err("oldest session"))?;
    let level: String = conn
        .query_row(
            "SELECT level FROM session_log WHERE session_id = ?1 AND line = 1",
            params![template],
            |r| r.get(0),
        )
        .map_err(sql_err("the template's log line"))?;
    let tx = conn
        .unchecked_transaction()
        .map_err(sql_err("begin the bulk load"))?;
    let created = format!("(?3 - k.n * {CREATED_EVERY_US})");
    // A key already taken (random keys meet about once in two million
    // seedings of a million) is skipped; `added` counts what was seeded.
    let added = tx
        .execute(
            &format!(
                "WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < ?1), \
               keyed(n, key) AS MATERIALIZED (SELECT n, {NEW_KEY} FROM k) \
             INSERT INTO sessions (id_key, {COLUMNS}) \
             SELECT k.key, {id}, t.created_by, t.created_by_login, t.created_from, \
               {created}, {created}, t.status, t.status_description, \
               {created}, {created}, {created} + (t.scheduled_end - t.scheduled_start), \
               t.actual_end, t.cancelled_by, t.activity_id, t.activity_name, \
               t.activity_session_group_id, t.access_policy_id, t.managed_account_id, \
               t.managed_resource_id, t.managed_resource_name, t.credential_id, \
               t.login_account_name, t.note, t.ticket, t.custom_fields, t.target_id, \
               t.target_user_id, t.node_id, t.allow_extension, t.extension_count, \
               t.extension_minutes, t.work_phase, t.work_index, t.work_attempts, t.work_due, \
               t.end_target \
             FROM keyed AS k, (SELECT * FROM sessions WHERE id_key = ?4 AND id = ?2) AS t \
             WHERE true ON CONFLICT (id_key) DO NOTHING",
                id = uuid_of_key("k.key"),
            ),
            params![add as i64, template, oldest, row_key(template)?],
        )
        .map_err(sql_err("seed sessions"))? as u64;
    tx.execute(
        &format!(
            "INSERT INTO session_log (session_id, line, level, message, at) \
             SELECT id, 1, ?2, {}, created_at FROM sessions WHERE created_at < ?1",
            creation_message()
        ),
        params![oldest, level],
    )
    .map_err(sql_err("seed session logs"))?;
    tx.commit().map_err(sql_err("commit the bulk load"))?;
    conn.execute_batch("PRAGMA journal_mode = WAL;")
        .map_err(sql_err("turn WAL back on"))?;
    drop(conn);
    // Written with synchronous = OFF, the load is still in the OS's dirty
    // pages; the server's first checkpoint would pay for writing it back
    // (a stall of hundreds of ms in the first run measured). Flush it now.
    std::fs::File::open(db)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("cannot flush {} to disk: {e}", db.display()))?;
    Ok(Seeded {
        added,
        total: existing + added,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Removes the sessions `ids` (their logs and journalled ends with them) and
/// seeds fresh Active copies of `template` until the table holds `total`
/// again: the next DeleteAsync burst ends sessions as the first one did, at
/// the same size. The server must be stopped.
pub fn replace(db: &Path, ids: &[String], template: &str, total: u64) -> Result<Seeded, String> {
    let conn = open(db)?;
    let tx = conn
        .unchecked_transaction()
        .map_err(sql_err("begin removing ended sessions"))?;
    for id in ids.iter().filter(|id| *id != template) {
        let key = row_key(id)?;
        tx.prepare_cached("DELETE FROM end_requests WHERE session_id = ?1")
            .and_then(|mut stmt| stmt.execute(params![id]))
            .and_then(|_| tx.prepare_cached("DELETE FROM session_log WHERE session_id = ?1"))
            .and_then(|mut stmt| stmt.execute(params![id]))
            .and_then(|_| tx.prepare_cached("DELETE FROM sessions WHERE id_key = ?2 AND id = ?1"))
            .and_then(|mut stmt| stmt.execute(params![id, key]))
            .map_err(sql_err("remove ended sessions"))?;
    }
    tx.commit().map_err(sql_err("remove ended sessions"))?;
    drop(conn);
    seed(db, template, total)
}

/// The template must be what seeding assumes (an Active session that started
/// when it was created, with no pending work), and its log line must read as
/// [`creation_message`] rebuilds it.
fn check_template(conn: &Connection, template: &str) -> Result<(), String> {
    let row: Option<(String, bool, bool, String, String)> = conn
        .query_row(
            &format!(
                "SELECT s.status, \
                   s.work_phase IS NULL AND s.actual_end IS NULL \
                   AND s.actual_start = s.created_at AND s.scheduled_start = s.created_at, \
                   l.message = ({message}), l.message, {message} \
                 FROM sessions s JOIN session_log l ON l.session_id = s.id AND l.line = 1 \
                 WHERE s.id_key = ?2 AND s.id = ?1",
                message = creation_message(),
            ),
            params![template, row_key(template)?],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()
        .map_err(sql_err("read the template session"))?;
    let Some((status, shape_ok, message_ok, message, rebuilt)) = row else {
        return Err(format!(
            "the template session {template} or its first log line is missing"
        ));
    };
    if status != "Active" || !shape_ok {
        return Err(format!(
            "the template session {template} is not a plain Active session (status {status}): \
             seeding copies it, so the seeded rows would not match what the server writes"
        ));
    }
    if !message_ok {
        return Err(format!(
            "the server's creation log line changed: it wrote {message:?}, seeding would write \
             {rebuilt:?}; update creation_message() in xtask/src/bench/store.rs"
        ));
    }
    Ok(())
}

/// Up to `limit` ids of existing sessions, in random order.
pub fn random_ids(db: &Path, limit: u64) -> Result<Vec<String>, String> {
    ids(
        db,
        "SELECT id FROM sessions WHERE id != ?2 ORDER BY random() LIMIT ?1",
        limit,
        "",
    )
}

/// Up to `limit` ids of Active sessions with no pending work, in random
/// order, leaving out `keep` (the template, which later seeding copies).
pub fn active_ids(db: &Path, limit: u64, keep: &str) -> Result<Vec<String>, String> {
    ids(
        db,
        "SELECT id FROM sessions WHERE status = 'Active' AND work_phase IS NULL AND id != ?2 \
         ORDER BY random() LIMIT ?1",
        limit,
        keep,
    )
}

fn ids(db: &Path, sql: &str, limit: u64, keep: &str) -> Result<Vec<String>, String> {
    let conn = open(db)?;
    let mut stmt = conn.prepare(sql).map_err(sql_err("choose ids"))?;
    let rows = stmt
        .query_map(params![limit as i64, keep], |r| r.get::<_, String>(0))
        .map_err(sql_err("choose ids"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(sql_err("choose ids"))
}

/// What the file says of sessions that were answered 202 to DeleteAsync.
#[derive(Debug, Default)]
pub struct Ended {
    /// Ending or ended, or its end in the journal: the request is on disk.
    pub ended: u64,
    /// Of those, ends still in the journal (applied when the server starts).
    pub journalled: u64,
    /// Still Active with no end journalled, missing, or in a status an end
    /// does not lead to: a 202 that did not reach the disk.
    pub lost: Vec<String>,
}

pub fn check_ended(db: &Path, ids: &[String]) -> Result<Ended, String> {
    let conn = open(db)?;
    let journalled: HashSet<String> = conn
        .prepare("SELECT session_id FROM end_requests")
        .and_then(|mut stmt| {
            stmt.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(sql_err("read the journal of end requests"))?;
    let mut stmt = conn
        .prepare("SELECT status FROM sessions WHERE id_key = ?2 AND id = ?1")
        .map_err(sql_err("read statuses"))?;
    let mut ended = Ended::default();
    for id in ids {
        let status: Option<String> = stmt
            .query_row(params![id, row_key(id)?], |r| r.get(0))
            .optional()
            .map_err(sql_err("read a status"))?;
        match status.as_deref() {
            Some("Active") if journalled.contains(id) => {
                ended.ended += 1;
                ended.journalled += 1;
            }
            Some("Cancelling" | "Cancelled") => ended.ended += 1,
            Some("Active") | None => ended.lost.push(id.clone()),
            // Only Active sessions are ended here: any other status is wrong.
            Some(other) => ended.lost.push(format!("{id} ({other})")),
        }
    }
    Ok(ended)
}
