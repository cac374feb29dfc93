"""Cases on the site and in the API, their reference lists (categories, departments, knowledge
base) for administrators, the public contact form, the person export and the first-contact
resolution report section."""
from __future__ import annotations

import hmac
import re
import secrets
import time
from collections import deque
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from cases import access, categories, knowledge, records, retention
from cases.fcr import fcr
from cases.email import is_mailbox
from cases.messages import create_written_contact
from kc import queries
from kc.audit import audit
from kc.clock import iso, parse_iso
from kc.errors import InvalidInput, NotFound

from kc.i18n import gettext as _

from .auth import VIA, csrf_token, require_page_role, require_role, secure_cookies
from .desk import _dumps, _int, _payload, _text
from .keys import CLOCK, DISTRIBUTOR, MAIL, SETTINGS, STORE

routes = web.RouteTableDef()
CASE_READERS = ("admin", "supervisor", "manager", "agent")
REPORT_READERS = ("admin", "supervisor", "manager")
FORM_COOKIE = "kc_form"
PHONE = re.compile(r"\+?[0-9][0-9 -]{4,22}[0-9]")


def _since(raw: str | None, name: str = "since") -> str | None:
    if not raw:
        return None
    try:
        return iso(parse_iso(raw))
    except ValueError:
        raise InvalidInput(_("%(field)s: %(value)s is not a date or a time") % {"field": name, "value": repr(raw)}) from None


async def _visible(request: web.Request, user: dict[str, Any],
                   rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each case as this user may see it; every confidential case shown in full is audited."""
    store, clock = request.app[STORE], request.app[CLOCK]
    cleared = await store.run(access.agent_clearance, user.get("agent"))
    out = []
    for row in rows:
        full = not row["confidential"] or access.may_read(user, row["district"], cleared)
        if row["confidential"] and full:
            await audit(store, clock, user["username"], "case.view", str(row["id"]),
                        None, {"via": request.path})
        out.append(access.case_view(row, full))
    return out


# ---------------------------------------------------------------------------- API

@routes.get("/api/cases")
async def api_cases(request: web.Request) -> web.Response:
    user = require_role(request, *CASE_READERS)
    since = _since(request.query.get("since"))
    try:
        limit = min(max(int(request.query.get("limit", "1000")), 1), 10000)
    except ValueError:
        raise InvalidInput("limit must be a number") from None
    rows = await request.app[STORE].run(records.list_cases, since, limit)
    return web.json_response({"cases": await _visible(request, user, rows)}, dumps=_dumps)


@routes.get("/api/cases/fcr")
async def api_fcr(request: web.Request) -> web.Response:
    require_role(request, *REPORT_READERS)
    data = await request.app[STORE].run(fcr, _since(request.query.get("since")),
                                        _since(request.query.get("until"), "until"))
    return web.json_response(data, dumps=_dumps)


@routes.get(r"/api/cases/{case_id:\d+}")
async def api_case(request: web.Request) -> web.Response:
    user = require_role(request, *CASE_READERS)
    row = await request.app[STORE].run(records.get_case, int(request.match_info["case_id"]))
    view = (await _visible(request, user, [row]))[0]
    if view["redacted"]:
        return web.json_response({"error": "confidential case: you are not cleared for it",
                                  "case": view}, status=403, dumps=_dumps)
    return web.json_response(view, dumps=_dumps)


@routes.get("/api/export")
async def api_export(request: web.Request) -> web.Response:
    """All contacts, messages and cases of one number or e-mail address (admins and supervisors;
    audited). Confidential contacts are complete only for users cleared for them."""
    user = require_role(request, "admin", "supervisor")
    who = request.query.get("person", "")
    data = await request.app[STORE].run(retention.export_person, who)
    cleared = await request.app[STORE].run(access.agent_clearance, user.get("agent"))
    for contact in data["contacts"]:
        if contact["confidential"] and not access.may_read(user, contact["district"], cleared):
            contact.update(caller=None, caller_name=None, messages=[], withheld="confidential")
            if contact["case"]:
                contact["case"] = access.case_view(contact["case"], False)
    await audit(request.app[STORE], request.app[CLOCK], user["username"], "person.export",
                who[:200], None, {"contacts": len(data["contacts"])})
    return web.json_response(data, dumps=_dumps, headers={
        "Content-Disposition": 'attachment; filename="kontakter.json"'})


# ---------------------------------------------------------------------------- case pages

@routes.get("/cases")
@aiohttp_jinja2.template("cases.html")
async def cases_page(request: web.Request) -> dict:
    user = require_page_role(request, *CASE_READERS)
    since = _since(request.query.get("since"))
    rows = await request.app[STORE].run(records.list_cases, since, 500)
    rows = list(reversed(rows))[:200]
    return {"cases": await _visible_quiet(request, user, rows)}


async def _visible_quiet(request: web.Request, user: dict[str, Any],
                         rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For lists: confidential cases only as existing (their content needs the case page)."""
    cleared = await request.app[STORE].run(access.agent_clearance, user.get("agent"))
    return [dict(access.case_view(r, not r["confidential"]),
                 may_open=not r["confidential"] or access.may_read(user, r["district"], cleared))
            for r in rows]


@routes.get(r"/cases/{case_id:\d+}")
async def case_page(request: web.Request) -> web.Response:
    user = require_page_role(request, *CASE_READERS)
    try:
        row = await request.app[STORE].run(records.get_case, int(request.match_info["case_id"]))
    except NotFound:
        raise web.HTTPNotFound(text=_("There is no such case."))
    view = (await _visible(request, user, [row]))[0]
    return aiohttp_jinja2.render_template("case.html", request, {"case": view},
                                          status=403 if view["redacted"] else 200)


# ---------------------------------------------------------------------------- admin: reference lists

@routes.get("/admin/casework")
@aiohttp_jinja2.template("casework_admin.html")
async def casework_admin(request: web.Request) -> dict:
    require_page_role(request, "admin")
    store = request.app[STORE]
    return {"categories": await store.run(categories.list_categories),
            "departments": await store.run(categories.list_departments),
            "skills": await store.run(queries.list_skills)}


@routes.post("/admin/casework/categories")
async def save_category(request: web.Request) -> web.Response:
    admin = require_page_role(request, "admin")
    form = await _payload(request)
    cat_id = _int(form.get("id"), "id")
    new_id = await request.app[STORE].run(
        categories.save_category, _text(form.get("name"), 200), _int(form.get("parent_id"), "parent"),
        _text(form.get("skill"), 40) or None, form.get("confidential") in ("1", "on", True),
        cat_id, form.get("active", "1") in ("1", "on", True))
    await audit(request.app[STORE], request.app[CLOCK], admin["username"],
                "category.save", str(new_id), None, {k: form.get(k) for k in ("name", "parent_id", "skill", "confidential", "active")})
    raise web.HTTPFound("/admin/casework")


@routes.post("/admin/casework/departments")
async def save_department(request: web.Request) -> web.Response:
    admin = require_page_role(request, "admin")
    form = await _payload(request)
    dept_id = _int(form.get("id"), "id")
    new_id = await request.app[STORE].run(categories.save_department, _text(form.get("name"), 200),
                                          dept_id, form.get("active", "1") in ("1", "on", True))
    await audit(request.app[STORE], request.app[CLOCK], admin["username"], "department.save",
                str(new_id), None, {"name": form.get("name"), "active": form.get("active", "1")})
    raise web.HTTPFound("/admin/casework")


@routes.get("/admin/kb")
@aiohttp_jinja2.template("kb_admin.html")
async def kb_admin(request: web.Request) -> dict:
    require_page_role(request, "admin")
    store = request.app[STORE]
    q = request.query.get("q", "")[:200]
    articles = await store.run(knowledge.kb_search, q) if q.strip() else await store.run(knowledge.list_kb)
    edit = None
    if request.query.get("edit"):
        edit = next((a for a in await store.run(knowledge.list_kb)
                     if str(a["id"]) == request.query["edit"]), None)
    return {"articles": articles, "q": q, "edit": edit,
            "categories": await store.run(categories.list_categories, True)}


@routes.post("/admin/kb")
async def kb_save(request: web.Request) -> web.Response:
    admin = require_page_role(request, "admin")
    form = await _payload(request)
    store, clock = request.app[STORE], request.app[CLOCK]
    article_id = _int(form.get("id"), "id")
    if form.get("action") == "delete" and article_id:
        await store.run(knowledge.delete_kb, article_id)
        await audit(store, clock, admin["username"], "kb.delete", str(article_id))
        raise web.HTTPFound("/admin/kb")
    new_id = await store.run(knowledge.save_kb, _text(form.get("question"), 400),
                             _text(form.get("answer"), 6000), _int(form.get("category_id"), "category"),
                             admin["username"], iso(clock()), article_id)
    await audit(store, clock, admin["username"], "kb.save", str(new_id), None,
                {"question": form.get("question")})
    raise web.HTTPFound("/admin/kb")


# ---------------------------------------------------------------------------- public contact form

class RateLimiter:
    """At most `limit` events per `window` seconds per key (sliding window, in memory)."""

    def __init__(self, limit: int, window: float, max_keys: int = 10000):
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self.events: dict[str, deque] = {}

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if len(self.events) > self.max_keys:     # forget idle clients
            for k in [k for k, q in self.events.items() if not q or q[-1] < now - self.window]:
                del self.events[k]
        q = self.events.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        if len(q) >= self.limit:
            return False
        q.append(now)
        return True


LIMITER = web.AppKey("form_limiter", RateLimiter)


def _form_context(request: web.Request, token: str, **extra: Any) -> dict[str, Any]:
    return {"form_token": token, "values": {}, "error": None, "sent": False, **extra}


async def _render_form(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    # Logged-in users already have a session CSRF token (the middleware checks it); anonymous
    # visitors get a double-submit token: the same random value as cookie and form field.
    if request.get(VIA) == "session":
        token, cookie = csrf_token(request), None
    else:
        token = cookie = secrets.token_urlsafe(24)
    store = request.app[STORE]
    ctx = _form_context(request, token, districts=await store.run(queries.list_districts),
                        categories=[c for c in await store.run(categories.list_categories, True)
                                    if c["depth"] == 0], **extra)
    resp = aiohttp_jinja2.render_template("contact_form.html", request, ctx, status=status)
    if cookie:
        resp.set_cookie(FORM_COOKIE, cookie, httponly=True, samesite="Strict", path="/kontakt",
                        secure=secure_cookies(request))
    return resp


@routes.get("/kontakt")
async def contact_form(request: web.Request) -> web.Response:
    return await _render_form(request)


@routes.post("/kontakt")
async def contact_submit(request: web.Request) -> web.Response:
    form = await request.post()
    if request.get(VIA) != "session":   # (a session's CSRF token was checked by the middleware)
        sent = form.get("csrf_token")
        cookie = request.cookies.get(FORM_COOKIE, "")
        if not isinstance(sent, str) or not sent or not cookie or not hmac.compare_digest(sent, cookie):
            return await _render_form(request, 403, error=_("The form expired. Please try again."))
    # Counted only once the post carries a valid token: bogus posts cannot use up the limit
    # of everyone behind the same address.
    key = request.remote or "unknown"
    if not request.app[LIMITER].allow(key):
        return web.Response(status=429, text=_("Too many messages from your address. Please try again later."), headers={"Retry-After": "600"})
    values = {k: _text(form.get(k), 6000) for k in ("name", "reply_to", "district", "category_id", "message")}
    store, clock = request.app[STORE], request.app[CLOCK]
    districts = {d.id for d in await store.run(queries.list_districts)}
    tops = {str(c["id"]): c for c in await store.run(categories.list_categories, True) if c["depth"] == 0}
    problems = []
    if values["district"] not in districts:
        problems.append(_("choose a district"))
    if not 5 <= len(values["message"]) <= 5000:
        problems.append(_("write your message (5–5000 characters)"))
    reply_to = values["reply_to"][:200]
    if reply_to and not (is_mailbox(reply_to) or PHONE.fullmatch(reply_to)):
        problems.append(_("address for the answer: an e-mail address or a telephone number"))
    if values["category_id"] and values["category_id"] not in tops:
        problems.append(_("choose a matter in the list"))
    if problems:
        return await _render_form(request, 422, error="; ".join(problems).capitalize() + ".",
                                  values=values)
    skill = tops[values["category_id"]]["skill"] if values["category_id"] else None
    skill = skill or (await request.app[MAIL].current())[1](values["message"])
    contact_id = await store.run(
        create_written_contact, channel="web", district=values["district"],
        caller=reply_to.lower() if "@" in reply_to else (reply_to.replace(" ", "") or None),
        caller_name=values["name"][:100] or None, skill=skill, at=iso(clock()),
        subject="Kontaktformulär", body=values["message"], queue_task=True)
    request.app[DISTRIBUTOR].changed()         # the task runner, the wallboard
    return await _render_form(request, 200, sent=True, contact_id=contact_id)


# ---------------------------------------------------------------------------- report section

def fcr_chart(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for the SVG bar chart (one section per dimension), 70 % goal line drawn across."""
    out = []
    for title, key in (("Stadsdel", "by_district"), ("Kategori", "by_category"), ("Kanal", "by_channel")):
        out.append({"title": title, "rows": data[key]})
    return out


@routes.get("/reports/fcr")
@aiohttp_jinja2.template("fcr_report.html")
async def fcr_page(request: web.Request) -> dict:
    require_page_role(request, *REPORT_READERS)
    since = _since(request.query.get("since"))
    until = _since(request.query.get("until"), "until")
    data = await request.app[STORE].run(fcr, since, until)
    return {"fcr": data, "sections": fcr_chart(data), "since": request.query.get("since", ""),
            "until": request.query.get("until", "")}


@routes.get("/admin/export")
@aiohttp_jinja2.template("export.html")
async def export_page(request: web.Request) -> dict:
    require_page_role(request, "admin")
    return {"retention_days": request.app[SETTINGS].retention_days}
