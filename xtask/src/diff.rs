//! Says how two documents (or two client files) differ, in the terms a spec
//! maintainer reads: operations, responses, parameters, schemas and
//! properties first, then a unified text diff.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

/// At most this many lines of text diff are printed.
const MAX_DIFF_LINES: usize = 120;

pub fn describe_spec_drift(path: &Path, on_disk: &str, expected: &str) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let mut out = format!("{} disagrees with nps-api:\n", path.display());
    match serde_json::from_str::<Value>(on_disk) {
        Err(e) => out.push_str(&format!("  {file} is not JSON: {e}\n")),
        Ok(disk) => {
            let expected: Value = serde_json::from_str(expected).expect("generated JSON parses");
            let findings = semantic_differences(&disk, &expected, &file);
            if findings.is_empty() {
                out.push_str("  (same content, different formatting or key order)\n");
            }
            for f in findings {
                out.push_str(&format!("  {f}\n"));
            }
        }
    }
    out.push_str(&text_diff(
        on_disk,
        expected,
        &format!("{} (checked in)", path.display()),
        "generated from nps-api",
    ));
    out
}

pub fn describe_client_drift(path: &Path, on_disk: &str, expected: &str) -> String {
    let mut out = format!(
        "{} differs from what progenitor generates from the contract \
         (edited by hand, or generated from an older openapi.json):\n",
        path.display()
    );
    out.push_str(&text_diff(
        on_disk,
        expected,
        &format!("{} (checked in)", path.display()),
        "generated",
    ));
    out
}

fn text_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::from("\ntext diff:\n");
    for line in lines.iter().take(MAX_DIFF_LINES) {
        out.push_str(line);
        out.push('\n');
    }
    if lines.len() > MAX_DIFF_LINES {
        out.push_str(&format!(
            "... {} more lines of diff\n",
            lines.len() - MAX_DIFF_LINES
        ));
    }
    out
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Differences between the checked-in document (`disk`) and the one nps-api
/// generates (`api`), one sentence each.
pub fn semantic_differences(disk: &Value, api: &Value, file: &str) -> Vec<String> {
    let mut out = Vec::new();
    let here = |side: bool| if side { file } else { "nps-api" };

    // Operations.
    let ops = |doc: &Value| -> BTreeSet<(String, String)> {
        let mut set = BTreeSet::new();
        if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
            for (path, item) in paths {
                for m in METHODS {
                    if item.get(m).is_some() {
                        set.insert((path.clone(), m.to_string()));
                    }
                }
            }
        }
        set
    };
    let (disk_ops, api_ops) = (ops(disk), ops(api));
    // What a path item holds besides its operations (path-level parameters,
    // servers, ...): dropshot writes none, so any is drift.
    for path in keys_of(&disk["paths"]).union(&keys_of(&api["paths"])) {
        let (d, a) = (&disk["paths"][path], &api["paths"][path]);
        for key in keys_of(d).union(&keys_of(a)) {
            if !METHODS.contains(&key.as_str()) {
                compare_field(path, key, d.get(key), a.get(key), file, &mut out);
            }
        }
    }
    for (path, method) in disk_ops.union(&api_ops) {
        let name = format!("{} {path}", method.to_uppercase());
        let d = &disk["paths"][path][method];
        let a = &api["paths"][path][method];
        match (d.is_null(), a.is_null()) {
            (false, true) => out.push(format!(
                "{name}: operation in {}, not in {}",
                here(true),
                here(false)
            )),
            (true, false) => out.push(format!(
                "{name}: operation in {}, missing from {}",
                here(false),
                here(true)
            )),
            _ => compare_operation(&name, d, a, file, &mut out),
        }
    }

    // Schemas.
    let schemas = |doc: &Value| -> BTreeSet<String> {
        doc["components"]["schemas"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let (disk_schemas, api_schemas) = (schemas(disk), schemas(api));
    for name in disk_schemas.union(&api_schemas) {
        let d = &disk["components"]["schemas"][name];
        let a = &api["components"]["schemas"][name];
        match (d.is_null(), a.is_null()) {
            (false, true) => out.push(format!("schema {name}: in {file}, not in nps-api")),
            (true, false) => out.push(format!("schema {name}: in nps-api, missing from {file}")),
            _ => compare_schema(&format!("schema {name}"), d, a, file, &mut out),
        }
    }

    // Everything else at the top level.
    for key in keys_of(disk).union(&keys_of(api)) {
        if key == "paths" {
            continue;
        }
        if key == "components" {
            for sub in keys_of(&disk[key]).union(&keys_of(&api[key])) {
                if sub != "schemas" && disk[key][sub] != api[key][sub] {
                    out.push(format!(
                        "components.{sub} differs{}",
                        at(&disk[key][sub], &api[key][sub])
                    ));
                }
            }
            continue;
        }
        if disk[key] != api[key] {
            out.push(format!("{key} differs{}", at(&disk[key], &api[key])));
        }
    }
    // Whatever the checks above do not classify is still named, so that a
    // difference never reads as "same content".
    if out.is_empty() && disk != api {
        out.push(format!("the document differs{}", at(disk, api)));
    }
    out
}

/// One member `key` of `owner` (an operation or a path item), present or not
/// on either side.
fn compare_field(
    owner: &str,
    key: &str,
    d: Option<&Value>,
    a: Option<&Value>,
    file: &str,
    out: &mut Vec<String>,
) {
    match (d, a) {
        (Some(d), Some(a)) if d != a => {
            out.push(format!("{owner}: {key} differs{}", at(d, a)));
        }
        (Some(d), None) => out.push(format!(
            "{owner}: {key} in {file}, not in nps-api ({file} has {})",
            short(&Some(d.clone()))
        )),
        (None, Some(a)) => out.push(format!(
            "{owner}: {key} in nps-api, missing from {file} (nps-api has {})",
            short(&Some(a.clone()))
        )),
        _ => {}
    }
}

fn keys_of(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn compare_operation(name: &str, d: &Value, a: &Value, file: &str, out: &mut Vec<String>) {
    if d["operationId"] != a["operationId"] {
        out.push(format!(
            "{name}: operationId {} in {file}, {} in nps-api",
            d["operationId"], a["operationId"]
        ));
    }
    // Responses: the set of statuses, then each one's content.
    let (ds, as_) = (keys_of(&d["responses"]), keys_of(&a["responses"]));
    let only_disk: Vec<_> = ds.difference(&as_).cloned().collect();
    let only_api: Vec<_> = as_.difference(&ds).cloned().collect();
    if !only_disk.is_empty() || !only_api.is_empty() {
        let list = |v: &Vec<String>| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        out.push(format!(
            "{name}: response {} in {file}, {} in nps-api",
            list(&only_disk),
            list(&only_api)
        ));
    }
    for status in ds.intersection(&as_) {
        let (dr, ar) = (&d["responses"][status], &a["responses"][status]);
        if dr != ar {
            out.push(format!("{name}: response {status} differs{}", at(dr, ar)));
        }
    }
    // Parameters by name.
    let params = |op: &Value| -> Vec<(String, Value)> {
        op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| (p["name"].as_str().unwrap_or("?").to_string(), p.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (dp, ap) = (params(d), params(a));
    for (pname, dv) in &dp {
        match ap.iter().find(|(n, _)| n == pname) {
            None => out.push(format!(
                "{name}: parameter {pname} in {file}, not in nps-api"
            )),
            Some((_, av)) if av != dv => {
                out.push(format!("{name}: parameter {pname} differs{}", at(dv, av)))
            }
            _ => {}
        }
    }
    for (pname, _) in &ap {
        if !dp.iter().any(|(n, _)| n == pname) {
            out.push(format!(
                "{name}: parameter {pname} in nps-api, missing from {file}"
            ));
        }
    }
    // Everything else: requestBody, security, summary, description, tags,
    // deprecated, extensions, ...
    for key in keys_of(d).union(&keys_of(a)) {
        if !["operationId", "responses", "parameters"].contains(&key.as_str()) {
            compare_field(name, key, d.get(key), a.get(key), file, out);
        }
    }
}

fn compare_schema(name: &str, d: &Value, a: &Value, file: &str, out: &mut Vec<String>) {
    if d == a {
        return;
    }
    let before = out.len();
    let (dp, ap) = (keys_of(&d["properties"]), keys_of(&a["properties"]));
    for p in dp.difference(&ap) {
        out.push(format!("{name}: property {p} in {file}, not in nps-api"));
    }
    for p in ap.difference(&dp) {
        out.push(format!(
            "{name}: property {p} in nps-api, missing from {file}"
        ));
    }
    for p in dp.intersection(&ap) {
        if d["properties"][p] != a["properties"][p] {
            out.push(format!(
                "{name}: property {p} differs{}",
                at(&d["properties"][p], &a["properties"][p])
            ));
        }
    }
    if d["required"] != a["required"] {
        let names = |v: &Value| -> Option<BTreeSet<String>> {
            match v {
                Value::Null => Some(BTreeSet::new()),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string))
                    .collect(),
                _ => None,
            }
        };
        match (names(&d["required"]), names(&a["required"])) {
            (Some(dr), Some(ar)) if dr != ar => {
                for p in dr.difference(&ar) {
                    out.push(format!(
                        "{name}: property {p} is required in {file}, not in nps-api"
                    ));
                }
                for p in ar.difference(&dr) {
                    out.push(format!(
                        "{name}: property {p} is required in nps-api, not in {file}"
                    ));
                }
            }
            _ => out.push(format!(
                "{name}: required is {} in {file}, {} in nps-api",
                d["required"], a["required"]
            )),
        }
    }
    if d["enum"] != a["enum"] {
        out.push(format!(
            "{name}: enum values {} in {file}, {} in nps-api",
            d["enum"], a["enum"]
        ));
    }
    if out.len() == before {
        out.push(format!("{name} differs{}", at(d, a)));
    }
}

/// " at /pointer: X in the file, Y in nps-api" for the first difference.
fn at(d: &Value, a: &Value) -> String {
    match first_difference(d, a, String::new()) {
        Some((pointer, dv, av)) => format!(
            " at {}: {} checked in, {} from nps-api",
            if pointer.is_empty() { "/" } else { &pointer },
            short(&dv),
            short(&av)
        ),
        None => String::new(),
    }
}

fn short(v: &Option<Value>) -> String {
    match v {
        None => "absent".to_string(),
        Some(v) => {
            let s = v.to_string();
            if s.len() > 60 {
                format!("{}…", &s[..s.floor_char_boundary(60)])
            } else {
                s
            }
        }
    }
}

fn first_difference(
    d: &Value,
    a: &Value,
    pointer: String,
) -> Option<(String, Option<Value>, Option<Value>)> {
    if d == a {
        return None;
    }
    match (d, a) {
        (Value::Object(dm), Value::Object(am)) => {
            let keys: BTreeSet<&String> = dm.keys().chain(am.keys()).collect();
            for k in keys {
                let p = format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (dm.get(k), am.get(k)) {
                    (Some(x), Some(y)) => {
                        if let Some(found) = first_difference(x, y, p) {
                            return Some(found);
                        }
                    }
                    (x, y) => return Some((p, x.cloned(), y.cloned())),
                }
            }
            None
        }
        (Value::Array(dv), Value::Array(av)) if dv.len() == av.len() => dv
            .iter()
            .zip(av)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, format!("{pointer}/{i}"))),
        _ => Some((pointer, Some(d.clone()), Some(a.clone()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_changed_status_is_named_by_operation() {
        let api = json!({"paths": {"/x/{id}": {"delete": {"operationId": "DeleteAsync", "responses": {"202": {}}}}}});
        let disk = json!({"paths": {"/x/{id}": {"delete": {"operationId": "DeleteAsync", "responses": {"200": {}}}}}});
        let found = semantic_differences(&disk, &api, "openapi.json");
        assert_eq!(
            found,
            vec!["DELETE /x/{id}: response 200 in openapi.json, 202 in nps-api"]
        );
    }

    #[test]
    fn a_removed_property_is_named_by_schema() {
        let api = json!({"components": {"schemas": {"S": {"properties": {"a": {}, "b": {}}}}}});
        let disk = json!({"components": {"schemas": {"S": {"properties": {"a": {}}}}}});
        let found = semantic_differences(&disk, &api, "openapi.json");
        assert_eq!(
            found,
            vec!["schema S: property b in nps-api, missing from openapi.json"]
        );
    }

    #[test]
    fn a_missing_summary_reads_as_missing_not_null() {
        let api = json!({"paths": {"/x": {"get": {"operationId": "X", "summary": "Gets x"}}}});
        let disk = json!({"paths": {"/x": {"get": {"operationId": "X"}}}});
        let found = semantic_differences(&disk, &api, "openapi.json");
        assert_eq!(
            found,
            vec![r#"GET /x: summary in nps-api, missing from openapi.json (nps-api has "Gets x")"#]
        );
    }

    #[test]
    fn members_outside_the_known_list_are_named() {
        let api = json!({"paths": {"/x": {"get": {"operationId": "X"}}}});
        let disk = json!({"paths": {"/x": {
            "parameters": [],
            "get": {"operationId": "X", "deprecated": true}
        }}});
        let found = semantic_differences(&disk, &api, "openapi.json");
        assert_eq!(
            found,
            vec![
                "/x: parameters in openapi.json, not in nps-api (openapi.json has [])",
                "GET /x: deprecated in openapi.json, not in nps-api (openapi.json has true)",
            ]
        );
    }

    #[test]
    fn required_differences_name_the_property() {
        let api = json!({"components": {"schemas": {"S": {"required": ["a", "b"]}}}});
        let disk = json!({"components": {"schemas": {"S": {"required": ["a"]}}}});
        let found = semantic_differences(&disk, &api, "openapi.json");
        assert_eq!(
            found,
            vec!["schema S: property b is required in nps-api, not in openapi.json"]
        );
    }

    #[test]
    fn an_unclassified_difference_is_still_reported() {
        let api = json!({"paths": {}});
        let disk = json!({"paths": {"x-note": 1}});
        let found = semantic_differences(&disk, &api, "openapi.json");
        assert_eq!(found.len(), 1, "{found:?}");
    }
}
