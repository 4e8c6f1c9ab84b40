//! Project tasks: `cargo xtask generate`, `cargo xtask check`, `cargo xtask bench`.
//!
//! `generate` and `check` depend only on `nps-api` (never on the server), so a
//! warm `cargo xtask check` takes seconds.

#[cfg(feature = "bench")]
mod bench;
mod client;
mod diff;
mod validate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  generate   write openapi.json from nps-api, then the client code from openapi.json
  check      regenerate both in memory and fail on any difference with the files
  bench      build release binaries and run the benchmarks (see BENCHMARKS.md)

options of generate and check:
  --spec PATH     the OpenAPI document (default: openapi.json at the workspace root)
  --client PATH   the generated client (default: crates/nps-client/src/generated.rs)
";

struct Paths {
    spec: PathBuf,
    client: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

fn parse_paths(args: &[String]) -> Result<Paths, String> {
    let root = workspace_root();
    let mut paths = Paths {
        spec: root.join("openapi.json"),
        client: root.join("crates/nps-client/src/generated.rs"),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = || {
            it.clone()
                .next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a path"))
        };
        match arg.as_str() {
            "--spec" => paths.spec = PathBuf::from(value()?),
            "--client" => paths.client = PathBuf::from(value()?),
            other => return Err(format!("unknown option {other}\n\n{USAGE}")),
        }
        it.next();
    }
    Ok(paths)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("generate") => parse_paths(&args[1..]).and_then(|p| generate(&p)),
        Some("check") => parse_paths(&args[1..]).and_then(|p| check(&p)),
        Some("bench") => bench(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command {other}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// The document and the client, as nps-api and progenitor make them now.
struct Generated {
    spec_text: String,
    client_text: String,
}

fn generate_in_memory() -> Result<Generated, String> {
    let doc = nps_api::document::openapi_document()?;
    let spec_text = nps_api::document::render(&doc);
    validate::validate(&spec_text, "the document nps-api generates")?;
    let client_text = client::generate(&spec_text)?;
    Ok(Generated {
        spec_text,
        client_text,
    })
}

fn generate(paths: &Paths) -> Result<(), String> {
    let generated = generate_in_memory()?;
    write_if_changed(&paths.spec, &generated.spec_text)?;
    // The client is generated from the file just written: the file is the contract.
    let on_disk = std::fs::read_to_string(&paths.spec)
        .map_err(|e| format!("cannot read back {}: {e}", paths.spec.display()))?;
    let client_text = client::generate(&on_disk)?;
    write_if_changed(&paths.client, &client_text)?;
    Ok(())
}

fn write_if_changed(path: &Path, text: &str) -> Result<(), String> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        println!("unchanged {}", path.display());
        return Ok(());
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn check(paths: &Paths) -> Result<(), String> {
    let generated = generate_in_memory()?;
    let mut failures = Vec::new();

    match std::fs::read_to_string(&paths.spec) {
        Err(e) => failures.push(format!("cannot read {}: {e}", paths.spec.display())),
        Ok(on_disk) => {
            if let Err(problem) = validate::validate(&on_disk, &paths.spec.display().to_string()) {
                failures.push(problem);
            }
            if on_disk != generated.spec_text {
                failures.push(diff::describe_spec_drift(
                    &paths.spec,
                    &on_disk,
                    &generated.spec_text,
                ));
            }
        }
    }

    match std::fs::read_to_string(&paths.client) {
        Err(e) => failures.push(format!("cannot read {}: {e}", paths.client.display())),
        Ok(on_disk) if on_disk != generated.client_text => {
            failures.push(diff::describe_client_drift(
                &paths.client,
                &on_disk,
                &generated.client_text,
            ));
        }
        Ok(_) => {}
    }

    if failures.is_empty() {
        println!(
            "ok: {} and {} agree with nps-api",
            paths.spec.display(),
            paths.client.display()
        );
        return Ok(());
    }
    Err(format!(
        "{}\n\nTo fix: if the change to nps-api is intended, run `cargo xtask generate` and review the diff;\n\
         otherwise undo the hand edit. Generated files are never edited by hand.",
        failures.join("\n\n")
    ))
}

/// `cargo xtask bench`: the benchmark needs an HTTP client, SQLite and a
/// release build, which `generate` and `check` do without. So this xtask runs
/// itself again, built in release with the `bench` feature, which does the work
/// (`xtask/src/bench.rs`).
#[cfg(not(feature = "bench"))]
fn bench(args: &[String]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .current_dir(workspace_root())
        .args(["run", "--release", "--package", "xtask"])
        .args(["--features", "bench", "--", "bench"])
        .args(args)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the benchmark failed ({status})"))
    }
}

#[cfg(feature = "bench")]
fn bench(args: &[String]) -> Result<(), String> {
    bench::run(args)
}
