//! `nps session ...`: each command is one call of the client (`end` reads
//! the session first, and `--wait` then polls it), its answer printed by
//! [`crate::output`].

use std::io::Read;
use std::time::Duration;

use nps_client::types::{ActivitySession, ActivitySessionRequest, SessionStatus};
use nps_client::{ended_cleanly, Client, Error, Progress, WaitOptions};

use crate::cli::{CreateArgs, EndArgs, ListArgs, Output, SessionCommand};
use crate::console;
use crate::failure::{Failure, Kind};
use crate::output;
use crate::status_line::StatusLine;

pub async fn run(command: SessionCommand, nps: &Client, out: Output) -> Result<(), Failure> {
    match command {
        SessionCommand::Create(args) => {
            let request = request(args)?;
            let session = nps.create_async(&request).await?.into_inner();
            console::print(&output::session(out, &session))?;
        }
        SessionCommand::Get { id } => {
            let session = nps.get_by_id_async(&id).await?.into_inner();
            console::print(&output::session(out, &session))?;
        }
        SessionCommand::List(ListArgs {
            status,
            target_id,
            target_user_id,
            skip,
            take,
        }) => {
            let list = nps
                .get_all_activity_sessions_by_status_async(
                    skip,
                    status.map(Into::into),
                    take,
                    target_id.as_ref(),
                    target_user_id.as_ref(),
                )
                .await?
                .into_inner();
            console::print(&output::sessions(out, &list))?;
        }
        SessionCommand::Extend { id, minutes } => {
            let session = nps.extend_async(&id, minutes).await?.into_inner();
            console::print(&output::session(out, &session))?;
        }
        SessionCommand::End(args) => {
            // DeleteAsync answers 202 for a session that ended long ago as
            // well, and its answer alone cannot tell that from an end it just
            // made (a Pending session is Cancelled at once): read it first.
            // The DELETE changes nothing on a session that ended (and is not
            // sent), except on a Failed one whose end action gave up: access
            // may remain, and the server runs its end actions again (a failed
            // start owes nothing and stays Failed).
            let before = nps.get_by_id_async(&args.id).await?.into_inner();
            let retry = before.status == SessionStatus::Failed && !failed_start(&before);
            if nps_client::is_terminal(before.status) && !retry {
                console::print(&output::session(out, &before))?;
                return already_ended(&before);
            }
            if retry {
                console::note(&format!(
                    "Session {} had ended Failed{}: an end action gave up, so the server \
                     runs its end actions again.",
                    before.id,
                    ended_at(&before)
                ));
            }
            if args.wait {
                return end_and_wait(nps, args, out).await;
            }
            let id = args.id;
            let session = nps.delete_async(&id).await?.into_inner();
            console::print(&output::session(out, &session))?;
            if !nps_client::is_terminal(session.status) {
                console::note(&format!(
                    "Session {id} is {}: `nps session end {id} --wait` follows it to the end.",
                    session.status
                ));
            } else if retry && session.status == SessionStatus::Failed {
                // A failed start (nothing owed), or a server that does not
                // retry a failed end.
                return already_ended(&session);
            } else if failed_start(&session) {
                console::note(&format!("Session {id} ended Failed: {NOTHING_OWED}."));
            } else if !ended_cleanly(session.status) {
                // Ended another way between the read and the DELETE.
                return Err(ended_badly(
                    &session,
                    format!("session {id} ended {}", session.status),
                    None,
                ));
            }
        }
        SessionCommand::Log(args) => {
            let page = nps
                .get_session_logs_async(
                    &args.id,
                    args.until.as_ref(),
                    args.filter.as_deref(),
                    args.level.map(Into::into),
                    Some(args.newest_first),
                    args.skip,
                    args.since.as_ref(),
                    args.take,
                )
                .await?
                .into_inner();
            console::print(&output::log(out, &page))?;
            let shown = page.lines.len() as i32;
            let first = args.skip.unwrap_or(0);
            if out == Output::Table && shown > 0 && first + shown < page.total_count {
                console::note(&format!(
                    "Lines {}-{} of {}: --skip {} shows the next ones.",
                    first + 1,
                    first + shown,
                    page.total_count,
                    first + shown
                ));
            }
        }
    }
    Ok(())
}

/// `end --wait`: the status line follows the session from Cancelling
/// through its end actions; the exit code says how it ended.
async fn end_and_wait(nps: &Client, args: EndArgs, out: Output) -> Result<(), Failure> {
    let options = WaitOptions {
        timeout: Duration::from_secs(args.timeout),
        follow_log: true,
        ..WaitOptions::default()
    };
    let line = StatusLine::start();
    let mut last_error = None;
    let ended = nps
        .end_session_and_watch(&args.id, &options, |progress| match progress {
            Progress::Status(s) => line.set(&state(s)),
            Progress::Log(entry) => {
                let message = entry.log_message.clone().unwrap_or_default();
                if entry.status == nps_client::types::ActionLogType::Error {
                    last_error = Some(message.clone());
                }
                line.event(&format!(
                    "  {} {:<5} {message}",
                    output::time(&entry.timestamp),
                    entry.status.to_string()
                ));
            }
        })
        .await;
    line.finish();
    let session = match ended {
        Ok(session) => session,
        Err(error) => return Err(end_accepted_then(error, out)),
    };
    console::print(&output::session(out, &session))?;
    if ended_cleanly(session.status) {
        return Ok(());
    }
    if failed_start(&session) {
        console::note(&format!(
            "Session {} ended Failed: {NOTHING_OWED}.",
            session.id
        ));
        return Ok(());
    }
    Err(ended_badly(
        &session,
        format!("session {} ended {}", session.id, session.status),
        last_error,
    ))
}

/// `end --wait` failed: before the 202 nothing was done; after it, the
/// server goes on ending the session, which is said, with the session as
/// last read on stdout and the command that shows how it ends.
fn end_accepted_then(error: Error, out: Output) -> Failure {
    let (session, refused) = match &error {
        Error::Timeout { session, .. } => (session, false),
        Error::EndAccepted { session, error } => (session, error.status() == Some(401)),
        _ => return error.into(),
    };
    if let Err(closed) = console::print(&output::session(out, session)) {
        return closed;
    }
    let id = session.id;
    let hint = if refused {
        format!("run `nps login`, then `nps session get {id}` to see how it ended")
    } else if matches!(error, Error::Timeout { .. }) {
        format!(
            "the end was accepted (HTTP 202) and goes on: `nps session get {id}` shows how it ends"
        )
    } else {
        format!("`nps session get {id}` shows how it ends")
    };
    Failure::from(error).with_hint(hint)
}

/// `end` of a session that had ended before: said on standard error, with
/// the exit code `--wait` gives for the same status.
fn already_ended(s: &ActivitySession) -> Result<(), Failure> {
    let headline = format!(
        "session {} already ended ({}{})",
        s.id,
        s.status,
        ended_at(s)
    );
    if ended_cleanly(s.status) {
        console::note(&format!("{headline}: there was nothing to end."));
        return Ok(());
    }
    if failed_start(s) {
        console::note(&format!("{headline}: {NOTHING_OWED}."));
        return Ok(());
    }
    Err(ended_badly(s, headline, None))
}

const NOTHING_OWED: &str =
    "its start failed; its end actions then all succeeded, so nothing is owed";

/// Failed with no description: its start failed, and its end actions then
/// all succeeded (an end action that gave up describes why). Ending it
/// again changes nothing: nothing is owed, so `end` succeeds.
fn failed_start(s: &ActivitySession) -> bool {
    s.status == SessionStatus::Failed && output::description(s).is_none()
}

/// " at <its actual end>", when it has one.
fn ended_at(s: &ActivitySession) -> String {
    s.actual_end_date_time_utc
        .as_ref()
        .map(|t| format!(" at {}", output::time(t)))
        .unwrap_or_default()
}

/// A session that ended Failed, ApprovalDenied or ApprovalFailed: exit 6,
/// with what the server or the log said and where to read more.
fn ended_badly(s: &ActivitySession, headline: String, last_error: Option<String>) -> Failure {
    let said = output::description(s).map(str::to_string).or(last_error);
    let id = s.id;
    let (reason, hint) = match s.status {
        // "Failed" alone (no description) is a failed start whose end
        // actions then all succeeded; otherwise an end action could not
        // finish.
        SessionStatus::Failed => (
            match said {
                Some(said) => format!(
                    "its end actions did not complete, so access may still be in place ({said})"
                ),
                None => NOTHING_OWED.into(),
            },
            format!("`nps session log {id} --level error` shows what failed"),
        ),
        _ => (
            said.unwrap_or_else(|| "no reason given".into()),
            format!("`nps session log {id}` shows why"),
        ),
    };
    Failure::new(Kind::SessionFailed, format!("{headline}: {reason}")).with_hint(hint)
}

/// The status line's text: the status and what the server is doing.
fn state(s: &ActivitySession) -> String {
    match output::description(s) {
        Some(description) => format!("{}: {description}", s.status),
        None => s.status.to_string(),
    }
}

fn request(args: CreateArgs) -> Result<ActivitySessionRequest, Failure> {
    let mut request = match &args.from_json {
        None => ActivitySessionRequest::default(),
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map(|_| text)
                    .map_err(|e| format!("cannot read standard input: {e}"))
            } else {
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))
            }
            .map_err(|e| Failure::new(Kind::Usage, e))?;
            crate::request_file::parse(&text).map_err(|e| {
                Failure::new(
                    Kind::Usage,
                    format!("{} is not an ActivitySessionRequest: {e}", path.display()),
                )
            })?
        }
    };
    let CreateArgs {
        activity_name,
        activity_id,
        resource_name,
        resource_id,
        account_id,
        credential_id,
        policy_id,
        start,
        end,
        note,
        ticket,
        from_json: _,
    } = args;
    fn set<T>(slot: &mut Option<T>, value: Option<T>) {
        if value.is_some() {
            *slot = value;
        }
    }
    set(&mut request.activity_name, activity_name);
    set(&mut request.activity_id, activity_id);
    set(&mut request.managed_resource_name, resource_name);
    set(&mut request.managed_resource_id, resource_id);
    set(&mut request.managed_account_id, account_id);
    set(&mut request.credential_id, credential_id);
    set(&mut request.access_policy_id, policy_id);
    set(&mut request.start_date_time_utc, start);
    set(&mut request.end_date_time_utc, end);
    set(&mut request.note, note);
    set(&mut request.ticket, ticket);
    Ok(request)
}
