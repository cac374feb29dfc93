"""What the menu editor shows: the working copy (the draft, else the live menu), the page's
context (nodes with fields by action, named lists of queues, nodes and languages, the sharing,
the versions compared node by node) and the preview, which drives the menu engine itself."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from agi import menu_store, menus, phrase_recordings
from agi.menu import (DIGITS, Collect, DialByName, Hangup, Menu, MenuError, MenuSession, Queue, Transfer,
                      with_district)
from agi.prompts import PromptError
from agi.recordings import MAX_BYTES
from kc import queries
from kc.errors import NotFound
from kc.i18n import N_, current, gettext as _

from . import words
from .keys import CLOCK, SETTINGS, STORE
from .menu_api import web_prompts
from .menu_compare import compare
from .menu_forms import ACTION_KINDS, FAIL_KINDS, PROMPT_LINE, node_views

_SOUND = re.compile(r"^(uploads/)?[0-9a-f]{64}$")


async def working(request: web.Request, district: str) -> dict[str, Any]:
    store = request.app[STORE]
    districts = {d.id: d for d in await store.run(queries.list_districts)}
    if district not in districts:
        raise web.HTTPNotFound(text=_("There is no district %(district)s.") % {"district": district})
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


def language_name(code: str) -> str:
    """A menu language by its name in the page's language ("engelska")."""
    from babel import Locale
    try:
        return str(Locale.parse(words.BABEL_LOCALE.get(current(), "sv_SE")).languages.get(code, code))
    except (ValueError, TypeError):
        return code


def namer(org: dict[str, dict[str, str]]):
    """Names for the comparison: a skill's, a language's."""
    def name(kind: str, value: str) -> str:
        if kind == "skill":
            return org["skills"].get(value, value)
        return language_name(value) if kind == "language" else value
    return name


async def render(request: web.Request, district: str, *, message: str | None = None,
                 error: str | None = None, problems: list[str] | None = None,
                 conflict: dict[str, Any] | None = None, status: int = 200,
                 preview: str | None = None, diff_version: int | None = None) -> web.Response:
    store = request.app[STORE]
    w = await working(request, district)
    body = w["body"]
    org = await store.read(queries.names)
    skills = await store.run(menu_store.known_skills)
    if problems is None:   # checked against every district that plays this menu
        _ok, problems, _users = await menus.problems_for(
            store, district, body, recorded=phrase_recordings.recorded(request.app[SETTINGS].sounds_dir))
    live = w["live"]
    shared = await sharing(store, district)
    versions = await store.run(menu_store.list_versions, district)
    ann = await store.run(menu_store.get_announcement, district)
    name = namer(org)
    ctx: dict[str, Any] = {
        **w, "nodes": node_views(body, org["skills"]) if body.get("nodes") else [],
        "prompt_lines": PROMPT_LINE,
        "languages": body.get("languages", []), "problems": problems, "message": message,
        "error": error, "conflict": conflict, "versions": versions,
        # the named lists: only skills some agent has may be queued for
        "skill_choices": sorted(((s, org["skills"].get(s, s)) for s in skills), key=lambda x: x[1]),
        "language_names": {lang: language_name(lang) for lang in body.get("languages", [])},
        "kinds": ACTION_KINDS, "fail_kinds": FAIL_KINDS, "digits": DIGITS,
        "kind_names": KIND_NAMES, "announcement": ann,
        "announcement_active": menus.announcement_is_active(ann, request.app[CLOCK]()),
        "draft_changes": compare(live["body"] if live else None, body, name) if w["draft"] else [],
        "max_mb": MAX_BYTES // 1024 // 1024, "preview_digits": preview or "",
        "note_text": note_text, **shared,
    }
    if conflict is not None and "theirs" in conflict:
        conflict["changes"] = compare(conflict.pop("theirs"), conflict["mine"], name)
    if preview is not None:
        ctx["preview"] = await _preview(request, with_district(body, w["district"].name), preview)
    if diff_version is not None:
        try:
            new = await store.run(menu_store.get_version, district, diff_version)
            old = (await store.run(menu_store.get_version, district, diff_version - 1)
                   if diff_version > 1 else None)
        except NotFound:
            ctx["error"] = _("There is no version %(n)s.") % {"n": diff_version}
        else:
            ctx["version_diff"] = {"version": diff_version,
                                   "changes": compare(old["body"] if old else None, new["body"], name)}
    return aiohttp_jinja2.render_template("menu_edit.html", request, ctx, status=status)


# The actions as the editor names them (the menu's own words are its codes).
KIND_NAMES = {"submenu": N_("Submenu"), "queue": N_("Queue to agents"), "info": N_("Message"),
              "eservice": N_("E-service"), "transfer": N_("Transfer"),
              "language": N_("Change language"), "repeat": N_("Repeat the menu"),
              "back": N_("Back one step")}
_NOTE = re.compile(r"^(rollback to version|draft revision) (\d+)(?:: (.*))?$", re.S)


def note_text(note: str | None) -> str:
    """A version's note as written when it was published, in the page's language."""
    m = _NOTE.match(note or "")
    if not m:
        return note or ""
    head = (_("rollback to version %(n)s") if m.group(1).startswith("rollback")
            else _("draft revision %(n)s")) % {"n": m.group(2)}
    return head + (": " + m.group(3) if m.group(3) else "")


async def sharing(store, district: str) -> dict[str, Any]:
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
            view["final"] = _("queue for %(skill)s (priority %(n)s)") % {
                "skill": (await request.app[STORE].read(queries.names))["skills"].get(then.skill, then.skill),
                "n": then.priority}
        elif isinstance(then, Transfer):
            view["final"] = (_("to the switchboard") if then.target == "switchboard"
                             else _("transfer to %(number)s") % {"number": then.target})
        elif isinstance(then, DialByName):
            view["final"] = _("dial by name in the staff directory")
        elif isinstance(then, Hangup):
            view["final"] = _("hang up after the message (%(reason)s)") % {"reason": then.reason}
        steps.append(view)
    return {"steps": steps, "language": session.language, "path": session.path,
            "events": [f"{k} {d}" for k, d in session.events]}
