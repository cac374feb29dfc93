"""JSON API routes (`/api/...`)."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from acd.agents import AgentRuntime
from cases.access import supervises
from kc import queries
from pbx.kamailio import probe
from pbx.runtime import parse_version
from kc.clock import iso, parse_iso
from kc.errors import InvalidInput

from kc.audit import audit

from .auth import require_role, runs_agent
from .errors import json_object
from .keys import AMI, CLOCK, DISTRIBUTOR, SETTINGS, STORE

routes = web.RouteTableDef()

READERS = ("admin", "supervisor", "manager")


@routes.get("/api/health")
async def health(request: web.Request) -> web.Response:
    link = request.app[AMI]
    out = {
        "status": "ok",
        "asterisk": "up" if link.reachable or link.up else "down",
        "ami": "up" if link.up else "down",
        "asterisk_version": parse_version(link.pbx_version or ""),
    }
    nodes = getattr(link, "nodes", None)
    if nodes:   # a cluster: each node, and the front door residents call
        out["nodes"] = [{"node": name, "asterisk": "up" if n.reachable or n.up else "down",
                         "ami": "up" if n.up else "down",
                         "asterisk_version": parse_version(n.pbx_version or "")}
                        for name, n in nodes.items()]
        settings = request.app[SETTINGS]
        up = await probe(settings.sip_host, settings.sip_port, 1.5)
        out["front_door"] = {"sip": f"{settings.sip_host}:{settings.sip_port}",
                             "status": "up" if up else "down"}
    delayed = request.app[STORE].delayed
    if delayed:   # the database refuses writes: records wait in the journal, calls go on
        out.update(records="delayed", records_waiting=delayed)
    return web.json_response(out)


def _cleared(user: dict[str, Any], contact: dict[str, Any], agents: dict[str, AgentRuntime]) -> bool:
    if supervises(user, contact["district"]):      # supervisors of that district
        return True
    agent = agents.get(user.get("agent") or "")
    return agent is not None and contact["district"] in agent.agent.cleared_for


@routes.get("/api/contacts")
async def contacts(request: web.Request) -> web.Response:
    user = require_role(request, *READERS, "agent")
    since_raw = request.query.get("since")
    since = None
    if since_raw:
        try:
            since = iso(parse_iso(since_raw))
        except ValueError:
            raise InvalidInput(f"since={since_raw!r} is not an ISO 8601 time") from None
    try:
        limit = int(request.query.get("limit", "1000"))
    except ValueError:
        raise InvalidInput("limit must be a whole number from 1 to 10000") from None
    if not 1 <= limit <= 10000:
        raise InvalidInput("limit must be a whole number from 1 to 10000")
    rows = await request.app[STORE].run(queries.list_contacts, since, limit)
    agents = request.app[DISTRIBUTOR].agents
    out = []
    for row in rows:
        item = {k: row[k] for k in (
            "id", "channel", "district", "dialed", "caller", "caller_name", "started_at",
            "ended_at", "menu_path", "language", "skill", "outcome", "agent", "agent_district",
            "overflowed", "wait_seconds", "talk_seconds", "confidential")}
        item["callback"] = bool(row.get("callback_number"))
        if row["confidential"] and not _cleared(user, row, agents):
            item["caller"] = item["caller_name"] = None
            item["redacted"] = True
        out.append(item)
    return web.json_response({"contacts": out}, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def agent_json(rt: AgentRuntime) -> dict[str, Any]:
    a = rt.agent
    return {
        "id": a.id, "name": a.name, "district": a.district, "skills": a.skills,
        "languages": list(a.languages), "cleared_for": list(a.cleared_for),
        "state": rt.state.value, "reason": rt.reason,
        "pending": rt.pending.value if rt.pending else None, "registered": rt.registered,
    }


@routes.get("/api/agents")
async def agents(request: web.Request) -> web.Response:
    require_role(request, *READERS, "agent")
    dist = request.app[DISTRIBUTOR]
    return web.json_response({"agents": [agent_json(rt) for rt in dist.agents.values()]},
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


@routes.post("/api/agents/{agent_id}/state")
async def agent_state(request: web.Request) -> web.Response:
    user = require_role(request)
    agent_id = request.match_info["agent_id"]
    if not (user["role"] == "agent" and user.get("agent") == agent_id):
        require_role(request, "admin", "supervisor")
        if not runs_agent(request, user, agent_id):
            raise web.HTTPForbidden(text='{"error": "not an agent of a district you supervise"}',
                                    content_type="application/json")
    example = 'body must be JSON like {"state": "ready"}'
    body = await json_object(request, example)
    if not isinstance(body.get("state"), str):
        raise InvalidInput(example)
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 64):
        raise InvalidInput("reason must be a short text")
    dist = request.app[DISTRIBUTOR]
    before = dist.agent(agent_id).state.value
    rt = await dist.request_state(agent_id, body["state"], reason)
    await audit(request.app[STORE], request.app[CLOCK], user["username"], "agent.state", agent_id,
                {"state": before}, {"state": rt.state.value, "reason": reason,
                                    "pending": rt.pending.value if rt.pending else None,
                                    "via": "api"})
    return web.json_response(agent_json(rt), dumps=lambda o: json.dumps(o, ensure_ascii=False))
