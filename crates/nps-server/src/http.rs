//! HTTP handlers: the implementation of the `NpsApi` trait. Each handler
//! enforces its operation's auth policy (looked up by operationId in the
//! table of `nps_api::policy`), translates the request into a call of the
//! service, and the result into a response; failures become ProblemDetails.

use std::sync::Arc;

use dropshot::{
    HttpResponseAccepted, HttpResponseCreated, HttpResponseHeaders, HttpResponseOk, RequestContext,
};
use nps_api::policy::policy_for;
use nps_api::{
    session_location, ActionLogCollection, ActivitySession, ActivitySessionRequest, JsonBody,
    ListSessionsQuery, Located, LocationHeader, MfaCode, NpsApi, PathParams, ProblemDetails,
    QueryParams, SessionIdPath, SessionLogQuery, SetCookieHeader, SignInBody,
};
use slog::error;

use crate::auth::{self, Auth, AuthError, Caller, SIGN_IN_COOKIE};
use crate::sessions::{Failure, Sessions};
use crate::store::StoreError;

/// What every handler can reach.
pub struct AppState {
    pub auth: Auth,
    pub sessions: Sessions,
    /// Whether the server speaks HTTPS (the sign-in cookie is then `Secure`).
    pub tls: bool,
    pub pre_mfa_token_minutes: u32,
}

type Rq = RequestContext<Arc<AppState>>;

fn peer(rqctx: &Rq) -> String {
    rqctx.request.remote_addr().ip().to_string()
}

/// A storage failure as the client sees it: 503 when worth retrying, else a
/// 500 that names only the request id (the cause goes to the log).
fn store_problem(rqctx: &Rq, e: StoreError) -> ProblemDetails {
    let problem = match e {
        StoreError::NotFound => ProblemDetails::not_found("No such resource."),
        StoreError::Conflict(m) => ProblemDetails::conflict(capitalize(&m)),
        StoreError::Constraint(m) => {
            error!(rqctx.log, "a database constraint refused the change"; "error" => m);
            ProblemDetails::conflict(
                "The change conflicts with what is stored; nothing was changed.",
            )
        }
        StoreError::Refused(m) => ProblemDetails::bad_request(capitalize(&m)),
        StoreError::Unavailable(m) => {
            error!(rqctx.log, "storage unavailable"; "error" => m);
            ProblemDetails::service_unavailable(
                "The database cannot take this request now (it may be read-only or full). Nothing was changed; retry later.",
            )
        }
        StoreError::Internal(m) => {
            error!(rqctx.log, "storage failure"; "error" => m);
            ProblemDetails::internal(&rqctx.request_id)
        }
    };
    problem.with_request_id(&rqctx.request_id)
}

/// A request's path, query or body as read before the handler ran, asked
/// for once the caller is known (see `nps_api::extract`): a failure names
/// its request like every other.
fn input<T>(rqctx: &Rq, read: Result<T, ProblemDetails>) -> Result<T, ProblemDetails> {
    read.map_err(|p| p.with_request_id(&rqctx.request_id))
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str() + ".",
        None => String::new(),
    }
}

fn failure(rqctx: &Rq, f: Failure) -> ProblemDetails {
    match f {
        // Messages start with the field they name, spelled as on the wire.
        Failure::BadRequest(m) => ProblemDetails::bad_request(m).with_request_id(&rqctx.request_id),
        Failure::NotFound(id) => ProblemDetails::not_found(format!(
            "No activity session {id} exists, or you may not see it."
        ))
        .with_request_id(&rqctx.request_id),
        Failure::Store(e) => store_problem(rqctx, e),
    }
}

fn auth_problem(rqctx: &Rq, e: AuthError) -> ProblemDetails {
    match e {
        AuthError::Unauthorized(m) => ProblemDetails::unauthorized(m),
        AuthError::Forbidden(m) => ProblemDetails::forbidden(m),
        AuthError::Throttled(m) => ProblemDetails::too_many_requests(m),
        AuthError::Store(e) => return store_problem(rqctx, e),
    }
    .with_request_id(&rqctx.request_id)
}

/// Enforces this request's operation policy; answers the signed-in caller.
async fn caller(rqctx: &Rq) -> Result<Caller, ProblemDetails> {
    let operation = &rqctx.endpoint.operation_id;
    let Some(policy) = policy_for(operation) else {
        error!(rqctx.log, "operation has no auth policy"; "operation" => operation);
        return Err(ProblemDetails::internal(&rqctx.request_id));
    };
    let state = rqctx.context();
    match state
        .auth
        .authorize(policy, auth::bearer(rqctx.request.headers()))
        .await
    {
        Ok(Some(caller)) => Ok(caller),
        Ok(None) => {
            error!(rqctx.log, "handler needs a caller but its policy names none"; "operation" => operation);
            Err(ProblemDetails::internal(&rqctx.request_id))
        }
        Err(e) => Err(auth_problem(rqctx, e)),
    }
}

fn located<T>(id: uuid::Uuid, response: T) -> Located<T>
where
    T: dropshot::HttpCodedResponse,
{
    HttpResponseHeaders::new(
        response,
        LocationHeader {
            location: session_location(id),
        },
    )
}

/// The implementation of the API trait.
pub enum NpsServerImpl {}

impl NpsApi for NpsServerImpl {
    type Context = Arc<AppState>;

    async fn sign_in_body(
        rqctx: Rq,
        body: JsonBody<SignInBody>,
    ) -> Result<HttpResponseHeaders<HttpResponseOk<String>, SetCookieHeader>, ProblemDetails> {
        let body = input(&rqctx, body.into_inner())?;
        let state = rqctx.context();
        let token = state
            .auth
            .sign_in(&body.login, &body.password, &peer(&rqctx))
            .await
            .map_err(|e| auth_problem(&rqctx, e))?;
        let cookie = format!(
            "{SIGN_IN_COOKIE}={token}; Path=/signin2fa; Max-Age={}; HttpOnly; SameSite=Strict{}",
            state.pre_mfa_token_minutes * 60,
            if state.tls { "; Secure" } else { "" }
        );
        Ok(HttpResponseHeaders::new(
            HttpResponseOk(token),
            SetCookieHeader { set_cookie: cookie },
        ))
    }

    async fn sign_in_2fa(
        rqctx: Rq,
        body: JsonBody<MfaCode>,
    ) -> Result<HttpResponseOk<String>, ProblemDetails> {
        let headers = rqctx.request.headers();
        let auth = &rqctx.context().auth;
        let pre = auth
            .pre_mfa(auth::bearer(headers).or_else(|| auth::sign_in_cookie(headers)))
            .await
            .map_err(|e| auth_problem(&rqctx, e))?;
        let code = input(&rqctx, body.into_inner())?.digits();
        let token = auth
            .sign_in_2fa(pre, &code, &peer(&rqctx))
            .await
            .map_err(|e| auth_problem(&rqctx, e))?;
        Ok(HttpResponseOk(token))
    }

    async fn create_async(
        rqctx: Rq,
        body: JsonBody<ActivitySessionRequest>,
    ) -> Result<Located<HttpResponseCreated<ActivitySession>>, ProblemDetails> {
        let caller = caller(&rqctx).await?;
        let request = input(&rqctx, body.into_inner())?;
        let session = rqctx
            .context()
            .sessions
            .create(&caller, &peer(&rqctx), request)
            .await
            .map_err(|f| failure(&rqctx, f))?;
        Ok(located(session.id, HttpResponseCreated(session)))
    }

    async fn get_all_activity_sessions_by_status_async(
        rqctx: Rq,
        query: QueryParams<ListSessionsQuery>,
    ) -> Result<HttpResponseOk<Vec<ActivitySession>>, ProblemDetails> {
        caller(&rqctx).await?;
        let query = input(&rqctx, query.into_inner())?;
        let sessions = rqctx
            .context()
            .sessions
            .list(query)
            .await
            .map_err(|f| failure(&rqctx, f))?;
        Ok(HttpResponseOk(sessions))
    }

    async fn get_by_id_async(
        rqctx: Rq,
        path: PathParams<SessionIdPath>,
    ) -> Result<HttpResponseOk<ActivitySession>, ProblemDetails> {
        let caller = caller(&rqctx).await?;
        let id = input(&rqctx, path.into_inner())?.session_id;
        let session = rqctx
            .context()
            .sessions
            .get(&caller, id)
            .await
            .map_err(|f| failure(&rqctx, f))?;
        Ok(HttpResponseOk(session))
    }

    async fn delete_async(
        rqctx: Rq,
        path: PathParams<SessionIdPath>,
    ) -> Result<Located<HttpResponseAccepted<ActivitySession>>, ProblemDetails> {
        let caller = caller(&rqctx).await?;
        let id = input(&rqctx, path.into_inner())?.session_id;
        let session = rqctx
            .context()
            .sessions
            .end(&caller, &peer(&rqctx), id)
            .await
            .map_err(|f| failure(&rqctx, f))?;
        Ok(located(id, HttpResponseAccepted(session)))
    }

    async fn extend_async(
        rqctx: Rq,
        path: PathParams<SessionIdPath>,
        body: JsonBody<i32>,
    ) -> Result<HttpResponseOk<ActivitySession>, ProblemDetails> {
        let caller = caller(&rqctx).await?;
        let id = input(&rqctx, path.into_inner())?.session_id;
        let minutes = input(&rqctx, body.into_inner())?;
        let session = rqctx
            .context()
            .sessions
            .extend(&caller, &peer(&rqctx), id, minutes)
            .await
            .map_err(|f| failure(&rqctx, f))?;
        Ok(HttpResponseOk(session))
    }

    async fn get_session_logs_async(
        rqctx: Rq,
        path: PathParams<SessionIdPath>,
        query: QueryParams<SessionLogQuery>,
    ) -> Result<HttpResponseOk<ActionLogCollection>, ProblemDetails> {
        let caller = caller(&rqctx).await?;
        let id = input(&rqctx, path.into_inner())?.session_id;
        let query = input(&rqctx, query.into_inner())?;
        let logs = rqctx
            .context()
            .sessions
            .logs(&caller, id, query)
            .await
            .map_err(|f| failure(&rqctx, f))?;
        Ok(HttpResponseOk(logs))
    }

    async fn ping(_rqctx: Rq) -> Result<HttpResponseOk<String>, ProblemDetails> {
        Ok(HttpResponseOk("pong".to_string()))
    }
}
