//! Brings a database file to the current schema at open, in one transaction.
//! The schema's statements create what is missing and leave the rest; what
//! they cannot change in place is rebuilt here first.

use rusqlite::{Connection, OptionalExtension};

use super::{in_transaction, map_err};
use crate::store::StoreResult;

/// The indexes of `sessions`: renamed with their table, so dropped before
/// the schema creates them on the new one.
const SESSION_INDEXES: [&str; 5] = [
    "sessions_by_created",
    "sessions_by_status",
    "sessions_work_due",
    "sessions_pending_start",
    "sessions_active_end",
];

/// Applies `schema` to the file behind `conn`.
pub(super) fn migrate(conn: &Connection, schema: &str) -> StoreResult<()> {
    in_transaction(conn, || rebuild(conn, schema).map_err(map_err))
}

/// The schema's statements, after rebuilding a rowid `sessions` table.
fn rebuild(conn: &Connection, schema: &str) -> rusqlite::Result<()> {
    let old_layout = sessions_has_rowid(conn)?;
    if old_layout {
        conn.execute_batch("ALTER TABLE sessions RENAME TO sessions_rowid")?;
        for index in SESSION_INDEXES {
            conn.execute_batch(&format!("DROP INDEX IF EXISTS {index}"))?;
        }
    }
    conn.execute_batch(schema)?;
    if old_layout {
        // The same columns in the same order: only the table's kind changed.
        conn.execute_batch(
            "INSERT INTO sessions SELECT * FROM sessions_rowid; DROP TABLE sessions_rowid;",
        )?;
    }
    Ok(())
}

/// Whether the file behind `conn` already has `schema`, so that a process
/// which must not migrate it (`nps-server user add` beside a running
/// server) may write to it: every table and index the schema creates exists,
/// and `sessions` has its current layout. Every change of the schema so far
/// added objects or rebuilt `sessions`; one that changes a table in place
/// must be told apart here too.
pub(super) fn is_current(conn: &Connection, schema: &str) -> rusqlite::Result<bool> {
    if sessions_has_rowid(conn)? {
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
    Ok(true)
}

/// The names of the tables and indexes `schema` creates (each statement
/// says `CREATE ... IF NOT EXISTS name`).
fn schema_objects(schema: &str) -> impl Iterator<Item = &str> {
    schema.split("IF NOT EXISTS").skip(1).filter_map(|rest| {
        rest.split_whitespace()
            .next()
            .map(|name| name.trim_end_matches('('))
    })
}

/// Files made before `sessions` became a WITHOUT ROWID table (a lookup by id
/// then read an index leaf and a table leaf; now one leaf).
fn sessions_has_rowid(conn: &Connection) -> rusqlite::Result<bool> {
    let sql: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'sessions'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(sql.is_some_and(|sql| !sql.to_ascii_uppercase().contains("WITHOUT ROWID")))
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::{is_current, schema_objects};
    use uuid::Uuid;

    use crate::store::sqlite::temp_db::{new_user, TempDb};
    use crate::store::sqlite::{SqliteStore, SCHEMA};
    use crate::store::Store;

    #[tokio::test]
    async fn a_file_with_the_rowid_sessions_table_is_rebuilt_and_keeps_its_sessions() {
        let db = TempDb::new();
        let path = db.path();
        // The layout of the first release: the same schema, a rowid table.
        let old = SCHEMA.replace(") WITHOUT ROWID;", ");");
        assert_ne!(old, SCHEMA);
        let id = Uuid::new_v4();
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&old).unwrap();
            conn.execute(
                "INSERT INTO sessions (id, created_by_login, created_at, modified_at, status, \
                 scheduled_start, activity_id, node_id, allow_extension) \
                 VALUES (?1, 'alice', 1, 1, 'Active', 1, ?2, ?2, 1)",
                [id.to_string(), Uuid::nil().to_string()],
            )
            .unwrap();
        }

        let store = SqliteStore::open(&path).unwrap();
        let session = store
            .session(id)
            .await
            .unwrap()
            .expect("the session is kept");
        assert_eq!(
            session.session.created_by_user_name.as_deref(),
            Some("alice")
        );

        let conn = Connection::open(&path).unwrap();
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'sessions'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(sql.contains("WITHOUT ROWID"), "{sql}");
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
        let leftovers: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'sessions_rowid'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(leftovers, 0);
        drop(conn);
        drop(store);

        // Opening again changes nothing.
        let store = SqliteStore::open(&path).unwrap();
        assert!(store.session(id).await.unwrap().is_some());
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
    }

    #[tokio::test]
    async fn only_a_file_with_every_object_and_the_current_layout_is_current() {
        let db = TempDb::new();
        let path = db.path();
        let conn = Connection::open(&path).unwrap();
        assert!(!is_current(&conn, SCHEMA).unwrap(), "an empty file");
        conn.execute_batch(&SCHEMA.replace(") WITHOUT ROWID;", ");"))
            .unwrap();
        assert!(!is_current(&conn, SCHEMA).unwrap(), "the rowid layout");
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
            .execute_batch(&SCHEMA.replace(") WITHOUT ROWID;", ");"))
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
        let err = crate::store::sqlite::add_user_alongside(&path, new_user("bob")).unwrap_err();
        assert!(
            err.to_string().contains("restart it with this version"),
            "{err}"
        );
        unchanged(&path);
        // With no lock held: a server of an earlier version, which took
        // none, may be running on it.
        drop(holder);
        let err = crate::store::sqlite::add_user_alongside(&path, new_user("bob")).unwrap_err();
        assert!(err.to_string().contains("start this version's"), "{err}");
        unchanged(&path);

        // Once this version's server opened it, `user add` adds the user.
        drop(SqliteStore::open(&path).unwrap());
        crate::store::sqlite::add_user_alongside(&path, new_user("bob")).unwrap();
        assert_eq!(users(&path), 1);
    }

    #[tokio::test]
    async fn user_add_creates_a_new_file_itself() {
        let db = TempDb::new();
        let path = db.path();
        crate::store::sqlite::add_user_alongside(&path, new_user("bob")).unwrap();
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
