//! Request extractors that read exactly what the document promises and, when
//! a request is wrong, name the part that is.
//!
//! They stand in for dropshot's `TypedBody`, `Query` and `Path` and describe
//! themselves to the document exactly as those do (their `metadata` is
//! dropshot's), so `openapi.json` does not change. What differs is reading:
//!
//! - [`JsonBody`] refuses anything after the JSON value (dropshot stops at the
//!   end of the first value and ignores the rest, so `6 garbage` read as `6`),
//!   and answers 415 Unsupported Media Type for a body that is not
//!   `application/json` (dropshot answers 400). A type may also read a body
//!   that is not quite JSON ([`FromJsonBody`]): the MFA code PowerShell
//!   sends bare, `012345`.
//! - [`QueryParams`] names the bad parameter: `take: invalid digit found in
//!   string` (dropshot: `invalid digit found in string`).
//! - [`PathParams`] names the bad path parameter: `sessionId: UUID parsing
//!   failed ...`.
//!
//! Every error is an [`HttpError`] that becomes ProblemDetails through
//! `From<HttpError>`, like dropshot's own. It is kept, not answered, by the
//! extractor, and `into_inner` answers it: dropshot runs extractors before
//! the handler, and a handler checks the caller's token first, so that a
//! malformed request without a valid token is a 401, as ASP.NET (which
//! authorizes before it binds) answers it, not a 400, 413 or 415.

use async_trait::async_trait;
use dropshot::{
    ApiEndpointBodyContentType, ClientErrorStatusCode, ExclusiveExtractor, ExtractorMetadata,
    HttpError, Path, Query, RequestContext, ServerContext, SharedExtractor, TypedBody, UntypedBody,
};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::error::ProblemDetails;

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct JsonBody<T>(Result<T, HttpError>);

impl<T> JsonBody<T> {
    /// The body, or why it could not be read (once the caller is known).
    pub fn into_inner(self) -> Result<T, ProblemDetails> {
        self.0.map_err(ProblemDetails::from)
    }
}

impl<T> From<T> for JsonBody<T> {
    fn from(value: T) -> Self {
        JsonBody(Ok(value))
    }
}

/// Parses a whole body as JSON: trailing characters are an error, and so is
/// a value of the wrong shape, named by its path (`customFields[0].name`).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// How a body type is read: as strict JSON ([`parse_json`]) unless the
/// type says otherwise.
pub trait FromJsonBody: DeserializeOwned {
    fn from_json_body(body: &[u8]) -> Result<Self, String> {
        parse_json(body)
    }
}

impl FromJsonBody for i32 {}

/// Reads a JSON body (see [`JsonBody`]).
async fn read_json<T: FromJsonBody, Context: ServerContext>(
    rqctx: &RequestContext<Context>,
    request: http::Request<dropshot::Body>,
) -> Result<T, HttpError> {
    // No Content-Type means JSON, as dropshot and ASP.NET read it.
    if let Some(value) = request.headers().get(http::header::CONTENT_TYPE) {
        let text = value.to_str().unwrap_or("");
        let mime = text.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/json") {
            return Err(HttpError::for_client_error(
                None,
                ClientErrorStatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("the body must be JSON: send Content-Type: application/json, not {text:?}"),
            ));
        }
    }
    // Reading through UntypedBody keeps dropshot's size limit (413).
    let body = UntypedBody::from_request(rqctx, request).await?;
    T::from_json_body(body.as_bytes())
        .map_err(|e| HttpError::for_bad_request(None, format!("unable to parse JSON body: {e}")))
}

#[async_trait]
impl<T> ExclusiveExtractor for JsonBody<T>
where
    T: JsonSchema + FromJsonBody + Send + Sync + 'static,
{
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
        request: http::Request<dropshot::Body>,
    ) -> Result<Self, HttpError> {
        Ok(JsonBody(read_json(rqctx, request).await))
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <TypedBody<T> as ExclusiveExtractor>::metadata(content_type)
    }
}

/// Query parameters of type `T`.
#[derive(Debug)]
pub struct QueryParams<T>(Result<T, HttpError>);

impl<T> QueryParams<T> {
    /// The parameters, or why they could not be read (once the caller is known).
    pub fn into_inner(self) -> Result<T, ProblemDetails> {
        self.0.map_err(ProblemDetails::from)
    }
}

/// Parses a query string, its parameter names matched without regard to
/// case as ASP.NET does (`?Status=historical` is a filter, not an unknown
/// parameter ignored); the error names the parameter (`take: ...`).
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, String> {
    let de = crate::types::IgnoreCase(serde_urlencoded::Deserializer::new(form_urlencoded::parse(
        query.as_bytes(),
    )));
    serde_path_to_error::deserialize(de).map_err(|e| e.to_string())
}

#[async_trait]
impl<T> SharedExtractor for QueryParams<T>
where
    T: JsonSchema + DeserializeOwned + Send + Sync + 'static,
{
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, HttpError> {
        Ok(QueryParams(
            parse_query(rqctx.request.uri().query().unwrap_or("")).map_err(|e| {
                HttpError::for_bad_request(None, format!("unable to parse query string: {e}"))
            }),
        ))
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <Query<T> as SharedExtractor>::metadata(content_type)
    }
}

/// Path parameters of type `T`.
#[derive(Debug)]
pub struct PathParams<T>(Result<T, HttpError>);

impl<T> PathParams<T> {
    /// The path's parameters, or why they could not be read (once the
    /// caller is known).
    pub fn into_inner(self) -> Result<T, ProblemDetails> {
        self.0.map_err(ProblemDetails::from)
    }
}

#[async_trait]
impl<T> SharedExtractor for PathParams<T>
where
    T: JsonSchema + DeserializeOwned + Send + Sync + 'static,
{
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, HttpError> {
        Ok(PathParams(
            match <Path<T> as SharedExtractor>::from_request(rqctx).await {
                Ok(path) => Ok(path.into_inner()),
                Err(mut e) => {
                    // Dropshot does not say which parameter failed; with one
                    // parameter in the path (every path of this API) it is that one.
                    let mut names = rqctx.endpoint.variables.keys();
                    if let (Some(name), None) = (names.next(), names.next()) {
                        if let Some(rest) = e
                            .external_message
                            .strip_prefix("bad parameter in URL path: ")
                        {
                            e.external_message =
                                format!("bad parameter in URL path: {name}: {rest}");
                        }
                    }
                    Err(e)
                }
            },
        ))
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <Path<T> as SharedExtractor>::metadata(content_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActivitySessionRequest, ListSessionsQuery};

    #[test]
    fn trailing_characters_after_the_value_are_refused() {
        assert_eq!(parse_json::<i32>(b" 6 ").unwrap(), 6);
        let e = parse_json::<i32>(b"6 garbage").unwrap_err();
        assert!(e.contains("trailing characters"), "{e}");
        assert!(parse_json::<ActivitySessionRequest>(b"{} {}").is_err());
    }

    #[test]
    fn body_errors_name_the_field() {
        let e = parse_json::<ActivitySessionRequest>(br#"{"activityId": 5}"#).unwrap_err();
        assert!(e.starts_with("activityId: "), "{e}");
        let e = parse_json::<ActivitySessionRequest>(br#"{"customFields": [{"name": 1}]}"#)
            .unwrap_err();
        assert!(e.starts_with("customFields[0].name: "), "{e}");
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let q: ListSessionsQuery = parse_query("take=5&unknown=1").unwrap();
        assert_eq!(q.take, Some(5));
        let e = parse_query::<ListSessionsQuery>("skip=1&take=abc").unwrap_err();
        assert!(e.starts_with("take: "), "{e}");
        let e = parse_query::<ListSessionsQuery>("status=bogus").unwrap_err();
        assert!(e.starts_with("status: "), "{e}");
    }

    #[test]
    fn query_names_and_the_status_are_read_without_case() {
        let id = "11111111-1111-1111-1111-111111111111";
        let q: ListSessionsQuery =
            parse_query(&format!("Status=Historical&TARGETID={id}&Take=1&skip=2")).unwrap();
        assert_eq!(q.status, Some(crate::types::SessionCategory::Historical));
        assert_eq!(q.target_id.map(|t| t.to_string()).as_deref(), Some(id));
        assert_eq!((q.take, q.skip), (Some(1), Some(2)));
        let e = parse_query::<ListSessionsQuery>("Take=abc").unwrap_err();
        assert!(e.starts_with("take: "), "{e}");
        let e = parse_query::<ListSessionsQuery>("status=active&Status=historical").unwrap_err();
        assert!(e.contains("duplicate field"), "{e}");
    }
}
