//! Checks a document beyond what dropshot guarantees: it parses as OpenAPI 3.0,
//! and every operation has an operationId, a summary and exactly one declared tag.

use openapiv3::{OpenAPI, ReferenceOr};

pub fn validate(spec_text: &str, what: &str) -> Result<(), String> {
    let spec: OpenAPI = serde_json::from_str(spec_text)
        .map_err(|e| format!("{what} is not a valid OpenAPI 3.0 document: {e}"))?;
    let declared: Vec<&str> = spec.tags.iter().map(|t| t.name.as_str()).collect();
    let mut problems = Vec::new();
    for (path, item) in spec.paths.paths.iter() {
        let ReferenceOr::Item(item) = item else {
            problems.push(format!("{path}: a $ref path item is not supported"));
            continue;
        };
        for (method, op) in item.iter() {
            let name = format!("{} {path}", method.to_uppercase());
            match &op.operation_id {
                None => problems.push(format!("{name}: no operationId")),
                Some(id) if id.is_empty() => problems.push(format!("{name}: empty operationId")),
                Some(_) => {}
            }
            if op.summary.as_deref().is_none_or(str::is_empty) {
                problems.push(format!("{name}: no summary"));
            }
            match op.tags.as_slice() {
                [tag] if declared.contains(&tag.as_str()) => {}
                [tag] => problems.push(format!("{name}: tag {tag} is not declared in tags")),
                tags => problems.push(format!(
                    "{name}: has {} tags, needs exactly one",
                    tags.len()
                )),
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{what} is not valid:\n  {}", problems.join("\n  ")))
    }
}
