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
    use uuid::Uuid;

    use crate::store::sqlite::temp_db::TempDb;
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
}
