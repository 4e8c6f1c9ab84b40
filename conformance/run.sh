#!/usr/bin/env bash
# Contract conformance: Schemathesis, a tool nobody here wrote, against the
# real nps-server on a fresh database, over every operation of the checked-in
# openapi.json, with all its checks and its stateful (OpenAPI links) phase.
#
#   conformance/run.sh            # from anywhere; exits non-zero on any failure
#
# Environment (all optional):
#   CONFORMANCE_MAX_TIME   time budget of the Schemathesis run, in s (default 120)
#   CONFORMANCE_SEED       Hypothesis seed, to replay a run (default: random;
#                          the run prints the one it used)
#   KEEP_WORK=1            keep the temporary directory (database, server log)
#
# Steps: a Python virtual environment in .venv (created if missing) with the
# pinned Schemathesis of conformance/requirements.txt; a debug build of
# nps-server; the server on 127.0.0.1:0 with a temporary database; sign-in
# (signinBody, then signin2fa with a TOTP code computed in Python); the run,
# configured by conformance/schemathesis.toml, where every excluded check is
# written down with its reason; the server is killed at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE="$ROOT/conformance"
VENV="$ROOT/.venv"
MAX_TIME="${CONFORMANCE_MAX_TIME:-120}"

log() { printf 'conformance: %s\n' "$*" >&2; }

# ---- Schemathesis, pinned, in its own virtual environment ------------------
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$HERE/requirements.txt"; then
    log "cannot install conformance/requirements.txt into $VENV"
    exit 1
fi
SCHEMATHESIS="$VENV/bin/schemathesis"

# ---- the server -------------------------------------------------------------
log "building nps-server (debug)"
cargo build --quiet -p nps-server --manifest-path "$ROOT/Cargo.toml"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SERVER="$TARGET_DIR/debug/nps-server"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nps-conformance.XXXXXX")
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "${KEEP_WORK:-0}" = 1 ]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

LOGIN=admin
PASSWORD="conformance-$(date +%s)-$RANDOM"
# 20 random bytes, base32: the Admin's TOTP secret for this run only.
SECRET=$("$VENV/bin/python" -c 'import base64, os; print(base64.b32encode(os.urandom(20)).decode())')

# The run checks the contract, not the sign-in throttle (tests/abuse.rs does):
# wrong codes must not revoke the pre-MFA token Schemathesis sends to
# /signin2fa, nor lock the login, while it fuzzes.
cat > "$WORK/config.toml" <<TOML
[auth]
max_wrong_codes = 1000000
max_failures_per_minute = 1000000
TOML

log "starting nps-server on a fresh database in $WORK"
NPS_BOOTSTRAP_LOGIN="$LOGIN" NPS_BOOTSTRAP_PASSWORD="$PASSWORD" NPS_BOOTSTRAP_TOTP_SECRET="$SECRET" \
    "$SERVER" --bind 127.0.0.1:0 --database "$WORK/nps.db" --config "$WORK/config.toml" \
    --log-level warn >"$WORK/stdout.log" 2>"$WORK/server.log" </dev/null &
SERVER_PID=$!

URL=""
for _ in $(seq 1 600); do
    URL=$(sed -n 's/^nps-server listening on //p' "$WORK/stdout.log" | head -n 1)
    [ -n "$URL" ] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "nps-server exited before listening:"
        cat "$WORK/stdout.log" "$WORK/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$URL" ]; then
    log "nps-server did not start within 60 s"
    exit 1
fi
log "nps-server is listening on $URL"

# ---- sign-in ----------------------------------------------------------------
export NPS_MFA_TOKEN
NPS_MFA_TOKEN=$("$VENV/bin/python" "$HERE/signin.py" "$URL" "$LOGIN" "$PASSWORD" "$SECRET")
# /signin2fa takes a pre-MFA token, not an MFA one: a second user's, so that
# its wrong codes touch nobody else (see schemathesis.toml).
USER_ADD=$("$SERVER" user add --login fuzz-2fa --role user --database "$WORK/nps.db")
FUZZ_PASSWORD=$(sed -n 's/^ *password: //p' <<<"$USER_ADD")
export NPS_PRE_MFA_TOKEN
NPS_PRE_MFA_TOKEN=$("$VENV/bin/python" "$HERE/signin.py" "$URL" fuzz-2fa "$FUZZ_PASSWORD")
log "signed in (MFA token for $LOGIN, pre-MFA token for fuzz-2fa)"

# ---- Schemathesis -----------------------------------------------------------
SEED_ARGS=()
if [ -n "${CONFORMANCE_SEED:-}" ]; then
    SEED_ARGS=(--seed "$CONFORMANCE_SEED")
fi
log "running Schemathesis $("$SCHEMATHESIS" --version | awk '{print $NF}') for at most ${MAX_TIME} s"
status=0
(cd "$WORK" && SCHEMATHESIS_HOOKS="$HERE/hooks.py" "$SCHEMATHESIS" --no-color --config-file "$HERE/schemathesis.toml" run \
    "$ROOT/openapi.json" \
    --url "$URL" \
    --phases examples,coverage,fuzzing,stateful \
    --max-time "$MAX_TIME" \
    "${SEED_ARGS[@]}") || status=$?

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "nps-server died during the run; its log:"
    tail -n 50 "$WORK/server.log" >&2
    status=1
fi
if [ "$status" -ne 0 ]; then
    log "FAILED (Schemathesis exit $status); server log tail:"
    tail -n 30 "$WORK/server.log" >&2
    exit 1
fi
log "passed"
