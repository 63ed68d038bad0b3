#!/usr/bin/env python3
"""Log in to a Prusa Account server the way the Python Prusa Connect SDK's
interactive_login does, and print the token endpoint's answer on stdout.

    python3 sdk_login.py ACCOUNT_URL EMAIL PASSWORD [TOTP_SECRET]

This is a re-statement, written for this project's tests, of what that
login code relies on; it is not the SDK's code. It scrapes the pages with
the SDK's regular expressions and nothing more clever:

- the first name="csrfmiddlewaretoken" value="..." on the page;
- name="next" value="...", percent-decoded once and never HTML-unescaped;
- a wrong password is the literal class="invalid-feedback" in the answer;
- the TOTP page is the one whose URL, after the redirects, has /login/totp/;
  its code field is the input whose name comes before
  autocomplete="one-time-code" in the same tag, else otp_token;
- the login POST carries Origin (the account origin) and Referer, the TOTP
  POST only Referer; no state is sent; the User-Agent is
  PrusaConnectClient/<version>;
- redirects are followed, but the one to the redirect URI's host ends the
  dance: the code is read from that URL, which is never fetched.

Only the standard library is used. Errors go to stderr as one line, without
any secret, and the exit status is 1.
"""

import base64
import hashlib
import hmac
import http.cookiejar
import json
import re
import secrets
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

CLIENT_ID = "MRHTlZhZqkNrrQ6FUPtjyusAz8nc59ErHXP8XkS4"
REDIRECT_URI = "https://connect.prusa3d.com/login/auth-callback"
USER_AGENT = "PrusaConnectClient/0.0-test"

CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
NEXT_RE = re.compile(r'name="next" value="([^"]+)"')
OTP_FIELD_RE = re.compile(r'<input[^>]*\bname="([^"]+)"[^>]*autocomplete="one-time-code"')


class LoginError(Exception):
    pass


class CallbackReached(Exception):
    """Raised by the redirect handler at the redirect to the redirect URI."""

    def __init__(self, url):
        super().__init__("callback reached")
        self.url = url


class StopAtCallback(urllib.request.HTTPRedirectHandler):
    """Follows redirects, except the one to the redirect URI's host."""

    def __init__(self, callback_host):
        super().__init__()
        self.callback_host = callback_host

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).hostname == self.callback_host:
            fp.close()
            raise CallbackReached(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def totp(secret, now=None):
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    step = int((time.time() if now is None else now) // 30)
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return "%06d" % (value % 1000000)


def first(regex, html, what):
    m = regex.search(html)
    if not m:
        raise LoginError("no %s on the page" % what)
    return m.group(1)


def form_fields(html):
    """The csrfmiddlewaretoken and, when the page has one, the decoded next."""
    fields = {"csrfmiddlewaretoken": first(CSRF_RE, html, "csrfmiddlewaretoken")}
    m = NEXT_RE.search(html)
    if m:
        fields["next"] = urllib.parse.unquote(m.group(1))
    return fields


def login(account_url, email, password, totp_secret):
    account = urllib.parse.urlsplit(account_url)
    origin = "%s://%s" % (account.scheme, account.netloc)
    callback_host = urllib.parse.urlsplit(REDIRECT_URI).hostname

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(jar), StopAtCallback(callback_host))

    def request(url, data=None, headers=None):
        h = {"User-Agent": USER_AGENT}
        h.update(headers or {})
        body = None
        if data is not None:
            body = urllib.parse.urlencode(data).encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            with opener.open(urllib.request.Request(url, data=body, headers=h), timeout=30) as resp:
                return resp.geturl(), resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            raise LoginError("HTTP %d at %s" % (e.code, urllib.parse.urlsplit(e.geturl()).path))

    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    authorize = origin + "/o/authorize/?" + urllib.parse.urlencode({
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "code_challenge_method": "S256",
        "code_challenge": challenge,
    })

    try:
        login_url, html = request(authorize)
        data = form_fields(html)
        data["email"] = email
        data["password"] = password
        url, html = request(login_url, data, {"Origin": origin, "Referer": login_url})
        if 'class="invalid-feedback"' in html:
            raise LoginError("the server refused the email or password")
        if "/login/totp/" not in url:
            raise LoginError("neither the callback nor the TOTP page after the password (at %s)" % urllib.parse.urlsplit(url).path)
        if not totp_secret:
            raise LoginError("the account asks for a TOTP code and no secret was given")
        data = form_fields(html)
        m = OTP_FIELD_RE.search(html)
        data[m.group(1) if m else "otp_token"] = totp(totp_secret)
        url, html = request(url, data, {"Referer": url})
        if 'class="invalid-feedback"' in html:
            raise LoginError("the server refused the TOTP code")
        raise LoginError("no callback after the TOTP code (at %s)" % urllib.parse.urlsplit(url).path)
    except CallbackReached as cb:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(cb.url).query)
    if "code" not in query:
        raise LoginError("the callback carries no code (error %s)" % query.get("error", ["none"])[0])

    try:
        with opener.open(urllib.request.Request(
                origin + "/o/token/",
                data=urllib.parse.urlencode({
                    "grant_type": "authorization_code",
                    "client_id": CLIENT_ID,
                    "code": query["code"][0],
                    "code_verifier": verifier,
                    "redirect_uri": REDIRECT_URI,
                }).encode(),
                headers={"User-Agent": USER_AGENT, "Content-Type": "application/x-www-form-urlencoded"}),
                timeout=30) as resp:
            tokens = json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raise LoginError("code exchange: HTTP %d" % e.code)
    if not tokens.get("access_token") or not tokens.get("refresh_token"):
        raise LoginError("the code exchange answered no token set")
    return tokens


def main(argv):
    if len(argv) not in (4, 5):
        sys.stderr.write("usage: sdk_login.py ACCOUNT_URL EMAIL PASSWORD [TOTP_SECRET]\n")
        return 2
    try:
        tokens = login(argv[1], argv[2], argv[3], argv[4] if len(argv) == 5 else "")
    except LoginError as e:
        sys.stderr.write("sdk login failed: %s\n" % e)
        return 1
    except OSError as e:
        sys.stderr.write("sdk login failed: %s\n" % type(e).__name__)
        return 1
    json.dump(tokens, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
