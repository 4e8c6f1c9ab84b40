//! What `nps` prints when a command fails, and the exit code it ends with
//! (listed in `exit_codes.md`, shown by `nps --help`).

use std::fmt;
use std::process::ExitCode;

use nps_client::Error;

/// Why a command failed, as far as a script cares: each kind is one exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Other = 1,
    Usage = 2,
    Refused = 3,
    NotSignedIn = 4,
    Unreachable = 5,
    SessionFailed = 6,
    TimedOut = 7,
    /// The server failed (HTTP 5xx): not the request's fault.
    ServerFailed = 8,
    /// Standard output was closed (`nps session list | head -1`): nothing
    /// is printed, the process ends by SIGPIPE (see [`crate::console`]).
    ClosedOutput = 141,
}

/// A failed command: one line saying what went wrong, and maybe one saying
/// what to do next.
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    pub fn new(kind: Kind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind as u8)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  {hint}")?;
        }
        Ok(())
    }
}

/// The exit code of an error: a failure after an accepted end is that of
/// what failed.
fn kind(error: &Error) -> Kind {
    if error.http_status().is_some_and(|s| s >= 500) {
        return Kind::ServerFailed;
    }
    match error {
        Error::Problem(p) if p.status == 401 => Kind::NotSignedIn,
        Error::Problem(_) => Kind::Refused,
        Error::Unreachable(_) => Kind::Unreachable,
        // Like a 5xx: the request may have been carried out, or not.
        Error::NoAnswer(_) => Kind::ServerFailed,
        Error::Settings(_) => Kind::Usage,
        Error::Timeout { .. } => Kind::TimedOut,
        Error::UnexpectedAnswer { .. } => Kind::Other,
        Error::EndAccepted { error, .. } => kind(error),
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        let kind = kind(&error);
        let not_the_api = matches!(error, Error::UnexpectedAnswer { .. });
        let no_answer = matches!(error, Error::NoAnswer(_));
        let message = match kind {
            Kind::ServerFailed if !matches!(error, Error::EndAccepted { .. }) && !no_answer => {
                format!("the server failed: {error}")
            }
            _ => error.to_string(),
        };
        let failure = Failure::new(kind, message);
        match kind {
            _ if matches!(error, Error::EndAccepted { .. }) => failure,
            _ if no_answer => failure.with_hint(
                "the request may have reached the server: what was asked may or may not have \
                 been done; read what the server holds (`nps session get ID`, `nps session \
                 log ID`) before repeating it",
            ),
            Kind::Unreachable => failure.with_hint(
                "check --url (or NPS_URL) and that the server is running; if its certificate \
                 is not trusted, give its CA with --ca-cert (--skip-certificate-check for a lab server)",
            ),
            Kind::ServerFailed if not_the_api => failure.with_hint(
                "check --url (or NPS_URL): a proxy in front of the server may have failed, \
                 or this is not the NPS server; what was asked may not have been done",
            ),
            Kind::ServerFailed => failure.with_hint(
                "not the request's fault: what was asked may not have been done; try again, \
                 and if it persists the server's log says why (a 500 names its request id)",
            ),
            Kind::Other if not_the_api => failure.with_hint(
                "check --url (or NPS_URL): it must be the NPS server's base URL, such as \
                 https://nps.example.com:6500, without /api/v1 or another path the server does not have",
            ),
            _ => failure,
        }
    }
}

/// An error of a generated operation, through the client's [`Error`].
impl From<nps_client::generated::Error<nps_client::types::ProblemDetails>> for Failure {
    fn from(error: nps_client::generated::Error<nps_client::types::ProblemDetails>) -> Failure {
        Failure::from(Error::from(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_documented_with_its_code() {
        let doc = include_str!("exit_codes.md");
        for kind in [
            Kind::Other,
            Kind::Usage,
            Kind::Refused,
            Kind::NotSignedIn,
            Kind::Unreachable,
            Kind::SessionFailed,
            Kind::TimedOut,
            Kind::ServerFailed,
            Kind::ClosedOutput,
        ] {
            let code = kind as u8;
            assert!(
                doc.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{code} "))),
                "exit code {code} ({kind:?}) is not in exit_codes.md"
            );
        }
    }

    #[test]
    fn a_refusal_prints_the_problem_title_and_detail() {
        let failure = Failure::from(Error::Problem(nps_client::types::ProblemDetails {
            type_: "about:blank".into(),
            title: "Not Found".into(),
            status: 404,
            detail: "No activity session has this id.".into(),
            instance: None,
        }));
        assert_eq!(failure.kind, Kind::Refused);
        assert_eq!(
            failure.to_string(),
            "error: Not Found (HTTP 404): No activity session has this id."
        );
    }
}
