//! Builds the OpenAPI document (`openapi.json`) from the trait and the policy
//! table. Dropshot writes paths and schemas; this module adds what dropshot
//! does not know: the bearer security scheme and each operation's `security`,
//! the 401/403/404 answers, the reference pages' "(Auth policies: ...)" summary
//! suffix, and OpenAPI links from an operation's output to the operations it
//! feeds (used by Schemathesis' stateful tests and by readers).

use serde_json::{json, Map, Value};

use crate::policy::{policy_for, AuthPolicy};

/// `info.title` of the document.
pub const TITLE: &str = "Netwrix Privilege Secure ActivitySession API";
/// `info.version` of the document: the NPS version whose wire contract it follows.
pub const VERSION: &str = "4.2.0";
/// Name of the bearer scheme in `components.securitySchemes`.
pub const BEARER_SCHEME: &str = "Bearer";

const PROBLEM_REF: &str = "#/components/schemas/ProblemDetails";

/// The whole document, as the checked-in `openapi.json` must read.
pub fn openapi_document() -> Result<Value, String> {
    let description = crate::nps_api_mod::stub_api_description()
        .map_err(|e| format!("the NpsApi trait does not describe a valid API: {e}"))?;
    let mut doc = description
        .openapi(TITLE, semver_version())
        .json()
        .map_err(|e| format!("dropshot could not write the document: {e}"))?;
    apply_policies(&mut doc)?;
    add_links(&mut doc)?;
    Ok(doc)
}

/// The document as text: pretty JSON, keys in a stable order, a final newline.
pub fn render(doc: &Value) -> String {
    let mut text = serde_json::to_string_pretty(&sorted(doc)).expect("a JSON value serializes");
    text.push('\n');
    text
}

fn semver_version() -> semver::Version {
    VERSION.parse().expect("VERSION is semver")
}

/// Sorts every object's keys, so the text does not depend on serde_json's
/// `preserve_order` feature being on or off in a given build.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": PROBLEM_REF } } }
    })
}

/// Writes the policy table into the document.
fn apply_policies(doc: &mut Value) -> Result<(), String> {
    let paths = doc
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .ok_or("the document has no paths")?;
    let mut any_bearer = false;
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            let id = op
                .get("operationId")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{} {path} has no operationId", method.to_uppercase()))?
                .to_string();
            let policy = policy_for(&id).ok_or_else(|| {
                format!(
                    "{} {path} ({id}) has no auth policy: add it to OPERATION_POLICIES in crates/nps-api/src/policy.rs",
                    method.to_uppercase()
                )
            })?;
            if let Some(suffix) = policy.summary_suffix() {
                let summary = op
                    .get("summary")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                op.insert(
                    "summary".into(),
                    Value::String(format!("{summary} {suffix}")),
                );
            }
            let responses = op
                .entry("responses")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .ok_or_else(|| format!("{id}: responses is not an object"))?;
            match policy {
                AuthPolicy::Anonymous => {
                    if id == "SignInBody" {
                        responses.insert(
                            "401".into(),
                            problem_response("Unauthorized: wrong login or password"),
                        );
                        responses.insert(
                            "429".into(),
                            problem_response("Too Many Requests: too many failed sign-ins"),
                        );
                    }
                }
                AuthPolicy::PreMfaToken => {
                    responses.insert(
                        "401".into(),
                        problem_response(
                            "Unauthorized: no valid pre-MFA token, or a wrong or reused code",
                        ),
                    );
                    responses.insert(
                        "429".into(),
                        problem_response("Too Many Requests: too many wrong codes"),
                    );
                }
                AuthPolicy::MfaRequired { role } => {
                    any_bearer = true;
                    op.insert("security".into(), json!([{ BEARER_SCHEME: [] }]));
                    let responses = op["responses"].as_object_mut().expect("checked above");
                    responses.insert(
                        "401".into(),
                        problem_response(
                            "Unauthorized: no token, or one that is malformed, expired, revoked or not yet MFA-elevated",
                        ),
                    );
                    if role.is_some() {
                        responses.insert(
                            "403".into(),
                            problem_response("Forbidden: the caller lacks the role"),
                        );
                    }
                    if path.contains("{sessionId}") {
                        responses.insert(
                            "404".into(),
                            problem_response(
                                "Not Found: no such session, or one the caller may not see",
                            ),
                        );
                    }
                }
            }
        }
    }
    if any_bearer {
        let components = doc
            .as_object_mut()
            .expect("the document is an object")
            .entry("components")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or("components is not an object")?;
        components.insert(
            "securitySchemes".into(),
            json!({
                BEARER_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The MFA token that POST /signin2fa answers."
                }
            }),
        );
    }
    Ok(())
}

/// Links from a session-producing answer to the operations taking its id.
fn add_links(doc: &mut Value) -> Result<(), String> {
    let session_links = |from: &str| {
        let mut links = Map::new();
        for target in [
            "GetByIdAsync",
            "DeleteAsync",
            "ExtendAsync",
            "GetSessionLogsAsync",
        ] {
            links.insert(
                target.to_string(),
                json!({
                    "operationId": target,
                    "parameters": { "sessionId": "$response.body#/id" },
                    "description": format!("The `id` of the session {from} answers is the `sessionId` of {target}."),
                }),
            );
        }
        Value::Object(links)
    };
    for (id, status) in [
        ("CreateAsync", "201"),
        ("GetByIdAsync", "200"),
        ("ExtendAsync", "200"),
        ("DeleteAsync", "202"),
    ] {
        let response = find_operation_mut(doc, id)
            .and_then(|op| op.get_mut("responses"))
            .and_then(|r| r.get_mut(status))
            .and_then(Value::as_object_mut)
            .ok_or_else(|| {
                format!("links: {id} has no response {status} (renamed? update add_links in crates/nps-api/src/document.rs)")
            })?;
        response.insert("links".into(), session_links(id));
    }
    Ok(())
}

/// The operation object with this operationId.
pub fn find_operation_mut<'a>(doc: &'a mut Value, operation_id: &str) -> Option<&'a mut Value> {
    doc.get_mut("paths")?
        .as_object_mut()?
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .find(|op| op.get("operationId").and_then(Value::as_str) == Some(operation_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_a_policy_and_delete_answers_202() {
        let doc = openapi_document().expect("document builds");
        let delete = &doc["paths"]["/api/v1/ActivitySession/{sessionId}"]["delete"];
        assert_eq!(delete["operationId"], "DeleteAsync");
        assert!(delete["responses"]["202"].is_object());
        assert_eq!(delete["security"], json!([{ "Bearer": [] }]));
        assert_eq!(
            delete["summary"],
            "Ends an activity session ASAP. (Auth policies: MfaRequired)"
        );
        let list = &doc["paths"]["/api/v1/ActivitySession"]["get"];
        assert!(list["responses"]["403"].is_object());
        // The unpublished ping is not in the document.
        assert!(doc["paths"].get("/ping").is_none());
    }

    #[test]
    fn rendering_is_deterministic() {
        let a = render(&openapi_document().unwrap());
        let b = render(&openapi_document().unwrap());
        assert_eq!(a, b);
    }
}
