"""Log-in and log-out, users and API tokens, the audit log."""
from __future__ import annotations

import hmac
import re
import secrets
from datetime import timedelta

import aiohttp_jinja2
from aiohttp import web

from kc import queries, web_store
from kc.audit import audit
from kc.clock import iso, parse_iso
from kc.domain import Role
from kc.errors import InvalidInput
from kc.passwords import hash_password, token_hash, verify_password

from .auth import (PRELOGIN_COOKIE, end_session, require_page_role, safe_next, start_session)
from .keys import CLOCK, DISTRIBUTOR, STORE, USER

routes = web.RouteTableDef()

LOCK_AFTER = 5
LOCK_MINUTES = 15
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


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    form = await request.post()
    sent, cookie = str(form.get("csrf_token", "")), request.cookies.get(PRELOGIN_COOKIE, "")
    if not sent or not cookie or not hmac.compare_digest(sent, cookie):
        return _render_login(request, "The form expired. Please try again.", 403)
    username = str(form.get("username", "")).strip().lower()[:64]
    password = str(form.get("password", ""))[:256]
    store, clock = request.app[STORE], request.app[CLOCK]
    user = await store.run(web_store.get_user, username) if username else None
    now = clock()
    if user and user["locked_until"] and parse_iso(user["locked_until"]) > now:
        await audit(store, clock, username, "login.locked", username)
        return _render_login(request, "This account is locked after repeated failed log-ins. "
                             f"Try again in {LOCK_MINUTES} minutes or ask an administrator.",
                             429, username)
    ok = verify_password(password, user["password_hash"] if user else _DUMMY_HASH) and user is not None
    if not ok:
        if user:
            failures = await store.run(web_store.record_login_failure, username, LOCK_AFTER,
                                       iso(now + timedelta(minutes=LOCK_MINUTES)))
            if failures >= LOCK_AFTER:
                await audit(store, clock, username, "login.lockout", username,
                            None, {"failures": failures})
        return _render_login(request, "Wrong user name or password.", 401, username)
    await store.run(web_store.reset_login_failures, username)
    resp = web.HTTPFound(safe_next(str(form.get("next", "")) or request.query.get("next")))
    await start_session(request, resp, username)
    resp.del_cookie(PRELOGIN_COOKIE, path="/login")
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
    store = request.app[STORE]
    return {"users": await store.run(web_store.list_users),
            "tokens": await store.run(web_store.list_tokens),
            "roles": [r.value for r in Role], "agents": sorted(request.app[DISTRIBUTOR].agents),
            "districts": await store.run(queries.list_districts)}


async def _form_districts(request: web.Request, form) -> list[str]:
    """The ticked `districts` (supervised districts), each a known district."""
    chosen = [v for v in form.getall("districts", []) if isinstance(v, str)]
    known = {d.id for d in await request.app[STORE].run(queries.list_districts)}
    unknown = [d for d in chosen if d not in known]
    if unknown:
        raise InvalidInput(f"districts: no district {unknown[0][:40]!r}")
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
        problems.append("user name: 2–32 of a-z, 0-9, . _ - (starting with a letter or digit)")
    if role not in {r.value for r in Role}:
        problems.append("role: choose one of the listed roles")
    if len(password) < 10:
        problems.append("password: at least 10 characters")
    if agent and agent not in request.app[DISTRIBUTOR].agents:
        problems.append("agent: no such agent")
    districts = await _form_districts(request, form)
    store = request.app[STORE]
    if not problems and await store.run(web_store.get_user, username):
        problems.append("user name: already taken")
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
        raise web.HTTPNotFound(text="no such user")
    form = await request.post()
    action = _form_text(form, "action")
    before = {"role": user["role"], "locked_until": user["locked_until"],
              "districts": list(web_store.user_districts(user))}
    if action == "unlock":
        await store.run(web_store.reset_login_failures, username)
        after = {"locked_until": None}
    elif action == "password":
        password = _form_text(form, "password", 256)
        if len(password) < 10:
            raise InvalidInput("password: at least 10 characters")
        await store.run(web_store.update_user, username, password_hash=hash_password(password))
        after = {"password": "changed"}
    elif action == "role":
        role = _form_text(form, "role")
        if role not in {r.value for r in Role}:
            raise InvalidInput("role: choose one of the listed roles")
        await store.run(web_store.update_user, username, role=role)
        after = {"role": role}
    elif action == "districts":   # the districts this supervisor supervises
        districts = await _form_districts(request, form)
        await store.run(web_store.set_user_districts, username, districts)
        after = {"districts": districts}
    else:
        raise InvalidInput("unknown action")
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
        raise InvalidInput("user: no such user")
    token = secrets.token_urlsafe(32)
    await store.run(web_store.create_token, token_hash(token), username, label, iso(clock()))
    await audit(store, clock, admin["username"], "token.create", username, None, {"label": label})
    return {"token": token, "username": username, "label": label}


@routes.post("/admin/tokens/{token_id}/delete")
async def delete_token(request: web.Request) -> web.Response:
    admin = require_page_role(request, "admin")
    token_id = request.match_info["token_id"]
    if not re.fullmatch(r"[0-9a-f]{12}", token_id):
        raise web.HTTPNotFound(text="no such token")
    store = request.app[STORE]
    if not await store.run(web_store.delete_token, token_id):
        raise web.HTTPNotFound(text="no such token")
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
