"""Prusa Connect authentication through prusa-credential-helper (stdlib only).

    auth = HelperAuth()                      # or HelperAuth(profile="work")
    headers = auth.before_request({})        # {"Authorization": "Bearer ..."}

HelperAuth follows the Python SDK's AuthStrategy protocol (before_request).
It execs `prusa-credential-helper get` and caches the token until shortly
before its expiration_time, so most requests cost no process at all.
"""
import json
import subprocess
import time


class HelperError(Exception):
    def __init__(self, code, message, exit_code):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.exit_code = code, message, exit_code
        self.retryable = exit_code == 75


class HelperAuth:
    def __init__(self, profile=None, binary="prusa-credential-helper", margin=60):
        self.profile, self.binary, self.margin = profile, binary, margin
        self._token, self._expires, self.calls = None, 0, 0

    def token(self, force_refresh=False):
        if force_refresh or self._token is None or time.time() >= self._expires - self.margin:
            request = {"version": 1, "min_ttl": self.margin, "force_refresh": force_refresh}
            if self.profile:
                request["profile"] = self.profile
            self.calls += 1
            proc = subprocess.run([self.binary, "get"], input=json.dumps(request),
                                  capture_output=True, text=True, check=False)
            answer = json.loads(proc.stdout)
            if not answer.get("success"):
                raise HelperError(answer["code"], answer["message"], proc.returncode)
            self._token, self._expires = answer["access_token"], answer["expiration_time"]
        return self._token

    def before_request(self, headers):
        headers["Authorization"] = "Bearer " + self.token()
        return headers

    def on_unauthorized(self):
        """Call after a 401: the next request gets a refreshed token."""
        self.token(force_refresh=True)
