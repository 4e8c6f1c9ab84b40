//! Brings a database file to the current schema at open, in one transaction.
//! The schema's statements create what is missing and leave the rest; what
//! they cannot change in place is rebuilt here first.

use rusqlite::{params, Connection};
use uuid::Uuid;

use super::{in_transaction, map_err, row_key};
use crate::store::{StoreError, StoreResult};

/// The indexes of `sessions`: renamed with their table, so dropped before
/// the schema creates them on the new one. (Those of earlier files that the
/// schema no longer has are dropped by its own `DROP INDEX IF EXISTS`.)
const SESSION_INDEXES: [&str; 4] = [
    "sessions_by_created",
    "sessions_work_due",
    "sessions_pending_start",
    "sessions_active_end",
];

/// Applies `schema` to the file behind `conn`. Answers whether it rebuilt
/// `sessions`.
pub(super) fn migrate(conn: &Connection, schema: &str) -> StoreResult<bool> {
    in_transaction(conn, || rebuild(conn, schema))
}

/// The schema's statements, after rebuilding a `sessions` table keyed by
/// `id` alone (a rowid table with an index on `id`, from the first release,
/// or a WITHOUT ROWID table keyed by `id`, from the next).
fn rebuild(conn: &Connection, schema: &str) -> StoreResult<bool> {
    let old_layout = sessions_needs_rebuild(conn).map_err(map_err)?;
    if old_layout {
        conn.execute_batch("ALTER TABLE sessions RENAME TO sessions_old")
            .map_err(map_err)?;
        drop_session_indexes(conn)?;
    }
    conn.execute_batch(schema).map_err(map_err)?;
    if old_layout {
        // The indexes are built after the copy, each in one sorted pass,
        // rather than updated row by row at random places (see copy_keyed).
        drop_session_indexes(conn)?;
        copy_keyed(conn)?;
        conn.execute_batch("DROP TABLE sessions_old")
            .map_err(map_err)?;
        conn.execute_batch(schema).map_err(map_err)?;
    }
    Ok(old_layout)
}

fn drop_session_indexes(conn: &Connection) -> StoreResult<()> {
    for index in SESSION_INDEXES {
        conn.execute_batch(&format!("DROP INDEX IF EXISTS {index}"))
            .map_err(map_err)?;
    }
    Ok(())
}

/// Copies each row of `sessions_old` into `sessions` under its key. The
/// columns are the same, in the same order, after `id_key`. In the order of
/// the keys, so each row is appended at the table's right edge, and two ids
/// that share a key are found side by side. (At a million sessions: 87 s
/// with the indexes updated row by row, in either order; 24 s with them
/// built afterwards, see [`rebuild`].)
fn copy_keyed(conn: &Connection) -> StoreResult<()> {
    let ids: Vec<String> = conn
        .prepare("SELECT id FROM sessions_old")
        .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect())
        .map_err(map_err)?;
    let mut keyed = ids
        .into_iter()
        .map(|id| match Uuid::parse_str(&id) {
            Ok(uuid) => Ok((row_key(uuid), id)),
            Err(e) => Err(StoreError::Internal(format!(
                "the stored session id {id:?} is not a UUID: {e}"
            ))),
        })
        .collect::<StoreResult<Vec<_>>>()?;
    keyed.sort_unstable();
    if let Some(pair) = keyed.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(StoreError::Internal(format!(
            "sessions {} and {} share their first 64 bits, the key of the new layout of \
             `sessions`, so this file cannot be migrated (the odds are about one in two \
             million at a million sessions); keep running the previous release on it",
            pair[0].1, pair[1].1
        )));
    }
    let mut insert = conn
        .prepare("INSERT INTO sessions SELECT ?1, * FROM sessions_old WHERE id = ?2")
        .map_err(map_err)?;
    for (key, id) in keyed {
        insert.execute(params![key, id]).map_err(map_err)?;
    }
    Ok(())
}

/// Whether the file behind `conn` already has `schema`, so that a process
/// which must not migrate it (`nps-server user add` beside a running
/// server) may write to it: every table and index the schema creates exists,
/// none it drops does, and `sessions` has its current layout. Every change
/// of the schema so far added objects, dropped an index or rebuilt
/// `sessions`; one that changes a table in place must be told apart here
/// too. The schema's statements are read as written there: `CREATE ... IF
/// NOT EXISTS name` and `DROP INDEX IF EXISTS name`, in capitals (a test
/// counts them); an index dropped and created again under its name would
/// need more than this.
pub(super) fn is_current(conn: &Connection, schema: &str) -> rusqlite::Result<bool> {
    if sessions_needs_rebuild(conn)? {
        return Ok(false);
    }
    let mut exists = conn.prepare(
        "SELECT count(*) FROM sqlite_master WHERE name = ?1 AND type IN ('table', 'index')",
    )?;
    for name in schema_objects(schema) {
        let n: i64 = exists.query_row([name], |r| r.get(0))?;
        if n == 0 {
            return Ok(false);
        }
    }
    for name in schema_drops(schema) {
        let n: i64 = exists.query_row([name], |r| r.get(0))?;
        if n > 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The names of the tables and indexes `schema` creates (each statement
/// says `CREATE ... IF NOT EXISTS name`).
fn schema_objects(schema: &str) -> impl Iterator<Item = &str> {
    names_after(schema, "IF NOT EXISTS")
}

/// The names of the indexes of earlier files that `schema` drops (each
/// statement says `DROP INDEX IF EXISTS name`).
fn schema_drops(schema: &str) -> impl Iterator<Item = &str> {
    names_after(schema, "DROP INDEX IF EXISTS")
}

fn names_after<'a>(schema: &'a str, words: &'static str) -> impl Iterator<Item = &'a str> {
    schema.split(words).skip(1).filter_map(|rest| {
        rest.split_whitespace()
            .next()
            .map(|name| name.trim_end_matches(['(', ';']))
    })
}

/// Files whose `sessions` table has no `id_key` column: keyed by `id`
/// alone, a lookup walked a B-tree with whole rows in its interior pages
/// (or an index and then the table); now it walks one keyed by integers.
fn sessions_needs_rebuild(conn: &Connection) -> rusqlite::Result<bool> {
    let (table, keyed): (i64, i64) = conn.query_row(
        "SELECT (SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sessions'), \
                (SELECT count(*) FROM pragma_table_info('sessions') WHERE name = 'id_key')",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(table == 1 && keyed == 0)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::{is_current, schema_drops, schema_objects};
    use uuid::Uuid;

    use crate::store::sqlite::temp_db::{new_user, TempDb};
    use crate::store::sqlite::{row_key, SqliteStore, SCHEMA};
    use crate::store::Store;

    /// The index by status that releases up to `57c6c0c` created.
    const STATUS_INDEX: &str = "DROP INDEX IF EXISTS sessions_by_status;";

    /// The schema of the release before this one: the current layout, with
    /// the index by status.
    fn schema_with_status_index() -> String {
        assert!(SCHEMA.contains(STATUS_INDEX));
        SCHEMA.replace(
            STATUS_INDEX,
            "CREATE INDEX sessions_by_status ON sessions (status, created_at DESC);",
        )
    }

    fn has_index(conn: &Connection, name: &str) -> bool {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            > 0
    }

    /// The schema of an earlier release: `sessions` keyed by `id` alone, as
    /// a rowid table (the first release) or WITHOUT ROWID (the next), with
    /// the index by status.
    fn earlier_schema(without_rowid: bool) -> String {
        let keyed_by_id = schema_with_status_index().replace(
            "    id_key                    INTEGER PRIMARY KEY,\n    \
             id                        TEXT NOT NULL,\n",
            "    id                        TEXT PRIMARY KEY,\n",
        );
        assert_ne!(
            keyed_by_id,
            schema_with_status_index(),
            "the current layout changed"
        );
        if !without_rowid {
            return keyed_by_id;
        }
        let end = "-- status reached when the end phase succeeds\n);";
        assert!(keyed_by_id.contains(end));
        keyed_by_id.replace(end, &end.replace(");", ") WITHOUT ROWID;"))
    }

    fn insert_earlier_session(conn: &Connection, id: &str, login: &str) {
        conn.execute(
            "INSERT INTO sessions (id, created_by_login, created_at, modified_at, status, \
             scheduled_start, activity_id, node_id, allow_extension) \
             VALUES (?1, ?2, 1, 1, 'Active', 1, ?3, ?3, 1)",
            [id, login, &Uuid::nil().to_string()],
        )
        .unwrap();
    }

    #[tokio::test]
    async fn a_file_keyed_by_id_alone_is_rebuilt_and_keeps_its_sessions() {
        for without_rowid in [false, true] {
            let db = TempDb::new();
            let path = db.path();
            let ids = [Uuid::new_v4(), Uuid::new_v4()];
            {
                let conn = Connection::open(&path).unwrap();
                conn.execute_batch(&earlier_schema(without_rowid)).unwrap();
                insert_earlier_session(&conn, &ids[0].to_string(), "alice");
                insert_earlier_session(&conn, &ids[1].to_string(), "bob");
                assert!(!is_current(&conn, SCHEMA).unwrap());
            }

            let store = SqliteStore::open(&path).unwrap();
            for (id, login) in ids.iter().zip(["alice", "bob"]) {
                let session = store
                    .session(*id)
                    .await
                    .unwrap()
                    .expect("the session is kept");
                assert_eq!(session.session.created_by_user_name.as_deref(), Some(login));
            }

            let conn = Connection::open(&path).unwrap();
            assert!(is_current(&conn, SCHEMA).unwrap(), "{without_rowid}");
            for id in ids {
                let key: i64 = conn
                    .query_row(
                        "SELECT id_key FROM sessions WHERE id = ?1",
                        [id.to_string()],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(key, row_key(id));
            }
            for index in super::SESSION_INDEXES {
                let on: String = conn
                    .query_row(
                        "SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND name = ?1",
                        [index],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(on, "sessions", "{index}");
            }
            assert!(!has_index(&conn, "sessions_by_status"));
            let leftovers: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM sqlite_master WHERE name = 'sessions_old'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(leftovers, 0);
            drop(conn);
            drop(store);

            // Opening again changes nothing.
            let store = SqliteStore::open(&path).unwrap();
            for id in ids {
                assert!(store.session(id).await.unwrap().is_some());
            }
        }
    }

    #[tokio::test]
    async fn a_file_whose_ids_share_a_key_is_refused_and_left_as_it_was() {
        let db = TempDb::new();
        let path = db.path();
        let first = Uuid::new_v4();
        let (high, low) = first.as_u64_pair();
        let twin = Uuid::from_u64_pair(high, !low);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&earlier_schema(true)).unwrap();
            insert_earlier_session(&conn, &first.to_string(), "alice");
            insert_earlier_session(&conn, &twin.to_string(), "bob");
        }

        let err = SqliteStore::open(&path).err().expect("the migration fails");
        let msg = err.to_string();
        assert!(msg.contains("share their first 64 bits"), "{msg}");
        assert!(msg.contains("previous release"), "{msg}");

        let conn = Connection::open(&path).unwrap();
        assert!(!is_current(&conn, SCHEMA).unwrap(), "rolled back");
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn every_statement_by_id_finds_the_session_by_its_key() {
        use crate::store::sqlite::{EXTEND, LOAD_SESSION, WRITE_ROW};
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        for sql in [LOAD_SESSION, WRITE_ROW, EXTEND] {
            let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let unbound = std::iter::repeat_n(rusqlite::types::Null, explain.parameter_count());
            let plan: Vec<String> = explain
                .query_map(rusqlite::params_from_iter(unbound), |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(
                plan,
                ["SEARCH sessions USING INTEGER PRIMARY KEY (rowid=?)"],
                "{sql}"
            );
        }
    }

    /// A statement whose plan SQLite thinks may depend on a bound value is
    /// parsed and planned again at each new binding, unless the connection
    /// keeps one plan per statement (`configure`). APPEND_LOG, run for every
    /// line of every session's log, was such a statement.
    #[test]
    fn the_log_statement_is_planned_once_for_every_session() {
        use crate::store::sqlite::{connect, APPEND_LOG};
        use rusqlite::StatementStatus;
        let db = TempDb::new();
        let conn = connect(&db.path()).unwrap();
        super::migrate(&conn, SCHEMA).unwrap();
        for session in ["a", "b", "c", "a"] {
            let mut stmt = conn.prepare_cached(APPEND_LOG).unwrap();
            stmt.execute(rusqlite::params![session, "Info", "a line", 1])
                .unwrap();
            assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0);
        }
        let lines: i64 = conn
            .query_row(
                "SELECT max(line) FROM session_log WHERE session_id = 'a'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(lines, 2);
    }

    #[test]
    fn the_schema_names_every_table_and_index_it_creates() {
        let names: Vec<&str> = schema_objects(SCHEMA).collect();
        assert_eq!(names.len(), SCHEMA.matches("CREATE ").count(), "{names:?}");
        for name in [
            "meta",
            "users",
            "tokens",
            "sessions",
            "session_log",
            "end_requests",
        ] {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        for index in super::SESSION_INDEXES {
            assert!(names.contains(&index), "{index} in {names:?}");
        }
        let dropped: Vec<&str> = schema_drops(SCHEMA).collect();
        assert_eq!(dropped, ["sessions_by_status"]);
        assert!(!names.contains(&"sessions_by_status"));
    }

    /// The file as the release before this one left it: the current layout
    /// and its sessions stay, the index by status goes.
    #[tokio::test]
    async fn the_index_by_status_of_the_last_release_is_dropped_at_open() {
        let db = TempDb::new();
        let path = db.path();
        let id = Uuid::new_v4();
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&schema_with_status_index()).unwrap();
            conn.execute(
                "INSERT INTO sessions (id_key, id, created_by_login, created_at, modified_at, \
                 status, scheduled_start, activity_id, node_id, allow_extension) \
                 VALUES (?1, ?2, 'alice', 1, 1, 'Active', 1, ?3, ?3, 1)",
                rusqlite::params![row_key(id), id.to_string(), Uuid::nil().to_string()],
            )
            .unwrap();
            assert!(has_index(&conn, "sessions_by_status"));
            assert!(!is_current(&conn, SCHEMA).unwrap(), "it has an extra index");
        }

        let store = SqliteStore::open(&path).unwrap();
        assert!(store.session(id).await.unwrap().is_some());
        let conn = Connection::open(&path).unwrap();
        assert!(!has_index(&conn, "sessions_by_status"));
        assert!(is_current(&conn, SCHEMA).unwrap());
    }

    #[tokio::test]
    async fn only_a_file_with_every_object_and_the_current_layout_is_current() {
        let db = TempDb::new();
        let path = db.path();
        let conn = Connection::open(&path).unwrap();
        assert!(!is_current(&conn, SCHEMA).unwrap(), "an empty file");
        conn.execute_batch(&earlier_schema(true)).unwrap();
        assert!(!is_current(&conn, SCHEMA).unwrap(), "keyed by id alone");
        drop(conn);
        drop(SqliteStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        assert!(is_current(&conn, SCHEMA).unwrap(), "as the server left it");
        conn.execute_batch("DROP INDEX sessions_active_end")
            .unwrap();
        assert!(!is_current(&conn, SCHEMA).unwrap(), "an index missing");
    }

    #[tokio::test]
    async fn user_add_never_migrates_an_existing_file() {
        let db = TempDb::new();
        let path = db.path();
        Connection::open(&path)
            .unwrap()
            .execute_batch(&earlier_schema(false))
            .unwrap();
        let users = |path: &std::path::Path| -> i64 {
            Connection::open(path)
                .unwrap()
                .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
                .unwrap()
        };

        let unchanged = |path: &std::path::Path| {
            assert_eq!(users(path), 0);
            let conn = Connection::open(path).unwrap();
            assert!(!is_current(&conn, SCHEMA).unwrap(), "migrated by user add");
        };
        // With the lock held (a server of this version, or another user add).
        let holder = crate::store::sqlite::owner::own(&path).unwrap();
        let err = crate::store::sqlite::add_user_alongside(&path, new_user("bob"), || Ok(()))
            .unwrap_err();
        assert!(
            err.to_string().contains("restart it with this version"),
            "{err}"
        );
        unchanged(&path);
        // With no lock held: a server of an earlier version, which took
        // none, may be running on it.
        drop(holder);
        let err = crate::store::sqlite::add_user_alongside(&path, new_user("bob"), || Ok(()))
            .unwrap_err();
        assert!(err.to_string().contains("start this version's"), "{err}");
        unchanged(&path);

        // Once this version's server opened it, `user add` adds the user.
        drop(SqliteStore::open(&path).unwrap());
        crate::store::sqlite::add_user_alongside(&path, new_user("bob"), || Ok(())).unwrap();
        assert_eq!(users(&path), 1);
    }

    #[tokio::test]
    async fn user_add_creates_a_new_file_itself() {
        let db = TempDb::new();
        let path = db.path();
        crate::store::sqlite::add_user_alongside(&path, new_user("bob"), || Ok(())).unwrap();
        let conn = Connection::open(&path).unwrap();
        assert!(is_current(&conn, SCHEMA).unwrap());
    }

    #[tokio::test]
    async fn a_second_server_on_the_same_file_is_refused_until_the_first_is_gone() {
        let db = TempDb::new();
        let path = db.path();
        let first = SqliteStore::open(&path).unwrap();
        let err = SqliteStore::open(&path).err().expect("a second server");
        let msg = err.to_string();
        assert!(
            msg.contains("another process is using the database"),
            "{msg}"
        );
        assert!(msg.contains("--database"), "{msg}");
        drop(first);
        SqliteStore::open(&path).unwrap();
    }
}
