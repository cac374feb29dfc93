"""Queue configuration (skill × district): service-level target, wrap-up, overflow, priority.

Saved settings reach the ACD at once (`Distributor.reload_queues`): the next decision uses them.
  GET  /api/queues                         all roles but agent
  PUT  /api/queues/{skill}/{district}      admin; body as QueueConfig.to_dict()
  GET  /admin/queues/{skill}/{district}    admin, supervisor (read), admin edits
  POST /admin/queues/{skill}/{district}    admin
"""
from __future__ import annotations

from dataclasses import replace

import aiohttp_jinja2
from aiohttp import web

from kc import queries
from kc.audit import audit
from kc.errors import InvalidInput, NotFound
from kc.domain import EscalationStep
from kc.queue_config import (OverflowStep, QueueConfig, get_queue_config, list_queue_configs,
                             save_queue_config)

from kc.i18n import gettext as _

from .auth import require_page_role, require_role
from .errors import json_object
from .keys import CLOCK, DISTRIBUTOR, STORE

routes = web.RouteTableDef()


async def _known(request: web.Request, skill: str, district: str) -> None:
    store = request.app[STORE]
    if skill not in {s.id for s in await store.run(queries.list_skills)} or \
            district not in {d.id for d in await store.run(queries.list_districts)}:
        raise NotFound(_("there is no queue %(queue)s") % {"queue": f"{skill}@{district}"})


async def _current(request: web.Request, skill: str, district: str) -> QueueConfig:
    await _known(request, skill, district)
    try:
        return await request.app[STORE].run(get_queue_config, skill, district)
    except NotFound:
        return QueueConfig(skill, district)


async def _save(request: web.Request, username: str, config: QueueConfig, before: QueueConfig) -> None:
    districts = {d.id for d in await request.app[STORE].run(queries.list_districts)}
    for i, step in enumerate(config.overflow, 1):
        unknown = [d for d in step.districts if d != "*" and d not in districts]
        if unknown:
            raise InvalidInput(_("overflow step %(n)s: there is no district %(district)s")
                               % {"n": i, "district": ", ".join(unknown)})
    await request.app[STORE].run(save_queue_config, config)
    await request.app[DISTRIBUTOR].reload_queues()
    await audit(request.app[STORE], request.app[CLOCK], username, "queue.update", config.name,
                before.to_dict(), config.to_dict())


@routes.get("/api/queues")
async def api_queues(request: web.Request) -> web.Response:
    require_role(request, "admin", "supervisor", "manager")
    configs = await request.app[STORE].run(list_queue_configs)
    return web.json_response({"queues": [c.to_dict() for c in configs]})


@routes.put("/api/queues/{skill}/{district}")
async def api_put_queue(request: web.Request) -> web.Response:
    user = require_role(request, "admin")
    skill, district = request.match_info["skill"], request.match_info["district"]
    before = await _current(request, skill, district)
    body = await json_object(request)
    config = QueueConfig.from_dict({**body, "skill": skill, "district": district})
    await _save(request, user["username"], config, before)
    return web.json_response(config.to_dict())


def parse_overflow(text: str) -> tuple[OverflowStep, ...]:
    """One step a line: `30: <district id>` or `90: *` (every other district)."""
    steps = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        seconds, sep, names = line.partition(":")
        if not sep:
            raise InvalidInput(_("overflow line %(n)s: write 'seconds: district, district'") % {"n": n})
        try:
            after = float(seconds)
        except ValueError:
            raise InvalidInput(_("overflow line %(n)s: %(value)s is not a number of seconds")
                               % {"n": n, "value": repr(seconds.strip())}) from None
        districts = tuple(d.strip() for d in names.split(",") if d.strip())
        steps.append(OverflowStep(after, districts))
    return tuple(steps)


def parse_escalation(text: str) -> tuple[EscalationStep, ...]:
    """One step a line: `120: +5` (after 120 s waiting, the queue's priority plus 5)."""
    steps = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        seconds, sep, raise_by = line.partition(":")
        try:
            steps.append(EscalationStep(float(seconds), int(raise_by.strip().lstrip("+"))))
        except ValueError:
            raise InvalidInput(f"escalation line {n}: write 'seconds: +raise', e.g. '120: +5'") from None
        if not sep:
            raise InvalidInput(f"escalation line {n}: write 'seconds: +raise', e.g. '120: +5'")
    return tuple(steps)


def escalation_text(config: QueueConfig) -> str:
    return "\n".join(f"{s.after_seconds:g}: +{s.raise_by}" for s in config.escalation)


def overflow_text(config: QueueConfig) -> str:
    return "\n".join(f"{s.after_seconds:g}: {', '.join(s.districts)}" for s in config.overflow)


@routes.get("/admin/queues/{skill}/{district}")
async def queue_page(request: web.Request) -> web.Response:
    user = require_page_role(request, "admin", "supervisor")
    config = await _current(request, request.match_info["skill"], request.match_info["district"])
    return aiohttp_jinja2.render_template("queue_edit.html", request, {
        "q": config, "overflow": overflow_text(config), "escalation": escalation_text(config),
        "can_edit": user["role"] == "admin",
        "error": None, "saved": request.query.get("saved") == "1"})


@routes.post("/admin/queues/{skill}/{district}")
async def queue_save(request: web.Request) -> web.Response:
    user = require_page_role(request, "admin")
    skill, district = request.match_info["skill"], request.match_info["district"]
    before = await _current(request, skill, district)
    form = await request.post()
    field = lambda name: str(form.get(name, "")).strip()  # noqa: E731
    try:
        try:
            numbers = {k: float(field(k)) for k in ("service_level_seconds", "wrap_up_seconds")}
            priority = int(field("priority") or 0)
        except ValueError:
            raise InvalidInput(_("target, wrap-up and priority must be numbers")) from None
        try:
            alert = float(field("alert_seconds") or 0)
        except ValueError:
            raise InvalidInput(_("the alert limit must be a number of seconds")) from None
        # what the page shows, by name; what it does not (the written channel's target) stays
        config = replace(before, service_level_seconds=numbers["service_level_seconds"],
                         wrap_up_seconds=numbers["wrap_up_seconds"],
                         overflow=parse_overflow(field("overflow")), priority=priority,
                         escalation=parse_escalation(field("escalation")), alert_seconds=alert)
        await _save(request, user["username"], config, before)
    except InvalidInput as exc:
        return aiohttp_jinja2.render_template("queue_edit.html", request, {
            "q": before, "overflow": field("overflow"), "can_edit": True, "error": str(exc),
            "saved": False, "escalation": field("escalation"),
            "form": {k: field(k) for k in ("service_level_seconds", "wrap_up_seconds", "priority",
                                           "alert_seconds")}},
            status=422)
    raise web.HTTPFound(f"/admin/queues/{skill}/{district}?saved=1")
