//! The journal of end requests: how DeleteAsync answers fast and durably.
//!
//! Ending an Active session changes its row, its indexes and its log, each
//! on a page of its own once the table is larger than the page cache: several
//! random page writes (ten when this journal came, three or four since).
//! DeleteAsync does not wait for them. It appends one small row to
//! `end_requests` (sequential pages, group-committed with the other requests
//! of the moment), and answers 202 once that row is on disk.
//! The lifecycle engine then applies the journal to the sessions in the
//! background, oldest first, when no request is waiting for the writer.
//!
//! Until an end is applied, its session's row still says Active, so every read
//! goes through [`PendingEnds`]: the journal's entries of this process, kept in
//! memory and published only after their commit. A read shows a session as
//! [`state::transition`] will make it (Cancelling), the same function that
//! applies it later. Writes that touch a session ([`settle`]) apply its
//! pending end first, in their own transaction. At start-up the whole journal
//! is applied before the server listens, so the memory never has to be
//! rebuilt.
//!
//! The journal holds at most [`JOURNAL_LIMIT`] ends; beyond that DeleteAsync
//! applies its end itself, as it did before there was a journal, so a flood
//! costs throughput, not memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use nps_api::SessionStatus;
use rusqlite::{params, Connection};
use uuid::Uuid;

use super::writer::{run_cached, Tx};
use super::{
    apply_event, from_micros, in_transaction, load_session, map_err, opt_uuid_col, to_micros,
    uuid_col, write_row, Step,
};
use crate::lifecycle::state::{self, Event, Outcome, Phase};
use crate::store::{Actor, Applied, EndsApplied, StoreError, StoreResult, StoredSession};

/// Most ends waiting in the journal.
const JOURNAL_LIMIT: usize = 20_000;
/// Longest one background slice applies ends before it commits and yields.
const SLICE: Duration = Duration::from_millis(5);
/// Most ends one slice looks at.
const SLICE_ROWS: usize = 512;
/// Ends read from the journal at a time within a slice: a slice applies
/// 30 to 60 ends on the benchmark's machine, and reading all 512 it might
/// look at, then dropping most, was a tenth of the writer's time under a
/// flood of DeleteAsync (perf).
const CHUNK_ROWS: i64 = 32;

/// An end request accepted and not yet applied.
#[derive(Clone, Debug)]
pub(super) struct PendingEnd {
    pub seq: i64,
    pub actor: Actor,
    pub message: String,
    pub at: DateTime<Utc>,
}

impl PendingEnd {
    /// `stored` as this end makes it, when applied.
    pub(super) fn overlay(&self, stored: StoredSession) -> StoredSession {
        match state::transition(
            stored.session.status,
            stored.work.as_ref(),
            stored.owed_end,
            &Event::EndRequested,
            self.at,
        ) {
            Outcome::Apply(change) => stored.with_change(&change, &self.actor, self.at),
            Outcome::NoChange => stored,
        }
    }
}

/// What a transaction did to the journal, published when it commits.
#[derive(Default)]
pub(super) struct JournalEffects {
    accepted: Vec<(Uuid, Arc<PendingEnd>)>,
    settled: Vec<(Uuid, i64)>,
}

impl JournalEffects {
    pub(super) fn accepted_for(&self, id: Uuid) -> Option<Arc<PendingEnd>> {
        self.accepted
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, p)| Arc::clone(p))
    }

    pub(super) fn has_settled(&self, id: Uuid, seq: i64) -> bool {
        self.settled.contains(&(id, seq))
    }

    pub(super) fn extend(&mut self, other: JournalEffects) {
        self.accepted.extend(other.accepted);
        self.settled.extend(other.settled);
    }
}

/// The committed, not yet applied ends of this process, by session.
#[derive(Default)]
pub(super) struct PendingEnds {
    map: Mutex<HashMap<Uuid, Arc<PendingEnd>>>,
    /// Rows in `end_requests` (the map holds one per session; a session
    /// ended twice at the same moment has two rows, the second a no-op).
    rows: AtomicUsize,
}

impl PendingEnds {
    pub(super) fn get(&self, id: Uuid) -> Option<Arc<PendingEnd>> {
        self.lock().get(&id).cloned()
    }

    /// Every pending end, for a read of many sessions. Taken before the
    /// rows are read, it shows each of them truly: an end that left the map
    /// before was committed to its row before it left, so the read sees it;
    /// one that leaves after is in the copy, and showing it on a row that
    /// already has it changes nothing ([`PendingEnd::overlay`]).
    pub(super) fn snapshot(&self) -> HashMap<Uuid, Arc<PendingEnd>> {
        self.lock().clone()
    }

    /// Ends in the journal, applied or not to their sessions' rows.
    pub(super) fn rows(&self) -> usize {
        self.rows.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<PendingEnd>>> {
        self.map.lock().expect("pending ends")
    }

    /// Publishes a committed transaction's effects: accepted ends first (the
    /// oldest per session is kept), then applied ones leave.
    pub(super) fn publish(&self, effects: JournalEffects) {
        if effects.accepted.is_empty() && effects.settled.is_empty() {
            return;
        }
        let mut map = self.lock();
        let (added, removed) = (effects.accepted.len(), effects.settled.len());
        let _ = self
            .rows
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |rows| {
                Some((rows + added).saturating_sub(removed))
            });
        for (id, p) in effects.accepted {
            map.entry(id).or_insert(p);
        }
        for (id, seq) in effects.settled {
            if map.get(&id).is_some_and(|p| p.seq == seq) {
                map.remove(&id);
            }
        }
    }
}

/// Appends an end request (inside the writer's transaction).
fn accept(tx: &Tx, id: Uuid, actor: &Actor, message: &str, at: DateTime<Utc>) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO end_requests (session_id, actor_id, actor_name, actor_address, message, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .map_err(map_err)?
    .execute(params![
        id.to_string(),
        actor.user_id.map(|u| u.to_string()),
        actor.name,
        actor.address,
        message,
        to_micros(at)
    ])
    .map_err(map_err)?;
    let seq = tx.last_insert_rowid();
    tx.effects().accepted.push((
        id,
        Arc::new(PendingEnd {
            seq,
            actor: actor.clone(),
            message: message.to_string(),
            at,
        }),
    ));
    Ok(())
}

/// DeleteAsync's write, decided on the row and the journal as they are in
/// this transaction: the one read of the session, so a scheduled end or
/// another DeleteAsync committed a moment before is seen. Journals the end
/// of a session still Active with no end pending (while the journal has
/// room); applies any other end at once; answers an ended or ending session
/// as a read would show it.
pub(super) fn request_end(
    tx: &Tx,
    id: Uuid,
    actor: &Actor,
    message: &str,
    at: DateTime<Utc>,
    visible: &dyn Fn(&StoredSession) -> bool,
) -> StoreResult<Applied> {
    let row = load_session(tx, id)?
        .filter(|s| visible(s))
        .ok_or(StoreError::NotFound)?;
    if let Some(p) = tx.pending_end(id) {
        return Ok(Applied {
            session: p.overlay(row),
            changed: false,
        });
    }
    let Some(end) = Step::plan(&row, &Event::EndRequested, actor, Some(message), at) else {
        return Ok(Applied {
            session: row,
            changed: false,
        });
    };
    // Only an Active session's end is journalled: it stays in its listing
    // category (Cancelling is Active), which reads rely on.
    if row.session.status == SessionStatus::Active && tx.journal_rows() < JOURNAL_LIMIT {
        accept(tx, id, actor, message, at)?;
    } else {
        write_row(tx, &end.next)?;
        end.log(tx, id)?;
    }
    Ok(Applied {
        session: end.next,
        changed: true,
    })
}

/// Applies `id`'s pending end, if any, before a write that touches it.
pub(super) fn settle(tx: &Tx, id: Uuid) -> StoreResult<()> {
    let Some(p) = tx.pending_end(id) else {
        return Ok(());
    };
    apply_event(
        tx,
        id,
        &Event::EndRequested,
        &p.actor,
        Some(&p.message),
        p.at,
    )?;
    let deleted = tx
        .prepare_cached("DELETE FROM end_requests WHERE seq = ?1 AND session_id = ?2")
        .map_err(map_err)?
        .execute(params![p.seq, id.to_string()])
        .map_err(map_err)?;
    // An earlier job of the same batch may have settled it already (its
    // removal from the map is published with the batch): count a row once.
    if deleted == 1 {
        tx.effects().settled.push((id, p.seq));
    }
    Ok(())
}

/// Where the engine's next slice reads the journal from: after the last end
/// the previous slice looked at, so that ends which cannot be applied (they
/// stay journalled) are passed over rather than read again by every slice.
/// Once a slice reaches the journal's end, the next pass starts from its
/// beginning and tries them again. New ends always come after it (`seq`
/// only grows).
#[derive(Debug)]
pub(super) struct Cursor(AtomicI64);

impl Default for Cursor {
    fn default() -> Cursor {
        Cursor(AtomicI64::new(i64::MIN))
    }
}

/// One background slice: applies the oldest ends after the cursor for about
/// [`SLICE`], each in a savepoint of its own, so that one that cannot be
/// applied (its error is answered, for the log) stays journalled and holds
/// up no other.
pub(super) fn apply_slice(
    tx: &Tx,
    cursor: &Cursor,
    no_end_actions: &dyn Fn(Option<&str>) -> bool,
) -> StoreResult<EndsApplied> {
    let started = Instant::now();
    let mut outcome = EndsApplied::default();
    let mut looked_at = 0;
    let mut after = cursor.0.load(Ordering::Relaxed);
    // Whether the slice stopped (time or SLICE_ROWS ran out) with ends
    // possibly left after it.
    let mut stopped = false;
    'slice: loop {
        let rows = read_oldest(tx, after, CHUNK_ROWS)?;
        let full = rows.len() as i64 == CHUNK_ROWS;
        for (i, (seq, id, p)) in rows.iter().enumerate() {
            after = *seq;
            looked_at += 1;
            apply_entry(tx, *seq, *id, p, no_end_actions, &mut outcome)?;
            if started.elapsed() >= SLICE || looked_at >= SLICE_ROWS {
                stopped = full || i + 1 < rows.len();
                break 'slice;
            }
        }
        if !full {
            break;
        }
    }
    // More wait when the slice stopped before the journal's end: the next
    // one goes on from here. At the end, the next pass (on the next wake-up)
    // starts over, with the ends that failed in this one.
    cursor
        .0
        .store(if stopped { after } else { i64::MIN }, Ordering::Relaxed);
    outcome.more = stopped;
    Ok(outcome)
}

/// Applies one journalled end in a savepoint of its own and removes it from
/// the journal; a failure is noted in `outcome` and leaves it there.
fn apply_entry(
    tx: &Tx,
    seq: i64,
    id: Uuid,
    p: &PendingEnd,
    no_end_actions: &dyn Fn(Option<&str>) -> bool,
    outcome: &mut EndsApplied,
) -> StoreResult<()> {
    run_cached(tx, "SAVEPOINT end_row").map_err(map_err)?;
    let applied = apply_one(tx, id, p, no_end_actions).and_then(|()| {
        tx.prepare_cached("DELETE FROM end_requests WHERE seq = ?1")
            .map_err(map_err)?
            .execute(params![seq])
            .map_err(map_err)
    });
    match applied {
        Ok(_) => {
            run_cached(tx, "RELEASE end_row").map_err(map_err)?;
            tx.effects().settled.push((id, seq));
            outcome.applied += 1;
        }
        Err(e) => {
            tx.execute_batch("ROLLBACK TO end_row; RELEASE end_row")
                .map_err(map_err)?;
            outcome.failed.push((id, e.to_string()));
        }
    }
    Ok(())
}

/// Applies one journalled end. With no end actions, the engine's only work
/// would be to close the pipeline: planned here on top of the end, the row
/// is written once (one pass through its indexes) with both log lines. Not
/// when the session still had start work: a start action may be running,
/// and the session is not ended until the engine has stopped it.
fn apply_one(
    tx: &Connection,
    id: Uuid,
    p: &PendingEnd,
    no_end_actions: &dyn Fn(Option<&str>) -> bool,
) -> StoreResult<()> {
    let Some(current) = load_session(tx, id)? else {
        return Ok(());
    };
    let Some(end) = Step::plan(
        &current,
        &Event::EndRequested,
        &p.actor,
        Some(&p.message),
        p.at,
    ) else {
        return Ok(());
    };
    let session = &end.next;
    let finish = (current.work.is_none()
        && session.work.as_ref().is_some_and(|w| w.phase == Phase::End)
        && no_end_actions(session.session.activity_name.as_deref()))
    .then(|| {
        let (event, message) = state::pipeline_finished(Phase::End, 0);
        Step::plan(
            session,
            &event,
            &Actor::system(),
            Some(&message),
            Utc::now(),
        )
    })
    .flatten();
    write_row(tx, finish.as_ref().map_or(&end.next, |f| &f.next))?;
    end.log(tx, id)?;
    if let Some(finish) = &finish {
        finish.log(tx, id)?;
    }
    Ok(())
}

/// At start-up, before anything reads: applies the whole journal left by the
/// previous process (a crash between a 202 and its application). The ends
/// become the sessions' work (Cancelling), which the engine then runs.
pub(super) fn replay(conn: &Connection) -> StoreResult<()> {
    in_transaction(conn, || {
        for (_, id, p) in &read_oldest(conn, i64::MIN, i64::MAX)? {
            apply_one(conn, *id, p, &|_| false)?;
        }
        conn.execute_batch("DELETE FROM end_requests")
            .map_err(map_err)
    })
}

/// Up to `limit` journalled ends after `after`, oldest first.
fn read_oldest(
    conn: &Connection,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<(i64, Uuid, PendingEnd)>> {
    conn.prepare_cached(
        "SELECT seq, session_id, actor_id, actor_name, actor_address, message, at \
         FROM end_requests WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )
    .map_err(map_err)?
    .query_map(params![after, limit], |r| {
        let seq: i64 = r.get(0)?;
        Ok((
            seq,
            uuid_col(r, 1)?,
            PendingEnd {
                seq,
                actor: Actor {
                    user_id: opt_uuid_col(r, 2)?,
                    name: r.get(3)?,
                    address: r.get(4)?,
                },
                message: r.get(5)?,
                at: from_micros(r.get(6)?),
            },
        ))
    })
    .map_err(map_err)?
    .collect::<Result<Vec<_>, _>>()
    .map_err(map_err)
}

#[cfg(test)]
mod tests {
    //! The journal on a real database file, with no engine: an end stays
    //! pending until a write settles it or the store is opened again, so
    //! every read path meets it deterministically.

    use std::sync::Arc;

    use chrono::{Duration, Utc};
    use nps_api::{ActivitySession, SessionCategory, SessionStatus};
    use rusqlite::{params, Connection};
    use uuid::Uuid;

    use crate::lifecycle::state::{Event, Phase, Work};
    use crate::store::sqlite::temp_db::{new_user, TempDb};
    use crate::store::sqlite::{row_key, SqliteStore};
    use crate::store::{
        Actor, ExtensionLimits, LogFilter, NewSession, SessionFilter, Store, StoreError,
    };

    impl TempDb {
        /// The row as stored, read outside the store.
        fn stored_status(&self, id: Uuid) -> String {
            Connection::open(self.path())
                .unwrap()
                .query_row(
                    "SELECT status FROM sessions WHERE id_key = ?1 AND id = ?2",
                    params![row_key(id), id.to_string()],
                    |r| r.get(0),
                )
                .unwrap()
        }
        fn journal_len(&self) -> i64 {
            Connection::open(self.path())
                .unwrap()
                .query_row("SELECT COUNT(*) FROM end_requests", [], |r| r.get(0))
                .unwrap()
        }
    }

    fn user() -> Actor {
        Actor {
            user_id: Some(Uuid::new_v4()),
            name: "alice".into(),
            address: Some("127.0.0.1".into()),
        }
    }

    async fn active_session(store: &SqliteStore, by: &Actor) -> Uuid {
        active_session_asking_for(store, by, Uuid::new_v4()).await
    }

    /// A new Active session, created with `id` (the store may give another).
    async fn active_session_asking_for(store: &SqliteStore, by: &Actor, id: Uuid) -> Uuid {
        active_session_owing(store, by, id, None).await
    }

    /// A new Active session, created with `id` and owing `work`.
    async fn active_session_owing(
        store: &SqliteStore,
        by: &Actor,
        id: Uuid,
        work: Option<Work>,
    ) -> Uuid {
        let now = Utc::now();
        let session = ActivitySession {
            id,
            created_by: by.user_id,
            created_by_user_name: Some(by.name.clone()),
            created_from_address: by.address.clone(),
            created_date_time_utc: now,
            modified_date_time_utc: now,
            status: SessionStatus::Active,
            status_description: Some("Active".into()),
            scheduled_start_date_time_utc: now,
            actual_start_date_time_utc: Some(now),
            scheduled_end_date_time_utc: Some(now + Duration::hours(1)),
            actual_end_date_time_utc: None,
            cancelled_by: None,
            activity_id: Uuid::new_v4(),
            activity_name: Some("Journal test".into()),
            activity_session_group_id: None,
            access_control_policy_id: None,
            managed_account_id: None,
            managed_resource_id: None,
            managed_resource_name: None,
            credential_id: None,
            login_account_name: None,
            note: None,
            ticket: None,
            custom_fields: None,
            target_id: None,
            target_user_id: None,
            node_id: Uuid::new_v4(),
            allow_session_extension: true,
            session_extension_count: 0,
            session_extension_minutes: 0,
            locked: false,
        };
        let stored = store
            .insert_session(
                NewSession {
                    session,
                    work,
                    log_message: "created".into(),
                },
                by,
            )
            .await
            .unwrap();
        stored.session.id
    }

    /// A new Active session whose end is in the journal.
    async fn journalled_end(store: &SqliteStore, by: &Actor) -> Uuid {
        let id = active_session(store, by).await;
        let ended = end(store, id, by).await;
        assert!(ended.changed);
        id
    }

    /// What slices applied until one said no end is left (`done`), or
    /// `most` slices ran.
    struct Pass {
        applied: usize,
        failed: Vec<Uuid>,
        done: bool,
    }

    async fn apply_pass(store: &SqliteStore, most: usize) -> Pass {
        let mut pass = Pass {
            applied: 0,
            failed: Vec::new(),
            done: false,
        };
        for _ in 0..most {
            let outcome = store.apply_end_requests(Arc::new(|_| true)).await.unwrap();
            pass.applied += outcome.applied;
            pass.failed.extend(outcome.failed.iter().map(|(id, _)| *id));
            if !outcome.more {
                pass.done = true;
                break;
            }
        }
        pass
    }

    /// DeleteAsync by `by`, who may see every session.
    async fn end(store: &SqliteStore, id: Uuid, by: &Actor) -> crate::store::Applied {
        store
            .request_end(
                id,
                by,
                "end requested (DeleteAsync)".into(),
                Box::new(|_| true),
            )
            .await
            .unwrap()
    }

    fn all_logs() -> LogFilter {
        LogFilter {
            level: None,
            skip: 0,
            take: 100,
            descending: false,
            filter_text: None,
            start: None,
            end: None,
        }
    }

    #[tokio::test]
    async fn a_new_session_whose_key_is_taken_gets_another_id_and_both_are_kept() {
        let db = TempDb::new();
        let store = SqliteStore::open(&db.path()).unwrap();
        let alice = user();
        let first = active_session(&store, &alice).await;
        // The same first 64 bits (the row's key), other last 64.
        let (high, low) = first.as_u64_pair();
        let twin = Uuid::from_u64_pair(high, !low);
        assert_eq!(row_key(twin), row_key(first));

        let second = active_session_asking_for(&store, &alice, twin).await;
        assert_ne!(second, twin, "the key was taken, so the id must change");
        assert_ne!(row_key(second), row_key(first));
        for id in [first, second] {
            let stored = store.session(id).await.unwrap().expect("both are kept");
            assert_eq!(stored.session.id, id);
        }
        assert!(store.session(twin).await.unwrap().is_none());
        assert_eq!(db.stored_status(second), "Active");
    }

    #[tokio::test]
    async fn a_journalled_end_is_read_as_cancelling_until_it_is_applied() {
        let db = TempDb::new();
        let store = SqliteStore::open(&db.path()).unwrap();
        let alice = user();
        let id = active_session(&store, &alice).await;

        let ended = end(&store, id, &alice).await;
        assert!(ended.changed);
        assert_eq!(ended.session.session.status, SessionStatus::Cancelling);
        // Durable, and not yet applied: the row is untouched, the journal has it.
        assert_eq!(db.stored_status(id), "Active");
        assert_eq!(db.journal_len(), 1);

        // Every read shows the end, the same as the DeleteAsync answer.
        let read = store.session(id).await.unwrap().unwrap();
        assert_eq!(read.session, ended.session.session);
        assert_eq!(read.session.cancelled_by, alice.user_id);
        let active = store
            .list_sessions(&SessionFilter {
                category: Some(SessionCategory::Active),
                target_id: None,
                target_user_id: None,
                skip: 0,
                take: 10,
            })
            .await
            .unwrap();
        assert_eq!(active, vec![ended.session.session.clone()]);

        // A second DeleteAsync changes nothing and journals nothing.
        let again = end(&store, id, &alice).await;
        assert!(!again.changed);
        assert_eq!(again.session.session, ended.session.session);
        assert_eq!(db.journal_len(), 1);

        // Extending it is refused: the write applies the end first (and,
        // refused, rolls that back with itself: the end stays journalled).
        let refused = store
            .extend(id, 10, ExtensionLimits { max_extensions: 5 }, &alice)
            .await;
        assert!(
            matches!(refused, Err(StoreError::Conflict(_))),
            "{refused:?}"
        );
        assert_eq!(db.journal_len(), 1);
        assert_eq!(
            store.session(id).await.unwrap().unwrap().session,
            ended.session.session
        );

        // A write that succeeds applies it: the row now says what reads said.
        store
            .log(id, nps_api::ActionLogType::Info, "a note".into())
            .await
            .unwrap();
        store
            .apply(id, Event::EndFinished, &Actor::system(), None)
            .await
            .unwrap();
        assert_eq!(db.journal_len(), 0);
        assert_eq!(db.stored_status(id), "Cancelled");
    }

    #[tokio::test]
    async fn reading_the_log_applies_the_end_so_its_line_is_there() {
        let db = TempDb::new();
        let store = SqliteStore::open(&db.path()).unwrap();
        let alice = user();
        let id = journalled_end(&store, &alice).await;
        let (lines, total) = store.logs(id, &all_logs()).await.unwrap();
        assert_eq!(total, 2);
        assert_eq!(
            lines[1].log_message.as_deref(),
            Some("Active -> Cancelling by alice from 127.0.0.1: end requested (DeleteAsync)")
        );
        assert_eq!(db.stored_status(id), "Cancelling");
    }

    #[tokio::test]
    async fn the_engine_applies_the_journal_and_ends_without_actions_in_one_write() {
        let db = TempDb::new();
        let store = SqliteStore::open(&db.path()).unwrap();
        let alice = user();
        let mut ids = Vec::new();
        for _ in 0..3 {
            let id = journalled_end(&store, &alice).await;
            ids.push(id);
        }
        // One slice takes them all unless its 5 ms run out first (a debug
        // build on a busy machine): then the next goes on.
        let pass = apply_pass(&store, 3).await;
        assert!(pass.done && pass.failed.is_empty());
        assert_eq!(pass.applied, 3);
        assert_eq!(db.journal_len(), 0);
        for id in ids {
            assert_eq!(db.stored_status(id), "Cancelled");
            let s = store.session(id).await.unwrap().unwrap();
            assert_eq!(s.session.status, SessionStatus::Cancelled);
            assert!(s.work.is_none());
        }
        // Nothing pending: no write at all.
        let outcome = store.apply_end_requests(Arc::new(|_| true)).await.unwrap();
        assert_eq!((outcome.applied, outcome.more), (0, false));
    }

    /// A session still owing start work may have a start action running:
    /// with no end actions, the end is not closed in the slice (Cancelled
    /// while the grant still runs) but left to the engine, which stops the
    /// start action first.
    #[tokio::test]
    async fn an_end_of_a_session_still_starting_is_left_to_the_engine() {
        let db = TempDb::new();
        let store = SqliteStore::open(&db.path()).unwrap();
        let alice = user();
        let starting = Work {
            phase: Phase::Start,
            next_action: 0,
            attempts: 0,
            due: Utc::now(),
            end_target: None,
        };
        let id = active_session_owing(&store, &alice, Uuid::new_v4(), Some(starting)).await;
        let idle = active_session(&store, &alice).await;
        assert!(end(&store, id, &alice).await.changed);
        assert!(end(&store, idle, &alice).await.changed);
        let pass = apply_pass(&store, 3).await;
        assert_eq!((pass.applied, pass.failed.len()), (2, 0));
        let s = store.session(id).await.unwrap().unwrap();
        assert_eq!(s.session.status, SessionStatus::Cancelling);
        assert_eq!(
            s.work.map(|w| w.phase),
            Some(Phase::End),
            "the engine's to finish"
        );
        assert_eq!(
            db.stored_status(idle),
            "Cancelled",
            "no start work: closed at once"
        );
    }

    /// More ends than one read of the journal takes: whether a slice stops
    /// at its time or reads on, it says so while ends are left, and slice
    /// after slice applies them all.
    #[tokio::test]
    async fn a_journal_longer_than_one_read_is_applied_in_full_slice_after_slice() {
        let db = TempDb::new();
        let store = SqliteStore::open(&db.path()).unwrap();
        let alice = user();
        let total = 3 * super::CHUNK_ROWS as usize + 5;
        let mut ids = Vec::new();
        for _ in 0..total {
            ids.push(journalled_end(&store, &alice).await);
        }
        let pass = apply_pass(&store, total).await;
        assert!(pass.done, "a slice says when no end is left");
        assert!(pass.failed.is_empty());
        assert_eq!(pass.applied, total);
        assert_eq!(db.journal_len(), 0);
        for id in ids {
            assert_eq!(db.stored_status(id), "Cancelled");
        }
    }

    /// Ends that cannot be applied stay journalled at its head; the slices
    /// pass over them to the ends behind, even more of them than a slice
    /// looks at (each slice goes on from the last), and each pass reports
    /// each failure once.
    #[tokio::test]
    async fn ends_behind_more_failures_than_a_slice_looks_at_are_applied_in_the_same_pass() {
        let db = TempDb::new();
        let store = SqliteStore::open(&db.path()).unwrap();
        let alice = user();
        let broken_count = super::SLICE_ROWS + 3;
        let mut broken = Vec::new();
        for _ in 0..broken_count {
            broken.push(journalled_end(&store, &alice).await);
        }
        let fine = [
            journalled_end(&store, &alice).await,
            journalled_end(&store, &alice).await,
        ];
        let conn = Connection::open(db.path()).unwrap();
        for id in &broken {
            // A row the store cannot read back (an unknown status).
            conn.execute(
                "UPDATE sessions SET status = 'Bogus' WHERE id = ?1",
                [id.to_string()],
            )
            .unwrap();
        }

        let pass = apply_pass(&store, broken_count + fine.len()).await;
        assert!(pass.done, "the pass ends");
        assert_eq!(pass.applied, fine.len());
        for id in fine {
            assert_eq!(db.stored_status(id), "Cancelled");
        }
        assert_eq!(pass.failed, broken, "each failure once, oldest first");
        assert_eq!(db.journal_len(), broken_count as i64);

        // The next pass starts over and tries them again.
        let outcome = store.apply_end_requests(Arc::new(|_| true)).await.unwrap();
        assert_eq!(outcome.applied, 0);
        assert_eq!(outcome.failed[0].0, broken[0]);
    }

    #[tokio::test]
    async fn writes_that_settle_the_same_end_together_count_its_row_once() {
        let db = TempDb::new();
        let store = SqliteStore::open(&db.path()).unwrap();
        let alice = user();
        let mut ids = Vec::new();
        for _ in 0..40 {
            ids.push(journalled_end(&store, &alice).await);
        }
        // Ten more stay journalled: the count must still say 10 after.
        for _ in 0..10 {
            journalled_end(&store, &alice).await;
        }
        assert_eq!(store.pending.rows(), 50);
        // Two writes per session at once: many share a batch, where the
        // second finds the end settled by the first but not yet published.
        let system = Actor::system();
        let writes = ids
            .iter()
            .flat_map(|id| [0, 1].map(|_| store.apply(*id, Event::EndFinished, &system, None)));
        for applied in futures::future::join_all(writes).await {
            applied.unwrap();
        }
        assert_eq!((store.pending.rows(), db.journal_len()), (10, 10));
        for id in &ids {
            assert_eq!(db.stored_status(*id), "Cancelled");
        }
        let id = journalled_end(&store, &alice).await;
        assert_eq!((store.pending.rows(), db.journal_len()), (11, 11));
        assert_eq!(
            store.session(id).await.unwrap().unwrap().session.status,
            SessionStatus::Cancelling
        );
    }

    #[tokio::test]
    async fn delete_async_decides_on_the_session_as_it_is_in_its_transaction() {
        let db = TempDb::new();
        let store = SqliteStore::open(&db.path()).unwrap();
        let (alice, bob) = (user(), user());

        // A caller who may not see the session: NotFound, nothing written.
        let id = active_session(&store, &alice).await;
        let hidden = store
            .request_end(
                id,
                &bob,
                "end requested (DeleteAsync)".into(),
                Box::new(|_| false),
            )
            .await;
        assert!(matches!(hidden, Err(StoreError::NotFound)), "{hidden:?}");
        assert_eq!(
            (db.journal_len(), db.stored_status(id)),
            (0, "Active".into())
        );

        // The scheduled end came first: nothing is journalled and the
        // answer is the session as it is (ending for its schedule).
        store
            .apply(id, Event::EndDue, &Actor::system(), None)
            .await
            .unwrap();
        let late = end(&store, id, &alice).await;
        assert!(!late.changed);
        assert_eq!(late.session.session.status, SessionStatus::Cancelling);
        assert_eq!(late.session.session.cancelled_by, None);
        assert_eq!(db.journal_len(), 0);

        // Bob ends it after Alice: he is told of her end, nothing more is
        // journalled.
        let id = active_session(&store, &alice).await;
        let first = end(&store, id, &alice).await;
        let second = end(&store, id, &bob).await;
        assert!(first.changed && !second.changed);
        assert_eq!(second.session.session, first.session.session);
        assert_eq!(second.session.session.cancelled_by, alice.user_id);
        assert_eq!(db.journal_len(), 1);
    }

    #[tokio::test]
    async fn an_end_that_cannot_be_applied_stays_journalled_and_holds_up_no_other() {
        let db = TempDb::new();
        let store = SqliteStore::open(&db.path()).unwrap();
        let alice = user();
        let broken = journalled_end(&store, &alice).await;
        let fine = journalled_end(&store, &alice).await;
        // A row the store cannot read back (an unknown status).
        Connection::open(db.path())
            .unwrap()
            .execute(
                "UPDATE sessions SET status = 'Bogus' WHERE id = ?1",
                [broken.to_string()],
            )
            .unwrap();
        let outcome = store.apply_end_requests(Arc::new(|_| true)).await.unwrap();
        assert_eq!(outcome.applied, 1);
        assert_eq!(outcome.failed.len(), 1);
        assert_eq!(outcome.failed[0].0, broken);
        assert!(!outcome.more, "no progress is left to make: {outcome:?}");
        assert_eq!(db.stored_status(fine), "Cancelled");
        assert_eq!(db.journal_len(), 1);
    }

    #[tokio::test]
    async fn a_journal_seq_is_never_handed_out_twice() {
        let db = TempDb::new();
        let store = SqliteStore::open(&db.path()).unwrap();
        let alice = user();
        let first = journalled_end(&store, &alice).await;
        let seq = |db: &TempDb| -> i64 {
            Connection::open(db.path())
                .unwrap()
                .query_row("SELECT MAX(seq) FROM end_requests", [], |r| r.get(0))
                .unwrap()
        };
        let first_seq = seq(&db);
        // Applied: the journal is empty, and the next end gets a new seq (a
        // reused one could name the wrong session in the memory of ends).
        store
            .apply(first, Event::EndFinished, &Actor::system(), None)
            .await
            .unwrap();
        assert_eq!(db.journal_len(), 0);
        journalled_end(&store, &alice).await;
        assert!(seq(&db) > first_seq);
    }

    #[tokio::test]
    async fn ends_left_in_the_journal_are_applied_when_the_store_opens_again() {
        let db = TempDb::new();
        let alice = user();
        let id = {
            let store = SqliteStore::open(&db.path()).unwrap();
            let id = journalled_end(&store, &alice).await;
            id
        };
        assert_eq!(db.journal_len(), 1);
        let store = SqliteStore::open(&db.path()).unwrap();
        assert_eq!(db.journal_len(), 0);
        assert_eq!(db.stored_status(id), "Cancelling");
        let s = store.session(id).await.unwrap().unwrap();
        assert_eq!(s.session.cancelled_by, alice.user_id);
        // Its work is the engine's: the end actions, then Cancelled.
        let applied = store
            .apply(id, Event::EndFinished, &Actor::system(), None)
            .await
            .unwrap();
        assert_eq!(applied.session.session.status, SessionStatus::Cancelled);
    }

    #[tokio::test]
    async fn a_user_added_by_another_process_leaves_the_servers_journal_alone() {
        let db = TempDb::new();
        let store = SqliteStore::open(&db.path()).unwrap();
        let alice = user();
        let id = journalled_end(&store, &alice).await;
        // `nps-server user add` while the server runs.
        super::super::add_user_alongside(&db.path(), new_user("bob"), || Ok(())).unwrap();
        assert_eq!(db.journal_len(), 1, "the other process applied the journal");
        assert_eq!(db.stored_status(id), "Active");
        assert!(store.user_by_login("bob").await.unwrap().is_some());
    }
}
