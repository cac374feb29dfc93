"""Recordings of the system's own phrases (`agi.phrase_recordings`): for a menu language with
no speech voice (Somali, Tigrinya) the phrases said whole need a recording before a menu may
offer it. Administrators only; every upload audited.

  GET  /api/phrases                              every phrase x language: text, status
                                                 (spoken / recorded / swedish / missing)
  PUT  /api/phrases/{key}/{language}/recording   the body is the WAV or MP3 file itself
  GET  /admin/phrases                            the same table, an upload form per phrase
  POST /admin/phrases/{key}/{language}           the page's upload (a form with `file`)
"""
from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from agi import phrase_recordings, phrasebook
from agi.prompts import VOICES
from agi.recordings import MAX_BYTES
from kc.audit import audit
from kc.errors import InvalidInput, NotFound
from kc.i18n import N_, gettext as _

from .auth import require_page_role, require_role
from .errors import json_error
from .keys import CLOCK, SETTINGS, STORE
from .menu_view import language_name

routes = web.RouteTableDef()
STATUS_WORDS = {"spoken": N_("spoken by the voice"), "recorded": N_("recorded"),
                "swedish": N_("said in Swedish (composed; no voice)"),
                "missing": N_("missing: needs a recording")}


def _table(request: web.Request) -> list[dict[str, Any]]:
    return phrase_recordings.table(VOICES, phrase_recordings.recorded(request.app[SETTINGS].sounds_dir))


def _page(request: web.Request, **extra: Any) -> dict[str, Any]:
    return {"rows": _table(request), "status_words": STATUS_WORDS, "language_name": language_name,
            "recorded_alone": phrasebook.RECORDED_ALONE, **extra}


async def _store(request: web.Request, user: dict[str, Any], data: bytes,
                 filename: str) -> dict[str, str]:
    """Keep the recording of the path's phrase (the caller checked the role first)."""
    key, language = request.match_info["key"], request.match_info["language"]
    phrase_recordings.check(key, language)        # 404 before the file is looked at
    had = phrase_recordings.recorded(request.app[SETTINGS].sounds_dir)
    stored = await phrase_recordings.store(data, request.app[SETTINGS].sounds_dir, key, language,
                                           filename)
    await audit(request.app[STORE], request.app[CLOCK], user["username"], "phrase.record",
                f"{key}/{language}", {"recorded": (key, language) in had},
                {"recording": stored["recording"], "sha256": stored["sha256"], "file": filename[:200]})
    return stored


@routes.get("/api/phrases")
async def phrases_json(request: web.Request) -> web.Response:
    require_role(request, "admin")
    return web.json_response({"phrases": _table(request), "statuses": list(phrase_recordings.STATUSES)})


@routes.put("/api/phrases/{key}/{language}/recording")
async def put_recording(request: web.Request) -> web.Response:
    user = require_role(request, "admin")
    phrase_recordings.check(request.match_info["key"], request.match_info["language"])
    data = await request.content.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        return json_error(413, f"recordings may be at most {MAX_BYTES // 1024 // 1024} MB")
    stored = await _store(request, user, data, request.query.get("filename", "")[:200])
    return web.json_response(stored)


@routes.get("/admin/phrases")
@aiohttp_jinja2.template("phrases.html")
async def phrases_page(request: web.Request) -> dict[str, Any]:
    require_page_role(request, "admin")
    return _page(request, saved=request.query.get("saved", "")[:100])


@routes.post("/admin/phrases/{key}/{language}")
async def upload_page(request: web.Request) -> web.Response:
    user = require_page_role(request, "admin")
    form = await request.post()
    upload = form.get("file")
    data = upload.file.read(MAX_BYTES + 1) if hasattr(upload, "file") else b""
    filename = getattr(upload, "filename", "") or ""
    try:
        if len(data) > MAX_BYTES:
            raise InvalidInput(_("the file is larger than %(mb)s MB") % {"mb": MAX_BYTES // 1024 // 1024})
        stored = await _store(request, user, data, filename)
    except (InvalidInput, NotFound) as exc:
        response = aiohttp_jinja2.render_template("phrases.html", request, _page(
            request, error=_("Not uploaded: %(why)s") % {"why": exc}))
        response.set_status(404 if isinstance(exc, NotFound) else 422)
        return response
    raise web.HTTPSeeOther(f"/admin/phrases?saved={stored['key']}/{stored['language']}")
