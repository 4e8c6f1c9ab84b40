//! Checks a document beyond what dropshot guarantees: it parses as OpenAPI 3.0,
//! and every operation has an operationId, a summary and exactly one declared tag.

use openapiv3::{OpenAPI, ReferenceOr};

pub fn validate(spec_text: &str, what: &str) -> Result<(), String> {
    let spec: OpenAPI = serde_json::from_str(spec_text)
        .map_err(|e| format!("{what} is not a valid OpenAPI 3.0 document: {e}"))?;
    let declared: Vec<&str> = spec.tags.iter().map(|t| t.name.as_str()).collect();
    let mut problems = Vec::new();
    let operation_ids: Vec<&str> = spec
        .operations()
        .filter_map(|(_, _, op)| op.operation_id.as_deref())
        .collect();
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
            // Every link must lead to an operation that exists.
            for (status, response) in op.responses.responses.iter() {
                let ReferenceOr::Item(response) = response else {
                    continue;
                };
                for (link_name, link) in response.links.iter() {
                    if let ReferenceOr::Item(link) = link {
                        if let openapiv3::LinkOperation::OperationId(target) = &link.operation {
                            if !operation_ids.contains(&target.as_str()) {
                                problems.push(format!(
                                    "{name}: link {link_name} of response {status} leads to operationId {target}, which no operation has"
                                ));
                            }
                        }
                    }
                }
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
