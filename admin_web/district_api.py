"""Districts, skills and the whole organisation over the JSON API (admins).

  GET    /api/districts                 every district, retired ones too (all roles but agent)
  PUT    /api/districts/{id}            create or change one (body: see `city.districts`)
  DELETE /api/districts/{id}            retire it: numbers and addresses stop answering; its
                                        contacts, cases and reports stay
  PUT    /api/skills/{id}               create or change a skill (`name`, `confidential`, `retired`)
  GET    /api/config                    the organisation document (JSON; no passwords)
  PUT    /api/config[?dry_run=1]        make the organisation what the body (JSON or YAML) says

Every change is checked as a whole (422 with `problems`, each naming where it is, and nothing
changed), written in one transaction, audited, and reaches the ACD, the FastAGI menus, the
e-mail intake and Asterisk's dialplan and PJSIP at once (`ORG_CHANGED`), without a restart.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable

from aiohttp import web

from city import districts, document, store as city_store
from kc import queries, strict_yaml
from kc.clock import iso

from .auth import require_role
from .errors import json_object
from .keys import CLOCK, ORG_CHANGED, STORE

routes = web.RouteTableDef()


def _problems(exc: document.ConfigInvalid) -> web.Response:
    return web.json_response({"error": "the organisation would not be valid",
                              "problems": exc.problems}, status=422)


async def _followed(request: web.Request, changes: list) -> str:
    """The running service follows what was written (ACD, menus, mail, Asterisk)."""
    return await request.app[ORG_CHANGED]() if changes else "nothing to reload"


async def _done(request: web.Request, changes: list) -> web.Response:
    reload = await _followed(request, changes)
    return web.json_response({"changes": [list(c) for c in changes], "reload": reload})


async def change_organisation(request: web.Request, user: dict, what: str,
                              edit: Callable[[dict[str, Any]], dict[str, Any]]) -> tuple[list, str]:
    """The one way the API and the admin pages change districts and skills: the edit checked
    as a whole, written in one transaction, audited, then followed live. (changes, what was
    reloaded); `document.ConfigInvalid` lists every problem and nothing changed."""
    changes = await districts.change(request.app[STORE], request.app[CLOCK], user["username"],
                                     what, edit)
    return changes, await _followed(request, changes)


async def _change(request: web.Request, what: str, edit) -> web.Response:
    user = require_role(request, "admin")
    try:
        changes, reload = await change_organisation(request, user, what, edit)
    except document.ConfigInvalid as exc:
        return _problems(exc)
    return web.json_response({"changes": [list(c) for c in changes], "reload": reload})


@routes.get("/api/districts")
async def api_districts(request: web.Request) -> web.Response:
    require_role(request, "admin", "supervisor", "manager")
    rows = await request.app[STORE].run(queries.list_districts, True)
    return web.json_response({"districts": [dataclasses.asdict(d) for d in rows]},
                             dumps=lambda v: json.dumps(v, ensure_ascii=False))


@routes.put("/api/districts/{district}")
async def api_put_district(request: web.Request) -> web.Response:
    district = request.match_info["district"]
    body = await json_object(request)
    return await _change(request, f"district {district}",
                         lambda doc: districts.put_district(doc, district, body))


@routes.delete("/api/districts/{district}")
async def api_retire_district(request: web.Request) -> web.Response:
    district = request.match_info["district"]
    return await _change(request, f"retire district {district}",
                         lambda doc: districts.retire_district(doc, district))


@routes.put("/api/skills/{skill}")
async def api_put_skill(request: web.Request) -> web.Response:
    skill = request.match_info["skill"]
    body = await json_object(request)
    return await _change(request, f"skill {skill}", lambda doc: districts.put_skill(doc, skill, body))


@routes.get("/api/config")
async def api_config(request: web.Request) -> web.Response:
    require_role(request, "admin")
    doc = document.public(await request.app[STORE].run(city_store.export))
    return web.json_response(doc, dumps=lambda v: json.dumps(v, ensure_ascii=False))


@routes.put("/api/config")
async def api_put_config(request: web.Request) -> web.Response:
    user = require_role(request, "admin")
    try:
        target = document.validated(strict_yaml.load(await request.text()))   # JSON is YAML
    except document.ConfigInvalid as exc:
        return _problems(exc)
    store = request.app[STORE]
    if request.query.get("dry_run") in ("1", "true", "yes"):
        todo = await store.run(lambda db: city_store.changes(city_store.export(db), target))
        return web.json_response({"dry_run": True, "changes": [list(c) for c in todo]})
    changes = await store.run(city_store.apply, target, user["username"],
                              iso(request.app[CLOCK]()), "PUT /api/config")
    return await _done(request, changes)
