//! `cargo xtask check` catches each kind of drift between nps-api, the
//! checked-in `openapi.json` and the generated client.
//!
//! Each test copies both files into a fresh directory, changes the copy the
//! way a careless edit (or a forgotten `cargo xtask generate`) would, runs the
//! xtask binary on the copy and reads what it says.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

const DELETE: &str = "/api/v1/ActivitySession/{sessionId}";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

/// A directory of its own under the system temp dir, removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// An empty directory.
    fn empty(name: &str) -> Scratch {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "xtask-drift-{name}-{}-{nanos}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        Scratch { dir }
    }

    /// A directory holding copies of the checked-in document and client.
    fn with_copies(name: &str) -> Scratch {
        let scratch = Scratch::empty(name);
        let root = workspace_root();
        std::fs::copy(root.join("openapi.json"), scratch.spec()).expect("copy openapi.json");
        std::fs::copy(
            root.join("crates/nps-client/src/generated.rs"),
            scratch.client(),
        )
        .expect("copy generated.rs");
        scratch
    }

    fn spec(&self) -> PathBuf {
        self.dir.join("openapi.json")
    }

    fn client(&self) -> PathBuf {
        self.dir.join("generated.rs")
    }

    /// Changes the copied document and writes it back pretty-printed.
    fn edit_spec(&self, edit: impl FnOnce(&mut Value)) {
        let text = std::fs::read_to_string(self.spec()).expect("read the copy");
        let mut doc: Value = serde_json::from_str(&text).expect("the copy is JSON");
        let before = doc.clone();
        edit(&mut doc);
        assert_ne!(doc, before, "the edit must change the document");
        let mut text = serde_json::to_string_pretty(&doc).expect("serialize");
        text.push('\n');
        std::fs::write(self.spec(), text).expect("write the copy");
    }

    /// Changes the copied client's text.
    fn edit_client(&self, edit: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(self.client()).expect("read the copy");
        let edited = edit(text.clone());
        assert_ne!(edited, text, "the edit must change the client");
        std::fs::write(self.client(), edited).expect("write the copy");
    }

    /// Runs `xtask <command> --spec <copy> --client <copy>`.
    fn xtask(&self, command: &str) -> Output {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg(command)
            .arg("--spec")
            .arg(self.spec())
            .arg("--client")
            .arg(self.client())
            .output()
            .expect("run xtask")
    }

    fn check(&self) -> Output {
        self.xtask("check")
    }

    fn generate(&self) -> Output {
        let out = self.xtask("generate");
        assert_passes(&out, "generate");
        out
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_passes(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
}

/// `check` failed and its message contains every one of `expected`.
fn assert_drift(out: &Output, expected: &[&str]) -> String {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "check passed on a drifted copy; stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for line in expected {
        assert!(
            err.contains(line),
            "check's message lacks {line:?}; it reads:\n{err}"
        );
    }
    assert!(
        err.contains("cargo xtask generate"),
        "check's message does not say how to fix it:\n{err}"
    );
    err
}

#[test]
fn unchanged_copies_pass() {
    let copy = Scratch::with_copies("unchanged");
    let out = copy.check();
    assert_passes(&out, "check of the unchanged files");
    assert!(String::from_utf8_lossy(&out.stdout).contains("agree with nps-api"));
}

#[test]
fn a_reserialized_document_still_passes() {
    // The tests below write the document with serde_json; this shows that the
    // writing alone is no drift, so each failure below comes from the edit.
    let copy = Scratch::with_copies("reserialized");
    let text = std::fs::read_to_string(copy.spec()).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut again = serde_json::to_string_pretty(&doc).unwrap();
    again.push('\n');
    std::fs::write(copy.spec(), again).unwrap();
    assert_passes(&copy.check(), "check of the re-serialized document");
}

#[test]
fn a_changed_success_status_is_named() {
    let copy = Scratch::with_copies("status");
    copy.edit_spec(|doc| {
        let responses = doc["paths"][DELETE]["delete"]["responses"]
            .as_object_mut()
            .unwrap();
        let accepted = responses.remove("202").expect("DELETE answers 202");
        responses.insert("200".into(), accepted);
    });
    assert_drift(
        &copy.check(),
        &["DELETE /api/v1/ActivitySession/{sessionId}: response 200 in openapi.json, 202 in nps-api"],
    );
}

#[test]
fn a_property_missing_from_the_document_is_named() {
    // As if nps-api gained the property and nobody regenerated.
    let copy = Scratch::with_copies("property-removed");
    copy.edit_spec(|doc| {
        let schema = &mut doc["components"]["schemas"]["ActivitySession"];
        schema["properties"]
            .as_object_mut()
            .unwrap()
            .remove("nodeId")
            .expect("ActivitySession has nodeId");
        schema["required"]
            .as_array_mut()
            .unwrap()
            .retain(|p| p != "nodeId");
    });
    assert_drift(
        &copy.check(),
        &[
            "schema ActivitySession: property nodeId in nps-api, missing from openapi.json",
            "schema ActivitySession: property nodeId is required in nps-api, not in openapi.json",
        ],
    );
}

#[test]
fn a_property_nps_api_lacks_is_named() {
    // As if the type changed in nps-api (a field removed) without regenerating.
    let copy = Scratch::with_copies("property-added");
    copy.edit_spec(|doc| {
        doc["components"]["schemas"]["ActivitySession"]["properties"]
            .as_object_mut()
            .unwrap()
            .insert(
                "hostName".into(),
                json!({"type": "string", "nullable": true}),
            );
    });
    assert_drift(
        &copy.check(),
        &["schema ActivitySession: property hostName in openapi.json, not in nps-api"],
    );
}

#[test]
fn a_changed_property_type_is_named() {
    let copy = Scratch::with_copies("property-type");
    copy.edit_spec(|doc| {
        doc["components"]["schemas"]["ActivitySession"]["properties"]["sessionExtensionCount"]
            ["format"] = json!("int64");
    });
    assert_drift(
        &copy.check(),
        &[
            r#"schema ActivitySession: property sessionExtensionCount differs at /format: "int64" checked in, "int32" from nps-api"#,
        ],
    );
}

#[test]
fn an_operation_missing_from_the_document_is_named() {
    // As if the endpoint was added to nps-api without regenerating.
    let copy = Scratch::with_copies("operation-removed");
    copy.edit_spec(|doc| {
        doc["paths"][DELETE]
            .as_object_mut()
            .unwrap()
            .remove("delete")
            .expect("the path has DELETE");
    });
    assert_drift(
        &copy.check(),
        &["DELETE /api/v1/ActivitySession/{sessionId}: operation in nps-api, missing from openapi.json"],
    );
}

#[test]
fn an_operation_nps_api_lacks_is_named() {
    // As if the endpoint was removed from nps-api without regenerating.
    let copy = Scratch::with_copies("operation-added");
    copy.edit_spec(|doc| {
        let get = doc["paths"][DELETE]["get"].clone();
        doc["paths"][DELETE]["put"] = get;
        doc["paths"][DELETE]["put"]["operationId"] = json!("UpdateAsync");
    });
    assert_drift(
        &copy.check(),
        &["PUT /api/v1/ActivitySession/{sessionId}: operation in openapi.json, not in nps-api"],
    );
}

#[test]
fn a_changed_operation_id_is_named() {
    let copy = Scratch::with_copies("operation-id");
    copy.edit_spec(|doc| {
        doc["paths"][DELETE]["get"]["operationId"] = json!("GetById");
    });
    assert_drift(
        &copy.check(),
        &[
            r#"GET /api/v1/ActivitySession/{sessionId}: operationId "GetById" in openapi.json, "GetByIdAsync" in nps-api"#,
        ],
    );
}

#[test]
fn a_removed_summary_makes_the_document_invalid() {
    let copy = Scratch::with_copies("summary");
    copy.edit_spec(|doc| {
        doc["paths"][DELETE]["delete"]
            .as_object_mut()
            .unwrap()
            .remove("summary")
            .expect("DELETE has a summary");
    });
    let err = assert_drift(
        &copy.check(),
        &[
            "openapi.json is not valid:",
            "DELETE /api/v1/ActivitySession/{sessionId}: no summary",
            "DELETE /api/v1/ActivitySession/{sessionId}: summary in nps-api, missing from openapi.json",
        ],
    );
    assert!(!err.contains("null checked in"), "{err}");
}

#[test]
fn a_link_to_a_missing_operation_makes_the_document_invalid() {
    let copy = Scratch::with_copies("link");
    copy.edit_spec(|doc| {
        doc["paths"]["/api/v1/ActivitySession"]["post"]["responses"]["201"]["links"]
            ["DeleteAsync"]["operationId"] = json!("DeleteSession");
    });
    assert_drift(
        &copy.check(),
        &[
            "openapi.json is not valid:",
            "POST /api/v1/ActivitySession: link DeleteAsync of response 201 leads to operationId DeleteSession, which no operation has",
        ],
    );
}

#[test]
fn an_unknown_operation_member_is_named() {
    let copy = Scratch::with_copies("deprecated");
    copy.edit_spec(|doc| {
        doc["paths"][DELETE]["get"]["deprecated"] = json!(true);
    });
    let err = assert_drift(
        &copy.check(),
        &["GET /api/v1/ActivitySession/{sessionId}: deprecated in openapi.json, not in nps-api"],
    );
    assert!(!err.contains("same content"), "{err}");
}

#[test]
fn a_document_that_is_not_json_is_reported() {
    let copy = Scratch::with_copies("not-json");
    let text = std::fs::read_to_string(copy.spec()).unwrap();
    std::fs::write(copy.spec(), &text[..text.len() / 2]).unwrap();
    assert_drift(
        &copy.check(),
        &[
            "openapi.json is not a valid OpenAPI 3.0 document",
            "openapi.json is not JSON",
        ],
    );
}

#[test]
fn a_line_added_to_the_client_is_caught() {
    let copy = Scratch::with_copies("client-appended");
    copy.edit_client(|text| text + "// a hand edit\n");
    let err = assert_drift(
        &copy.check(),
        &[
            "generated.rs differs from what progenitor generates",
            "-// a hand edit",
        ],
    );
    assert!(
        !err.contains("disagrees with nps-api"),
        "only the client drifted, yet the document is blamed:\n{err}"
    );
}

#[test]
fn a_renamed_client_method_is_caught() {
    let copy = Scratch::with_copies("client-renamed");
    copy.edit_client(|text| {
        assert!(text.contains("pub async fn delete_async<"));
        text.replace("pub async fn delete_async<", "pub async fn end_session<")
    });
    assert_drift(
        &copy.check(),
        &[
            "generated.rs differs from what progenitor generates",
            "-    pub async fn end_session<",
            "+    pub async fn delete_async<",
        ],
    );
}

#[test]
fn both_files_drifting_are_both_reported() {
    let copy = Scratch::with_copies("both");
    copy.edit_spec(|doc| {
        doc["paths"][DELETE]["get"]["operationId"] = json!("GetById");
    });
    copy.edit_client(|text| text + "// a hand edit\n");
    assert_drift(
        &copy.check(),
        &[
            "openapi.json disagrees with nps-api",
            "generated.rs differs from what progenitor generates",
        ],
    );
}

#[test]
fn generate_repairs_drift_and_check_then_passes() {
    let copy = Scratch::with_copies("repair");
    copy.edit_spec(|doc| {
        doc["paths"][DELETE]["get"]["operationId"] = json!("GetById");
    });
    copy.edit_client(|text| text + "// a hand edit\n");
    assert!(!copy.check().status.success());
    copy.generate();
    assert_passes(&copy.check(), "check after generate");
    // And the repair gives back exactly the checked-in files.
    let root = workspace_root();
    assert_eq!(
        std::fs::read(copy.spec()).unwrap(),
        std::fs::read(root.join("openapi.json")).unwrap()
    );
    assert_eq!(
        std::fs::read(copy.client()).unwrap(),
        std::fs::read(root.join("crates/nps-client/src/generated.rs")).unwrap()
    );
}

#[test]
fn generate_into_an_empty_directory_then_check_passes() {
    let fresh = Scratch::empty("fresh");
    fresh.generate();
    assert_passes(&fresh.check(), "check after generate");
}

#[test]
fn generate_is_deterministic() {
    let (a, b) = (Scratch::empty("det-a"), Scratch::empty("det-b"));
    a.generate();
    b.generate();
    assert_eq!(
        std::fs::read(a.spec()).unwrap(),
        std::fs::read(b.spec()).unwrap(),
        "two generate runs wrote different openapi.json"
    );
    assert_eq!(
        std::fs::read(a.client()).unwrap(),
        std::fs::read(b.client()).unwrap(),
        "two generate runs wrote different generated.rs"
    );
    // A second run over its own output changes nothing.
    let again = a.generate();
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(!stdout.contains("wrote"), "{stdout}");
}
