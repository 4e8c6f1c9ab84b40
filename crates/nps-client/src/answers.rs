//! The HTTP status and URL of each answer, for error messages.
//!
//! progenitor's `InvalidResponsePayload` keeps only the body of an answer it
//! could not parse, so "missing field `detail`" came without the 404 and the
//! URL that explain it (a `--url` with a path prefix, answered by some other
//! server's router). The HTTP client built by [`crate::Connection`] notes the
//! method, URL and status of every answer in a slot of the current task,
//! when the task runs inside [`remember_answers`]; the conversion to
//! [`crate::Error`] reads it. Outside it nothing is noted, and such errors
//! say what the body was without the status.
//!
//! The note is taken by the retry classifier of reqwest, the one place
//! where reqwest shows every answer's status to a caller's code; it always
//! answers "success", so nothing is ever retried (without HTTP/2, which this
//! client does not enable, reqwest's default policy retries nothing either).

use std::future::Future;
use std::sync::Mutex;

/// One answer: `GET http://host/path` and its status.
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub request: String,
}

tokio::task_local! {
    static LAST: Mutex<Option<Answer>>;
}

/// Runs `future` noting the status and URL of each answer it receives, so
/// that an answer whose body does not follow the API is reported with them
/// ([`crate::Error::UnexpectedAnswer`]). Requests run one after the other in
/// the task are reported exactly; `nps` runs each command inside it.
pub async fn remember_answers<F: Future>(future: F) -> F::Output {
    LAST.scope(Mutex::new(None), future).await
}

/// The answer last noted in this task, if any.
pub(crate) fn last() -> Option<Answer> {
    LAST.try_with(|slot| slot.lock().unwrap_or_else(|e| e.into_inner()).clone())
        .ok()
        .flatten()
}

/// The retry policy that notes answers and retries nothing.
pub(crate) fn noting_policy() -> reqwest::retry::Builder {
    reqwest::retry::never().classify_fn(|answer| {
        if let Some(status) = answer.status() {
            let noted = Answer {
                status: status.as_u16(),
                request: format!("{} {}", answer.method(), answer.uri()),
            };
            let _ = LAST.try_with(|slot| {
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(noted);
            });
        }
        answer.success()
    })
}
