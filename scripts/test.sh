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

# System tools the tests drive (a pseudo-terminal, a private CA, the curl
# sample): installed from Debian's packages when missing.
missing=()
for tool in tmux:tmux openssl:openssl curl:curl python3:python3 sqlite3:sqlite3; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]} (apt-get)"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo xtask check"
cargo xtask check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
# The benchmark's code sits behind xtask's `bench` feature: lint it too so it
# does not rot between benchmark runs.
cargo clippy -p xtask --features bench --all-targets -- -D warnings

step "cargo test --workspace"
cargo test --workspace

step "conformance: Schemathesis against a real nps-server"
bash conformance/run.sh

step "all tests passed"
