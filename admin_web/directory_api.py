"""The switchboard's staff directory over the JSON API (`kc.staff_directory`).

  GET  /api/directory?q=WORDS&limit=N   people whose name or unit holds every word, the
                                        available first (agents, supervisors, admins, managers;
                                        the desk searches it as the agent types)
  POST /api/directory/import            `{"csv": "<file>"}` replaces the directory (admin); a
                                        file with a bad line is refused whole (422, every
                                        problem named) and nothing changes; audited

Transfers to a person of the directory: `POST /api/contacts/{id}/transfer` with
`{"to": "directory:<id>", "attended": true|false}` (`admin_web.acd_api`).
"""
from __future__ import annotations

import json

from aiohttp import web

from kc import staff_directory
from kc.clock import iso
from kc.errors import InvalidInput

from .auth import require_role
from .errors import json_object
from .keys import CLOCK, STORE

routes = web.RouteTableDef()
MAX_CSV = 5 * 1024 * 1024


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


@routes.get("/api/directory")
async def search(request: web.Request) -> web.Response:
    require_role(request, "agent", "supervisor", "admin", "manager")
    query = request.query.get("q", "")
    if len(query) > 100:
        raise InvalidInput("q: at most 100 characters")
    try:
        limit = min(100, max(1, int(request.query.get("limit", "20"))))
    except ValueError:
        raise InvalidInput("limit must be a whole number") from None
    rows = await request.app[STORE].read(staff_directory.search, query, limit)
    return web.json_response({"people": rows}, dumps=_dumps)


@routes.post("/api/directory/import")
async def import_directory(request: web.Request) -> web.Response:
    user = require_role(request, "admin")
    example = 'body must be JSON like {"csv": "name,unit,district,number,available\\n..."}'
    body = await json_object(request, example)
    text = body.get("csv")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(example)
    if len(text) > MAX_CSV:
        raise InvalidInput(f"the file is larger than {MAX_CSV} characters")
    counts = await request.app[STORE].run(staff_directory.import_csv, text, user["username"],
                                          iso(request.app[CLOCK]()))
    return web.json_response(counts)
