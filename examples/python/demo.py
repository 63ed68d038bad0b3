"""Demo and test of HelperAuth: uses its header against the account server's
/api/v1/me/ (PRUSA_ACCOUNT_URL, or account.prusa3d.com) and prints one JSON
line of what happened. Tokens show only as fingerprints.

    python3 demo.py [BINARY]
"""
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request

from prusa_credential_helper import HelperAuth, HelperError

ACCOUNT_URL = os.environ.get("PRUSA_ACCOUNT_URL", "https://account.prusa3d.com").rstrip("/")


def fingerprint(headers):
    """A short hash of the Authorization header: never the token itself."""
    return hashlib.sha256(headers["Authorization"].encode()).hexdigest()[:12]


def me(headers):
    """The HTTP status with which the account server answers the token."""
    request = urllib.request.Request(ACCOUNT_URL + "/api/v1/me/", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as e:
        return e.code


binary = sys.argv[1] if len(sys.argv) > 1 else "prusa-credential-helper"
auth = HelperAuth(binary=binary)
first = auth.before_request({})
second = auth.before_request({"Accept": "application/json"})
auth.on_unauthorized()
third = auth.before_request({})
try:
    HelperAuth(profile="nobody", binary=binary).before_request({})
    error = None
except HelperError as e:
    error = {"code": e.code, "exit_code": e.exit_code, "retryable": e.retryable}
print(json.dumps({"first": fingerprint(first), "first_status": me(first),
                  "cached": fingerprint(first) == fingerprint(second), "calls": auth.calls,
                  "after_401": fingerprint(third), "after_401_status": me(third), "error": error}))
