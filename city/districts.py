"""Adding, editing and retiring a district (and a skill) as the admin site and the API do it:
an edit of the organisation document, checked as a whole (`city.document`) and written in one
transaction, audited (`city.store.apply`). The same rules as `kc config import`, so a district
added here is exactly what a line in the file would make.

A district's body (JSON): `name`, `numbers`, `addresses`, `region`, `switchboard`, `hours`, and
its menu as one of `menu` (a menu body), `menu_of` (play that district's menu) or `menu_copy_of`
(start from a copy of that district's live menu); its hours as `hours` or `hours_copy_of` (the
same opening hours as that district). New districts without hours get none (always open is
`{"always_open": true, "week": {}, "exceptions": []}`). Queues: `queues` (a list of QueueConfig
bodies for this district) replaces the district's queues when given.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

from kc.clock import Clock, iso
from kc.errors import InvalidInput, NotFound
from kc.store import Store

from . import document, store as city_store

DISTRICT_KEYS = ("name", "numbers", "addresses", "region", "switchboard", "hours", "hours_copy_of",
                 "menu", "menu_of", "menu_copy_of", "queues")


def _find(items: list[dict], key: str, value: str) -> dict | None:
    return next((i for i in items if i[key] == value), None)


def put_district(doc: dict[str, Any], district_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """`doc` with the district `district_id` created or changed as `body` says."""
    unknown = [k for k in body if k not in DISTRICT_KEYS]
    if unknown:
        raise InvalidInput(f"unknown field(s) {', '.join(unknown)} (known: {', '.join(DISTRICT_KEYS)})")
    doc = copy.deepcopy(doc)
    current = _find(doc["districts"], "id", district_id)
    if current is None:
        current = {"id": district_id, "name": None, "numbers": [], "addresses": [], "region": None,
                   "switchboard": None, "hours": None, "menu": None, "menu_of": None}
        doc["districts"].append(current)
    current["retired"] = False
    for key in ("name", "numbers", "addresses", "region", "switchboard", "hours"):
        if key in body:
            current[key] = body[key]
    if "hours_copy_of" in body:
        source = _find(doc["districts"], "id", str(body["hours_copy_of"]))
        if source is None:
            raise InvalidInput(f"hours_copy_of: no district {body['hours_copy_of']!r}")
        current["hours"] = copy.deepcopy(source["hours"])
    if "menu_copy_of" in body:
        source = _find(doc["districts"], "id", str(body["menu_copy_of"]))
        if source is None:
            raise InvalidInput(f"menu_copy_of: no district {body['menu_copy_of']!r}")
        owner = _find(doc["districts"], "id", source["menu_of"]) if source["menu_of"] else source
        current["menu"], current["menu_of"] = copy.deepcopy(owner["menu"]), None
    elif "menu_of" in body and body["menu_of"] is not None:
        current["menu"], current["menu_of"] = None, body["menu_of"]
    elif "menu" in body:
        current["menu"], current["menu_of"] = body["menu"], None
    if "queues" in body:
        if not isinstance(body["queues"], list):
            raise InvalidInput("queues must be a list")
        doc["queues"] = [q for q in doc["queues"] if q["district"] != district_id] + \
            [{**q, "district": district_id} for q in body["queues"]]
    return doc


def add_district(doc: dict[str, Any], district_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """`doc` with a new district (`put_district`), refused when the id is taken, retired too."""
    taken = _find(doc["districts"], "id", district_id)
    if taken is not None:
        raise InvalidInput(f"id {district_id!r} is taken by {taken['name']}"
                           + (" (retired)" if taken["retired"] else ""))
    return put_district(doc, district_id, body)


def retire_district(doc: dict[str, Any], district_id: str) -> dict[str, Any]:
    """`doc` with the district retired: no number or address answers any more, its agents
    must have been moved first; contacts, cases and reports keep it."""
    doc = copy.deepcopy(doc)
    current = _find(doc["districts"], "id", district_id)
    if current is None or current["retired"]:
        raise NotFound(f"no district {district_id!r} in service")
    current.update(retired=True, numbers=[], addresses=[])
    for other in doc["districts"]:
        if other["menu_of"] == district_id and not other["retired"]:
            raise InvalidInput(f"{other['name']} plays the menu of {current['name']}: give it "
                               f"its own menu first")
    doc["queues"] = [q for q in doc["queues"] if q["district"] != district_id]
    return doc


def put_skill(doc: dict[str, Any], skill_id: str, body: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    current = _find(doc["skills"], "id", skill_id)
    if current is None:
        current = {"id": skill_id, "name": None, "confidential": False}
        doc["skills"].append(current)
    current["retired"] = bool(body.get("retired", False))
    for key in ("name", "confidential"):
        if key in body:
            current[key] = body[key]
    return doc


async def change(store: Store, clock: Clock, by: str, what: str,
                 edit: Callable[[dict[str, Any]], dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Export, edit, check the whole, apply in one transaction (ConfigInvalid lists problems)."""
    current = await store.run(city_store.export)
    target = document.validated(document.public(edit(current)))
    return await store.run(city_store.apply, target, by, iso(clock()), what)
