//! The one error type of the hand-written parts of this crate.
//!
//! Every call of the generated client returns
//! `progenitor_client::Error<ProblemDetails>`; `?` turns that into [`Error`]
//! in a function that returns `Result<_, nps_client::Error>`, so a caller
//! matches on what went wrong (the server refused, the server could not be
//! reached, the answer was not what the contract says) instead of on how
//! progenitor reports it.

use std::time::Duration;

use crate::types::{ActivitySession, ProblemDetails};

/// What went wrong talking to an NPS server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error: its ProblemDetails says why.
    #[error("{} (HTTP {}): {}", .0.title, .0.status, .0.detail)]
    Problem(ProblemDetails),

    /// The server could not be reached, or the TLS handshake failed: check
    /// the URL and that the server is running; for a certificate error,
    /// trust the server's CA ([`Connection::with_ca_certificate_file`]).
    ///
    /// [`Connection::with_ca_certificate_file`]: crate::Connection::with_ca_certificate_file
    #[error("could not reach the server: {}", chain(.0))]
    Unreachable(#[source] reqwest::Error),

    /// The request was sent (or may have been) but no complete answer came
    /// back: the connection closed, the answer was cut off, or it took longer
    /// than the client's timeout. The server may or may not have done what
    /// was asked: read what it holds before repeating a request that creates
    /// or ends something.
    #[error("no complete answer came from the server: {}", chain(.0))]
    NoAnswer(#[source] reqwest::Error),

    /// The server answered something the API description does not allow:
    /// often not an NPS server at all (a wrong URL, a proxy's error page).
    #[error(
        "the server's answer does not follow the API: {}{detail}",
        answered(*.status, .request.as_deref())
    )]
    UnexpectedAnswer {
        /// The HTTP status, when known (see [`crate::remember_answers`]).
        status: Option<u16>,
        /// The request, `GET http://...`, when known.
        request: Option<String>,
        /// What was wrong with it.
        detail: String,
    },

    /// The connection settings are not usable (a malformed URL, an unreadable
    /// or invalid CA certificate).
    #[error("{0}")]
    Settings(String),

    /// `DeleteAsync` accepted the end of a session (202), then following it
    /// failed (a read was refused, the server could not be reached): the
    /// server ends the session regardless. Only the end-and-wait helpers
    /// answer it; their timeout, which also comes after the 202, is
    /// [`Error::Timeout`].
    #[error(
        "the end of session {} was accepted (HTTP 202) and goes on, but following it failed: {}",
        .session.id,
        .error
    )]
    EndAccepted {
        /// The session as last read (the 202's answer, or a later read).
        session: Box<ActivitySession>,
        /// What went wrong while following it.
        error: Box<Error>,
    },

    /// A session did not reach a terminal status in time.
    #[error(
        "session {} is still {} after {} s{}",
        .session.id,
        .session.status,
        .waited.as_secs(),
        describe(.session.status_description.as_deref())
    )]
    Timeout {
        /// The session as last read.
        session: Box<ActivitySession>,
        /// How long the helper waited.
        waited: Duration,
    },
}

impl Error {
    /// The server's ProblemDetails, when the server refused the request (for
    /// [`Error::EndAccepted`], a read after the end was accepted).
    pub fn problem(&self) -> Option<&ProblemDetails> {
        match self {
            Error::Problem(p) => Some(p),
            Error::EndAccepted { error, .. } => error.problem(),
            _ => None,
        }
    }

    /// The HTTP status of a refusal (401, 404, ...).
    pub fn status(&self) -> Option<u16> {
        self.problem().map(|p| p.status)
    }

    /// The HTTP status of the answer this error is about, when known: that
    /// of a refusal, or of an answer that does not follow the API.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Problem(p) => Some(p.status),
            Error::UnexpectedAnswer { status, .. } => *status,
            Error::EndAccepted { error, .. } => error.http_status(),
            _ => None,
        }
    }
}

impl From<progenitor_client::Error<ProblemDetails>> for Error {
    fn from(error: progenitor_client::Error<ProblemDetails>) -> Error {
        use progenitor_client::Error as E;
        match error {
            E::ErrorResponse(answer) => {
                let status = answer.status().as_u16();
                let mut problem = answer.into_inner();
                // The contract says the body's status is the answer's status;
                // trust the answer if they ever differ.
                problem.status = status;
                Error::Problem(problem)
            }
            // Connecting (a refused connection, a name that does not
            // resolve, a TLS handshake) fails before anything is sent.
            E::CommunicationError(e) | E::InvalidUpgrade(e) if e.is_connect() => {
                Error::Unreachable(e)
            }
            // Anything later (a timeout, a connection closed without an
            // answer, a body cut off) may come after the server acted.
            E::CommunicationError(e) | E::InvalidUpgrade(e) | E::ResponseBodyError(e) => {
                Error::NoAnswer(e)
            }
            E::InvalidResponsePayload(body, e) => {
                let answer = crate::answers::last();
                Error::UnexpectedAnswer {
                    status: answer.as_ref().map(|a| a.status),
                    request: answer.map(|a| a.request),
                    detail: format!(
                        "{e}; the body was: {}",
                        excerpt(&String::from_utf8_lossy(&body))
                    ),
                }
            }
            E::UnexpectedResponse(response) => {
                let status = response.status();
                Error::UnexpectedAnswer {
                    status: Some(status.as_u16()),
                    request: crate::answers::last()
                        .map(|a| a.request)
                        .or_else(|| Some(response.url().to_string())),
                    detail: format!("HTTP {status} is not an answer this operation has"),
                }
            }
            E::InvalidRequest(message) | E::Custom(message) => Error::Settings(message),
        }
    }
}

/// An error and its causes on one line: reqwest's own message leaves out the
/// part that matters ("connection refused", "invalid peer certificate").
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// "HTTP 404 for GET http://...: " as far as it is known.
fn answered(status: Option<u16>, request: Option<&str>) -> String {
    match (status, request) {
        (Some(status), Some(request)) => format!("HTTP {status} for {request}: "),
        (Some(status), None) => format!("HTTP {status}: "),
        (None, Some(request)) => format!("{request}: "),
        (None, None) => String::new(),
    }
}

fn describe(status_description: Option<&str>) -> String {
    match status_description {
        Some(d) if !d.is_empty() => format!(" ({d})"),
        _ => String::new(),
    }
}

/// The start of a body, on one line.
fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    let text = &text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_reads_as_its_title_status_and_detail() {
        let error = Error::Problem(ProblemDetails {
            type_: "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.5".into(),
            title: "Not Found".into(),
            status: 404,
            detail: "No session has id 42.".into(),
            instance: None,
        });
        assert_eq!(
            error.to_string(),
            "Not Found (HTTP 404): No session has id 42."
        );
        assert_eq!(error.status(), Some(404));
    }

    #[test]
    fn long_bodies_are_cut() {
        let long = "x".repeat(500);
        let cut = excerpt(&long);
        assert_eq!(cut.len(), 203);
        assert!(cut.ends_with("..."));
        assert_eq!(excerpt("short"), "short");
    }
}
