-- nps-server's SQLite schema. Every statement is idempotent: it runs at each
-- start, so a fresh file is created and an existing one is left as it is.
-- Times are microseconds since the Unix epoch (UTC).

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS users (
    id             TEXT PRIMARY KEY,
    login          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,   -- argon2id, PHC string
    totp_secret    TEXT NOT NULL,   -- base32
    last_totp_step INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);

-- Only the SHA-256 of a token is stored.
CREATE TABLE IF NOT EXISTS tokens (
    hash         BLOB PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    kind         TEXT NOT NULL,     -- 'pre' (password checked) or 'mfa'
    expires_at   INTEGER NOT NULL,
    failed_codes INTEGER NOT NULL DEFAULT 0,
    revoked      INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);

-- Keyed by `id_key`, the first 64 bits of the id (`row_key` in
-- store/sqlite.rs), as the table's rowid: a lookup walks one B-tree whose
-- interior pages hold only integers (four levels at a million sessions,
-- about 470 interior pages, the size of a reader's 2 MB page cache), then
-- checks `id`. The store keeps `id_key = row_key(id)` on every insert: keys
-- are unique, so ids are; a new session whose key is taken gets another id.
-- (Earlier files keyed the table by `id` alone; store/sqlite/migrate.rs
-- rebuilds them.)
CREATE TABLE IF NOT EXISTS sessions (
    id_key                    INTEGER PRIMARY KEY,
    id                        TEXT NOT NULL,
    created_by                TEXT,
    created_by_login          TEXT NOT NULL,
    created_from              TEXT,
    created_at                INTEGER NOT NULL,
    modified_at               INTEGER NOT NULL,
    status                    TEXT NOT NULL,
    status_description        TEXT,
    scheduled_start           INTEGER NOT NULL,
    actual_start              INTEGER,
    scheduled_end             INTEGER,
    actual_end                INTEGER,
    cancelled_by              TEXT,
    activity_id               TEXT NOT NULL,
    activity_name             TEXT,
    activity_session_group_id TEXT,
    access_policy_id          TEXT,
    managed_account_id        TEXT,
    managed_resource_id       TEXT,
    managed_resource_name     TEXT,
    credential_id             TEXT,
    login_account_name        TEXT,
    note                      TEXT,
    ticket                    TEXT,
    custom_fields             TEXT,
    target_id                 TEXT,
    target_user_id            TEXT,
    node_id                   TEXT NOT NULL,
    allow_extension           INTEGER NOT NULL,
    extension_count           INTEGER NOT NULL DEFAULT 0,
    extension_minutes         INTEGER NOT NULL DEFAULT 0,
    -- Work the lifecycle engine owes this session (NULL phase: none).
    work_phase                TEXT,      -- 'start' or 'end'
    work_index                INTEGER,   -- next action to run
    work_attempts             INTEGER,   -- failed attempts of that action
    work_due                  INTEGER,   -- not before (backoff)
    end_target                TEXT       -- status reached when the end phase succeeds
);

CREATE INDEX IF NOT EXISTS sessions_by_created ON sessions (created_at DESC, id DESC);
-- No index by status: listings filter on `status` while walking
-- sessions_by_created in the order they answer, and the engine's queries
-- use the partial indexes below. The index by (status, created_at) of
-- earlier files served no query, and each change of status wrote two
-- random pages of it (two of the five random writes of applying an end).
DROP INDEX IF EXISTS sessions_by_status;
CREATE INDEX IF NOT EXISTS sessions_work_due ON sessions (work_due) WHERE work_phase IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_pending_start ON sessions (scheduled_start) WHERE status = 'Pending';
CREATE INDEX IF NOT EXISTS sessions_active_end ON sessions (scheduled_end)
    WHERE status = 'Active' AND work_phase IS NULL;

CREATE TABLE IF NOT EXISTS session_log (
    session_id TEXT NOT NULL,
    line       INTEGER NOT NULL,
    level      TEXT NOT NULL,
    message    TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (session_id, line)
) WITHOUT ROWID;

-- DeleteAsync's accepted ends of Active sessions, appended before the 202
-- and applied to `sessions` by the lifecycle engine, which then deletes them
-- (see store/sqlite/journal.rs). Left over at start-up: applied before the
-- server listens.
-- AUTOINCREMENT: a seq is never handed out twice, even after the row with
-- the highest one was deleted; the memory of pending ends names rows by it.
CREATE TABLE IF NOT EXISTS end_requests (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id    TEXT NOT NULL,
    actor_id      TEXT,
    actor_name    TEXT NOT NULL,
    actor_address TEXT,
    message       TEXT NOT NULL,
    at            INTEGER NOT NULL
);
