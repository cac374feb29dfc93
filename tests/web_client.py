"""The site over HTTP as a browser without JavaScript uses it: cookies kept, redirects not
followed (a test reads where they point), forms posted with the page's CSRF token."""
from __future__ import annotations

import http.client
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Client:
    """A cookie-keeping HTTP client that does not follow redirects. Every call answers
    (status, headers, body text)."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  _NoRedirect)

    def request(self, method: str, path: str, form: Any = None, headers: dict | None = None,
                read: bool = True) -> tuple[int, Any, str]:
        """`form` (a dict or pairs) is sent URL-encoded; `read=False` reads only the start of
        the body (an event stream that does not end)."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers=headers or {})
        try:
            with self.opener.open(req, timeout=20) as resp:
                body = resp.read() if read else resp.read(200)
                return resp.status, resp.headers, body.decode(errors="replace")
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read().decode(errors="replace")

    def get(self, path: str, headers: dict | None = None, read: bool = True):
        return self.request("GET", path, headers=headers, read=read)

    def csrf(self, path: str = "/") -> str | None:
        """The CSRF token on the page at `path` (None when it shows none)."""
        m = CSRF_RE.search(self.get(path)[2])
        return m.group(1) if m else None

    def post(self, path: str, form: dict, csrf: bool = True):
        """A form post, with the CSRF token of the session (read off the wallboard) unless
        `csrf` is false."""
        if csrf:
            form = {**form, "csrf_token": self.csrf("/wallboard") or ""}
        return self.request("POST", path, form)

    def login(self, username: str, password: str, next_path: str = "/admin/users"):
        """The log-in form posted; the answer (302 to `next_path` when it worked)."""
        return self.request("POST", "/login", {"csrf_token": self.csrf("/login"),
                                               "username": username, "password": password,
                                               "next": next_path})


def client_of(base: str, username: str, password: str) -> Client:
    """A client with a session of `username` (asserted)."""
    client = Client(base)
    status, _, body = client.login(username, password, "/")
    assert status in (302, 303), (username, status, body[:300])
    return client


class Peer:
    """HTTP from a chosen loopback address (each test its own 'client', as the log-in throttle
    sees it), keeping cookies; no redirect followed."""

    def __init__(self, kc, source: str):
        self.kc, self.source, self.cookies = kc, source, {}

    def request(self, method, path, form=None, headers=None, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.kc.web_port, timeout=15,
                                          source_address=(self.source, 0))
        headers = dict(headers or {})
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        for value in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            val = rest.split(";", 1)[0]
            if val in ("", '""'):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = val
        conn.close()
        return resp.status, resp.headers, text

    def login(self, username, password, next_path="/"):
        _, _, page = self.request("GET", "/login")
        token = CSRF_RE.search(page).group(1)
        return self.request("POST", "/login", {"csrf_token": token, "username": username,
                                                "password": password, "next": next_path})

    def csrf(self):
        m = CSRF_RE.search(self.request("GET", "/cases")[2])     # every role may open it ("/" leads on)
        return m.group(1) if m else None
