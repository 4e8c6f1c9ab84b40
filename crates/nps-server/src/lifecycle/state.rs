//! Session states and their transitions, in one place.
//!
//! Every change of a session's status or of its pending work goes through
//! [`transition`]: an event that does not apply to the current state is
//! answered here (no change, or refused), never half-applied elsewhere. The
//! store applies the answer and writes its log line in the same transaction.

use chrono::{DateTime, Utc};
use nps_api::{ActionLogType, SessionStatus};

/// Which action list a session's pending work runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Start,
    End,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Start => "start",
            Phase::End => "end",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        match s {
            "start" => Some(Phase::Start),
            "end" => Some(Phase::End),
            _ => None,
        }
    }
}

/// Work the lifecycle engine owes a session, persisted with it so that it
/// survives a crash: run actions `next_action..` of `phase`, then finish.
#[derive(Clone, Debug, PartialEq)]
pub struct Work {
    pub phase: Phase,
    /// Index of the next action to run (0-based).
    pub next_action: u32,
    /// Failed attempts of that action so far.
    pub attempts: u32,
    /// Not before this time (backoff after a failure).
    pub due: DateTime<Utc>,
    /// For the end phase: the status to reach when every end action succeeded.
    pub end_target: Option<SessionStatus>,
}

impl Work {
    fn new(phase: Phase, now: DateTime<Utc>, end_target: Option<SessionStatus>) -> Work {
        Work {
            phase,
            next_action: 0,
            attempts: 0,
            due: now,
            end_target,
        }
    }
}

/// Something that happens to a session.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// DeleteAsync.
    EndRequested,
    /// `scheduledStartDateTimeUtc` has come.
    StartDue { has_start_actions: bool },
    /// `scheduledEndDateTimeUtc` has come.
    EndDue,
    /// Action `index` of `phase` succeeded.
    ActionSucceeded { phase: Phase, index: u32 },
    /// Action `index` of `phase` failed; it will be tried again at `retry_at`.
    ActionWillRetry {
        phase: Phase,
        index: u32,
        attempts: u32,
        retry_at: DateTime<Utc>,
    },
    /// Every start action succeeded.
    StartFinished,
    /// A start action failed for good: end actions run, then Failed.
    StartFailed,
    /// Every end action succeeded.
    EndFinished,
    /// An end action failed for good.
    EndFailed,
}

/// What a transition does to the row.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub status: SessionStatus,
    pub work: Option<Work>,
    pub set_actual_start: bool,
    pub set_actual_end: bool,
    pub set_cancelled_by: bool,
    /// The session left Cancelling again: it has not ended yet.
    pub clear_actual_end: bool,
    pub description: Option<String>,
    /// Set when an end phase gave up: the status its end was to reach. The
    /// revocation is owed (access may remain), so ending the session again
    /// retries it; kept with the session until then.
    pub owed_end: Option<SessionStatus>,
}

/// The answer of [`transition`].
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Apply this change.
    Apply(Change),
    /// Nothing to do (e.g. ending an ended session, or stale work).
    NoChange,
}

/// The event, and its log message, that closes a pipeline whose `actions`
/// actions all succeeded.
pub fn pipeline_finished(phase: Phase, actions: usize) -> (Event, String) {
    match phase {
        Phase::Start => (
            Event::StartFinished,
            format!("start pipeline finished: {actions} start action(s) succeeded"),
        ),
        // With no end action, nothing was revoked here: say so, not
        // "access revoked".
        Phase::End if actions == 0 => (
            Event::EndFinished,
            "end pipeline finished: no end action is configured for this session".into(),
        ),
        Phase::End => (
            Event::EndFinished,
            format!(
                "end pipeline finished: session access revoked, {actions} end action(s) succeeded"
            ),
        ),
    }
}

/// The one place that decides what an event does to a session.
/// `owed_end` is what an earlier [`Change::owed_end`] left with the session.
pub fn transition(
    status: SessionStatus,
    work: Option<&Work>,
    owed_end: Option<SessionStatus>,
    event: &Event,
    now: DateTime<Utc>,
) -> Outcome {
    use SessionStatus::*;
    let keep = |status, work: Option<Work>, description: Option<String>| Change {
        status,
        work,
        set_actual_start: false,
        set_actual_end: false,
        set_cancelled_by: false,
        clear_actual_end: false,
        description,
        owed_end: None,
    };
    match (event, status) {
        (Event::EndRequested, Pending | ApprovalRequired) => Outcome::Apply(Change {
            set_actual_end: true,
            set_cancelled_by: true,
            ..keep(Cancelled, None, Some("Cancelled before it started".into()))
        }),
        (Event::EndRequested, Active) => Outcome::Apply(Change {
            set_cancelled_by: true,
            ..keep(
                Cancelling,
                Some(Work::new(Phase::End, now, Some(Cancelled))),
                Some("Ending: revoking access".into()),
            )
        }),
        // Failed because an end action gave up: access may still be
        // provisioned. Ending it again retries the revocation: the end
        // actions run again (same keys), towards the status the end was to
        // reach. (A failed start ran its end actions to the end: nothing
        // is owed, and ending it changes nothing.)
        (Event::EndRequested, Failed) => match owed_end {
            Some(target) => Outcome::Apply(Change {
                set_cancelled_by: target == Cancelled,
                clear_actual_end: true,
                ..keep(
                    Cancelling,
                    Some(Work::new(Phase::End, now, Some(target))),
                    Some("Ending again: retrying the end actions that failed".into()),
                )
            }),
            None => Outcome::NoChange,
        },
        (Event::EndRequested, _) => Outcome::NoChange,

        (Event::StartDue { has_start_actions }, Pending) => Outcome::Apply(Change {
            set_actual_start: true,
            ..keep(
                Active,
                has_start_actions.then(|| Work::new(Phase::Start, now, None)),
                Some(if *has_start_actions {
                    "Starting: granting access".into()
                } else {
                    "Active".into()
                }),
            )
        }),
        (Event::StartDue { .. }, _) => Outcome::NoChange,

        (Event::EndDue, Active) if work.is_none() => Outcome::Apply(keep(
            Cancelling,
            Some(Work::new(Phase::End, now, Some(Complete))),
            Some("Ending: scheduled end reached, revoking access".into()),
        )),
        // Its whole window passed before it started (the server was down
        // through it): nothing is granted after the end, nothing is owed.
        (Event::EndDue, Pending) => Outcome::Apply(Change {
            set_actual_end: true,
            ..keep(
                Complete,
                None,
                Some("Complete: its scheduled end came before it started; no action ran".into()),
            )
        }),
        (Event::EndDue, _) => Outcome::NoChange,

        (Event::ActionSucceeded { phase, index }, _) => match work {
            Some(w) if w.phase == *phase && w.next_action == *index => Outcome::Apply(keep(
                status,
                Some(Work {
                    next_action: index + 1,
                    attempts: 0,
                    due: now,
                    ..w.clone()
                }),
                None,
            )),
            _ => Outcome::NoChange,
        },
        (
            Event::ActionWillRetry {
                phase,
                index,
                attempts,
                retry_at,
            },
            _,
        ) => match work {
            Some(w) if w.phase == *phase && w.next_action == *index => Outcome::Apply(keep(
                status,
                Some(Work {
                    attempts: *attempts,
                    due: *retry_at,
                    ..w.clone()
                }),
                None,
            )),
            _ => Outcome::NoChange,
        },

        (Event::StartFinished, Active) if work.is_some_and(|w| w.phase == Phase::Start) => {
            Outcome::Apply(keep(Active, None, Some("Active".into())))
        }
        (Event::StartFailed, Active) if work.is_some_and(|w| w.phase == Phase::Start) => {
            Outcome::Apply(keep(
                Cancelling,
                Some(Work::new(Phase::End, now, Some(Failed))),
                Some("Start failed: running end actions so nothing stays provisioned".into()),
            ))
        }
        (Event::StartFinished | Event::StartFailed, _) => Outcome::NoChange,

        (Event::EndFinished, Cancelling) if work.is_some_and(|w| w.phase == Phase::End) => {
            let target = work.and_then(|w| w.end_target).unwrap_or(Cancelled);
            Outcome::Apply(Change {
                set_actual_end: true,
                ..keep(target, None, Some(target.as_str().into()))
            })
        }
        (Event::EndFailed, Cancelling) if work.is_some_and(|w| w.phase == Phase::End) => {
            Outcome::Apply(Change {
                set_actual_end: true,
                owed_end: Some(work.and_then(|w| w.end_target).unwrap_or(Cancelled)),
                ..keep(
                    Failed,
                    None,
                    Some("Failed: an end action could not finish; see the log".into()),
                )
            })
        }
        (Event::EndFinished | Event::EndFailed, _) => Outcome::NoChange,
    }
}

/// The severity of the log line an event writes.
pub fn log_level(event: &Event) -> ActionLogType {
    match event {
        Event::ActionWillRetry { .. } => ActionLogType::Warn,
        Event::StartFailed | Event::EndFailed => ActionLogType::Error,
        _ => ActionLogType::Info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionStatus::*;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn an_end_with_no_end_action_does_not_claim_a_revocation() {
        let (_, none) = pipeline_finished(Phase::End, 0);
        assert!(!none.contains("revoked"), "{none}");
        let (_, two) = pipeline_finished(Phase::End, 2);
        assert!(two.contains("revoked, 2 end action(s) succeeded"), "{two}");
    }

    #[test]
    fn a_pending_session_whose_end_came_first_completes_without_work() {
        match transition(Pending, None, None, &Event::EndDue, now()) {
            Outcome::Apply(c) => {
                assert_eq!(c.status, Complete);
                assert!(c.work.is_none() && c.set_actual_end && !c.set_actual_start);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ending_each_state() {
        let t = |s| transition(s, None, None, &Event::EndRequested, now());
        assert!(
            matches!(t(Pending), Outcome::Apply(c) if c.status == Cancelled && c.work.is_none())
        );
        assert!(matches!(t(ApprovalRequired), Outcome::Apply(c) if c.status == Cancelled));
        match t(Active) {
            Outcome::Apply(c) => {
                assert_eq!(c.status, Cancelling);
                let w = c.work.unwrap();
                assert_eq!((w.phase, w.end_target), (Phase::End, Some(Cancelled)));
            }
            other => panic!("{other:?}"),
        }
        // A session whose end gave up: the end actions run again, towards
        // the status the end was to reach; a cancelled one names who asked.
        for target in [Cancelled, Complete] {
            match transition(Failed, None, Some(target), &Event::EndRequested, now()) {
                Outcome::Apply(c) => {
                    assert_eq!(c.status, Cancelling);
                    assert_eq!(c.set_cancelled_by, target == Cancelled);
                    assert!(c.clear_actual_end && c.owed_end.is_none());
                    let w = c.work.unwrap();
                    assert_eq!((w.phase, w.end_target), (Phase::End, Some(target)));
                }
                other => panic!("{other:?}"),
            }
        }
        // A failed start owes nothing: its end actions ran to the end.
        for s in [
            Failed,
            Cancelling,
            Cancelled,
            Complete,
            ApprovalDenied,
            ApprovalFailed,
        ] {
            assert_eq!(t(s), Outcome::NoChange, "{s}");
        }
    }

    #[test]
    fn end_finishes_at_its_target() {
        let w = Work::new(Phase::End, now(), Some(Complete));
        match transition(Cancelling, Some(&w), None, &Event::EndFinished, now()) {
            Outcome::Apply(c) => assert_eq!((c.status, c.set_actual_end), (Complete, true)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            transition(Cancelling, Some(&w), None, &Event::EndFailed, now()),
            Outcome::Apply(c) if c.status == Failed && c.owed_end == Some(Complete)
        ));
    }

    #[test]
    fn stale_action_results_change_nothing() {
        // A start action finishing after the session was ended must not
        // advance the end phase.
        let w = Work::new(Phase::End, now(), Some(Cancelled));
        let e = Event::ActionSucceeded {
            phase: Phase::Start,
            index: 0,
        };
        assert_eq!(
            transition(Cancelling, Some(&w), None, &e, now()),
            Outcome::NoChange
        );
        assert_eq!(
            transition(Cancelling, Some(&w), None, &Event::StartFinished, now()),
            Outcome::NoChange
        );
    }

    #[test]
    fn failed_start_runs_the_end_phase_towards_failed() {
        let w = Work::new(Phase::Start, now(), None);
        match transition(Active, Some(&w), None, &Event::StartFailed, now()) {
            Outcome::Apply(c) => {
                assert_eq!(c.status, Cancelling);
                assert_eq!(c.work.unwrap().end_target, Some(Failed));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn expiry_waits_for_start_actions() {
        let w = Work::new(Phase::Start, now(), None);
        assert_eq!(
            transition(Active, Some(&w), None, &Event::EndDue, now()),
            Outcome::NoChange
        );
    }
}
