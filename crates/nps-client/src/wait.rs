//! Ending a session and waiting for its terminal state.
//!
//! `DeleteAsync` answers 202 at once with the session as it stands (usually
//! Cancelling); the server then runs the end actions and the session reads
//! Cancelled, or Failed with the reason in its log. These helpers poll
//! `GetByIdAsync` (and, when asked, `GetSessionLogsAsync`) until the status is
//! terminal or the timeout passes.

use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use crate::types::{ActionLogDto, ActivitySession, SessionStatus};
use crate::{Client, Error};

/// A terminal status does not change by itself: Complete, Failed,
/// Cancelled, ApprovalDenied, ApprovalFailed. One changes on request:
/// `DeleteAsync` of a Failed session runs its end actions again (access may
/// remain on it), and it reads Cancelling.
pub fn is_terminal(status: SessionStatus) -> bool {
    matches!(
        status,
        SessionStatus::Complete
            | SessionStatus::Failed
            | SessionStatus::Cancelled
            | SessionStatus::ApprovalDenied
            | SessionStatus::ApprovalFailed
    )
}

/// The session ended as asked: Cancelled (ended early) or Complete (its time
/// ran out). Failed, ApprovalDenied and ApprovalFailed are not.
pub fn ended_cleanly(status: SessionStatus) -> bool {
    matches!(status, SessionStatus::Cancelled | SessionStatus::Complete)
}

/// How to wait.
#[derive(Clone, Debug)]
pub struct WaitOptions {
    /// Give up after this long (default 5 minutes).
    pub timeout: Duration,
    /// Time between two reads of the session (default 200 ms).
    pub poll_interval: Duration,
    /// Also report the session's new log lines as they are written (default
    /// false): one more request per poll.
    pub follow_log: bool,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            timeout: Duration::from_secs(300),
            poll_interval: Duration::from_millis(200),
            follow_log: false,
        }
    }
}

impl WaitOptions {
    /// The defaults with this timeout.
    pub fn with_timeout(timeout: Duration) -> Self {
        WaitOptions {
            timeout,
            ..WaitOptions::default()
        }
    }
}

/// What a watcher is told while it waits.
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// The session's status or status description changed (the first read
    /// is always reported).
    Status(&'a ActivitySession),
    /// A new line of the session's log (with [`WaitOptions::follow_log`]).
    Log(&'a ActionLogDto),
}

impl Client {
    /// Ends a session (`DeleteAsync`) and waits until its status is terminal.
    ///
    /// Answers the session as it ended, whatever the terminal status: check
    /// [`ended_cleanly`] for Failed. Once the end was accepted (202), the
    /// server ends the session whatever happens here, and every error says
    /// so: [`Error::Timeout`] when it is still not terminal after `timeout`,
    /// [`Error::EndAccepted`] when reading it failed; both carry the session
    /// as last read.
    pub async fn end_session_and_wait(
        &self,
        session_id: &Uuid,
        timeout: Duration,
    ) -> Result<ActivitySession, Error> {
        self.end_session_and_watch(session_id, &WaitOptions::with_timeout(timeout), |_| {})
            .await
    }

    /// [`Client::end_session_and_wait`], telling `on_progress` each change of
    /// status and, with [`WaitOptions::follow_log`], each new log line
    /// written since the end was asked.
    pub async fn end_session_and_watch(
        &self,
        session_id: &Uuid,
        options: &WaitOptions,
        on_progress: impl FnMut(Progress<'_>),
    ) -> Result<ActivitySession, Error> {
        self.watch(session_id, options, true, on_progress).await
    }

    /// Waits until a session's status is terminal (whoever ended it), telling
    /// `on_progress` each change of status and, with
    /// [`WaitOptions::follow_log`], each log line written from now on.
    pub async fn wait_until_terminal(
        &self,
        session_id: &Uuid,
        options: &WaitOptions,
        on_progress: impl FnMut(Progress<'_>),
    ) -> Result<ActivitySession, Error> {
        self.watch(session_id, options, false, on_progress).await
    }

    async fn watch(
        &self,
        session_id: &Uuid,
        options: &WaitOptions,
        end_first: bool,
        on_progress: impl FnMut(Progress<'_>),
    ) -> Result<ActivitySession, Error> {
        let start = Instant::now();
        let mut log = LogFollower::new(options.follow_log);
        // Counted before the end is asked, so its own log lines are reported.
        log.skip_existing(self, session_id).await?;
        let first = if end_first {
            self.delete_async(session_id).await?
        } else {
            self.get_by_id_async(session_id).await?
        };
        Watch {
            client: self,
            session_id,
            options,
            start,
            log,
            on_progress,
            last: None,
            end_accepted: end_first,
        }
        .run(first.into_inner())
        .await
    }
}

/// One wait in progress.
struct Watch<'a, F> {
    client: &'a Client,
    session_id: &'a Uuid,
    options: &'a WaitOptions,
    start: Instant,
    log: LogFollower,
    on_progress: F,
    /// The status and description last reported.
    last: Option<(SessionStatus, Option<String>)>,
    /// This wait's DELETE was accepted: errors say so.
    end_accepted: bool,
}

impl<F: FnMut(Progress<'_>)> Watch<'_, F> {
    async fn run(mut self, mut session: ActivitySession) -> Result<ActivitySession, Error> {
        // No deadline for a timeout beyond what an Instant can hold.
        let deadline = self.start.checked_add(self.options.timeout);
        loop {
            // The log is read after the session, so the lines of the
            // transition just seen are reported before it.
            if let Err(error) = self
                .log
                .report_new_lines(self.client, self.session_id, &mut self.on_progress)
                .await
            {
                return Err(self.lost(error, session));
            }
            let now = (session.status, session.status_description.clone());
            if self.last.as_ref() != Some(&now) {
                (self.on_progress)(Progress::Status(&session));
                self.last = Some(now);
            }
            if is_terminal(session.status) {
                return Ok(session);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::Timeout {
                    session: Box::new(session),
                    waited: self.start.elapsed(),
                });
            }
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            tokio::time::sleep(self.options.poll_interval.min(left)).await;
            session = match self.client.get_by_id_async(self.session_id).await {
                Ok(read) => read.into_inner(),
                Err(error) => return Err(self.lost(error.into(), session)),
            };
        }
    }

    /// An error while following the session, which was `last` when last read.
    fn lost(&self, error: Error, last: ActivitySession) -> Error {
        if self.end_accepted {
            Error::EndAccepted {
                session: Box::new(last),
                error: Box::new(error),
            }
        } else {
            error
        }
    }
}

/// Reads a session's log lines that are new since it started.
struct LogFollower {
    enabled: bool,
    /// How many lines were there already or were reported.
    seen: i32,
}

impl LogFollower {
    /// The server answers at most this many lines per request.
    const PAGE: i32 = 1000;

    fn new(enabled: bool) -> Self {
        LogFollower { enabled, seen: 0 }
    }

    async fn skip_existing(&mut self, client: &Client, id: &Uuid) -> Result<(), Error> {
        if self.enabled {
            self.seen = client
                .get_session_logs_async(id, None, None, None, Some(false), None, None, Some(0))
                .await?
                .into_inner()
                .total_count;
        }
        Ok(())
    }

    async fn report_new_lines(
        &mut self,
        client: &Client,
        id: &Uuid,
        on_progress: &mut impl FnMut(Progress<'_>),
    ) -> Result<(), Error> {
        if !self.enabled {
            return Ok(());
        }
        loop {
            let page = client
                .get_session_logs_async(
                    id,
                    None,
                    None,
                    None,
                    Some(false),
                    Some(self.seen),
                    None,
                    Some(Self::PAGE),
                )
                .await?
                .into_inner();
            for line in &page.lines {
                on_progress(Progress::Log(line));
            }
            self.seen += page.lines.len() as i32;
            if page.lines.is_empty() || self.seen >= page.total_count {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client cannot depend on nps-api (it would pull in the server's
    /// framework), so the two lists of terminal statuses are compared here.
    #[test]
    fn terminal_statuses_match_the_contract() {
        for status in nps_api::SessionStatus::ALL {
            let ours: SessionStatus = status.as_str().parse().unwrap();
            assert_eq!(is_terminal(ours), status.is_terminal(), "{status}");
        }
    }

    #[test]
    fn only_cancelled_and_complete_end_cleanly() {
        let clean: Vec<_> = nps_api::SessionStatus::ALL
            .into_iter()
            .filter(|s| ended_cleanly(s.as_str().parse().unwrap()))
            .collect();
        assert_eq!(
            clean,
            [
                nps_api::SessionStatus::Complete,
                nps_api::SessionStatus::Cancelled
            ]
        );
    }
}
