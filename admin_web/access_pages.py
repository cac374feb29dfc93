"""Log-in and log-out, users and API tokens, the audit log."""
from __future__ import annotations

import hmac
import re
import secrets
import time
from datetime import timedelta

import aiohttp_jinja2
from aiohttp import web

from kc import queries, web_store
from kc.audit import audit
from kc.clock import iso
from kc.domain import Role
from kc.errors import InvalidInput
from kc.passwords import hash_password, token_hash, verify_password

from kc.i18n import N_, gettext as _

from .auth import (PRELOGIN_COOKIE, end_session, end_user_sessions, require_page_role, safe_next,
                   secure_cookies, start_session)
from .keys import CLOCK, DEVICE_KEY, DISTRIBUTOR, SETTINGS, STORE, THROTTLE, USER
from .login_throttle import PER_ACCOUNT, device_cookie, trusted_device

routes = web.RouteTableDef()

LOCK_AFTER = PER_ACCOUNT
_DUMMY_HASH = hash_password(secrets.token_hex(8))
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")


def _render_login(request: web.Request, error: str | None = None, status: int = 200,
                  username: str = "") -> web.Response:
    token = secrets.token_urlsafe(24)
    resp = aiohttp_jinja2.render_template("login.html", request, {
        "error": error, "prelogin": token, "next": safe_next(request.query.get("next")),
        "username": username}, status=status)
    resp.set_cookie(PRELOGIN_COOKIE, token, httponly=True, samesite="Strict", path="/login")
    return resp


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    if request.get(USER):
        raise web.HTTPFound(safe_next(request.query.get("next")))
    return _render_login(request)


DEVICE_COOKIE = "kc_device"
WRONG = N_("Wrong user name or password.")


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    form = await request.post()
    sent, cookie = str(form.get("csrf_token", "")), request.cookies.get(PRELOGIN_COOKIE, "")
    if not sent or not cookie or not hmac.compare_digest(sent, cookie):
        return _render_login(request, _("The form expired. Please try again."), 403)
    username = str(form.get("username", "")).strip().lower()[:64]
    password = str(form.get("password", ""))[:256]
    store, clock, throttle = request.app[STORE], request.app[CLOCK], request.app[THROTTLE]
    client, now = request.remote or "?", time.monotonic()
    # A browser this user logged in from before passes the throttle: guessing by someone else
    # does not lock the real user out. Every answer below is the same for unknown user names.
    trusted = trusted_device(request.app[DEVICE_KEY], request.cookies.get(DEVICE_COOKIE), username)
    if not trusted:
        wait = throttle.client_wait(client, now)
        if wait:
            resp = _render_login(request, _("Too many failed log-ins from your address. Try again "
                                            "in %(n)s minutes.") % {"n": int(wait) // 60 + 1},
                                 429, username)
            resp.headers["Retry-After"] = str(int(wait) + 1)
            return resp
        if throttle.account_paused(username, now):
            await audit(store, clock, username or "-", "login.throttled", username, None,
                        {"client": client})
            return _render_login(request, _(WRONG), 401, username)
    user = await store.run(web_store.get_user, username) if username else None
    ok = verify_password(password, user["password_hash"] if user else _DUMMY_HASH) and user is not None
    if not ok:
        failures = throttle.failed(client, username, now)
        if failures == LOCK_AFTER:
            await audit(store, clock, username or "-", "login.throttle", username, None,
                        {"failures": failures, "client": client})
        return _render_login(request, _(WRONG), 401, username)
    resp = web.HTTPFound(safe_next(str(form.get("next", "")) or request.query.get("next")))
    await start_session(request, resp, username)
    resp.del_cookie(PRELOGIN_COOKIE, path="/login")
    resp.set_cookie(DEVICE_COOKIE, device_cookie(request.app[DEVICE_KEY], username),
                    httponly=True, samesite="Strict", path="/login", max_age=365 * 86400,
                    secure=secure_cookies(request))
    await audit(store, clock, username, "login", username)
    raise resp


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    resp = web.HTTPFound("/login")
    user = request.get(USER)
    await end_session(request, resp)
    if user:
        await audit(request.app[STORE], request.app[CLOCK], user["username"], "logout", user["username"])
    raise resp


# ---------------------------------------------------------------- users and tokens (admin)

@routes.get("/admin/users")
@aiohttp_jinja2.template("users.html")
async def users_page(request: web.Request) -> dict:
    require_page_role(request, "admin")
    store, throttle, now = request.app[STORE], request.app[THROTTLE], time.monotonic()
    users = await store.run(web_store.list_users)
    for u in users:   # the throttle's view (held in memory), not a lock in the database
        u["failed_logins"] = throttle.account_failures(u["username"], now)
        until = throttle.paused_until(u["username"], now)
        u["locked_until"] = (iso(request.app[CLOCK]() + timedelta(seconds=until - now))
                             if until else None)
    return {"users": users,
            "tokens": await store.run(web_store.list_tokens),
            "roles": [r.value for r in Role], "agents": sorted(request.app[DISTRIBUTOR].agents),
            "districts": await store.run(queries.list_districts)}


async def _form_districts(request: web.Request, form) -> list[str]:
    """The ticked `districts` (supervised districts), each a known district."""
    chosen = [v for v in form.getall("districts", []) if isinstance(v, str)]
    known = {d.id for d in await request.app[STORE].run(queries.list_districts)}
    unknown = [d for d in chosen if d not in known]
    if unknown:
        raise InvalidInput(_("districts: there is no district %(district)s") % {"district": repr(unknown[0][:40])})
    return sorted(set(chosen))


def _form_text(form, name: str, limit: int = 200) -> str:
    value = form.get(name, "")
    return value.strip()[:limit] if isinstance(value, str) else ""


@routes.post("/admin/users")
async def create_user(request: web.Request) -> web.Response:
    admin = require_page_role(request, "admin")
    form = await request.post()
    username, role = _form_text(form, "username").lower(), _form_text(form, "role")
    password, agent = _form_text(form, "password", 256), _form_text(form, "agent") or None
    problems = []
    if not USERNAME.match(username):
        problems.append(_("user name: 2–32 of a-z, 0-9, . _ - (starting with a letter or digit)"))
    if role not in {r.value for r in Role}:
        problems.append(_("role: choose one of the listed roles"))
    if len(password) < 10:
        problems.append(_("password: at least 10 characters"))
    if agent and agent not in request.app[DISTRIBUTOR].agents:
        problems.append(_("agent: there is no such agent"))
    districts = await _form_districts(request, form)
    store = request.app[STORE]
    if not problems and await store.run(web_store.get_user, username):
        problems.append(_("user name: already taken"))
    if problems:
        raise InvalidInput("; ".join(problems))
    await store.run(web_store.create_user, username, role, hash_password(password), agent,
                    districts)
    await audit(store, request.app[CLOCK], admin["username"], "user.create", username,
                None, {"role": role, "agent": agent, "districts": districts})
    raise web.HTTPFound("/admin/users")


@routes.post("/admin/users/{username}")
async def update_user(request: web.Request) -> web.Response:
    admin = require_page_role(request, "admin")
    username = request.match_info["username"]
    store = request.app[STORE]
    user = await store.run(web_store.get_user, username)
    if user is None:
        raise web.HTTPNotFound(text=_("There is no such user."))
    form = await request.post()
    action = _form_text(form, "action")
    before = {"role": user["role"], "locked_until": user["locked_until"],
              "districts": list(web_store.user_districts(user))}
    if action == "unlock":
        request.app[THROTTLE].clear(username)
        await store.run(web_store.reset_login_failures, username)
        after = {"locked_until": None}
    elif action == "password":
        password = _form_text(form, "password", 256)
        if len(password) < 10:
            raise InvalidInput(_("password: at least 10 characters"))
        await store.run(web_store.update_user, username, password_hash=hash_password(password))
        after = {"password": "changed", "sessions_ended": await end_user_sessions(request.app, username)}
    elif action == "role":
        role = _form_text(form, "role")
        if role not in {r.value for r in Role}:
            raise InvalidInput(_("role: choose one of the listed roles"))
        await store.run(web_store.update_user, username, role=role)
        after = {"role": role, "sessions_ended": await end_user_sessions(request.app, username)}
    elif action == "districts":   # the districts this supervisor supervises
        districts = await _form_districts(request, form)
        await store.run(web_store.set_user_districts, username, districts)
        after = {"districts": districts}
    else:
        raise InvalidInput(_("unknown action"))
    await audit(store, request.app[CLOCK], admin["username"], f"user.{action}", username, before, after)
    raise web.HTTPFound("/admin/users")


@routes.post("/admin/tokens")
@aiohttp_jinja2.template("token_created.html")
async def create_token(request: web.Request) -> dict:
    admin = require_page_role(request, "admin")
    form = await request.post()
    username, label = _form_text(form, "username"), _form_text(form, "label", 80)
    store, clock = request.app[STORE], request.app[CLOCK]
    if await store.run(web_store.get_user, username) is None:
        raise InvalidInput(_("user: there is no such user"))
    token = secrets.token_urlsafe(32)
    await store.run(web_store.create_token, token_hash(token), username, label, iso(clock()))
    await audit(store, clock, admin["username"], "token.create", username, None, {"label": label})
    return {"token": token, "username": username, "label": label}


@routes.post("/admin/tokens/{token_id}/delete")
async def delete_token(request: web.Request) -> web.Response:
    admin = require_page_role(request, "admin")
    token_id = request.match_info["token_id"]
    if not re.fullmatch(r"[0-9a-f]{12}", token_id):
        raise web.HTTPNotFound(text=_("There is no such token."))
    store = request.app[STORE]
    if not await store.run(web_store.delete_token, token_id):
        raise web.HTTPNotFound(text=_("There is no such token."))
    await audit(store, request.app[CLOCK], admin["username"], "token.delete", token_id)
    raise web.HTTPFound("/admin/users")


@routes.get("/admin/audit")
@aiohttp_jinja2.template("audit.html")
async def audit_page(request: web.Request) -> dict:
    require_page_role(request, "admin")
    try:
        page = max(0, int(request.query.get("page", "0")))
    except ValueError:
        page = 0
    rows = await request.app[STORE].run(web_store.list_audit, 100, page * 100)
    return {"rows": rows, "page": page}
