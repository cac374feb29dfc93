"""JSON API of the ACD's run-time side.

`POST /api/contacts/{id}/transfer` `{"to": "queue:<skill>" | "<skill>" | "<number>"}`: blind
transfer of a caller connected to an agent, by that agent (their session or token) or by an
admin/supervisor. To a skill queue the caller waits again as a new contact (same call, same
channel; the old contact ends `transferred`); to a number the call leaves through the outbound
trunk. 422 when the contact is not connected or the target is unknown, 503 when the PBX is down.
"""
from __future__ import annotations

from aiohttp import web

from kc.errors import InvalidInput

from .auth import require_role
from .errors import json_object
from .keys import DISTRIBUTOR, TELEMETRY

routes = web.RouteTableDef()


@routes.post("/api/contacts/{contact_id}/transfer")
async def transfer(request: web.Request) -> web.Response:
    user = require_role(request, "admin", "supervisor", "agent")
    example = 'body must be JSON like {"to": "queue:school"}'
    try:
        contact_id = int(request.match_info["contact_id"])
    except ValueError:
        raise InvalidInput(example) from None
    body = await json_object(request, example)
    if not isinstance(body.get("to"), str) or len(body["to"]) > 64:
        raise InvalidInput(example)
    by = user.get("agent") if user["role"] == "agent" else None
    if user["role"] == "agent" and not by:
        raise InvalidInput("no agent for this user")
    request.app[TELEMETRY].step("web", "transfer_asked", contact_id, by=user["username"])
    done = await request.app[DISTRIBUTOR].transfer(contact_id, body["to"], by=by)
    return web.json_response(done)
