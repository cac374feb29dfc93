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
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDictProxy

from agi.menu import (DIGITS, Collect, DialByName, Hangup, Menu, MenuError, MenuSession, Queue, Transfer,
                      with_district)
from agi.prompts import PromptError
from agi.recordings import MAX_BYTES, store_upload
from kc import queries
from agi import menu_store, menus
from kc.clock import iso, parse_iso
from kc.errors import InvalidInput, NotFound

from .auth import require_page_role
from .keys import CLOCK, SETTINGS, STORE
from .menu_api import web_prompts
from .menu_forms import (ACTION_KINDS, FAIL_KINDS, NODE_ID, node_from_form,
                         node_views)

routes = web.RouteTableDef()

_SOUND = re.compile(r"^(uploads/)?[0-9a-f]{64}$")


# ---------------------------------------------------------------- working copy


async def _start_edit(request: web.Request) -> tuple[str, Any, dict]:
    """An admin's edit of the working menu: the district, the posted form, a copy to change."""
    require_page_role(request, "admin")
    district = request.match_info["district"]
    form = await request.post()
    return district, form, copy.deepcopy((await _working(request, district))["body"])


async def _working(request: web.Request, district: str) -> dict[str, Any]:
    store = request.app[STORE]
    districts = {d.id: d for d in await store.run(queries.list_districts)}
    if district not in districts:
        raise web.HTTPNotFound(text=f"No district {district!r}.")
    live = await store.run(menu_store.current_version, district)
    draft = await store.run(menu_store.get_draft, district)
    if draft is not None:
        body, revision, base = draft["body"], draft["revision"], draft["base_version"]
    elif live is not None:
        body, revision, base = live["body"], 0, live["version"]
    else:
        body, revision, base = {"languages": ["sv"], "root": "main", "nodes": {}}, 0, 0
    return {"district": districts[district], "live": live, "draft": draft, "body": body,
            "revision": revision, "base_version": base}


# ---------------------------------------------------------------- rendering


async def _render(request: web.Request, district: str, *, message: str | None = None,
                  error: str | None = None, problems: list[str] | None = None,
                  conflict: dict[str, Any] | None = None, status: int = 200,
                  preview: str | None = None, diff_version: int | None = None) -> web.Response:
    store = request.app[STORE]
    w = await _working(request, district)
    body = w["body"]
    skills = await store.run(menu_store.known_skills)
    if problems is None:   # checked against every district that plays this menu
        _, problems, _users = await menus.problems_for(store, district, body)
    live = w["live"]
    sharing = await _sharing(store, district)
    versions = await store.run(menu_store.list_versions, district)
    ann = await store.run(menu_store.get_announcement, district)
    ctx: dict[str, Any] = {
        **w, "nodes": node_views(body) if body.get("nodes") else [],
        "languages": body.get("languages", []), "problems": problems, "message": message,
        "error": error, "conflict": conflict, "versions": versions, "skills": sorted(skills),
        "kinds": ACTION_KINDS, "fail_kinds": FAIL_KINDS, "digits": DIGITS,
        "announcement": ann,
        "announcement_active": menus.announcement_is_active(ann, request.app[CLOCK]()),
        "draft_diff": menus.diff(live["body"] if live else None, body, "live", "draft")
        if w["draft"] else "",
        "max_mb": MAX_BYTES // 1024 // 1024, "preview_digits": preview or "",
        **sharing,
    }
    if preview is not None:
        ctx["preview"] = await _preview(request, with_district(body, w["district"].name), preview)
    if diff_version is not None:
        try:
            new = await store.run(menu_store.get_version, district, diff_version)
            old = (await store.run(menu_store.get_version, district, diff_version - 1)
                   if diff_version > 1 else None)
        except NotFound:
            ctx["error"] = f"There is no version {diff_version}."
        else:
            ctx["version_diff"] = {"version": diff_version, "text": menus.diff(
                old["body"] if old else None, new["body"], f"version {diff_version - 1}",
                f"version {diff_version}") or "(no difference)"}
    return aiohttp_jinja2.render_template("menu_edit.html", request, ctx, status=status)


async def _sharing(store, district: str) -> dict[str, Any]:
    """Who plays whose menu, as the edit page shows it."""
    shares = await store.run(menu_store.all_shares)
    names = await store.run(menu_store.district_names)
    owner = shares.get(district)
    live = await store.run(menu_store.current_version, owner or district)
    return {
        "menu_of": owner, "menu_of_name": names.get(owner, owner) if owner else None,
        "shared_with": [names.get(d, d) for d, o in shares.items() if o == district],
        "share_choices": [{"id": d, "name": n} for d, n in sorted(names.items(), key=lambda x: x[1])
                          if d != district and d not in shares],
        "announcement_languages": live["body"]["languages"] if live else [],
    }


def _sound_url(path: Path, sounds: Path) -> str | None:
    try:
        rel = path.absolute().relative_to(sounds.absolute()).as_posix()
    except ValueError:
        return None
    return f"/admin/menus/sound/{rel}.wav" if _SOUND.match(rel) else None


async def _preview(request: web.Request, body: dict[str, Any], digits: str) -> dict[str, Any]:
    """Drive the engine with typed digits (`t` = silence until the timeout)."""
    try:
        menu = Menu.from_dict(body)
        session = MenuSession(menu)
    except MenuError as exc:
        return {"error": str(exc), "steps": []}
    prompts = web_prompts(request.app)
    sounds = request.app[SETTINGS].sounds_dir
    tokens = [c for c in digits.lower() if c in DIGITS or c == "t"][:40]

    async def speech_view(speech) -> dict[str, Any]:
        url = None
        try:
            url = _sound_url(await prompts.resolve(speech.text, speech.language, speech.audio), sounds)
        except PromptError:
            pass
        return {"text": speech.text, "language": speech.language, "recorded": bool(speech.audio),
                "url": url}

    steps = []
    step = session.start()
    for token in [None, *tokens]:
        if token is not None:
            if session.finished:
                break
            step = session.timeout() if token == "t" else session.press(token)
        view: dict[str, Any] = {"input": token, "say": [await speech_view(s) for s in step.say]}
        then = step.then
        if isinstance(then, Collect):
            view["collect"] = {"node": then.node_id, "timeout": then.timeout,
                               "prompt": await speech_view(then.prompt)}
        elif isinstance(then, Queue):
            view["final"] = f"queue for {then.skill} (priority {then.priority})"
        elif isinstance(then, Transfer):
            view["final"] = f"transfer to {then.target}"
        elif isinstance(then, DialByName):
            view["final"] = "dial by name in the staff directory"
        elif isinstance(then, Hangup):
            view["final"] = f"hang up after the message ({then.reason})"
        steps.append(view)
    return {"steps": steps, "language": session.language, "path": session.path,
            "events": [f"{k} {d}" for k, d in session.events]}


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
        raise web.HTTPNotFound(text="No such sound.")
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


def _ints(form: MultiDictProxy, *names: str) -> list[int]:
    out = []
    for name in names:
        raw = str(form.get(name, ""))
        if not raw.isdigit():
            raise InvalidInput(f"the form lacks {name}; reload the page")
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
            "diff": menus.diff((exc.current or {}).get("body"), body, "saved by the other person", "yours")})
    except menus.MenuInvalid as exc:
        return await _render(request, district, status=422, error="Not saved: " + "; ".join(exc.problems))
    raise _redirect(district, f"{what} saved in the draft.")


@routes.post("/admin/menus/{district}/node")
async def save_node(request: web.Request) -> web.Response:
    require_page_role(request, "admin")
    district = request.match_info["district"]
    form = await request.post()
    w = await _working(request, district)
    body = copy.deepcopy(w["body"])
    node_id = str(form.get("node_id", ""))
    if node_id not in body.get("nodes", {}):
        return await _render(request, district, status=422, error=f"There is no node {node_id!r}.")
    try:
        body["nodes"][node_id] = node_from_form(form, body["nodes"][node_id], body["languages"])
    except InvalidInput as exc:
        return await _render(request, district, status=422, error=f"Not saved: {exc}")
    return await _save(request, district, form, body, f"Node {node_id}")


@routes.post("/admin/menus/{district}/add-node")
async def add_node(request: web.Request) -> web.Response:
    district, form, body = await _start_edit(request)
    node_id = str(form.get("new_node_id", "")).strip().lower()
    if not NODE_ID.match(node_id):
        return await _render(request, district, status=422,
                             error="A node id is 1-32 lowercase letters, digits, - or _.")
    if node_id in body["nodes"]:
        return await _render(request, district, status=422, error=f"Node {node_id!r} exists already.")
    body["nodes"][node_id] = {
        "prompt": {lang: "" for lang in body["languages"]},
        "on_fail": {"action": "transfer", "number": "switchboard"},
        "options": {"#": {"action": "back"}, "0": {"action": "transfer", "number": "switchboard"}},
    }
    return await _save(request, district, form, body, f"Node {node_id}")


@routes.post("/admin/menus/{district}/delete-node")
async def delete_node(request: web.Request) -> web.Response:
    district, form, body = await _start_edit(request)
    node_id = str(form.get("node_id", ""))
    if node_id == body.get("root") or node_id not in body["nodes"]:
        return await _render(request, district, status=422, error="The root node cannot be deleted.")
    del body["nodes"][node_id]
    return await _save(request, district, form, body, f"Deleting node {node_id}")


@routes.post("/admin/menus/{district}/settings")
async def save_settings(request: web.Request) -> web.Response:
    district, form, body = await _start_edit(request)
    languages = [x.strip() for x in re.split(r"[,\s]+", str(form.get("languages", ""))) if x.strip()]
    if not languages:
        return await _render(request, district, status=422, error="A menu needs at least one language.")
    body["languages"] = languages
    body["root"] = str(form.get("root", body["root"])).strip()
    return await _save(request, district, form, body, "Languages and root")


@routes.post("/admin/menus/{district}/publish")
async def publish(request: web.Request) -> web.Response:
    user = require_page_role(request, "admin")
    district = request.match_info["district"]
    form = await request.post()
    (revision,) = _ints(form, "revision")
    try:
        version = await menus.publish_draft(request.app[STORE], request.app[CLOCK],
                                            web_prompts(request.app), district, user["username"],
                                            revision)
    except menus.MenuInvalid as exc:
        return await _render(request, district, status=422, problems=exc.problems,
                             error="Not published: fix the problems listed below first.")
    except menus.MenuConflict as exc:
        return await _render(request, district, status=409, error=f"Not published: {exc}. "
                             "Reload the page to see the other change.")
    raise _redirect(district, f"Published version {version}. The next call uses it.")


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
                             error="Not changed: " + "; ".join(problems))
    if owner is None:
        raise _redirect(district, "This district plays its own menu again.")
    raise _redirect(district, f"Callers of this district now hear the menu of {owner}.")


@routes.post("/admin/menus/{district}/discard")
async def discard(request: web.Request) -> web.Response:
    user = require_page_role(request, "admin")
    district = request.match_info["district"]
    await menus.discard_draft(request.app[STORE], request.app[CLOCK], district, user["username"])
    raise _redirect(district, "Draft discarded.")


@routes.post("/admin/menus/{district}/rollback")
async def rollback(request: web.Request) -> web.Response:
    user = require_page_role(request, "admin")
    district = request.match_info["district"]
    form = await request.post()
    (base,) = _ints(form, "base_version")
    to = str(form.get("to_version", ""))
    try:
        version = await menus.rollback(request.app[STORE], request.app[CLOCK], web_prompts(request.app),
                                       district, user["username"],
                                       to_version=int(to) if to.isdigit() else None, base_version=base)
    except menus.MenuInvalid as exc:
        return await _render(request, district, status=422, problems=exc.problems,
                             error="That version cannot go live again as it is.")
    except menus.MenuConflict as exc:
        return await _render(request, district, status=409, error=f"Not rolled back: {exc}.")
    except InvalidInput as exc:
        return await _render(request, district, status=422, error=str(exc))
    raise _redirect(district, f"Rolled back: version {version} is live.")


@routes.post("/admin/menus/{district}/announcement")
async def announcement(request: web.Request) -> web.Response:
    user = require_page_role(request, "admin")
    district = request.match_info["district"]
    form = await request.post()
    store, clock = request.app[STORE], request.app[CLOCK]
    if form.get("clear"):
        await menus.clear_announcement(store, clock, district, user["username"])
        raise _redirect(district, "Announcement removed.")
    languages = (await _sharing(store, district))["announcement_languages"]
    texts = {lang: str(form.get(f"ann_{lang}", "")) for lang in languages}
    old = await store.run(menu_store.get_announcement, district)
    audio = dict(old["audio"]) if old else {}
    ends = str(form.get("ends_at", "")).strip()
    try:
        await menus.set_announcement(store, clock, web_prompts(request.app), district, texts, audio,
                                     _local_time(ends), user["username"])
    except menus.MenuInvalid as exc:
        return await _render(request, district, status=422, error="Announcement not saved: "
                             + "; ".join(exc.problems))
    raise _redirect(district, "Announcement saved; callers hear it before the menu.")


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
        return await _render(request, district, status=422, error="Send the recording as a file upload.")
    while (part := await reader.next()) is not None:
        if part.name == "file":
            filename = part.filename or ""
            chunks, size = [], 0
            while chunk := await part.read_chunk(256 * 1024):
                size += len(chunk)
                if size > MAX_BYTES:
                    return await _render(request, district, status=413,
                                         error=f"Not uploaded: {filename or 'the file'} is larger than "
                                               f"{MAX_BYTES // 1024 // 1024} MB.")
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
        return await _render(request, district, status=422, error=f"Not uploaded: {exc}")
    store, clock = request.app[STORE], request.app[CLOCK]
    if target == "announcement":
        old = await store.run(menu_store.get_announcement, district)
        if old is None:
            return await _render(request, district, status=422,
                                 error="Save the announcement's texts and end time first.")
        try:
            await menus.set_announcement(store, clock, web_prompts(request.app), district, old["texts"],
                                         {**old["audio"], lang: ref}, old["ends_at"], user["username"])
        except menus.MenuInvalid as exc:
            return await _render(request, district, status=422, error="; ".join(exc.problems))
        raise _redirect(district, f"Recording for the announcement ({lang}) saved.")
    w = await _working(request, district)
    body = copy.deepcopy(w["body"])
    node_id = target.removeprefix("node:")
    if node_id not in body["nodes"] or lang not in body["languages"]:
        return await _render(request, district, status=422, error="Choose a node and a language.")
    body["nodes"][node_id].setdefault("audio", {})[lang] = ref
    form = MultiDictProxy(_md({"revision": fields.get("revision", ""),
                               "base_version": fields.get("base_version", "")}))
    return await _save(request, district, form, body, f"Recording for {node_id} ({lang})")


@routes.post("/admin/menus/{district}/remove-audio")
async def remove_audio(request: web.Request) -> web.Response:
    district, form, body = await _start_edit(request)
    node_id, lang = str(form.get("node_id", "")), str(form.get("lang", ""))
    if node_id in body["nodes"]:
        (body["nodes"][node_id].get("audio") or {}).pop(lang, None)
    return await _save(request, district, form, body, f"Removing the recording of {node_id} ({lang})")


def _md(values: dict[str, str]):
    from multidict import MultiDict
    return MultiDict(values)
