"""Pages for running the centre: districts, skills and queues; agents (skills with proficiency,
languages, district, clearance, SIP credentials applied to Asterisk without a restart); and the
supervisor's controls: log agents in and out, pause them, move one to another district for the day.

Routes (admin = a, supervisor = s):
  GET  /admin/org                         a s   districts, skills, queues (targets from kc.queue_config)
  GET  /admin/agents                      a s   agents, live state, actions
  POST /admin/agents/{id}/state           a s   state=ready|paused|logged_out
  POST /admin/agents/{id}/move            a s   district=<id> (for the rest of the day) or "" (back home)
  GET  /admin/agents/new, /admin/agents/{id}/edit   a   the form
  POST /admin/agents/new, /admin/agents/{id}/edit   a   save; routing uses it at once
  POST /admin/agents/{id}/sip             a     new SIP password, shown once, applied to Asterisk
Every change is written to the audit log.
"""
from __future__ import annotations

import logging
from datetime import datetime, time as dtime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from kc import agent_admin, queries
from agi import menus
from kc.audit import audit
from kc.clock import iso
from kc.domain import Agent
from kc.errors import InvalidInput
from reporting.reports import DEFAULT_TARGET_SECONDS, REPORT_TZ, queue_targets

from kc.i18n import gettext as _

from .words import word
from .auth import require_page_role, runs_agent
from .keys import CLOCK, DISTRIBUTOR, SETTINGS, STORE, RELOAD_PJSIP

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
RUNNERS = ("admin", "supervisor")


# ----------------------------------------------------------------------------- applying changes




def _end_of_day(now: datetime) -> datetime:
    zone = ZoneInfo(REPORT_TZ)
    local = now.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(local, dtime(0), zone)


# ----------------------------------------------------------------------------- pages


@routes.get("/admin/org")
@aiohttp_jinja2.template("org.html")
async def org_page(request: web.Request) -> dict[str, Any]:
    require_page_role(request, *RUNNERS)
    store = request.app[STORE]
    districts = await store.run(queries.list_districts)
    skills = await store.run(queries.list_skills)
    targets = await store.run(queue_targets)
    agents = request.app[DISTRIBUTOR].agents.values()
    queues = [{"name": f"{s.id}@{d.id}", "skill": s, "district": d,
               "target": targets.get(f"{s.id}@{d.id}", DEFAULT_TARGET_SECONDS),
               "agents": sorted(rt.agent.id for rt in agents
                                if rt.agent.district == d.id and s.id in rt.agent.skills)}
              for d in districts for s in skills]
    return {"districts": districts, "skills": skills, "queues": queues}


@routes.get("/admin/agents")
@aiohttp_jinja2.template("agents.html")
async def agents_page(request: web.Request) -> dict[str, Any]:
    user = require_page_role(request, *RUNNERS)
    store = request.app[STORE]
    homes = {a.id: a for a in await store.run(queries.list_agents)}
    moves = await store.run(agent_admin.active_moves, iso(request.app[CLOCK]()))
    rows = []
    for rt in sorted(request.app[DISTRIBUTOR].agents.values(), key=lambda r: r.agent.id):
        home = homes.get(rt.agent.id, rt.agent)
        rows.append({"rt": rt, "home": home, "move": moves.get(rt.agent.id)})
    return {"rows": rows, "districts": await store.run(queries.list_districts),
            "is_admin": user["role"] == "admin", "notice": request.query.get("notice", "")[:200]}


def _redirect(notice: str) -> web.HTTPFound:
    from urllib.parse import quote
    return web.HTTPFound(f"/admin/agents?notice={quote(notice)}")


@routes.post("/admin/agents/{agent_id}/state")
async def agent_state(request: web.Request) -> web.Response:
    user = require_page_role(request, *RUNNERS)
    agent_id = request.match_info["agent_id"]
    form = await request.post()
    target = str(form.get("state", ""))
    if target not in ("ready", "paused", "logged_out"):
        raise InvalidInput(_("choose log in, pause or log out"))
    dist = request.app[DISTRIBUTOR]
    before = dist.agent(agent_id).state.value
    if not runs_agent(request, user, agent_id):
        raise web.HTTPForbidden(text=_("This agent is not of a district you supervise."))
    rt = await dist.request_state(agent_id, target, "supervisor" if target == "paused" else None)
    await audit(request.app[STORE], request.app[CLOCK], user["username"], "agent.state", agent_id,
                {"state": before}, {"state": rt.state.value, "pending": rt.pending.value if rt.pending else None})
    raise _redirect(f"{agent_id}: {word(rt.state)}"
                    + (" (" + _("then %(state)s") % {"state": word(rt.pending)} + ")" if rt.pending else ""))


@routes.post("/admin/agents/{agent_id}/move")
async def agent_move(request: web.Request) -> web.Response:
    user = require_page_role(request, *RUNNERS)
    agent_id = request.match_info["agent_id"]
    form = await request.post()
    district = str(form.get("district", "")) or None
    store, clock = request.app[STORE], request.app[CLOCK]
    agent = await store.run(agent_admin.get_agent, agent_id)
    districts = {d.id for d in await store.run(queries.list_districts)}
    if district is not None and district not in districts:
        raise InvalidInput(_("there is no district %(district)s") % {"district": repr(district)})
    if district == agent.district:
        district = None
    if not runs_agent(request, user, agent_id, home=agent.district, to=district):
        raise web.HTTPForbidden(text=_("You may move only agents of the districts you supervise, "
                                       "and only to those districts."))
    now = clock()
    until = _end_of_day(now)
    before = request.app[DISTRIBUTOR].agent(agent_id).agent.district
    await store.run(agent_admin.set_move, agent_id, district, iso(until), user["username"], iso(now))
    request.app[DISTRIBUTOR].move_agent(agent, district, until)
    await audit(store, clock, user["username"], "agent.move", agent_id, {"district": before},
                {"district": district or agent.district, "until": iso(until) if district else None})
    names = {d.id: d.name for d in await store.run(queries.list_districts)}
    where = names.get(district or agent.district, district or agent.district)
    raise _redirect((_("%(agent)s takes the queues of %(district)s for the rest of the day")
                     if district else _("%(agent)s takes the queues of %(district)s"))
                    % {"agent": agent_id, "district": where})


async def _form_context(request: web.Request, agent: Agent | None, error: str | None = None) -> dict[str, Any]:
    store = request.app[STORE]
    return {"agent": agent, "error": error, "districts": await store.run(queries.list_districts),
            "skills": await store.run(queries.list_skills)}


@routes.get("/admin/agents/new")
@routes.get("/admin/agents/{agent_id}/edit")
async def agent_form(request: web.Request) -> web.Response:
    require_page_role(request, "admin")
    agent_id = request.match_info.get("agent_id")
    agent = await request.app[STORE].run(agent_admin.get_agent, agent_id) if agent_id else None
    return aiohttp_jinja2.render_template("agent_edit.html", request, await _form_context(request, agent))


@routes.post("/admin/agents/new")
@routes.post("/admin/agents/{agent_id}/edit")
async def agent_save(request: web.Request) -> web.Response:
    user = require_page_role(request, "admin")
    store, clock = request.app[STORE], request.app[CLOCK]
    agent_id = request.match_info.get("agent_id")
    form = await request.post()
    before = await store.run(agent_admin.get_agent, agent_id) if agent_id else None
    new_id = agent_id or str(form.get("id", "")).strip()
    skills_all = await store.run(queries.list_skills)
    skills: dict[str, int] = {}
    for s in skills_all:
        raw = str(form.get(f"skill.{s.id}", "") or "0")
        try:
            level = int(raw)
        except ValueError:
            level = -1
        if level:
            skills[s.id] = level
    languages = [x.strip() for x in str(form.get("languages", "")).split(",") if x.strip()]
    cleared = [str(v) for v in form.getall("cleared_for", [])]
    agent = Agent(id=new_id, name=str(form.get("name", "")).strip(), district=str(form.get("district", "")),
                  skills=skills, languages=tuple(languages), cleared_for=tuple(cleared))
    try:
        if not agent_id and new_id in request.app[DISTRIBUTOR].agents:
            raise InvalidInput(_("there is an agent %(agent)s already") % {"agent": repr(new_id)})
        agent_admin.validate(new_id, agent.name, agent.district, skills, languages, cleared,
                             {d.id for d in await store.run(queries.list_districts)},
                             {s.id for s in skills_all})
    except InvalidInput as exc:
        return aiohttp_jinja2.render_template("agent_edit.html", request,
                                              await _form_context(request, agent, str(exc)), status=422)
    password = agent_admin.new_sip_password() if before is None else None
    await store.run(agent_admin.save_agent, agent, password, iso(clock()))
    moves = await store.run(agent_admin.active_moves, iso(clock()))
    request.app[DISTRIBUTOR].apply_agent(agent, moves.get(agent.id, (None,))[0])
    await audit(store, clock, user["username"], "agent.create" if before is None else "agent.update",
                new_id, agent_admin.agent_dict(before) if before else None, agent_admin.agent_dict(agent))
    # a shared menu whose queue now has no agent in a district that plays it: say so
    districts = dict.fromkeys(d for d in (before.district if before else None, agent.district) if d)
    warnings = [p for d in districts for p in await store.run(menus.coverage_problems, d)]
    if password is None:
        raise _redirect(_("%(agent)s saved.") % {"agent": new_id}
                        + (" " + _("Warning: %(what)s") % {"what": "; ".join(warnings)} if warnings else ""))
    return await _show_sip(request, new_id, password)


@routes.post("/admin/agents/{agent_id}/sip")
async def agent_sip(request: web.Request) -> web.Response:
    user = require_page_role(request, "admin")
    store, clock = request.app[STORE], request.app[CLOCK]
    agent = await store.run(agent_admin.get_agent, request.match_info["agent_id"])
    password = agent_admin.new_sip_password()
    await store.run(agent_admin.save_agent, agent, password, iso(clock()))
    await audit(store, clock, user["username"], "agent.sip_password", agent.id, None, {"changed": True})
    return await _show_sip(request, agent.id, password)


async def _show_sip(request: web.Request, agent_id: str, password: str) -> web.Response:
    try:
        result, error = await request.app[RELOAD_PJSIP](), None
    except Exception as exc:     # the PBX may be down: the credentials are saved and apply on its start
        log.warning("PJSIP reload failed: %s", exc)
        result, error = None, str(exc)
    settings = request.app[SETTINGS]
    resp = aiohttp_jinja2.render_template("sip_created.html", request, {
        "agent_id": agent_id, "password": password, "applied": result is not None, "error": error,
        "registrar": f"{settings.sip_host}:{settings.sip_port}"})
    resp.headers["Cache-Control"] = "no-store"
    return resp
