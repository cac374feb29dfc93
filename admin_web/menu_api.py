"""Menus as code over HTTP: `GET/PUT /api/menus/{district}` and friends.

PUT needs role admin and publishes a validated version (422 lists the problems). Optimistic
concurrency: send the version you edited as `base_version` (or `If-Match: "<version>"`); if the
live version moved on, the answer is 409 with the live version and its menu, so nothing is lost.

Shared menus: `PUT /api/menus/{district}/share {"menu_of": "<owner>"}` (or null) lets a district
play another district's menu (admin; 422 for unknown districts, itself, chains, or skills its
agents lack). A district that shares one has no menu of its own to read or publish: GET answers
409 and PUT 422, both naming the owner.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web

from agi.prompts import PromptCache
from agi import menu_store, menus
from kc.errors import InvalidInput

from .auth import require_role
from .errors import json_error, read_json
from .keys import CLOCK, SETTINGS, STORE

routes = web.RouteTableDef()

READERS = ("admin", "supervisor", "manager")
_prompt_caches: dict[Path, PromptCache] = {}


def web_prompts(app: web.Application) -> PromptCache:
    """The prompt cache the web side publishes into (same directory the call flow reads)."""
    sounds = app[SETTINGS].sounds_dir
    cache = _prompt_caches.get(sounds)
    if cache is None:
        cache = _prompt_caches[sounds] = PromptCache(sounds, audio_root=sounds)
    return cache


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def invalid_response(exc: menus.MenuInvalid) -> web.Response:
    out = {"error": str(exc), "problems": exc.problems}
    if isinstance(exc, menus.MenuShared):
        out["menu_of"] = exc.owner
    return web.json_response(out, status=422, dumps=_dumps)


def conflict_response(exc: menus.MenuConflict) -> web.Response:
    current = exc.current or {}
    return web.json_response({
        "error": str(exc),
        "current_version": current.get("version", current.get("base_version")),
        "revision": current.get("revision"),
        "menu": current.get("body"),
    }, status=409, dumps=_dumps)


async def _json(request: web.Request) -> Any:
    return await read_json(request)


def _int_or_none(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip().strip('"').removeprefix("W/").strip('"')
        if not value.isdigit():
            raise InvalidInput(f"{what} must be a version number")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be a version number")
    return value


@routes.get("/api/menus/{district}")
async def get_menu(request: web.Request) -> web.Response:
    require_role(request, *READERS)
    district = request.match_info["district"]
    store = request.app[STORE]
    try:
        await menus.own_menu(store, district)
    except menus.MenuShared as exc:
        return web.json_response({"error": str(exc), "menu_of": exc.owner}, status=409, dumps=_dumps)
    current = await store.run(menu_store.current_version, district)
    if current is None:
        return json_error(404, f"no published menu for {district!r}")
    resp = web.json_response({
        "district": district, "version": current["version"], "created_at": current["created_at"],
        "created_by": current["created_by"], "note": current["note"], "menu": current["body"],
        "shared_with": await store.run(menu_store.sharers, district),
    }, dumps=_dumps)
    resp.headers["ETag"] = f'"{current["version"]}"'
    return resp


@routes.put("/api/menus/{district}")
async def put_menu(request: web.Request) -> web.Response:
    user = require_role(request, "admin")
    district = request.match_info["district"]
    data = await _json(request)
    base = _int_or_none(request.headers.get("If-Match"), "If-Match")
    if isinstance(data, dict) and "menu" in data and "nodes" not in data:
        base = _int_or_none(data.get("base_version"), "base_version") if "base_version" in data else base
        note = data.get("note") if isinstance(data.get("note"), str) else ""
        data = data["menu"]
    else:
        note = ""
    try:
        version = await menus.publish(request.app[STORE], request.app[CLOCK], web_prompts(request.app),
                                      district, data, user["username"], base_version=base,
                                      note=note[:200])
    except menus.MenuInvalid as exc:
        return invalid_response(exc)
    except menus.MenuConflict as exc:
        return conflict_response(exc)
    resp = web.json_response({"district": district, "version": version}, dumps=_dumps)
    resp.headers["ETag"] = f'"{version}"'
    return resp


@routes.get("/api/menus/{district}/share")
async def get_share(request: web.Request) -> web.Response:
    require_role(request, *READERS)
    district = request.match_info["district"]
    store = request.app[STORE]
    if district not in await store.run(menu_store.district_names):
        return json_error(404, f"no district {district!r}")
    return web.json_response({"district": district,
                              "menu_of": await store.run(menu_store.menu_of, district),
                              "shared_with": await store.run(menu_store.sharers, district)},
                             dumps=_dumps)


@routes.put("/api/menus/{district}/share")
async def put_share(request: web.Request) -> web.Response:
    """`{"menu_of": "<owner>"}`: play the owner's published menu; `{"menu_of": null}`: its own."""
    user = require_role(request, "admin")
    district = request.match_info["district"]
    data = await _json(request)
    if not isinstance(data, dict) or "menu_of" not in data or not (
            data["menu_of"] is None or isinstance(data["menu_of"], str)):
        raise InvalidInput('body must be JSON like {"menu_of": "<district id>"} or {"menu_of": null}')
    owner = data["menu_of"] or None
    try:
        await menus.share(request.app[STORE], request.app[CLOCK], web_prompts(request.app),
                          district, owner, user["username"])
    except menus.MenuInvalid as exc:
        return invalid_response(exc)
    except menu_store.ShareRefused as exc:
        return web.json_response({"error": str(exc), "problems": exc.problems}, status=422,
                                 dumps=_dumps)
    return web.json_response({"district": district, "menu_of": owner}, dumps=_dumps)


@routes.get("/api/menus/{district}/versions")
async def versions(request: web.Request) -> web.Response:
    require_role(request, *READERS)
    district = request.match_info["district"]
    rows = await request.app[STORE].run(menu_store.list_versions, district)
    return web.json_response({"district": district, "versions": rows}, dumps=_dumps)


@routes.get("/api/menus/{district}/versions/{version:\\d+}")
async def version(request: web.Request) -> web.Response:
    require_role(request, *READERS)
    row = await request.app[STORE].run(menu_store.get_version, request.match_info["district"],
                                       int(request.match_info["version"]))
    return web.json_response(row, dumps=_dumps)


@routes.post("/api/menus/{district}/rollback")
async def rollback(request: web.Request) -> web.Response:
    user = require_role(request, "admin")
    district = request.match_info["district"]
    data = await _json(request) if request.can_read_body else {}
    if not isinstance(data, dict):
        raise InvalidInput("body must be a JSON object")
    try:
        version = await menus.rollback(
            request.app[STORE], request.app[CLOCK], web_prompts(request.app), district,
            user["username"], to_version=_int_or_none(data.get("to_version"), "to_version"),
            base_version=_int_or_none(data.get("base_version"), "base_version"))
    except menus.MenuInvalid as exc:
        return invalid_response(exc)
    except menus.MenuConflict as exc:
        return conflict_response(exc)
    return web.json_response({"district": district, "version": version}, dumps=_dumps)


@routes.put("/api/menus/{district}/announcement")
async def put_announcement(request: web.Request) -> web.Response:
    user = require_role(request, "admin")
    district = request.match_info["district"]
    data = await _json(request)
    if not isinstance(data, dict) or not isinstance(data.get("texts"), dict):
        raise InvalidInput('body must be JSON like {"texts": {"sv": "..."}, "ends_at": "..."}')
    audio = data.get("audio") or {}
    if not isinstance(audio, dict):
        raise InvalidInput("audio must be an object of language -> recording")
    try:
        await menus.set_announcement(request.app[STORE], request.app[CLOCK], web_prompts(request.app),
                                     district, data["texts"], audio, data.get("ends_at"),
                                     user["username"])
    except menus.MenuInvalid as exc:
        return invalid_response(exc)
    ann = await request.app[STORE].run(menu_store.get_announcement, district)
    return web.json_response(ann, dumps=_dumps)


@routes.delete("/api/menus/{district}/announcement")
async def delete_announcement(request: web.Request) -> web.Response:
    user = require_role(request, "admin")
    await menus.clear_announcement(request.app[STORE], request.app[CLOCK],
                                   request.match_info["district"], user["username"])
    return web.json_response({"cleared": True})

