//! The one error body of this API: RFC 7807 ProblemDetails, as ASP.NET sends it
//! (`Microsoft.AspNetCore.Mvc.ProblemDetails`).
//!
//! Every operation returns `Result<_, ProblemDetails>`, so dropshot's own
//! failures (a non-UUID path parameter, malformed JSON, a body over the size
//! limit) reach the client as ProblemDetails too, through `From<HttpError>`.
//! `status` always equals the HTTP status of the answer: the answer's status is
//! read from it.

use dropshot::{ErrorStatusCode, HttpError, HttpResponseError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An RFC 7807 problem description.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProblemDetails {
    /// A URI reference that identifies the problem type.
    #[serde(rename = "type")]
    pub type_: String,
    /// A short summary of the problem type (the HTTP reason phrase).
    pub title: String,
    /// The HTTP status code of this answer.
    pub status: u16,
    /// What went wrong in this case and, where it helps, what to do next.
    pub detail: String,
    /// Identifies this occurrence: `urn:nps:request:<request id>` (the id is
    /// also in the `x-request-id` header and in the server's log); null when
    /// the request was refused before it reached the server's own code.
    pub instance: Option<String>,
}

impl ProblemDetails {
    /// A problem with the given HTTP status and detail text. Control
    /// characters in the detail (which may quote the request: an unknown enum
    /// value, a login) are escaped, so that neither the client nor the
    /// server's log, which records it, gets line breaks or terminal escape
    /// sequences from a request.
    pub fn new(status: ErrorStatusCode, detail: impl Into<String>) -> ProblemDetails {
        let code = status.as_u16();
        let detail: String = detail.into();
        let detail = if detail.chars().any(char::is_control) {
            detail
                .chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        } else {
            detail
        };
        ProblemDetails {
            type_: problem_type(code),
            title: status
                .as_status()
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: code,
            detail,
            instance: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> ProblemDetails {
        ProblemDetails::new(ErrorStatusCode::BAD_REQUEST, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> ProblemDetails {
        ProblemDetails::new(ErrorStatusCode::UNAUTHORIZED, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> ProblemDetails {
        ProblemDetails::new(ErrorStatusCode::FORBIDDEN, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ProblemDetails {
        ProblemDetails::new(ErrorStatusCode::NOT_FOUND, detail)
    }

    pub fn conflict(detail: impl Into<String>) -> ProblemDetails {
        ProblemDetails::new(ErrorStatusCode::CONFLICT, detail)
    }

    pub fn too_many_requests(detail: impl Into<String>) -> ProblemDetails {
        ProblemDetails::new(ErrorStatusCode::TOO_MANY_REQUESTS, detail)
    }

    pub fn service_unavailable(detail: impl Into<String>) -> ProblemDetails {
        ProblemDetails::new(ErrorStatusCode::SERVICE_UNAVAILABLE, detail)
    }

    /// A 500 that says nothing internal: the request id lets an operator find
    /// the cause in the server's log.
    pub fn internal(request_id: &str) -> ProblemDetails {
        ProblemDetails::new(
            ErrorStatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "The server failed to handle this request. Its log has the cause under request id {request_id}."
            ),
        )
        .with_request_id(request_id)
    }

    /// Sets `instance` to this request.
    pub fn with_request_id(mut self, request_id: &str) -> ProblemDetails {
        self.instance = Some(format!("urn:nps:request:{request_id}"));
        self
    }
}

/// The problem type URI for a status: the RFC 9110 section that defines it, as
/// ASP.NET does with the older RFC 7231.
fn problem_type(status: u16) -> String {
    let section = match status {
        400 => "15.5.1",
        401 => "15.5.2",
        403 => "15.5.4",
        404 => "15.5.5",
        405 => "15.5.6",
        406 => "15.5.7",
        409 => "15.5.10",
        413 => "15.5.14",
        415 => "15.5.16",
        422 => "15.5.21",
        429 => return "https://www.rfc-editor.org/rfc/rfc6585#section-4".to_string(),
        500 => "15.6.1",
        503 => "15.6.4",
        _ => return "about:blank".to_string(),
    };
    format!("https://www.rfc-editor.org/rfc/rfc9110#section-{section}")
}

impl std::fmt::Display for ProblemDetails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)
    }
}

impl std::error::Error for ProblemDetails {}

impl HttpResponseError for ProblemDetails {
    fn status_code(&self) -> ErrorStatusCode {
        ErrorStatusCode::from_u16(self.status).unwrap_or(ErrorStatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<HttpError> for ProblemDetails {
    fn from(error: HttpError) -> ProblemDetails {
        // Dropshot's external message is written for clients ("unable to parse
        // JSON body: ..."); the internal one may not be, so it stays in the log.
        if error.status_code.is_server_error() {
            return ProblemDetails::new(
                error.status_code,
                "The server failed to handle this request; see the x-request-id header and the server's log.",
            );
        }
        // Dropshot answers an oversized body with 400; RFC 9110 says 413.
        let status = if error
            .external_message
            .starts_with("request body exceeded maximum size")
        {
            ErrorStatusCode::PAYLOAD_TOO_LARGE
        } else {
            error.status_code
        };
        ProblemDetails::new(status, error.external_message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_in_body_is_the_answers_status() {
        let p = ProblemDetails::from(HttpError::for_bad_request(None, "bad uuid".into()));
        assert_eq!(p.status, 400);
        assert_eq!(p.status_code().as_u16(), 400);
        assert_eq!(p.title, "Bad Request");
        assert_eq!(p.detail, "bad uuid");
    }

    #[test]
    fn control_characters_of_a_request_are_escaped_in_the_detail() {
        let p = ProblemDetails::bad_request("unknown variant `X\nINFO forged\u{1b}[2J`");
        assert_eq!(p.detail, "unknown variant `X\\nINFO forged\\u{1b}[2J`");
        assert!(!p.detail.chars().any(char::is_control));
    }

    #[test]
    fn an_oversized_body_is_413() {
        let p = ProblemDetails::from(HttpError::for_bad_request(
            None,
            "request body exceeded maximum size of 1024 bytes".into(),
        ));
        assert_eq!(p.status, 413);
        assert_eq!(p.title, "Payload Too Large");
    }

    #[test]
    fn server_errors_from_dropshot_hide_their_message() {
        let p = ProblemDetails::from(HttpError::for_internal_error("secret path /x".into()));
        assert_eq!(p.status, 500);
        assert!(!p.detail.contains("secret"));
    }
}
