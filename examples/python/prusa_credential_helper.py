"""Prusa Connect authentication through prusa-credential-helper (stdlib only).

    auth = HelperAuth()                      # or HelperAuth(profile="work")
    headers = auth.before_request({})        # {"Authorization": "Bearer ..."}

HelperAuth follows the Python SDK's AuthStrategy protocol (before_request).
It execs `prusa-credential-helper get` and keeps the token for at most
max_age seconds (5 minutes), so most requests cost no process at all.
The helper, not this class, judges whether a token is still valid: it goes
by the account server's clock, and the local one may be hours off, so the
cache is timed with a monotonic clock and asks the helper for a token valid
for max_age + margin seconds more (a cached `get` costs a few ms).
See README.md beside this file.
"""
import json
import subprocess
import time

INSTALL_HINT = (
    "install it with ./install.sh from a checkout of "
    "https://github.com/prusa-credential-helper/prusa-credential-helper "
    "(it puts the helper and its etcd companion in ~/.local/bin); "
    "make sure that is on PATH, or pass HelperAuth(binary=\"/path/to/prusa-credential-helper\")"
)


class HelperError(Exception):
    """The helper answered with an error: code is the protocol's error code
    (login_required, network_error, ...), exit_code the helper's exit code."""

    def __init__(self, code, message, exit_code):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.exit_code = code, message, exit_code
        self.retryable = exit_code == 75


class HelperNotInstalled(HelperError):
    """The helper binary could not be run: it is not installed or not on PATH."""

    def __init__(self, binary, why):
        super().__init__("not_installed", f"cannot run {binary!r} ({why}); {INSTALL_HINT}", 127)


class HelperAuth:
    def __init__(self, profile=None, binary="prusa-credential-helper", margin=60, max_age=300):
        self.profile, self.binary, self.margin, self.max_age = profile, binary, margin, max_age
        self._token, self._fetched, self._expires, self.calls = None, 0.0, 0, 0

    def _cached(self):
        # At most max_age seconds by the monotonic clock, which no clock
        # change moves; and, should the helper hand out a token that expires
        # sooner than asked (a PRUSA_TOKEN), not past expiration_time - margin
        # by the local clock, which errs only towards asking the helper.
        return (self._token is not None
                and time.monotonic() - self._fetched < self.max_age
                and time.time() < self._expires - self.margin)

    def token(self, force_refresh=False):
        if force_refresh or not self._cached():
            request = {"version": 1, "min_ttl": self.max_age + self.margin, "force_refresh": force_refresh}
            if self.profile:
                request["profile"] = self.profile
            self.calls += 1
            fetched = time.monotonic()
            try:
                proc = subprocess.run([self.binary, "get"], input=json.dumps(request),
                                      capture_output=True, text=True, check=False)
            except FileNotFoundError:
                raise HelperNotInstalled(self.binary, "not found") from None
            except PermissionError:
                raise HelperNotInstalled(self.binary, "not executable") from None
            try:
                answer = json.loads(proc.stdout)
            except ValueError:
                first = (proc.stderr.strip().splitlines() or ["no output"])[0]
                raise HelperError("internal", first, proc.returncode) from None
            if not answer.get("success"):
                raise HelperError(answer["code"], answer["message"], proc.returncode)
            self._token, self._fetched, self._expires = answer["access_token"], fetched, answer["expiration_time"]
        return self._token

    def before_request(self, headers):
        headers["Authorization"] = "Bearer " + self.token()
        return headers

    def on_unauthorized(self):
        """Call after a 401: the next request gets a refreshed token."""
        self.token(force_refresh=True)
