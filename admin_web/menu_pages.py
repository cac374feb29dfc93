"""Admin pages for menus: tree editor, prompt texts per language, recordings, preview,
announcement, versions with diff and rollback. Every change goes through `kc.menus` (the same
rules as the API and `kc menu import`), which writes the audit log.

The editor works on the district's draft (or, before the first save, on the live menu) and
carries `revision` and `base_version` in every form: a save or publish made from a stale page
is refused with the other person's work shown next to yours, so nothing is lost.
"""
from __future__ import annotations

import copy
import re
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDictProxy

from agi.recordings import MAX_BYTES, store_upload
from kc import queries
from agi import menu_store, menus
from kc.clock import iso, parse_iso
from kc.errors import InvalidInput
from kc.i18n import gettext as _

from .auth import require_page_role
from .keys import CLOCK, SETTINGS, STORE
from .menu_api import web_prompts
from .menu_forms import NODE_ID, node_from_form
from .menu_view import render as _render, sharing as _sharing, working as _working

routes = web.RouteTableDef()


# ---------------------------------------------------------------- working copy


async def _start_edit(request: web.Request) -> tuple[str, Any, dict]:
    """An admin's edit of the working menu: the district, the posted form, a copy to change."""
    require_page_role(request, "admin")
    district = request.match_info["district"]
    form = await request.post()
    return district, form, copy.deepcopy((await _working(request, district))["body"])


# ---------------------------------------------------------------- pages


@routes.get("/admin/menus")
async def menu_list(request: web.Request) -> web.Response:
    require_page_role(request, "admin")
    store = request.app[STORE]
    rows = []
    shares = await store.run(menu_store.all_shares)
    names = await store.run(menu_store.district_names)
    for d in await store.run(queries.list_districts):
        live = await store.run(menu_store.current_version, d.id)
        draft = await store.run(menu_store.get_draft, d.id)
        ann = await store.run(menu_store.get_announcement, d.id)
        owner = shares.get(d.id)
        rows.append({"district": d, "live": live, "draft": draft,
                     "announcement": menus.announcement_is_active(ann, request.app[CLOCK]()),
                     "menu_of": {"id": owner, "name": names.get(owner, owner)} if owner else None,
                     "shared_with": [names.get(x, x) for x, o in shares.items() if o == d.id]})
    return aiohttp_jinja2.render_template("menu_list.html", request, {"rows": rows})


@routes.get("/admin/menus/sound/{name:(uploads/)?[0-9a-f]{64}}.wav")
async def sound(request: web.Request) -> web.StreamResponse:
    require_page_role(request, "admin", "supervisor")
    path = request.app[SETTINGS].sounds_dir / (request.match_info["name"] + ".wav")
    if not path.is_file():
        raise web.HTTPNotFound(text=_("There is no such sound."))
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})


@routes.get("/admin/menus/{district}")
async def edit(request: web.Request) -> web.Response:
    require_page_role(request, "admin")
    diff_raw = request.query.get("diff", "")
    return await _render(request, request.match_info["district"],
                         preview=request.query.get("preview"),
                         diff_version=int(diff_raw) if diff_raw.isdigit() else None,
                         message=request.query.get("msg"))


def _redirect(district: str, message: str) -> web.HTTPFound:
    from urllib.parse import quote
    return web.HTTPFound(f"/admin/menus/{district}?msg={quote(message)}")


def _confirmed(form: MultiDictProxy) -> str:
    """What changes what callers hear (publish, roll back) or throws work away (discard) is
    confirmed on the page first: the form carries `confirm`; returns the note given with it."""
    if str(form.get("confirm", "")) != "yes":
        raise InvalidInput(_("Confirm first: tick the box beside the button."))
    return str(form.get("note", "")).strip()[:200]


def _ints(form: MultiDictProxy, *names: str) -> list[int]:
    out = []
    for name in names:
        raw = str(form.get(name, ""))
        if not raw.isdigit():
            raise InvalidInput(_("the form lacks %(name)s; reload the page") % {"name": name})
        out.append(int(raw))
    return out


async def _save(request: web.Request, district: str, form: MultiDictProxy, body: dict[str, Any],
                what: str) -> web.Response:
    """Save `body` as the draft from the form's revision; re-render with problems or conflict."""
    user = require_page_role(request, "admin")
    revision, base = _ints(form, "revision", "base_version")
    try:
        await menus.save_draft(request.app[STORE], request.app[CLOCK], district, body,
                               user["username"], revision, base)
    except menus.MenuConflict as exc:
        return await _render(request, district, status=409, conflict={
            "message": str(exc), "yours": menus.to_yaml(body),
            "theirs": (exc.current or {}).get("body"), "mine": body})
    except menus.MenuInvalid as exc:
        return await _render(request, district, status=422,
                             error=_("Not saved: %(why)s") % {"why": "; ".join(exc.problems)})
    raise _redirect(district, _("%(what)s saved in the draft.") % {"what": what})


@routes.post("/admin/menus/{district}/node")
async def save_node(request: web.Request) -> web.Response:
    require_page_role(request, "admin")
    district = request.match_info["district"]
    form = await request.post()
    w = await _working(request, district)
    body = copy.deepcopy(w["body"])
    node_id = str(form.get("node_id", ""))
    if node_id not in body.get("nodes", {}):
        return await _render(request, district, status=422,
                             error=_("There is no node %(node)s.") % {"node": node_id})
    try:
        body["nodes"][node_id] = node_from_form(form, body["nodes"][node_id], body["languages"])
    except InvalidInput as exc:
        return await _render(request, district, status=422, error=_("Not saved: %(why)s") % {"why": exc})
    return await _save(request, district, form, body, _("Node %(node)s") % {"node": node_id})


@routes.post("/admin/menus/{district}/add-node")
async def add_node(request: web.Request) -> web.Response:
    district, form, body = await _start_edit(request)
    node_id = str(form.get("new_node_id", "")).strip().lower()
    if not NODE_ID.match(node_id):
        return await _render(request, district, status=422,
                             error=_("A node's name is 1–32 lowercase letters, digits, - or _."))
    if node_id in body["nodes"]:
        return await _render(request, district, status=422,
                             error=_("There is a node %(node)s already.") % {"node": node_id})
    body["nodes"][node_id] = {
        "prompt": {lang: "" for lang in body["languages"]},
        "on_fail": {"action": "transfer", "number": "switchboard"},
        "options": {"#": {"action": "back"}, "0": {"action": "transfer", "number": "switchboard"}},
    }
    return await _save(request, district, form, body, _("Node %(node)s") % {"node": node_id})


@routes.post("/admin/menus/{district}/delete-node")
async def delete_node(request: web.Request) -> web.Response:
    district, form, body = await _start_edit(request)
    node_id = str(form.get("node_id", ""))
    if node_id == body.get("root") or node_id not in body["nodes"]:
        return await _render(request, district, status=422, error=_("The first node cannot be deleted."))
    del body["nodes"][node_id]
    return await _save(request, district, form, body, _("Deleting node %(node)s") % {"node": node_id})


@routes.post("/admin/menus/{district}/settings")
async def save_settings(request: web.Request) -> web.Response:
    district, form, body = await _start_edit(request)
    languages = [x.strip() for x in re.split(r"[,\s]+", str(form.get("languages", ""))) if x.strip()]
    if not languages:
        return await _render(request, district, status=422, error=_("A menu needs at least one language."))
    body["languages"] = languages
    body["root"] = str(form.get("root", body["root"])).strip()
    return await _save(request, district, form, body, _("Languages and first node"))


@routes.post("/admin/menus/{district}/publish")
async def publish(request: web.Request) -> web.Response:
    user = require_page_role(request, "admin")
    district = request.match_info["district"]
    form = await request.post()
    (revision,) = _ints(form, "revision")
    note = _confirmed(form)
    try:
        version = await menus.publish_draft(request.app[STORE], request.app[CLOCK],
                                            web_prompts(request.app), district, user["username"],
                                            revision, note)
    except menus.MenuInvalid as exc:
        return await _render(request, district, status=422, problems=exc.problems,
                             error=_("Not published: fix the problems listed below first."))
    except menus.MenuConflict as exc:
        return await _render(request, district, status=409, error=_(
            "Not published: %(why)s. Reload the page to see the other change.") % {"why": exc})
    raise _redirect(district, _("Published version %(n)s. The next call uses it.") % {"n": version})


@routes.post("/admin/menus/{district}/share")
async def share(request: web.Request) -> web.Response:
    """Play another district's menu (`menu_of`), or its own again (empty)."""
    user = require_page_role(request, "admin")
    district = request.match_info["district"]
    form = await request.post()
    owner = str(form.get("menu_of", "")).strip() or None
    try:
        await menus.share(request.app[STORE], request.app[CLOCK], web_prompts(request.app),
                          district, owner, user["username"])
    except InvalidInput as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        return await _render(request, district, status=422,
                             error=_("Not changed: %(why)s") % {"why": "; ".join(problems)})
    if owner is None:
        raise _redirect(district, _("This district plays its own menu again."))
    names = await request.app[STORE].run(menu_store.district_names)
    raise _redirect(district, _("Callers of this district now hear the menu of %(district)s.")
                    % {"district": names.get(owner, owner)})


@routes.post("/admin/menus/{district}/discard")
async def discard(request: web.Request) -> web.Response:
    user = require_page_role(request, "admin")
    district = request.match_info["district"]
    note = _confirmed(await request.post())
    await menus.discard_draft(request.app[STORE], request.app[CLOCK], district, user["username"], note)
    raise _redirect(district, _("Draft discarded."))


@routes.post("/admin/menus/{district}/rollback")
async def rollback(request: web.Request) -> web.Response:
    user = require_page_role(request, "admin")
    district = request.match_info["district"]
    form = await request.post()
    (base,) = _ints(form, "base_version")
    to = str(form.get("to_version", ""))
    note = _confirmed(form)
    try:
        version = await menus.rollback(request.app[STORE], request.app[CLOCK], web_prompts(request.app),
                                       district, user["username"],
                                       to_version=int(to) if to.isdigit() else None, base_version=base,
                                       note=note)
    except menus.MenuInvalid as exc:
        return await _render(request, district, status=422, problems=exc.problems,
                             error=_("That version cannot go live again as it is."))
    except menus.MenuConflict as exc:
        return await _render(request, district, status=409,
                             error=_("Not rolled back: %(why)s.") % {"why": exc})
    except InvalidInput as exc:
        return await _render(request, district, status=422, error=str(exc))
    raise _redirect(district, _("Rolled back: version %(n)s is live.") % {"n": version})


@routes.post("/admin/menus/{district}/announcement")
async def announcement(request: web.Request) -> web.Response:
    user = require_page_role(request, "admin")
    district = request.match_info["district"]
    form = await request.post()
    store, clock = request.app[STORE], request.app[CLOCK]
    if form.get("clear"):
        await menus.clear_announcement(store, clock, district, user["username"])
        raise _redirect(district, _("Announcement removed."))
    languages = (await _sharing(store, district))["announcement_languages"]
    texts = {lang: str(form.get(f"ann_{lang}", "")) for lang in languages}
    old = await store.run(menu_store.get_announcement, district)
    audio = dict(old["audio"]) if old else {}
    ends = str(form.get("ends_at", "")).strip()
    try:
        await menus.set_announcement(store, clock, web_prompts(request.app), district, texts, audio,
                                     _local_time(ends), user["username"])
    except menus.MenuInvalid as exc:
        return await _render(request, district, status=422, error=_("Announcement not saved: %(why)s")
                             % {"why": "; ".join(exc.problems)})
    raise _redirect(district, _("Announcement saved; callers hear it before the menu."))


def _local_time(value: str) -> str:
    """`<input type=datetime-local>` has no zone: the centre's (Europe/Stockholm)."""
    if not value:
        return value
    from datetime import datetime
    from zoneinfo import ZoneInfo
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("Europe/Stockholm"))
    return iso(parse_iso(moment.isoformat()))


@routes.post("/admin/menus/{district}/audio")
async def upload(request: web.Request) -> web.Response:
    """A recording for a node's prompt (or the announcement) in one language."""
    user = require_page_role(request, "admin")
    district = request.match_info["district"]
    fields: dict[str, str] = {}
    data = b""
    filename = ""
    if "X-CSRF-Token" not in request.headers:
        # A plain form post: the CSRF middleware has read (and cached) the whole form already.
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, str):
                fields[key] = value[:200]
            elif key == "file":
                filename = value.filename or ""
                data = value.file.read(MAX_BYTES + 1)
        return await _stored_upload(request, district, user, fields, data, filename)
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):
        return await _render(request, district, status=422, error=_("Send the recording as a file upload."))
    while (part := await reader.next()) is not None:
        if part.name == "file":
            filename = part.filename or ""
            chunks, size = [], 0
            while chunk := await part.read_chunk(256 * 1024):
                size += len(chunk)
                if size > MAX_BYTES:
                    return await _render(request, district, status=413,
                                         error=_("Not uploaded: %(file)s is larger than %(mb)s MB.")
                                         % {"file": filename or _("the file"),
                                            "mb": MAX_BYTES // 1024 // 1024})
                chunks.append(chunk)
            data = b"".join(chunks)
        elif part.name:
            fields[part.name] = (await part.text())[:200]
    return await _stored_upload(request, district, user, fields, data, filename)


async def _stored_upload(request: web.Request, district: str, user: dict[str, Any],
                         fields: dict[str, str], data: bytes, filename: str) -> web.Response:
    target, lang = fields.get("target", ""), fields.get("lang", "")
    try:
        ref = await store_upload(data, request.app[SETTINGS].sounds_dir, filename)
    except InvalidInput as exc:
        return await _render(request, district, status=422, error=_("Not uploaded: %(why)s") % {"why": exc})
    store, clock = request.app[STORE], request.app[CLOCK]
    if target == "announcement":
        old = await store.run(menu_store.get_announcement, district)
        if old is None:
            return await _render(request, district, status=422,
                                 error=_("Save the announcement's texts and end time first."))
        try:
            await menus.set_announcement(store, clock, web_prompts(request.app), district, old["texts"],
                                         {**old["audio"], lang: ref}, old["ends_at"], user["username"])
        except menus.MenuInvalid as exc:
            return await _render(request, district, status=422, error="; ".join(exc.problems))
        raise _redirect(district, _("Recording for the announcement (%(language)s) saved.") % {"language": lang})
    w = await _working(request, district)
    body = copy.deepcopy(w["body"])
    node_id = target.removeprefix("node:")
    if node_id not in body["nodes"] or lang not in body["languages"]:
        return await _render(request, district, status=422, error=_("Choose a node and a language."))
    body["nodes"][node_id].setdefault("audio", {})[lang] = ref
    form = MultiDictProxy(_md({"revision": fields.get("revision", ""),
                               "base_version": fields.get("base_version", "")}))
    return await _save(request, district, form, body,
                       _("Recording for %(node)s (%(language)s)") % {"node": node_id, "language": lang})


@routes.post("/admin/menus/{district}/remove-audio")
async def remove_audio(request: web.Request) -> web.Response:
    district, form, body = await _start_edit(request)
    node_id, lang = str(form.get("node_id", "")), str(form.get("lang", ""))
    if node_id in body["nodes"]:
        (body["nodes"][node_id].get("audio") or {}).pop(lang, None)
    return await _save(request, district, form, body, _("Removing the recording of %(node)s (%(language)s)")
                       % {"node": node_id, "language": lang})


def _md(values: dict[str, str]):
    from multidict import MultiDict
    return MultiDict(values)
