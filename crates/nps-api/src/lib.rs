//! The NPS ActivitySession API, as a contract in Rust.
//!
//! This file is the API's table of contents: one trait method per operation.
//! The method's doc comment becomes the operation's summary, its `#[endpoint]`
//! attribute carries the method, path, operationId and tag, and
//! [`policy::OPERATION_POLICIES`] says who may call it. `nps-server` implements
//! the trait; `openapi.json` at the top of the repository is generated from it.
//!
//! # Changing the API safely
//!
//! 1. Change this crate (an operation, a type, a policy).
//! 2. Run `cargo xtask generate`: it rewrites `openapi.json` and the generated
//!    client in `crates/nps-client/src/generated.rs`.
//! 3. Review the diff of `openapi.json` as you would review a contract change.
//! 4. `cargo xtask check` (also run by the test suite) must pass.
//!
//! What breaks clients: renaming or removing an operationId (a name clients
//! compile against and NPS scripts call), a path, a property or an enum string;
//! making an optional property required; changing a success status. Adding an
//! optional property or a new operation does not.
//!
//! This crate has no database and no logic, so the document generates fast.

pub mod document;
pub mod error;
pub mod extract;
pub mod policy;
pub mod types;

use dropshot::{
    EndpointTagPolicy, HttpResponseAccepted, HttpResponseCreated, HttpResponseHeaders,
    HttpResponseOk, RequestContext,
};

pub use error::ProblemDetails;
pub use extract::{JsonBody, PathParams, QueryParams};
pub use types::*;

/// Header-carrying answer with a `Location` header.
pub type Located<T> = HttpResponseHeaders<T, LocationHeader>;

#[dropshot::api_description {
    module = "nps_api_mod",
    tag_config = {
        tags = {
            "Authentication" = {
                description = "Sign-in: a login and password, then a TOTP code, give an MFA token.",
            },
            "ActivitySession" = {
                description = "Activity sessions: temporary privileged access to a resource.",
            },
        },
        policy = EndpointTagPolicy::ExactlyOne,
        allow_other_tags = false,
    },
}]
pub trait NpsApi {
    type Context;

    /// Signs in with a login and password
    ///
    /// Answers a pre-MFA token as a JSON string and sets it as the `NpsSignIn`
    /// cookie. The token is good only for `/signin2fa`, for five minutes.
    #[endpoint {
        method = POST,
        path = "/signinBody",
        operation_id = "SignInBody",
        tags = ["Authentication"],
    }]
    async fn sign_in_body(
        rqctx: RequestContext<Self::Context>,
        body: JsonBody<SignInBody>,
    ) -> Result<HttpResponseHeaders<HttpResponseOk<String>, SetCookieHeader>, ProblemDetails>;

    /// Completes sign-in with a TOTP code
    ///
    /// Send the pre-MFA token of `/signinBody` as `Authorization: Bearer
    /// <token>` (or keep its cookie) and the current six-digit code as the
    /// body, as a bare number or a string. Answers the MFA token as a JSON
    /// string. Each code is accepted once; five wrong codes revoke the pre-MFA
    /// token.
    #[endpoint {
        method = POST,
        path = "/signin2fa",
        operation_id = "SignIn2fa",
        tags = ["Authentication"],
    }]
    async fn sign_in_2fa(
        rqctx: RequestContext<Self::Context>,
        body: JsonBody<MfaCode>,
    ) -> Result<HttpResponseOk<String>, ProblemDetails>;

    /// Create and start an activity session from a request object.
    ///
    /// If `startDateTimeUtc` is empty the session starts now (status Active);
    /// a start in the future makes it Pending until then. Refused (400) when
    /// `endDateTimeUtc` is not after the start, when the session would last
    /// longer than the server's maximum (480 minutes by default), when a
    /// date falls outside the years 1970 to 9999, or when a text property is
    /// longer than 4096 characters or holds a control character other than
    /// tab, line feed and carriage return.
    #[endpoint {
        method = POST,
        path = "/api/v1/ActivitySession",
        operation_id = "CreateAsync",
        tags = ["ActivitySession"],
    }]
    async fn create_async(
        rqctx: RequestContext<Self::Context>,
        body: JsonBody<ActivitySessionRequest>,
    ) -> Result<Located<HttpResponseCreated<ActivitySession>>, ProblemDetails>;

    /// Get all sessions by category, if no category given, then return all.
    ///
    /// Newest first, bounded by `skip` and `take` (an extension of this
    /// server: NPS answers every session).
    #[endpoint {
        method = GET,
        path = "/api/v1/ActivitySession",
        operation_id = "GetAllActivitySessionsByStatusAsync",
        tags = ["ActivitySession"],
    }]
    async fn get_all_activity_sessions_by_status_async(
        rqctx: RequestContext<Self::Context>,
        query: QueryParams<ListSessionsQuery>,
    ) -> Result<HttpResponseOk<Vec<ActivitySession>>, ProblemDetails>;

    /// Gets a session by id
    #[endpoint {
        method = GET,
        path = "/api/v1/ActivitySession/{sessionId}",
        operation_id = "GetByIdAsync",
        tags = ["ActivitySession"],
    }]
    async fn get_by_id_async(
        rqctx: RequestContext<Self::Context>,
        path: PathParams<SessionIdPath>,
    ) -> Result<HttpResponseOk<ActivitySession>, ProblemDetails>;

    /// Ends an activity session ASAP.
    ///
    /// A Pending session is Cancelled at once. An Active one becomes
    /// Cancelling: the request is on disk before this answer is sent, and the
    /// end actions run now, then the session reads Cancelled (or Failed, with
    /// the reason in its log). Ending a session that is Failed because an
    /// end action gave up runs its end actions again (a retry of the
    /// revocation): it becomes Cancelling, then reads Cancelled (Complete if
    /// it was its scheduled end), or Failed again. Ending any other ended
    /// session (a failed start ran its end actions to the end) or a
    /// Cancelling one changes nothing. The answer is the session as it
    /// stands, with `Location` pointing at it: poll that until the status is
    /// terminal.
    #[endpoint {
        method = DELETE,
        path = "/api/v1/ActivitySession/{sessionId}",
        operation_id = "DeleteAsync",
        tags = ["ActivitySession"],
    }]
    async fn delete_async(
        rqctx: RequestContext<Self::Context>,
        path: PathParams<SessionIdPath>,
    ) -> Result<Located<HttpResponseAccepted<ActivitySession>>, ProblemDetails>;

    /// Extend the given activity session by some number of minutes
    ///
    /// The body is the number of minutes, from 1 to the server's limit for
    /// one extension (240 by default). Refused (400) when the session does
    /// not allow extension, or the count or minutes limit would be passed;
    /// 409 when the session has already ended.
    #[endpoint {
        method = POST,
        path = "/api/v1/ActivitySession/{sessionId}/Extend",
        operation_id = "ExtendAsync",
        tags = ["ActivitySession"],
    }]
    async fn extend_async(
        rqctx: RequestContext<Self::Context>,
        path: PathParams<SessionIdPath>,
        body: JsonBody<i32>,
    ) -> Result<HttpResponseOk<ActivitySession>, ProblemDetails>;

    /// Gets logs for session by id
    ///
    /// The session's audit trail: every state change (what, who, from where,
    /// when) and every action's outcome.
    #[endpoint {
        method = GET,
        path = "/api/v1/ActivitySession/{sessionId}/Log",
        operation_id = "GetSessionLogsAsync",
        tags = ["ActivitySession"],
    }]
    async fn get_session_logs_async(
        rqctx: RequestContext<Self::Context>,
        path: PathParams<SessionIdPath>,
        query: QueryParams<SessionLogQuery>,
    ) -> Result<HttpResponseOk<ActionLogCollection>, ProblemDetails>;

    /// No-op for load-balancer checks and the benchmark baseline (unpublished).
    #[endpoint {
        method = GET,
        path = "/ping",
        operation_id = "Ping",
        tags = ["Authentication"],
        unpublished = true,
    }]
    async fn ping(
        rqctx: RequestContext<Self::Context>,
    ) -> Result<HttpResponseOk<String>, ProblemDetails>;
}
