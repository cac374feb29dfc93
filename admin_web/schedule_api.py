"""Opening hours over HTTP: the JSON API and the admin pages.

API (bearer token or session; PUT needs admin):
  GET  /api/schedule                          every district and queue: open now?
  GET  /api/schedule/{district}               the stored schedule body
  GET  /api/schedule/{district}/status?at=&queue=   {"open", "reason", "next_open", ...}
  GET  /api/schedule/{district}/calendar?year=      holidays, eves, short days, exceptions
  PUT  /api/schedule/{district}               replace week and exceptions (422 + problems)
  GET  /api/after-hours?due=now&open=1        voice messages and callback requests
  POST /api/after-hours/{id}/done             mark one handled
Pages (admin): /admin/schedule, /admin/schedule/{district}
"""
from __future__ import annotations

import json
from datetime import date
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from kc import queries

from schedules import schedule_store
from kc.web_store import user_districts
from kc.clock import iso, parse_iso
from kc.audit import audit
from kc.errors import InvalidInput, NotFound
from cases.access import may_read
from schedules.hours import validate_policy
from schedules.schedule import DAYS, Schedule, ScheduleError, week_to_json

from kc.i18n import gettext

from .auth import agent_district, require_page_role, require_role
from .errors import read_json
from .keys import CALL_DATA, CLOCK, DISTRIBUTOR, STORE

routes = web.RouteTableDef()

READERS = ("admin", "supervisor", "manager", "agent")
REPLACED = ("week", "exceptions")           # always replaced by PUT
KEPT = ("queues", "holidays", "eves", "before_holiday", "always_open", "after_hours")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def _at(request: web.Request):
    raw = request.query.get("at")
    if not raw:
        return request.app[CLOCK]()
    try:
        return parse_iso(raw)
    except ValueError:
        raise InvalidInput(f"at={raw!r} is not an ISO 8601 time") from None


async def _schedule(request: web.Request, district: str) -> tuple[str, dict | None, Schedule | None]:
    store = request.app[STORE]
    name = await store.run(schedule_store.require_district, district)
    body = await store.run(schedule_store.get_body, district)
    return name, body, (Schedule.from_dict(body) if body is not None else None)


def _status_json(sched: Schedule | None, at, queue: str | None = None) -> dict[str, Any]:
    if sched is None:   # no schedule: always open
        return {"open": True, "reason": "no_schedule", "next_open": iso(at), "detail": None,
                "closes_at": None, "message": {}}
    return sched.status(at, queue).to_json()


async def overview(request: web.Request) -> list[dict[str, Any]]:
    """Open now? for every district and each of its queues (skills), on the hours the calls
    decide on (held in memory)."""
    at = _at(request)
    hours = (await request.app[CALL_DATA].current()).hours
    skills = [s.id for s in await request.app[STORE].run(queries.list_skills)]
    out = []
    for district, held in hours.districts.items():
        out.append({
            "district": district, "name": held.name, **_status_json(held.schedule, at),
            "route_to": list(held.policy.route_to),
            "queues": [{"skill": skill, **_status_json(held.schedule, at, skill)} for skill in skills],
        })
    return out


@routes.get("/api/schedule")
async def all_status(request: web.Request) -> web.Response:
    require_role(request, *READERS)
    return _json({"at": iso(_at(request)), "districts": await overview(request)})


@routes.get("/api/schedule/{district}")
async def get_schedule(request: web.Request) -> web.Response:
    require_role(request, *READERS)
    district = request.match_info["district"]
    name, body, _ = await _schedule(request, district)
    return _json({"district": district, "name": name, "schedule": body})


@routes.get("/api/schedule/{district}/status")
async def status(request: web.Request) -> web.Response:
    require_role(request, *READERS)
    _, _, sched = await _schedule(request, request.match_info["district"])
    return _json(_status_json(sched, _at(request), request.query.get("queue") or None))


@routes.get("/api/schedule/{district}/calendar")
async def calendar(request: web.Request) -> web.Response:
    require_role(request, *READERS)
    _, _, sched = await _schedule(request, request.match_info["district"])
    try:
        year = int(request.query.get("year") or _at(request).year)
        if not 1970 <= year <= 2100:
            raise ValueError
    except ValueError:
        raise InvalidInput("year must be a year like 2026") from None
    sched = sched or Schedule.from_dict({"always_open": True})
    return _json({"year": year, "days": sched.calendar(year)})


async def replace_schedule(request: web.Request, district: str, incoming: Any,
                           username: str) -> tuple[dict | None, list[str]]:
    """Validate and store; returns (stored body, problems)."""
    store = request.app[STORE]
    _, current, _ = await _schedule(request, district)
    if not isinstance(incoming, dict):
        return None, ["the body must be a JSON object with week and exceptions"]
    problems = [f"missing key {k!r}" for k in REPLACED if k not in incoming]
    body = {k: v for k, v in (current or {}).items() if k in KEPT}
    body.update(incoming)
    try:
        Schedule.from_dict(body)
    except ScheduleError as exc:
        problems += exc.problems
    if "after_hours" in body:
        names = await store.run(schedule_store.district_names)
        problems += validate_policy(body["after_hours"], set(names), district)
    if problems:
        return None, problems
    clock = request.app[CLOCK]
    before = await store.run(schedule_store.put_body, district, body, username, iso(clock()))
    try:
        from kc.audit import audit
        await audit(store, clock, username, "schedule.replace", district, before, body)
    except ImportError:   # the audit log is another area's; absent in older trees
        pass
    return body, []


@routes.put("/api/schedule/{district}")
async def put_schedule(request: web.Request) -> web.Response:
    user = require_role(request, "admin")
    district = request.match_info["district"]
    try:
        incoming = await read_json(request)
    except InvalidInput as exc:
        return _json({"error": str(exc), "problems": [str(exc)]}, 422)
    body, problems = await replace_schedule(request, district, incoming, user["username"])
    if problems:
        return _json({"error": "invalid schedule", "problems": problems}, 422)
    sched = Schedule.from_dict(body)
    return _json({"district": district, "schedule": body,
                  "status": _status_json(sched, request.app[CLOCK]())})


@routes.patch("/api/schedule/{district}")
async def patch_schedule(request: web.Request) -> web.Response:
    """Change only the keys sent and keep the rest: `{"always_open": true}` keeps the week,
    the exceptions and the after-hours policy, so `{"always_open": false}` brings them back."""
    user = require_role(request, "admin")
    district = request.match_info["district"]
    try:
        incoming = await read_json(request)
    except InvalidInput as exc:
        return _json({"error": str(exc), "problems": [str(exc)]}, 422)
    if not isinstance(incoming, dict):
        return _json({"error": "invalid schedule", "problems": ["the body must be a JSON object"]}, 422)
    _, current, _ = await _schedule(request, district)
    body, problems = await replace_schedule(request, district, {**(current or {}), **incoming},
                                            user["username"])
    if problems:
        return _json({"error": "invalid schedule", "problems": problems}, 422)
    return _json({"district": district, "schedule": body,
                  "status": _status_json(Schedule.from_dict(body), request.app[CLOCK]())})


@routes.get("/api/after-hours")
async def after_hours_requests(request: web.Request) -> web.Response:
    user = require_role(request, *READERS)
    due = request.query.get("due")
    due_before = None
    if due == "now":
        due_before = iso(request.app[CLOCK]())
    elif due:
        try:
            due_before = iso(parse_iso(due))
        except ValueError:
            raise InvalidInput(f"due={due!r} is not 'now' or an ISO 8601 time") from None
    rows = await request.app[STORE].run(schedule_store.list_requests, due_before,
                                        request.query.get("open") not in ("1", "true"))
    allowed = _request_districts(request, user)
    if allowed is not None:   # callers' numbers and messages: only for their district's staff
        rows = [r for r in rows if r.get("district") in allowed]
    return _json({"requests": [_request_view(request, user, r) for r in rows]})


# What of an after-hours request identifies the caller or holds their voice.
_PERSONAL = ("caller", "caller_name", "callback_number", "recording")


def _request_view(request: web.Request, user: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """A confidential (e.g. social-services) request in full only to agents cleared for its
    district and supervisors of it; others see that it exists, without the caller or message."""
    if not row.get("confidential") or may_read(user, row.get("district"), _clearance(request, user)):
        return {**row, "redacted": False}
    return {**row, **{k: None for k in _PERSONAL}, "redacted": True}


def _clearance(request: web.Request, user: dict[str, Any]) -> tuple[str, ...]:
    rt = request.app[DISTRIBUTOR].agents.get(user.get("agent") or "")
    return tuple(rt.agent.cleared_for) if rt is not None and user["role"] == "agent" else ()


def _request_districts(request: web.Request, user: dict[str, Any]) -> set[str] | None:
    """Districts whose after-hours requests this user may see; None = all (admin, manager)."""
    if user["role"] == "supervisor":
        return set(user_districts(user))
    if user["role"] == "agent":
        district = agent_district(request, user)
        return {district} if district else set()
    return None


@routes.post("/api/after-hours/{request_id}/done")
async def after_hours_done(request: web.Request) -> web.Response:
    user = require_role(request, "admin", "supervisor", "agent")   # managers only read
    try:
        rid = int(request.match_info["request_id"])
    except ValueError:
        raise InvalidInput("request id must be a number") from None
    if not 0 < rid < 2 ** 63:
        raise NotFound(f"no after-hours request {rid}")
    store, clock = request.app[STORE], request.app[CLOCK]
    found = await store.run(schedule_store.get_request, rid)
    allowed = _request_districts(request, user)
    if allowed is not None and found.get("district") not in allowed:
        raise web.HTTPForbidden(text='{"error": "not a request of your district"}',
                                content_type="application/json")
    row = await store.run(schedule_store.mark_handled, rid, user["username"], iso(clock()))
    await audit(store, clock, user["username"], "after_hours.done", str(rid),
                {"handled_at": found.get("handled_at"), "handled_by": found.get("handled_by")},
                {"handled_at": row["handled_at"], "handled_by": row["handled_by"]})
    return _json(_request_view(request, user, {**row, "confidential": found.get("confidential")}))


# ------------------------------------------------------------------------------ pages

@routes.get("/admin/schedule")
@aiohttp_jinja2.template("schedule_overview.html")
async def page_overview(request: web.Request) -> dict[str, Any]:
    require_page_role(request, "admin")
    return {"districts": await overview(request), "at": _at(request)}


def _week_form(week: dict[str, list[list[str]]]) -> dict[str, str]:
    return {d: ", ".join(f"{s}-{e}" for s, e in week.get(d, [])) for d in DAYS}


def _parse_week_form(form) -> dict[str, list[list[str]]]:
    week = {}
    for d in DAYS:
        raw = (form.get(f"day_{d}") or "").strip()
        spans = [p.strip() for p in raw.split(",") if p.strip()]
        week[d] = [p.split("-", 1) if "-" in p else [p, ""] for p in spans]
    return week


def _parse_exceptions_form(raw: str) -> tuple[list[dict[str, Any]], list[str]]:
    """One line per day: `2026-12-23 | 08:00-12:00 | message` (no hours = closed)."""
    out, problems = [], []
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) > 3:
            problems.append(gettext("exceptions line %(n)s: write date | hours | message") % {"n": n})
            continue
        parts += [""] * (3 - len(parts))
        hours = [h.strip().split("-", 1) for h in parts[1].split(",") if h.strip()]
        item: dict[str, Any] = {"date": parts[0], "hours": hours}
        if parts[2]:
            item["message"] = {"sv": parts[2]}
        out.append(item)
    return out, problems


def _exceptions_text(items: list[dict[str, Any]]) -> str:
    lines = []
    for e in items:
        hours = ", ".join(f"{s}-{t}" for s, t in e.get("hours") or [])
        msg = e.get("message") or ""
        msg = msg if isinstance(msg, str) else (msg.get("sv") or next(iter(msg.values()), ""))
        lines.append(f"{e.get('date')} | {hours} | {msg}".rstrip(" |"))
    return "\n".join(lines)


async def _district_page(request: web.Request, problems: list[str] | None = None,
                         form_week: dict | None = None, form_exc: str | None = None,
                         saved: bool = False, form_always: bool | None = None) -> dict[str, Any]:
    district = request.match_info["district"]
    name, body, sched = await _schedule(request, district)
    at = request.app[CLOCK]()
    try:
        year = int(request.query.get("year") or at.year)
    except ValueError:
        year = at.year
    shown = sched or Schedule.from_dict({"always_open": True})
    week = week_to_json(shown.week) if body else {d: [] for d in DAYS}
    days = {d["date"]: d for d in shown.calendar(year)}
    months = []
    for month in range(1, 13):
        first = date(year, month, 1)
        cells = [None] * first.weekday()
        day = first
        while day.month == month:
            cells.append({"day": day.day, "date": day.isoformat(), "info": days.get(day.isoformat()),
                          "weekend": day.weekday() >= 5})
            day = date.fromordinal(day.toordinal() + 1)
        months.append({"month": month, "cells": cells})
    return {
        "district": district, "name": name, "body": body, "year": year,
        "status": _status_json(sched, at), "always_open": bool(body and body.get("always_open")) if form_always is None else form_always,
        "week": form_week or _week_form(week), "days": DAYS,
        "exceptions_text": form_exc if form_exc is not None else _exceptions_text((body or {}).get("exceptions", [])),
        "calendar": [d for d in days.values()], "months": months,
        "problems": problems or [], "saved": saved,
        "queues": {k: week_to_json(v) for k, v in shown.queues.items()},
    }


@routes.get("/admin/schedule/{district}")
@aiohttp_jinja2.template("schedule_district.html")
async def page_district(request: web.Request) -> dict[str, Any]:
    require_page_role(request, "admin")
    return await _district_page(request, saved=request.query.get("saved") == "1")


@routes.post("/admin/schedule/{district}")
async def page_district_save(request: web.Request) -> web.StreamResponse:
    user = require_page_role(request, "admin")
    district = request.match_info["district"]
    form = await request.post()
    week = _parse_week_form(form)
    exceptions, problems = _parse_exceptions_form(str(form.get("exceptions") or ""))
    incoming = {"week": week, "exceptions": exceptions,
                "always_open": form.get("always_open") == "on"}
    if not problems:
        _, problems = await replace_schedule(request, district, incoming, user["username"])
    if problems:
        ctx = await _district_page(request, problems, {d: str(form.get(f"day_{d}") or "") for d in DAYS},
                                   str(form.get("exceptions") or ""), form_always=incoming["always_open"])
        return aiohttp_jinja2.render_template("schedule_district.html", request, ctx, status=422)
    raise web.HTTPSeeOther(f"/admin/schedule/{district}?saved=1")
