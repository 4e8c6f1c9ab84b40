"""Signs in to nps-server as an NPS client does and prints the token.

    python3 signin.py URL LOGIN PASSWORD            -> the pre-MFA token of POST /signinBody
    python3 signin.py URL LOGIN PASSWORD SECRET     -> the MFA token of POST /signin2fa

The TOTP code (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps) is computed here
with the standard library only. Each code is accepted once per user, so when
the current step's code was used already the next step's is tried, then the
script waits for a fresh step (at most about a minute).
"""

import base64
import hashlib
import hmac
import json
import struct
import sys
import time
import urllib.error
import urllib.request


def totp(secret_base32: str, step: int) -> str:
    key = base64.b32decode(secret_base32.upper() + "=" * (-len(secret_base32) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def post(url: str, body, token: str | None = None):
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def main() -> int:
    if len(sys.argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    url, login, password = sys.argv[1:4]
    secret = sys.argv[4] if len(sys.argv) == 5 else None
    deadline = time.time() + 95
    while True:
        status, pre = post(f"{url}/signinBody", {"Login": login, "Password": password})
        if status != 200:
            print(f"signinBody answered {status}: {pre}", file=sys.stderr)
            return 1
        if secret is None:
            print(pre)
            return 0
        step = int(time.time()) // 30
        for s in (step, step + 1):
            status, token = post(f"{url}/signin2fa", totp(secret, s), pre)
            if status == 200:
                print(token)
                return 0
        if time.time() > deadline:
            print(f"signin2fa kept refusing the codes: {status} {token}", file=sys.stderr)
            return 1
        time.sleep(30 - time.time() % 30 + 0.2)


if __name__ == "__main__":
    sys.exit(main())
