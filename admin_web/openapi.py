"""The OpenAPI 3.1 description of the JSON API (`GET /api/openapi.json`, no token needed).

Written by hand next to the handlers; `tests/fast/test_api_contract.py` checks that it names
exactly the `/api/` routes the application has (none missing, none invented), and the fuzzing
test drives every operation in it. Bodies are described as the handlers accept them; anything
else gets a 4xx with `{"error": "..."}`.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

routes = web.RouteTableDef()

DISTRICT = {"type": "string", "pattern": "^[a-z0-9-]{1,40}$"}
SKILL = {"type": "string", "pattern": "^[a-z0-9_-]{1,40}$", "examples": ["school"]}
TIME = {"type": "string", "description": "ISO 8601 time (UTC when no zone)",
        "examples": ["2026-01-05T08:00:00Z"]}
ERROR = {"type": "object", "required": ["error"],
         "properties": {"error": {"type": "string", "minLength": 1}}}


def _param(name: str, schema: dict[str, Any], where: str = "query", required: bool = False,
           description: str = "") -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path",
            "schema": schema, **({"description": description} if description else {})}


def _path(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return _param(name, schema or {"type": "string"}, "path")


def _op(summary: str, roles: str, params: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None, content: str = "application/json",
        public: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary, "description": f"Who: {roles}.",
        "parameters": params or [],
        "responses": {
            "200": {"description": "OK", "content": {content: {"schema": {} if content != "application/json" else {"type": ["object", "array"]}}}},
            "4XX": {"description": "Refused: `{\"error\": \"...\"}` says why",
                    "content": {"application/json": {"schema": ERROR}}},
        },
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if public:
        op["security"] = []
    return op


def _obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required)}


PERIOD = [_param("from", {"type": "string"}, description="local date or ISO time"),
          _param("to", {"type": "string"}, description="local date (inclusive) or ISO time"),
          _param("district", DISTRICT), _param("queue", {"type": "string"}),
          _param("skill", SKILL)]
READERS = "admin, supervisor, manager"
MENU_BODY = {"type": "object", "description": "a menu, or {menu, base_version, note}"}
OVERFLOW = {"type": "array", "items": _obj({"after_seconds": {"type": "number"},
                                            "districts": {"type": "array", "items": {"type": "string"}}})}

PATHS: dict[str, dict[str, Any]] = {
    "/api/openapi.json": {"get": _op("This description", "anyone", public=True)},
    "/api/health": {"get": _op("Service, Asterisk (each node of a cluster and its front door) and AMI up?", "anyone", public=True)},
    "/api/contacts": {"get": _op("Contacts since a time", f"{READERS}, agent", [
        _param("since", TIME), _param("limit", {"type": "integer", "minimum": 1, "maximum": 10000})])},
    "/api/contacts/{contact_id}/transfer": {"post": _op(
        "Transfer a connected caller: blind to a queue, a number or a person of the directory "
        "(`directory:<id>`), or attended (consult first; the agent hangs up to hand over)",
        "admin, supervisor, the agent on the call",
        [_path("contact_id", {"type": "integer"})],
        _obj({"to": {"type": "string", "maxLength": 64, "examples": ["queue:school", "directory:1"]},
              "attended": {"type": "boolean"}}, ("to",)))},
    "/api/directory": {"get": _op(
        "Search the staff directory (name or unit holds every word; the available first)",
        f"{READERS}, agent", [_param("q", {"type": "string", "maxLength": 100}),
                              _param("limit", {"type": "integer", "minimum": 1, "maximum": 100})])},
    "/api/directory/import": {"post": _op(
        "Replace the staff directory with a CSV file (name,unit,district,number,available); a "
        "bad line refuses the whole file", "admin",
        body=_obj({"csv": {"type": "string", "minLength": 1}}, ("csv",)))},
    "/api/agents": {"get": _op("Agents and their states", f"{READERS}, agent")},
    "/api/agents/{agent_id}/state": {"post": _op(
        "Log an agent in or out, pause", "admin, supervisors of the agent's district, the agent",
        [_path("agent_id", {"type": "string"})],
        _obj({"state": {"enum": ["ready", "paused", "logged_out"]},
              "reason": {"type": "string", "maxLength": 64}}, ("state",)))},
    "/api/queues": {"get": _op("Every queue's settings", READERS)},
    "/api/queues/{skill}/{district}": {"put": _op(
        "Replace a queue's settings", "admin", [_path("skill", SKILL), _path("district", DISTRICT)],
        _obj({"service_level_seconds": {"type": "number"}, "wrap_up_seconds": {"type": "number"},
              "written_service_level_seconds": {"type": "number", "exclusiveMinimum": 0},
              "priority": {"type": "integer"}, "overflow": OVERFLOW,
              "escalation": {"type": "array", "items": _obj(
                  {"after_seconds": {"type": "number"}, "raise_by": {"type": "integer"}},
                  ("after_seconds", "raise_by"))},
              "alert_seconds": {"type": "number", "minimum": 0, "maximum": 86400}}))},
    "/api/surveys": {"get": _op("Every queue's survey after the call", READERS)},
    "/api/phrases": {"get": _op(
        "The system's phrases in every language: text and status (spoken, recorded, said in "
        "Swedish, missing)", "admin")},
    "/api/phrases/{key}/{language}/recording": {"put": {**_op(
        "Record a phrase said whole in a language (the body is the WAV or MP3 file itself, "
        "whatever its Content-Type)", "admin",
        [_path("key", {"type": "string", "examples": ["callback_confirmed"]}),
         _path("language", {"type": "string", "examples": ["so"]}),
         _param("filename", {"type": "string", "maxLength": 200})]),
        "requestBody": {"required": True, "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}},
    "/api/surveys/{skill}/{district}": {"put": _op(
        "Switch a queue's survey on or off, its questions per language", "admin, supervisors of the district",
        [_path("skill", SKILL), _path("district", DISTRICT)],
        _obj({"enabled": {"type": "boolean"}, "every_nth": {"type": "integer", "minimum": 0, "maximum": 10000},
              "questions": {"type": "array", "maxItems": 3, "items": {
                  "type": "object", "additionalProperties": {"type": "string", "maxLength": 300}}}}))},
    "/api/reports/survey": {"get": _op(
        "The survey's answers per district, queue, agent or category, with the share who answered",
        READERS, [*PERIOD, _param("by", {"enum": ["district", "queue", "agent", "category"]})])},
    "/api/menus/{district}": {
        "get": _op("The published menu", READERS, [_path("district", DISTRICT)]),
        "put": _op("Publish a menu", "admin", [_path("district", DISTRICT),
                                               _param("If-Match", {"type": "string"}, "header")],
                   MENU_BODY)},
    "/api/menus/{district}/share": {
        "get": _op("Whose menu the district plays", READERS, [_path("district", DISTRICT)]),
        "put": _op("Play another district's menu, or its own", "admin", [_path("district", DISTRICT)],
                   _obj({"menu_of": {"type": ["string", "null"]}}, ("menu_of",)))},
    "/api/menus/{district}/versions": {"get": _op("Published versions", READERS,
                                                  [_path("district", DISTRICT)])},
    "/api/menus/{district}/versions/{version}": {"get": _op(
        "One version", READERS, [_path("district", DISTRICT), _path("version", {"type": "integer"})])},
    "/api/menus/{district}/rollback": {"post": _op(
        "Publish an earlier version again", "admin", [_path("district", DISTRICT)],
        _obj({"to_version": {"type": "integer"}, "base_version": {"type": "integer"}}))},
    "/api/menus/{district}/announcement": {
        "put": _op("Set the temporary announcement", "admin", [_path("district", DISTRICT)],
                   _obj({"texts": {"type": "object", "additionalProperties": {"type": "string"}},
                         "audio": {"type": "object"}, "ends_at": TIME}, ("texts", "ends_at"))),
        "delete": _op("Remove the announcement", "admin", [_path("district", DISTRICT)])},
    "/api/districts": {"get": _op("Every district, retired ones included", READERS)},
    "/api/districts/{district}": {
        "put": _op("Add or change a district: name, numbers, addresses, region, switchboard, "
                   "hours (or copied), menu (own, shared or copied), queues", "admin",
                   [_path("district", DISTRICT)], {"type": "object"}),
        "delete": _op("Retire a district (its history and reports are kept)", "admin",
                      [_path("district", DISTRICT)])},
    "/api/skills/{skill}": {"put": _op("Add or change a skill", "admin", [_path("skill", SKILL)],
                                       {"type": "object"})},
    "/api/config": {
        "get": _op("The whole organisation as one document (no passwords)", "admin"),
        "put": _op("Replace the whole organisation (validated as a whole, one transaction; "
                   "`dry_run=1` lists the changes)", "admin",
                   [_param("dry_run", {"type": "string", "enum": ["0", "1"]})], {"type": "object"})},
    "/api/reports/summary": {"get": _op("Figures for a period", READERS, PERIOD)},
    "/api/reports/table": {"get": _op("Figures broken down", READERS, [
        _param("by", {"enum": ["district", "queue", "category", "hour", "day"]}, required=True),
        *PERIOD])},
    "/api/reports/staffing": {"get": _op("Erlang C agents per hour", READERS, PERIOD)},
    "/api/reports/rundgang": {"get": _op(
        "Rundgång: residents contacting again about the same matter, and first-contact "
        "resolution checked against it, with the contacts behind each count", READERS, PERIOD)},
    "/api/reports/agents": {"get": _op(
        "Uncategorised contacts per agent and the agent's district", READERS, PERIOD)},
    "/api/reports/{name}.csv": {"get": _op(
        "A table as CSV", READERS,
        [_path("name", {"enum": ["summary", "district", "queue", "category", "hour", "day",
                                 "staffing", "agents", "rundgang"]}), *PERIOD], content="text/csv")},
    "/api/reports/charts/{name}.svg": {"get": _op(
        "A chart", READERS, [_path("name", {"type": "string", "pattern": "^[a-z-]{1,40}$"}), *PERIOD],
        content="image/svg+xml")},
    "/api/schedule": {"get": _op("Open now? every district and queue", f"{READERS}, agent")},
    "/api/schedule/{district}": {
        "get": _op("A district's opening hours", f"{READERS}, agent", [_path("district", DISTRICT)]),
        "put": _op("Replace a district's opening hours", "admin", [_path("district", DISTRICT)],
                   _obj({"week": {"type": "object"}, "exceptions": {"type": "array"},
                         "always_open": {"type": "boolean"}})),
        "patch": _op("Change some of a district's opening hours, keeping the rest (e.g. "
                     "`{\"always_open\": true}` keeps the week)", "admin",
                     [_path("district", DISTRICT)],
                     _obj({"week": {"type": "object"}, "exceptions": {"type": "array"},
                           "always_open": {"type": "boolean"}}))},
    "/api/schedule/{district}/status": {"get": _op(
        "Open at a time?", f"{READERS}, agent",
        [_path("district", DISTRICT), _param("at", TIME), _param("queue", SKILL)])},
    "/api/schedule/{district}/calendar": {"get": _op(
        "The year's calendar", f"{READERS}, agent",
        [_path("district", DISTRICT), _param("year", {"type": "integer"})])},
    "/api/after-hours": {"get": _op(
        "Voice messages and call-back requests (confidential ones only to the cleared)",
        f"{READERS}, agent", [_param("due", {"type": "string", "examples": ["now"]}),
                              _param("open", {"enum": ["0", "1"]})])},
    "/api/after-hours/{request_id}/done": {"post": _op(
        "Mark a request handled", "admin, supervisors of its district, its district's agents",
        [_path("request_id", {"type": "integer"})])},
    "/api/cases": {"get": _op("Cases since a time", f"{READERS}, agent", [
        _param("since", TIME), _param("limit", {"type": "integer", "minimum": 1, "maximum": 10000})])},
    "/api/cases/fcr": {"get": _op("First-contact resolution", READERS,
                                  [_param("since", TIME), _param("until", TIME)])},
    "/api/cases/{case_id}": {"get": _op("One case", f"{READERS}, agent",
                                        [_path("case_id", {"type": "integer"})])},
    "/api/export": {"get": _op("Everything stored about one person", "admin, supervisor",
                               [_param("person", {"type": "string"}, required=True)])},
    "/api/wallboard": {"get": _op("The live wallboard", "everyone logged in")},
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Kommuncentral", "version": "1",
             "description": "The contact centre's JSON API. `Authorization: Bearer <token>`, or "
                            "the site's session cookie plus `X-CSRF-Token` for changes. A missing "
                            "or wrong token: 401; a role that may not: 403; bad input: 422; every "
                            "refusal is `{\"error\": \"...\"}`."},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "security": [{"bearer": []}],
    "paths": PATHS,
}


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(SPEC)
