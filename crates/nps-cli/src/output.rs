//! What the session commands print on standard output: the server's JSON as
//! it is for scripts (`--output json`), or tables for people. Times in tables
//! are UTC.

use chrono::{DateTime, Utc};
use nps_client::types::{ActionLogCollection, ActivitySession};
use serde::Serialize;

use crate::cli::Output;
use crate::table::{record, Table};

pub fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

fn optional_time(t: &Option<DateTime<Utc>>) -> String {
    t.as_ref().map(time).unwrap_or_default()
}

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

fn json(value: &impl Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("API types serialize");
    text.push('\n');
    text
}

/// What the server says the session is doing, when it says more than the
/// status itself.
pub fn description(s: &ActivitySession) -> Option<&str> {
    let status = s.status.to_string();
    let d = s.status_description.as_deref()?;
    // "Failed: an end action could not finish" is shown after the status
    // already: without it, not as "Failed: Failed: ...".
    let d = d
        .strip_prefix(status.as_str())
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(d);
    (!d.is_empty() && d != status).then_some(d)
}

/// One session.
pub fn session(output: Output, s: &ActivitySession) -> String {
    if output == Output::Json {
        return json(s);
    }
    let mut fields = vec![("ID", s.id.to_string()), ("Status", s.status.to_string())];
    if let Some(description) = description(s) {
        fields.push(("Status description", description.to_string()));
    }
    fields.extend([
        (
            "Activity",
            name_and_id(&s.activity_name, Some(s.activity_id)),
        ),
        (
            "Resource",
            name_and_id(&s.managed_resource_name, s.managed_resource_id),
        ),
        ("Created by", created_by(s)),
        ("Created", time(&s.created_date_time_utc)),
        ("Scheduled start", time(&s.scheduled_start_date_time_utc)),
        ("Actual start", optional_time(&s.actual_start_date_time_utc)),
        (
            "Scheduled end",
            optional_time(&s.scheduled_end_date_time_utc),
        ),
        ("Actual end", optional_time(&s.actual_end_date_time_utc)),
        (
            "Extensions",
            format!(
                "{} ({} minutes){}",
                s.session_extension_count,
                s.session_extension_minutes,
                if s.allow_session_extension {
                    ""
                } else {
                    ", not allowed"
                }
            ),
        ),
        ("Note", text(&s.note)),
        ("Ticket", text(&s.ticket)),
    ]);
    record(&fields)
}

/// A list of sessions.
pub fn sessions(output: Output, list: &[ActivitySession]) -> String {
    if output == Output::Json {
        return json(&list);
    }
    let mut table = Table::new(vec![
        "ID",
        "STATUS",
        "ACTIVITY",
        "RESOURCE",
        "CREATED BY",
        "START",
        "END",
    ]);
    for s in list {
        table.row(vec![
            s.id.to_string(),
            s.status.to_string(),
            text(&s.activity_name),
            text(&s.managed_resource_name),
            text(&s.created_by_user_name),
            time(
                s.actual_start_date_time_utc
                    .as_ref()
                    .unwrap_or(&s.scheduled_start_date_time_utc),
            ),
            optional_time(&s.actual_end_date_time_utc.or(s.scheduled_end_date_time_utc)),
        ]);
    }
    table.to_string()
}

/// A page of a session's log.
pub fn log(output: Output, page: &ActionLogCollection) -> String {
    if output == Output::Json {
        return json(page);
    }
    let mut table = Table::new(vec!["LINE", "TIME", "LEVEL", "MESSAGE"]);
    for line in &page.lines {
        table.row(vec![
            line.line_number.to_string(),
            time(&line.timestamp),
            line.status.to_string(),
            text(&line.log_message),
        ]);
    }
    table.to_string()
}

fn name_and_id(name: &Option<String>, id: Option<uuid::Uuid>) -> String {
    // The server answers the nil id for "none given".
    let id = id.filter(|id| !id.is_nil());
    match (name.as_deref(), id) {
        (Some(n), Some(id)) => format!("{n} ({id})"),
        (Some(n), _) => n.to_string(),
        (None, Some(id)) => id.to_string(),
        (None, None) => String::new(),
    }
}

fn created_by(s: &ActivitySession) -> String {
    let who = s.created_by_user_name.clone().unwrap_or_default();
    match &s.created_from_address {
        Some(address) if !address.is_empty() => format!("{who} from {address}"),
        _ => who,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nps_client::types::SessionStatus;

    fn with(status: SessionStatus, description: Option<&str>) -> ActivitySession {
        let mut s: ActivitySession = serde_json::from_value(serde_json::json!({
            "id": "00000000-0000-4000-8000-000000000001",
            "activityId": "00000000-0000-0000-0000-000000000000",
            "allowSessionExtension": true,
            "createdBy": "dd6f16b3-9dd4-4a53-bba6-69ead866a196",
            "createdByUserName": "admin",
            "createdDateTimeUtc": "2026-11-29T22:51:07.420046Z",
            "createdFromAddress": "127.0.0.1",
            "locked": false,
            "modifiedDateTimeUtc": "2026-11-29T22:51:07.737138Z",
            "nodeId": "f9e160bc-52f3-4c28-8bcf-41687e0feafb",
            "scheduledStartDateTimeUtc": "2026-11-29T22:51:07.420046Z",
            "sessionExtensionCount": 0,
            "sessionExtensionMinutes": 0,
            "status": "Active",
        }))
        .unwrap_or_else(|e| panic!("a minimal session: {e}"));
        s.status = status;
        s.status_description = description.map(str::to_string);
        s
    }

    #[test]
    fn a_description_does_not_repeat_the_status() {
        let failed = with(
            SessionStatus::Failed,
            Some("Failed: an end action could not finish"),
        );
        assert_eq!(description(&failed), Some("an end action could not finish"));
        assert_eq!(
            description(&with(SessionStatus::Failed, Some("Failed"))),
            None
        );
        assert_eq!(description(&with(SessionStatus::Failed, None)), None);
        let ending = with(SessionStatus::Cancelling, Some("running end action 1 of 2"));
        assert_eq!(description(&ending), Some("running end action 1 of 2"));
    }
}
