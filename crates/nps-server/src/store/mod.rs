//! Storage: every read and write of users, tokens, sessions and logs goes
//! through the [`Store`] trait. Handlers and the lifecycle engine see only
//! this boundary, so a PostgreSQL backend (several nodes sharing one database)
//! can be added beside [`sqlite::SqliteStore`] without touching them.
//!
//! A write that returns `Ok` is durable: it was committed to disk.

pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nps_api::policy::Role;
use nps_api::{ActionLogDto, ActionLogType, ActivitySession, SessionCategory};
use uuid::Uuid;

use crate::lifecycle::state::{Change, Event, Work};

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// The session's state does not allow this (a 409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A uniqueness, check or foreign-key rule of the database refused the
    /// change. The text is the database's (tables, columns): for the log.
    /// A caller that expects one says what it means (a login taken); any
    /// other is a 409 saying only that the change conflicts.
    #[error("constraint violated: {0}")]
    Constraint(String),
    /// A limit refuses this request (a 400).
    #[error("refused: {0}")]
    Refused(String),
    /// The database cannot take writes now (read-only, disk full, locked):
    /// a 503, worth retrying later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage failure: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A user as stored.
#[derive(Clone, Debug)]
pub struct User {
    pub id: Uuid,
    pub login: String,
    pub password_hash: String,
    pub totp_secret: String,
}

/// A new user.
pub struct NewUser {
    pub login: String,
    pub role: Role,
    pub password_hash: String,
    pub totp_secret: String,
}

/// Which sign-in step a token proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Login and password checked; the TOTP code is still owed.
    PreMfa,
    /// Fully signed in.
    Mfa,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::PreMfa => "pre",
            TokenKind::Mfa => "mfa",
        }
    }
}

/// A token as stored (only its hash is).
#[derive(Clone, Debug)]
pub struct TokenRecord {
    pub user_id: Uuid,
    pub login: String,
    pub role: Role,
    pub kind: TokenKind,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
}

/// Who did something, for the audit trail.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: Option<Uuid>,
    pub name: String,
    pub address: Option<String>,
}

impl Actor {
    /// The server itself (timers, the lifecycle engine).
    pub fn system() -> Actor {
        Actor {
            user_id: None,
            name: "system".into(),
            address: None,
        }
    }

    pub fn describe(&self) -> String {
        match &self.address {
            Some(a) => format!("{} from {a}", self.name),
            None => self.name.clone(),
        }
    }
}

/// A session as stored: what the API shows, plus what the engine needs.
#[derive(Clone, Debug)]
pub struct StoredSession {
    pub session: ActivitySession,
    pub work: Option<Work>,
    /// A Failed session's revocation still owed (see [`Change::owed_end`]).
    pub owed_end: Option<nps_api::SessionStatus>,
}

impl StoredSession {
    /// This session after `change` (an answer of
    /// [`crate::lifecycle::state::transition`]) made by `actor` at `now`: what
    /// the store writes, and what a read shows of a change not yet written.
    pub fn with_change(&self, change: &Change, actor: &Actor, now: DateTime<Utc>) -> StoredSession {
        let mut s = self.session.clone();
        s.status = change.status;
        if let Some(description) = &change.description {
            s.status_description = Some(description.clone());
        }
        s.modified_date_time_utc = now;
        if change.set_actual_start {
            s.actual_start_date_time_utc = Some(now);
        }
        if change.set_actual_end {
            s.actual_end_date_time_utc = Some(now);
        }
        if change.clear_actual_end {
            s.actual_end_date_time_utc = None;
        }
        if change.set_cancelled_by {
            s.cancelled_by = actor.user_id;
        }
        StoredSession {
            session: s,
            work: change.work.clone(),
            owed_end: change.owed_end,
        }
    }
}

/// Whether the caller may see a session (else it does not exist for them).
pub type Visible = Box<dyn Fn(&StoredSession) -> bool + Send>;

/// Whether sessions of an activity (by name) have no end actions.
pub type NoEndActions = std::sync::Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

/// What [`Store::apply_end_requests`] did.
#[derive(Debug, Default)]
pub struct EndsApplied {
    pub applied: usize,
    /// More ends wait: call again.
    pub more: bool,
    /// Ends that could not be applied (they stay journalled), with why.
    pub failed: Vec<(Uuid, String)>,
}

/// A session to insert (CreateAsync).
pub struct NewSession {
    pub session: ActivitySession,
    pub work: Option<Work>,
    pub log_message: String,
}

/// Filters of a session listing.
pub struct SessionFilter {
    pub category: Option<SessionCategory>,
    pub target_id: Option<Uuid>,
    pub target_user_id: Option<Uuid>,
    pub skip: u32,
    pub take: u32,
}

/// Filters of a log query; `filter_text` is matched as a plain substring.
pub struct LogFilter {
    pub level: Option<ActionLogType>,
    pub skip: u32,
    pub take: u32,
    pub descending: bool,
    pub filter_text: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

/// The limits an extension is checked against.
#[derive(Clone, Copy, Debug)]
pub struct ExtensionLimits {
    pub max_extensions: i32,
}

/// The result of applying an event.
#[derive(Clone, Debug)]
pub struct Applied {
    pub session: StoredSession,
    pub changed: bool,
}

/// What [`Store::promote_due`] did.
#[derive(Clone, Debug, Default)]
pub struct Promoted {
    pub started: usize,
    pub ending: usize,
    /// More were due than the batch took.
    pub more: bool,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// This server's node id (created on first start).
    async fn node_id(&self) -> StoreResult<Uuid>;

    // Users and tokens.
    async fn user_count(&self) -> StoreResult<u64>;
    /// Users of the Admin role.
    async fn admin_count(&self) -> StoreResult<u64>;
    async fn add_user(&self, user: NewUser) -> StoreResult<User>;
    async fn user_by_login(&self, login: &str) -> StoreResult<Option<User>>;
    async fn user_by_id(&self, id: Uuid) -> StoreResult<Option<User>>;
    /// Records that a TOTP step was used; false when that step (or a later
    /// one) was used already, so each code is accepted once.
    async fn use_totp_step(&self, user_id: Uuid, step: u64) -> StoreResult<bool>;
    async fn insert_token(
        &self,
        hash: [u8; 32],
        user_id: Uuid,
        kind: TokenKind,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn token(&self, hash: [u8; 32]) -> StoreResult<Option<TokenRecord>>;
    /// Counts a code tried against a pre-MFA token, unless it is revoked or
    /// has had `limit` tries: answers this try's number, or `None` then.
    async fn count_code_try(&self, hash: [u8; 32], limit: u32) -> StoreResult<Option<u32>>;
    async fn revoke_token(&self, hash: [u8; 32]) -> StoreResult<()>;
    /// Deletes tokens that expired before `before`.
    async fn purge_expired_tokens(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    // Sessions.
    /// Stores a new session and answers it as stored. Its id is the one
    /// given, unless a store cannot hold that id beside an existing one
    /// (SQLite's: the same first 64 bits); it then takes a fresh random id.
    async fn insert_session(&self, new: NewSession, actor: &Actor) -> StoreResult<StoredSession>;
    async fn session(&self, id: Uuid) -> StoreResult<Option<StoredSession>>;
    async fn list_sessions(&self, filter: &SessionFilter) -> StoreResult<Vec<ActivitySession>>;
    /// Applies an event through [`crate::lifecycle::state::transition`] and
    /// writes its log line, in one transaction.
    async fn apply(
        &self,
        id: Uuid,
        event: Event,
        actor: &Actor,
        message: Option<String>,
    ) -> StoreResult<Applied>;
    /// DeleteAsync: ends session `id` for `actor`, if `visible` says the
    /// caller may see it (else NotFound, as for a session that does not
    /// exist). Decided on the session as it is in the write's transaction,
    /// and durable when it returns, like every write; from then on every read
    /// shows the session as the end left it (Cancelling, or Cancelled before
    /// it started). The SQLite store may journal the end of an Active session
    /// and apply it to the row later ([`Store::apply_end_requests`]).
    async fn request_end(
        &self,
        id: Uuid,
        actor: &Actor,
        message: String,
        visible: Visible,
    ) -> StoreResult<Applied>;
    /// Applies journalled end requests for a short slice of time, when no
    /// request is waiting for storage; a session whose activity has no end
    /// actions goes straight on to Cancelled.
    async fn apply_end_requests(&self, no_end_actions: NoEndActions) -> StoreResult<EndsApplied>;
    async fn extend(
        &self,
        id: Uuid,
        minutes: i32,
        limits: ExtensionLimits,
        actor: &Actor,
    ) -> StoreResult<StoredSession>;
    /// Appends a line to a session's log.
    async fn log(&self, id: Uuid, level: ActionLogType, message: String) -> StoreResult<()>;
    async fn logs(&self, id: Uuid, filter: &LogFilter) -> StoreResult<(Vec<ActionLogDto>, i32)>;

    // The lifecycle engine's view.
    /// Starts due Pending sessions and begins the end of due Active ones, at
    /// most `limit` of each per call.
    async fn promote_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        has_start_actions: &(dyn for<'a> Fn(Option<&'a str>) -> bool + Send + Sync),
    ) -> StoreResult<Promoted>;
    /// Sessions with work due at `now` and the phase of that work: ends
    /// first (a revocation never waits behind grants), each oldest due
    /// first; at most `limit` of each phase.
    async fn runnable(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(Uuid, crate::lifecycle::state::Phase)>>;
    /// The earliest future time something becomes due (a scheduled start, a
    /// scheduled end, a retry), if any.
    async fn next_due(&self, now: DateTime<Utc>) -> StoreResult<Option<DateTime<Utc>>>;
}
