"""Click to call on the agent desktop.

  POST /desk/call   `{"number": "0701234567"}`: the PBX rings the agent's own phone; answered,
                    it calls the resident through the outbound trunk, recorded as an outbound
                    contact (`agi.outbound`). 422 when the number is not a resident's number
                    (0... or +...), the phone is not registered or the agent is on a call.
"""
from __future__ import annotations

from aiohttp import web

from .desk import _agent_user, _payload, _text
from .keys import DISTRIBUTOR

routes = web.RouteTableDef()


@routes.post("/desk/call")
async def click_to_call(request: web.Request) -> web.Response:
    user = _agent_user(request)
    body = await _payload(request)
    number = "".join(ch for ch in _text(body.get("number"), 40) if ch.isdigit() or ch == "+")
    await request.app[DISTRIBUTOR].click_to_call(user["agent"], number)
    return web.json_response({"calling": number, "agent": user["agent"]})
