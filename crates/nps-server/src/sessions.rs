//! The rules of activity sessions: who may see and change which session,
//! what a request may ask for, and which lifecycle event each operation is.
//! Handlers call this; it calls the store and wakes the lifecycle engine.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use nps_api::policy::Role;
use nps_api::{
    ActionLogCollection, ActivitySession, ActivitySessionRequest, ListSessionsQuery,
    SessionLogQuery, SessionStatus, MAX_TAKE,
};
use uuid::Uuid;

use crate::auth::Caller;
use crate::config::SessionConfig;
use crate::lifecycle::state::{Phase, Work};
use crate::lifecycle::Engine;
use crate::store::{
    Actor, ExtensionLimits, LogFilter, NewSession, SessionFilter, Store, StoreError, StoredSession,
    Visible,
};

/// Longest accepted text property of a request.
pub const MAX_TEXT: usize = 4096;
/// Default page size of listings.
pub const DEFAULT_TAKE: i32 = 100;

/// Why an operation was refused.
#[derive(Debug)]
pub enum Failure {
    /// Bad input (400), naming the field.
    BadRequest(String),
    /// No such session, or one the caller may not see (404).
    NotFound(Uuid),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

pub struct Sessions {
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    config: SessionConfig,
    node_id: Uuid,
}

fn actor(caller: &Caller, address: &str) -> Actor {
    Actor {
        user_id: Some(caller.user_id),
        name: caller.login.clone(),
        address: Some(address.to_string()),
    }
}

/// A session exists for its creator and for Admins; for anyone else it
/// does not (404).
fn visible_to(caller: &Caller) -> Visible {
    let (admin, user) = (caller.role == Role::Admin, caller.user_id);
    Box::new(move |s: &StoredSession| admin || s.session.created_by == Some(user))
}

/// At most [`MAX_TEXT`] characters.
fn check_length(field: &str, value: &Option<String>) -> Result<(), Failure> {
    match value {
        Some(v) if v.chars().count() > MAX_TEXT => Err(Failure::BadRequest(format!(
            "{field} is longer than {MAX_TEXT} characters"
        ))),
        _ => Ok(()),
    }
}

/// A text property: at most [`MAX_TEXT`] characters, and no control
/// characters but tab, line feed and carriage return. A NUL could not reach
/// an action's environment (the program would never start, so the session
/// could never end), and escape sequences would reach operators' terminals.
fn check_text(field: &str, value: &Option<String>) -> Result<(), Failure> {
    check_length(field, value)?;
    let Some(v) = value else {
        return Ok(());
    };
    match v
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        Some(c) => Err(Failure::BadRequest(format!(
            "{field} contains the control character U+{:04X}: only tab, line feed and \
             carriage return are allowed",
            c as u32
        ))),
        None => Ok(()),
    }
}

/// Checks `skip` and `take` and answers them as a page.
pub fn page(skip: Option<i32>, take: Option<i32>) -> Result<(u32, u32), Failure> {
    let skip = skip.unwrap_or(0);
    let take = take.unwrap_or(DEFAULT_TAKE);
    if skip < 0 {
        return Err(Failure::BadRequest(format!(
            "skip must be 0 or more, not {skip}"
        )));
    }
    if !(0..=MAX_TAKE).contains(&take) {
        return Err(Failure::BadRequest(format!(
            "take must be between 0 and {MAX_TAKE}, not {take}"
        )));
    }
    Ok((skip as u32, take as u32))
}

impl Sessions {
    pub fn new(
        store: Arc<dyn Store>,
        engine: Arc<Engine>,
        config: SessionConfig,
        node_id: Uuid,
    ) -> Sessions {
        Sessions {
            store,
            engine,
            config,
            node_id,
        }
    }

    /// The session, if the caller may see it (its creator or an Admin).
    async fn visible(&self, caller: &Caller, id: Uuid) -> Result<StoredSession, Failure> {
        match self.store.session(id).await? {
            Some(s) if visible_to(caller)(&s) => Ok(s),
            _ => Err(Failure::NotFound(id)),
        }
    }

    pub async fn create(
        &self,
        caller: &Caller,
        address: &str,
        req: ActivitySessionRequest,
    ) -> Result<ActivitySession, Failure> {
        for (field, value) in [
            ("activityName", &req.activity_name),
            ("managedResourceName", &req.managed_resource_name),
            ("note", &req.note),
            ("ticket", &req.ticket),
            ("credentialDomain", &req.credential_domain),
            ("credentialUsername", &req.credential_username),
            ("credentialName", &req.credential_name),
        ] {
            check_text(field, value)?;
        }
        let custom_fields = match &req.custom_fields {
            Some(fields) if fields.len() > 100 => {
                return Err(Failure::BadRequest(
                    "customFields has more than 100 entries".into(),
                ))
            }
            Some(fields) => {
                for f in fields {
                    check_text("customFields[].name", &f.name)?;
                    check_text("customFields[].value", &f.value)?;
                }
                Some(serde_json::to_string(fields).expect("custom fields serialize"))
            }
            None => None,
        };

        // Stored times have microsecond precision: answer what is stored.
        let now =
            DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default();
        let max_length = chrono::Duration::minutes(self.config.max_length_minutes as i64);
        let start = req.start_date_time_utc.unwrap_or(now);
        let starts_now = start <= now;
        let start = start.max(now);
        let end = match req.end_date_time_utc {
            Some(end) => end,
            None => start.checked_add_signed(max_length).ok_or_else(|| {
                Failure::BadRequest("startDateTimeUtc is too far in the future".into())
            })?,
        };
        if end <= start {
            return Err(Failure::BadRequest(format!(
                "endDateTimeUtc ({}) must be after the start ({})",
                end.to_rfc3339(),
                start.to_rfc3339()
            )));
        }
        if end - start > max_length {
            return Err(Failure::BadRequest(format!(
                "the session would last longer than the maximum of {} minutes: move endDateTimeUtc closer to the start",
                self.config.max_length_minutes
            )));
        }
        if year_out_of_range(start) || year_out_of_range(end) {
            return Err(Failure::BadRequest(
                "startDateTimeUtc and endDateTimeUtc must fall in the years 1970 to 9999".into(),
            ));
        }

        let has_start_actions = self.engine.has_start_actions(req.activity_name.as_deref());
        let status = if starts_now {
            SessionStatus::Active
        } else {
            SessionStatus::Pending
        };
        let work = (starts_now && has_start_actions).then_some(Work {
            phase: Phase::Start,
            next_action: 0,
            attempts: 0,
            due: now,
            end_target: None,
        });
        let session = ActivitySession {
            id: Uuid::new_v4(),
            created_by: Some(caller.user_id),
            created_by_user_name: Some(caller.login.clone()),
            created_from_address: Some(address.to_string()),
            created_date_time_utc: now,
            credential_id: req.credential_id,
            locked: false,
            login_account_name: req.credential_username.clone(),
            activity_id: req.activity_id.unwrap_or_default(),
            activity_session_group_id: req.activity_session_group_id,
            access_control_policy_id: req.access_policy_id,
            managed_account_id: req.managed_account_id,
            managed_resource_id: req.managed_resource_id,
            status,
            status_description: Some(match (status, has_start_actions) {
                (SessionStatus::Pending, _) => format!("Starts at {}", start.to_rfc3339()),
                (_, true) => "Starting: granting access".into(),
                _ => "Active".into(),
            }),
            scheduled_start_date_time_utc: start,
            actual_start_date_time_utc: starts_now.then_some(now),
            scheduled_end_date_time_utc: Some(end),
            actual_end_date_time_utc: None,
            cancelled_by: None,
            target_user_id: req.managed_account_id,
            target_id: req.managed_resource_id,
            note: req.note,
            ticket: req.ticket,
            node_id: self.node_id,
            modified_date_time_utc: now,
            allow_session_extension: self.config.allow_extension,
            session_extension_count: 0,
            session_extension_minutes: 0,
            custom_fields,
            activity_name: req.activity_name,
            managed_resource_name: req.managed_resource_name,
        };
        let log_message = format!(
            "Created by {} from {address}: {status}, scheduled {} to {}",
            caller.login,
            start.to_rfc3339(),
            end.to_rfc3339()
        );
        let stored = self
            .store
            .insert_session(
                NewSession {
                    session,
                    work,
                    log_message,
                },
                &actor(caller, address),
            )
            .await?;
        self.engine.wake();
        Ok(stored.session)
    }

    pub async fn get(&self, caller: &Caller, id: Uuid) -> Result<ActivitySession, Failure> {
        Ok(self.visible(caller, id).await?.session)
    }

    pub async fn list(&self, query: ListSessionsQuery) -> Result<Vec<ActivitySession>, Failure> {
        let (skip, take) = page(query.skip, query.take)?;
        Ok(self
            .store
            .list_sessions(&SessionFilter {
                category: query.status,
                target_id: query.target_id,
                target_user_id: query.target_user_id,
                skip,
                take,
            })
            .await?)
    }

    /// DeleteAsync: durable before it answers, idempotent, and the engine is
    /// woken at once. The store reads the session once, in the write, and
    /// checks there that the caller may see it.
    pub async fn end(
        &self,
        caller: &Caller,
        address: &str,
        id: Uuid,
    ) -> Result<ActivitySession, Failure> {
        let applied = self
            .store
            .request_end(
                id,
                &actor(caller, address),
                "end requested (DeleteAsync)".into(),
                visible_to(caller),
            )
            .await
            .map_err(|e| match e {
                StoreError::NotFound => Failure::NotFound(id),
                e => e.into(),
            })?;
        if applied.changed {
            self.engine.end_requested(id);
        }
        Ok(applied.session.session)
    }

    pub async fn extend(
        &self,
        caller: &Caller,
        address: &str,
        id: Uuid,
        minutes: i32,
    ) -> Result<ActivitySession, Failure> {
        // The session first: an unknown id is a 404 whatever the body says.
        self.visible(caller, id).await?;
        let max = self.config.max_extension_minutes as i32;
        if !(1..=max).contains(&minutes) {
            return Err(Failure::BadRequest(format!(
                "the body (minutes to extend by) must be between 1 and {max}, not {minutes}"
            )));
        }
        let stored = self
            .store
            .extend(
                id,
                minutes,
                ExtensionLimits {
                    max_extensions: self.config.max_extensions as i32,
                },
                &actor(caller, address),
            )
            .await?;
        self.engine.wake();
        Ok(stored.session)
    }

    pub async fn logs(
        &self,
        caller: &Caller,
        id: Uuid,
        query: SessionLogQuery,
    ) -> Result<ActionLogCollection, Failure> {
        let (skip, take) = page(query.skip, query.take)?;
        // An endDate before startDate is an empty window: no line matches.
        // A search may look for what a program printed, escapes included.
        check_length("filterText", &query.filter_text)?;
        self.visible(caller, id).await?;
        let (lines, total_count) = self
            .store
            .logs(
                id,
                &LogFilter {
                    level: query.log_level,
                    skip,
                    take,
                    descending: query.order_descending.unwrap_or(false),
                    filter_text: query.filter_text,
                    start: query.start_date,
                    end: query.end_date,
                },
            )
            .await?;
        Ok(ActionLogCollection {
            lines,
            total_count,
            version: None,
        })
    }
}

fn year_out_of_range(t: DateTime<Utc>) -> bool {
    use chrono::Datelike;
    !(1970..=9999).contains(&t.year())
}
