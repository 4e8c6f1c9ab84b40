#!/usr/bin/env bash
# Runs every test of the project, doing its own set-up. This is the README's
# test command, and the only thing .ci/run calls.
#
#   1. formatting, lints and `cargo xtask check` (spec, server and client agree)
#   2. `cargo test --workspace`: unit tests and integration tests that start the
#      real nps-server binary on loopback (sign-in, sessions, lifecycle actions,
#      SIGKILL recovery, faults, abuse, CLI end to end, spec drift)
#   3. conformance/run.sh: Schemathesis (pinned, in .venv, created if missing)
#      against a real server, every operation of openapi.json, stateful too
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo xtask check"
cargo xtask check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace"
cargo test --workspace

if [ -x conformance/run.sh ]; then
  step "conformance: Schemathesis against a real nps-server"
  conformance/run.sh
fi

step "all tests passed"
