"""Safe menu editing: draft -> validate -> publish, history, rollback, announcements.

One place for the rules, used alike by the JSON API, the admin pages and `kc menu import`:
a menu goes live only if it parses, `agi.menu.validate` finds nothing (with the skills the
store's agents really have), every language has a voice and every recording reference is an
upload; its prompts are synthesised before it is stored, so the very next call finds them.
Calls play the live version held in memory (`agi.call_catalogue`), reloaded on the next call
after any publish, so publishing needs no Asterisk reload and a call already in the menu keeps
the version it started with.
Every change is written to the audit log.
"""
from __future__ import annotations

import difflib
from datetime import datetime
from typing import Any, Iterable

import yaml

from agi.menu import (EServiceAction, InfoAction, Menu, MenuError, menu_with_district,
                      queued_skills, validate)
from agi.prompts import VOICES, PromptCache, PromptError
from agi.recordings import AUDIO_REF

from agi import menu_store, phrase_recordings, phrasebook
from kc import surveys
from kc.audit import audit
from kc.clock import Clock, iso, parse_iso
from kc import strict_yaml
from kc.errors import InvalidInput, NotFound
from agi.menu_store import MenuConflict
from kc.store import Store

__all__ = ["MenuConflict", "MenuInvalid", "check", "publish", "rollback", "save_draft",
           "publish_draft", "discard_draft", "set_announcement", "clear_announcement",
           "diff", "to_yaml", "from_yaml", "MenuShared", "share", "problems_for", "own_menu"]


class MenuInvalid(InvalidInput):
    """A menu that may not go live; `problems` name the node of each mistake."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"the menu has {len(problems)} problem(s): " + "; ".join(problems))


class MenuShared(MenuInvalid):
    """The district plays another district's menu: edit (or export) the owner's instead."""

    def __init__(self, district: str, owner: str, names: dict[str, str] | None = None):
        names = names or {}
        self.district, self.owner = district, owner
        message = (f"{names.get(district, district)} ({district}) uses the menu of "
                   f"{names.get(owner, owner)} ({owner}): edit, export or import {owner}'s menu, "
                   f"or stop sharing first")
        super().__init__([message])
        self.args = (message,)

    def __str__(self) -> str:
        return self.problems[0]


async def own_menu(store: Store, district: str) -> None:
    """Raise MenuShared when `district` plays someone else's menu."""
    owner = await store.run(menu_store.menu_of, district)
    if owner is not None:
        raise MenuShared(district, owner, await store.run(menu_store.district_names))


def _audio_refs(menu: Menu) -> Iterable[tuple[str, str]]:
    for node_id, node in menu.nodes.items():
        for lang, ref in node.audio.items():
            yield f"{node_id}: recording for {lang!r}", ref
        for option in [*node.options]:
            action = option.action
            if isinstance(action, (InfoAction, EServiceAction)):
                for lang, ref in action.audio.items():
                    yield f"{node_id}: option {option.digit!r} recording for {lang!r}", ref


def _unrecorded(menu: Menu, lang: str) -> Iterable[str]:
    """The menu's prompts in `lang` with no recording (said only if a voice says them)."""
    for node_id, node in menu.nodes.items():
        if not node.audio.get(lang):
            yield node_id
        actions = [(f"{node_id}/{o.digit}", o.action) for o in node.options]
        for where, action in [*actions, (f"{node_id}/fail", node.on_fail)]:
            if isinstance(action, (InfoAction, EServiceAction)) and not action.audio.get(lang):
                yield where


def check(body: Any, skills: set[str] | None,
          recorded: frozenset[tuple[str, str]] = frozenset()) -> tuple[Menu | None, list[str]]:
    """(menu, problems): problems empty means it may be published. `recorded`: the system's
    phrases recorded per language (`agi.phrase_recordings.recorded`)."""
    try:
        menu = Menu.from_dict(body)
    except MenuError as exc:
        return None, [str(exc)]
    problems = [str(p) for p in validate(menu, skills)]
    for lang in menu.languages:
        unrecorded = [] if lang in VOICES else list(dict.fromkeys(_unrecorded(menu, lang)))
        if unrecorded:
            problems.append(f"menu: no speech synthesiser voice for language {lang!r} "
                            f"(available: {', '.join(sorted(VOICES))}) and no recording in it "
                            f"for {', '.join(unrecorded)}")
    # what the system says besides the menu (waiting, call-back, after hours, survey)
    problems += [f"menu: {p}" for p in phrasebook.missing(menu.languages, VOICES, recorded)]
    for where, ref in _audio_refs(menu):
        if ref and not AUDIO_REF.match(ref):
            problems.append(f"{where} must be an uploaded recording (uploads/<id>), not {ref!r}")
    return menu, problems


def sharing_problems(menu: Menu, users: list[str], names: dict[str, str],
                      skills_of: dict[str, set[str]]) -> list[str]:
    """A menu several districts play: each queue must have agents in every one of them
    (the call queues in the district that was called)."""
    if len(users) < 2:
        return []
    problems = []
    for node_id, where, skill in queued_skills(menu):
        for district in users:
            if skill and skill not in skills_of.get(district, set()):
                problems.append(f"{node_id}: {where} queues for skill {skill!r} that no agent of "
                                f"{names.get(district, district)} has (it uses this menu)")
    return problems


def coverage_problems(db, district: str) -> list[str]:
    """After agents changed: the live shared menu `district` plays, checked again against the
    publish rule (each queue has agents in every district that plays it) for this district."""
    owner = menu_store.menu_of(db, district) or district
    users = menu_store.users_of(db, owner)
    live = menu_store.current_version(db, owner)
    if len(users) < 2 or live is None or district not in users:
        return []
    try:
        menu = Menu.from_dict(live["body"])
    except MenuError:
        return []
    names, have = menu_store.district_names(db), menu_store.district_skills(db, district)
    return [f"{node_id}: {where} queues for skill {skill!r} that no agent of "
            f"{names.get(district, district)} has now (it plays {names.get(owner, owner)}'s menu)"
            for node_id, where, skill in queued_skills(menu) if skill and skill not in have]


def survey_problems(db, menu: Menu, users: list[str]) -> list[str]:
    """A queue's survey that is on must ask its questions in every language of the menu its
    district plays."""
    return [f"survey of {s.skill}@{s.district}: no text for {gap}"
            for s in surveys.list_surveys(db) if s.enabled and s.district in users
            for gap in s.missing_languages(menu.languages)]


def _users_data(db, owner: str, extra: str | None) -> tuple[list[str], dict[str, str], dict[str, set[str]]]:
    users = menu_store.users_of(db, owner)
    if extra and extra not in users:
        users.append(extra)
    return (users, menu_store.district_names(db),
            {d: menu_store.district_skills(db, d) for d in users})


async def problems_for(store: Store, district: str, body: Any, also: str | None = None,
                       recorded: frozenset[tuple[str, str]] = frozenset(),
                       ) -> tuple[Menu | None, list[str], list[str]]:
    """(menu, problems, users): everything that keeps `body` from going live as `district`'s
    menu, checked against every district that plays it (plus `also`, about to share it);
    `recorded` the system's phrases recorded (`agi.phrase_recordings.recorded`)."""
    skills = await store.run(menu_store.known_skills)
    menu, problems = check(body, skills, recorded)
    users, names, skills_of = await store.run(_users_data, district, also)
    if menu is not None:
        problems += sharing_problems(menu, users, names, skills_of)
        problems += await store.run(survey_problems, menu, users)
    return menu, problems, users


async def _synthesise(store: Store, prompts: PromptCache, menu: Menu, users: list[str]) -> None:
    """Every prompt as each district using the menu will hear it ({district} filled in)."""
    names = await store.run(menu_store.district_names)
    try:
        for district in users:
            await prompts.ensure_menu(menu_with_district(menu, names.get(district, district)))
    except PromptError as exc:
        raise MenuInvalid([f"menu: prompts could not be made: {exc}"]) from exc


async def _checked(store: Store, prompts: PromptCache, body: Any, district: str) -> dict[str, Any]:
    have = phrase_recordings.recorded(prompts.audio_root) if prompts.audio_root else frozenset()
    menu, problems, users = await problems_for(store, district, body, recorded=have)
    if problems or menu is None:
        raise MenuInvalid(problems)
    await _synthesise(store, prompts, menu, users)   # now, so the next call has every prompt
    return menu.to_dict()


async def publish(store: Store, clock: Clock, prompts: PromptCache, district: str, body: Any,
                  username: str, base_version: int | None = None, note: str = "",
                  clear_draft: bool = False, action: str = "menu.publish") -> int:
    """Validate and publish; MenuInvalid / MenuConflict / NotFound otherwise (MenuShared when
    the district plays another district's menu)."""
    await own_menu(store, district)
    before = await store.run(menu_store.current_version, district)
    canonical = await _checked(store, prompts, body, district)
    version = await store.run(menu_store.publish_version, district, canonical, username,
                              iso(clock()), base_version, note, clear_draft)
    await audit(store, clock, username, action, f"menu:{district}",
                {"version": before["version"]} if before else None,
                {"version": version, "note": note, "menu": canonical})
    return version


async def rollback(store: Store, clock: Clock, prompts: PromptCache, district: str, username: str,
                   to_version: int | None = None, base_version: int | None = None,
                   note: str = "") -> int:
    """Publish an earlier version again (default: the one before the live one); `note`, the
    administrator's reason, follows the version's own."""
    await own_menu(store, district)
    current = await store.run(menu_store.current_version, district)
    if current is None:
        raise NotFound(f"no published menu for {district!r}")
    target = current["version"] - 1 if to_version is None else to_version
    if target < 1 or target == current["version"]:
        raise InvalidInput(f"there is no earlier version to roll back to (live is {current['version']})")
    old = await store.run(menu_store.get_version, district, target)
    return await publish(store, clock, prompts, district, old["body"], username,
                         base_version=current["version"] if base_version is None else base_version,
                         note=f"rollback to version {target}" + (f": {note}" if note else ""),
                         action="menu.rollback")


async def save_draft(store: Store, clock: Clock, district: str, body: Any, username: str,
                     revision: int, base_version: int) -> int:
    """Save a draft (it may still have problems, but must have the menu's shape)."""
    await own_menu(store, district)
    try:
        body = Menu.from_dict(body).to_dict()
    except MenuError as exc:
        raise MenuInvalid([str(exc)]) from exc
    before = await store.run(menu_store.get_draft, district)
    new_revision = await store.run(menu_store.save_draft, district, body, username, iso(clock()),
                                   revision, base_version)
    await audit(store, clock, username, "menu.draft.save", f"menu:{district}",
                {"revision": before["revision"], "menu": before["body"]} if before else None,
                {"revision": new_revision, "menu": body})
    return new_revision


async def publish_draft(store: Store, clock: Clock, prompts: PromptCache, district: str,
                        username: str, revision: int, note: str = "") -> int:
    draft = await store.run(menu_store.get_draft, district)
    if draft is None:
        raise InvalidInput("there is no draft to publish")
    if draft["revision"] != revision:
        raise MenuConflict(f"{draft['updated_by']} changed the draft after you opened it "
                           f"(revision {draft['revision']}, yours {revision})", draft)
    return await publish(store, clock, prompts, district, draft["body"], username,
                         base_version=draft["base_version"], clear_draft=True,
                         note=f"draft revision {revision}" + (f": {note}" if note else ""))


async def discard_draft(store: Store, clock: Clock, district: str, username: str,
                        note: str = "") -> None:
    draft = await store.run(menu_store.get_draft, district)
    if draft is None:
        return
    await store.run(menu_store.discard_draft, district)
    await audit(store, clock, username, "menu.draft.discard", f"menu:{district}",
                {"revision": draft["revision"], "menu": draft["body"]}, {"note": note} if note else None)


async def set_announcement(store: Store, clock: Clock, prompts: PromptCache, district: str,
                           texts: dict[str, str], audio: dict[str, str], ends_at: str,
                           username: str) -> None:
    """A temporary message played before the menu until `ends_at` (ISO 8601)."""
    live = await store.run(menu_store.current_version,
                           await store.run(menu_store.menu_of, district) or district)
    if live is None:
        raise NotFound(f"no published menu for {district!r}")
    languages = live["body"]["languages"]
    texts = {lang: t.strip() for lang, t in texts.items() if isinstance(t, str) and t.strip()}
    audio = {lang: a for lang, a in audio.items() if a}
    problems = []
    if not texts:
        problems.append("the announcement needs a text in at least one language")
    for lang in {*texts, *audio}:
        if lang not in languages:
            problems.append(f"language {lang!r} is not one of the menu's ({', '.join(languages)})")
    for lang, ref in audio.items():
        if not isinstance(ref, str) or not AUDIO_REF.match(ref):
            problems.append(f"recording for {lang!r} must be an uploaded recording")
    try:
        end = parse_iso(ends_at)
    except (ValueError, TypeError, AttributeError):
        problems.append(f"end time {ends_at!r} is not a date and time")
        end = None
    if end is not None and end <= clock():
        problems.append("the end time is already past")
    if problems:
        raise MenuInvalid(problems)
    assert end is not None
    try:
        for lang, text in texts.items():
            await prompts.ensure(text, lang)
    except PromptError as exc:
        raise MenuInvalid([f"announcement: {exc}"]) from exc
    before = await store.run(menu_store.get_announcement, district)
    await store.run(menu_store.set_announcement, district, texts, audio, iso(end), username,
                    iso(clock()))
    await audit(store, clock, username, "menu.announcement.set", f"menu:{district}",
                _ann_audit(before), {"texts": texts, "audio": audio, "ends_at": iso(end)})


def _ann_audit(ann: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if ann is None else {k: ann[k] for k in ("texts", "audio", "ends_at")}


async def clear_announcement(store: Store, clock: Clock, district: str, username: str) -> None:
    before = await store.run(menu_store.get_announcement, district)
    if before is None:
        return
    await store.run(menu_store.clear_announcement, district)
    await audit(store, clock, username, "menu.announcement.clear", f"menu:{district}",
                _ann_audit(before), None)


def announcement_is_active(ann: dict[str, Any] | None, now: datetime) -> bool:
    return bool(ann) and parse_iso(ann["ends_at"]) > now


# ---------------------------------------------------------------- shared menus


async def share(store: Store, clock: Clock, prompts: PromptCache, district: str,
                owner: str | None, username: str) -> str | None:
    """Let `district` play `owner`'s published menu (None: its own again); returns the owner
    it had before. Refused (ShareRefused, a 422) for unknown districts, itself, chains; refused
    (MenuInvalid) when the owner's menu queues for a skill no agent of `district` has."""
    problems = await store.run(menu_store.share_problems, district, owner)
    if problems:
        raise menu_store.ShareRefused(problems)
    if owner is not None:
        live = await store.run(menu_store.current_version, owner)
        assert live is not None   # share_problems checked
        menu, problems, users = await problems_for(store, owner, live["body"], also=district)
        if problems or menu is None:
            raise MenuInvalid(problems)
        await _synthesise(store, prompts, menu, [district])
    before = await store.run(menu_store.set_share, district, owner, username, iso(clock()))
    if before != owner:
        await audit(store, clock, username, "menu.unshare" if owner is None else "menu.share",
                    f"menu:{district}", {"menu_of": before}, {"menu_of": owner})
    return before


# ---------------------------------------------------------------- menus as text


def to_yaml(body: dict[str, Any]) -> str:
    return yaml.safe_dump(body, allow_unicode=True, sort_keys=False, default_flow_style=False)


def from_yaml(text: str) -> Any:
    """The menu in `text`; a key given twice (two options `'1'`) is refused, not overwritten."""
    try:
        return strict_yaml.load(text)
    except InvalidInput as exc:
        raise MenuInvalid([f"menu: {exc}"]) from None


def diff(old: dict[str, Any] | None, new: dict[str, Any] | None, old_label: str = "before",
         new_label: str = "after") -> str:
    """A unified diff of two menus as YAML (what an administrator reads)."""
    a = to_yaml(old).splitlines(keepends=True) if old else []
    b = to_yaml(new).splitlines(keepends=True) if new else []
    return "".join(difflib.unified_diff(a, b, old_label, new_label))
