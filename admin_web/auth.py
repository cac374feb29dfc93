"""Who is asking, and may they: bearer tokens for the API, session log-in for pages, CSRF.

One middleware resolves the user from either a bearer token or the session cookie; handlers
then call `require_role` (API: JSON 401/403) or `require_page_role` (pages: redirect to /login,
403 page). Unsafe requests authenticated by cookie must carry the session's CSRF token (form
field `csrf_token` or header `X-CSRF-Token`); bearer requests cannot be forged by a browser.
"""
from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Any, Awaitable, Callable
from urllib.parse import quote, urlsplit

from aiohttp import web

from kc import i18n, queries, web_store
from kc.clock import iso
from kc.passwords import token_hash

from . import words
from .errors import json_error
from .keys import CLOCK, DISTRIBUTOR, SETTINGS, STORE, STREAMS, USER

PUBLIC_API = {"/api/health", "/api/openapi.json"}
OWN_ACCESS = {"/metrics"}  # no user: checks its own address allow-list or token (metrics_route)
SESSION_COOKIE = "kc_session"
PRELOGIN_COOKIE = "kc_prelogin"
SESSION_HOURS = 12
VIA = "kc_auth_via"        # request key: "bearer" | "session"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
CSRF_EXEMPT = {"/login"}   # checked by its own double-submit cookie


async def _user_from_session(request: web.Request) -> dict[str, Any] | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie or len(cookie) > 100:
        return None
    now = iso(request.app[CLOCK]())
    return await request.app[STORE].read(web_store.session_user, token_hash(cookie), now)


def current_user(request: web.Request) -> dict[str, Any] | None:
    return request.get(USER)


def csrf_token(request: web.Request) -> str:
    user = request.get(USER)
    return user["csrf"] if user and "csrf" in user else ""


@web.middleware
async def authenticate(request: web.Request,
                       handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    if request.path in OWN_ACCESS:
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    user = None
    if scheme.lower() == "bearer" and token.strip():
        user = await request.app[STORE].read(queries.user_for_token, token_hash(token.strip()))
        if user is None:
            return _unauthorized()
        request[VIA] = "bearer"
    else:
        user = await _user_from_session(request)
        if user is not None:
            request[VIA] = "session"
    if user is not None:
        request[USER] = user
        if user.get("language") and not request.path.startswith("/api/"):
            i18n.use(user["language"])   # the user's own choice (admin_web/language.py)
    if request.path.startswith("/api/") and request.path not in PUBLIC_API and user is None:
        return _unauthorized()
    if request.method in UNSAFE and request.get(VIA) == "session" and request.path not in CSRF_EXEMPT:
        sent = request.headers.get("X-CSRF-Token")
        if sent is None and request.content_type in (
                "application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else None
        if not sent or not hmac.compare_digest(sent, user["csrf"]):
            if request.path.startswith("/api/"):
                return json_error(403, "missing or wrong CSRF token")
            raise web.HTTPForbidden(text=i18n.gettext(
                "The form has expired (its security token is missing or wrong). Reload the "
                "page and try again."))
    return await handler(request)


def secure_cookies(request: web.Request) -> bool:
    """Cookies are `Secure` when the request came by HTTPS (also through a trusted proxy) or
    `KC_SECURE_COOKIES` says so."""
    return request.app[SETTINGS].secure_cookies or request.secure


def _unauthorized() -> web.Response:
    resp = json_error(401, "missing or invalid bearer token")
    resp.headers["WWW-Authenticate"] = 'Bearer realm="kommuncentral"'
    return resp


def require_role(request: web.Request, *roles: str) -> dict[str, Any]:
    """API routes: JSON 401 when anonymous, 403 when the role may not."""
    user = request.get(USER)
    if user is None:
        raise web.HTTPUnauthorized(text='{"error": "not authenticated"}',
                                   content_type="application/json")
    if roles and user["role"] not in roles:
        raise web.HTTPForbidden(text='{"error": "your role may not do this"}',
                                content_type="application/json")
    return user


def agent_district(request: web.Request, user: dict[str, Any]) -> str | None:
    """The district the user works in today, when they are an agent (a move for the day
    counts); None for other users."""
    rt = request.app[DISTRIBUTOR].agents.get(user.get("agent") or "")
    return rt.agent.district if rt is not None else None


def runs_agent(request: web.Request, user: dict[str, Any], agent_id: str,
               home: str | None = None, to: str | None = None) -> bool:
    """May this user change an agent's state or day (and move them to `to`)? Admins may; a
    supervisor only an agent whose district (today's, or `home`) they supervise, and only to
    a district they supervise."""
    if user["role"] == "admin":
        return True
    if user["role"] != "supervisor":
        return False
    mine = set(web_store.user_districts(user))
    rt = request.app[DISTRIBUTOR].agents.get(agent_id)
    current = rt.agent.district if rt is not None else None
    return bool({current, home} & mine) and (to is None or to in mine)


def require_page_role(request: web.Request, *roles: str) -> dict[str, Any]:
    """Pages: anonymous users go to /login and come back; a wrong role gets 403."""
    user = request.get(USER)
    if user is None:
        raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='')}")
    if roles and user["role"] not in roles:
        raise web.HTTPForbidden(text=i18n.gettext("This page is not for your role (%(role)s).")
                                % {"role": words.word(user["role"])})
    return user


def safe_next(value: str | None) -> str:
    """Only a local path may follow the log-in (no open redirect). Browsers drop tab, CR and LF
    from URLs and read a backslash as a slash, so `/<TAB>/evil.example` would become
    `//evil.example`: any control character, space or backslash refuses the value."""
    if (not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//")
            or any(ch in "\\ " or ord(ch) < 0x20 or 0x7f <= ord(ch) <= 0x9f for ch in value)):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


async def start_session(request: web.Request, response: web.StreamResponse, username: str) -> None:
    clock = request.app[CLOCK]
    token = secrets.token_urlsafe(32)
    now = clock()
    await request.app[STORE].run(
        web_store.create_session, token_hash(token), username, secrets.token_urlsafe(24),
        iso(now), iso(now + timedelta(hours=SESSION_HOURS)))
    await request.app[STORE].run(web_store.delete_expired_sessions, iso(now))
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Lax",
                        secure=secure_cookies(request), path="/",
                        max_age=SESSION_HOURS * 3600)


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await request.app[STORE].run(web_store.delete_session, token_hash(cookie))
        await request.app[STREAMS].end([token_hash(cookie)])
    response.del_cookie(SESSION_COOKIE, path="/")


async def end_user_sessions(app: web.Application, username: str) -> int:
    """Every session of `username` ends now (its password or role changed), open desktops
    and wallboard streams included; returns how many there were."""
    hashes = await app[STORE].run(web_store.delete_user_sessions, username)
    await app[STREAMS].end(hashes)
    return len(hashes)


class Streams:
    """Long-lived responses (the desk's WebSocket, the wallboard's event stream) by the session
    they were opened with, so that ending a session ends them too."""

    def __init__(self) -> None:
        self._by_session: dict[str, dict[int, Callable[[], Awaitable[None] | None]]] = {}

    def add(self, request: web.Request, close: Callable[[], Awaitable[None] | None]) -> Callable[[], None]:
        """Register `close` for the request's session; returns the unregistering function."""
        session = (request.get(USER) or {}).get("session")
        if not session or request.get(VIA) != "session":
            return lambda: None
        key = id(close)
        self._by_session.setdefault(session, {})[key] = close

        def remove() -> None:
            closers = self._by_session.get(session, {})
            closers.pop(key, None)
            if not closers:
                self._by_session.pop(session, None)
        return remove

    async def end(self, sessions: list[str]) -> None:
        for session in sessions:
            for close in list(self._by_session.pop(session, {}).values()):
                result = close()
                if result is not None:
                    await result


async def template_context(request: web.Request) -> dict[str, Any]:
    """For every page: the user, the CSRF token for its forms, the language (`<html lang>`,
    the choices) and the names of districts and skills (`admin_web/words.py`'s filters)."""
    return {"user": request.get(USER), "csrf_token": csrf_token(request),
            "lang": i18n.current(), "site_languages": i18n.LANGUAGES,
            "names": ({} if request.path.startswith("/api/")
                      else await request.app[STORE].read(queries.names)),
            "here": request.path_qs}
