#!/usr/bin/env bash
# The reference flow with curl and a cookie jar, shaped like the shell sample
# of DeleteAsync.md: sign in (password, then TOTP code), create a session,
# end it ASAP, and poll until it is terminal.
#
#   NPS_URL=http://127.0.0.1:6500 NPS_LOGIN=admin NPS_PASSWORD=... \
#   NPS_TOTP_SECRET=BASE32... bash scripts/reference-flow.sh
#
# NPS_MFA_CODE may be given instead of NPS_TOTP_SECRET (then the code is used
# as is). Needs curl and python3 (for the TOTP code and JSON).
set -euo pipefail

url=${NPS_URL:-http://127.0.0.1:6500}
jar=${NPS_COOKIE_JAR:-$(mktemp)}
: "${NPS_LOGIN:?set NPS_LOGIN}" "${NPS_PASSWORD:?set NPS_PASSWORD}"

totp() {
  python3 - "$1" <<'PY'
import base64, hashlib, hmac, struct, sys, time
key = base64.b32decode(sys.argv[1].upper() + "=" * (-len(sys.argv[1]) % 8))
mac = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
off = mac[-1] & 15
print("%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000))
PY
}
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }

login_body=$(python3 -c 'import json,os; print(json.dumps({"Login": os.environ["NPS_LOGIN"], "Password": os.environ["NPS_PASSWORD"]}))')
token=$(curl -sS --fail-with-body -c "$jar" -b "$jar" -X POST "$url/signinBody" \
  -H 'Content-Type: application/json' -H 'Accept: application/json' -d "$login_body")
code=${NPS_MFA_CODE:-$(totp "${NPS_TOTP_SECRET:?set NPS_TOTP_SECRET or NPS_MFA_CODE}")}
token=$(curl -sS --fail-with-body -c "$jar" -b "$jar" -X POST "$url/signin2fa" \
  -H "Authorization: Bearer $(printf '%s' "$token" | tr -d '"')" \
  -H 'Content-Type: application/json' -H 'Accept: application/json' -d "$code")
TOKEN=$(printf '%s' "$token" | tr -d '"')

session=$(curl -sS --fail-with-body -X POST "$url/api/v1/ActivitySession" \
  -H 'Content-Type: application/json' -H 'Accept: application/json' \
  -H "Authorization: Bearer $TOKEN" -d '{"activityName": "reference flow"}')
sessionId=$(printf '%s' "$session" | json_field id)
echo "created $sessionId"

# The DeleteAsync sample:
curl -sS -i -X DELETE "$url/api/v1/ActivitySession/$sessionId" \
  -H 'Accept: application/json' \
  -H "Authorization: Bearer $TOKEN" | tr -d '\r' | sed -n '1p;/^location:/Ip'

for _ in $(seq 1 100); do
  status=$(curl -sS --fail-with-body "$url/api/v1/ActivitySession/$sessionId" \
    -H 'Accept: application/json' -H "Authorization: Bearer $TOKEN" | json_field status)
  case $status in
    Cancelled|Complete|Failed) echo "$status"; exit 0 ;;
  esac
  sleep 0.1
done
echo "session $sessionId still $status after 10 s" >&2
exit 1
