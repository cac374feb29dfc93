"""After-hours requests on the agent desktop: voice messages and call-back requests left while
nobody was open, shown to the agents of their district once it is open again.

  GET  /desk/after-hours                    due requests of the agent's district (JSON)
  GET  /desk/after-hours/{id}/recording     the voice message (audio/wav): agents of the
                                            request's district and supervisors of it only
  POST /desk/after-hours/{id}/done          taken: marked handled by this agent; the answer
                                            pre-fills the case form (the contact is a `phone`
                                            contact, saved through `POST /desk/cases`)

A recording is served by request id only, and only from the recordings directory
(`<asterisk root>/spool/kc-messages/`, where `agi.after_hours` records): a stored path that
resolves anywhere else is refused (404).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from cases.access import may_read, supervises
from cases.categories import category_for_skill
from schedules import schedule_store
from kc.audit import audit
from kc.clock import iso
from kc.errors import NotFound

from kc.i18n import gettext as _

from .auth import agent_district
from .desk import _agent_user, _dumps
from .keys import CALL_DATA, CLOCK, DISTRIBUTOR, SETTINGS, STORE, USER

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def recordings_dir(request: web.Request) -> Path:
    return (request.app[SETTINGS].asterisk_root / "spool" / "kc-messages").resolve()


def _agent_districts(request: web.Request, user: dict[str, Any]) -> list[str]:
    """The districts whose after-hours requests this agent takes: their (current) district."""
    district = agent_district(request, user)
    return [district] if district else []




def _item(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "contact_id": row["contact_id"], "district": row["district"],
        "kind": row["kind"], "callback_number": row["callback_number"] or row["caller"],
        "language": row["language"], "created_at": row["created_at"], "due_at": row["due_at"],
        "recording_url": (f"/desk/after-hours/{row['id']}/recording"
                          if row["kind"] == "voice_message" and row["recording"] else None),
    }


@routes.get("/desk/after-hours")
async def due_requests(request: web.Request) -> web.Response:
    user = _agent_user(request)
    districts = _agent_districts(request, user)
    now = request.app[CLOCK]()
    # those open now (no schedule, or an unreadable one: always open), on the hours held in memory
    hours = (await request.app[CALL_DATA].current()).hours
    rows = await request.app[STORE].run(schedule_store.due_for_districts,
                                        [d for d in districts if hours.is_open(d, now)], iso(now))
    return web.json_response({"districts": districts, "requests": [
        _item(r) for r in rows if _may_take(request, user, r)]}, dumps=_dumps)


async def _request_row(request: web.Request) -> dict[str, Any]:
    try:
        rid = int(request.match_info["request_id"])
        return await request.app[STORE].run(schedule_store.get_request, rid)
    except (ValueError, NotFound):
        raise web.HTTPNotFound(text=_("There is no such after-hours request.")) from None


def _may_take(request: web.Request, user: dict[str, Any], row: dict[str, Any]) -> bool:
    """Agents of the request's district, and supervisors of it; a confidential one (e.g.
    social services) only agents cleared for the district and its supervisors."""
    district = row["district"]
    if user["role"] == "agent":
        if district not in _agent_districts(request, user):
            return False
        rt = request.app[DISTRIBUTOR].agents.get(user.get("agent") or "")
        cleared = tuple(rt.agent.cleared_for) if rt is not None else ()
        return not row.get("confidential") or may_read(user, district, cleared)
    return supervises(user, district)


@routes.get(r"/desk/after-hours/{request_id:\d+}/recording")
async def recording(request: web.Request) -> web.StreamResponse:
    user = request.get(USER)             # a media file: 401/403, never a log-in redirect
    if user is None:
        raise web.HTTPUnauthorized(text="log in first")
    if user["role"] not in ("agent", "supervisor"):       # before any lookup
        raise web.HTTPForbidden(text=_("For the agents and supervisors of the district."))
    row = await _request_row(request)
    if not _may_take(request, user, row):
        raise web.HTTPForbidden(text=_("Only the district's agents and supervisors cleared for "
                                       "this request may open it."))
    if row["kind"] != "voice_message" or not row["recording"]:
        raise web.HTTPNotFound(text=_("There is no voice message."))
    root = recordings_dir(request)
    path = Path(row["recording"]).resolve()
    if not path.is_relative_to(root) or path.suffix.lower() != ".wav" or not path.is_file():
        log.warning("after-hours request %s: recording outside %s or missing", row["id"], root)
        raise web.HTTPNotFound(text=_("There is no voice message."))
    await audit(request.app[STORE], request.app[CLOCK], user["username"],
                "after_hours.listen", str(row["id"]), None, {"contact": row["contact_id"]})
    return web.FileResponse(path, headers={
        "Content-Type": "audio/wav", "Cache-Control": "private, no-store",
        "Content-Disposition": f'inline; filename="meddelande-{row["id"]}.wav"',
        "X-Content-Type-Options": "nosniff"})


@routes.post(r"/desk/after-hours/{request_id:\d+}/done")
async def done(request: web.Request) -> web.Response:
    user = _agent_user(request)
    row = await _request_row(request)
    if row["kind"] not in ("voice_message", "callback") or not _may_take(request, user, row):
        raise web.HTTPForbidden(text='{"error": "not a request of your district"}',
                                content_type="application/json")
    if row["handled_at"] and row["handled_by"] != user["username"]:
        return web.json_response({"error": f"already handled by {row['handled_by']}"},
                                 status=409, dumps=_dumps)
    store, clock = request.app[STORE], request.app[CLOCK]
    if not row["handled_at"]:
        await store.run(schedule_store.mark_handled, row["id"], user["username"], iso(clock()))
        await audit(store, clock, user["username"], "after_hours.done", str(row["id"]), None,
                    {"contact": row["contact_id"], "kind": row["kind"]})
    category = await store.run(category_for_skill, row["skill"])
    return web.json_response({
        "id": row["id"], "handled": True, "contact_id": row["contact_id"],
        "channel": row["channel"], "district": row["district"],
        "caller": row["callback_number"] or row["caller"],
        "category_id": category["id"] if category else None,
    }, dumps=_dumps)
