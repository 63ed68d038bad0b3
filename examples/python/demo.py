"""Demo and test of HelperAuth: prints one JSON line of what happened.

    python3 demo.py [BINARY]
"""
import json
import sys

from prusa_credential_helper import HelperAuth, HelperError

binary = sys.argv[1] if len(sys.argv) > 1 else "prusa-credential-helper"
auth = HelperAuth(binary=binary)
first = auth.before_request({})["Authorization"]
second = auth.before_request({"Accept": "application/json"})["Authorization"]
auth.on_unauthorized()
third = auth.before_request({})["Authorization"]
try:
    HelperAuth(profile="nobody", binary=binary).before_request({})
    error = None
except HelperError as e:
    error = {"code": e.code, "exit_code": e.exit_code, "retryable": e.retryable}
print(json.dumps({"first": first, "cached": first == second, "calls": auth.calls,
                  "after_401": third, "error": error}))
