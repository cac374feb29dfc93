"""What a call decides on, held in memory: parsed once when it changes, not on every call.

A `Catalogue` is an immutable snapshot of
- every district's opening hours and after-hours policy (`schedules.hours.OpeningHours`);
- the menu a call to each district plays (`CallMenu`): the live version of its own menu, or of
  the menu of the district it shares, parsed, with `{district}` already the called district's
  name;
- each district's temporary announcement;
- the organisation's switchboard (its skill, and which district's switchboard answers for each
  district) and the agents' transfer codes.

`LiveCatalogue` keeps the current snapshot for the service. The database moves a counter (the
`call_data_stamp` table, kept by triggers in `kc.schema`) in the very transaction that changes
any of this data, whoever writes it: the admin pages, the JSON API, `kc menu import` from
another process. At the start of each call `current()` reads that one number (a read beside
the writer) and loads a new snapshot only when it moved, so a change applies to the next call
without a restart, and a call already in a menu keeps the snapshot it started with.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Mapping

import sqlite_utils

from kc import organisation
from kc.clock import iso
from kc.errors import KcError
from kc.store import Store
from schedules import schedule_store
from schedules.hours import OpeningHours

from . import menu_store
from .menu import Menu, MenuError, with_district

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallMenu:
    """The menu a call to `district` plays."""

    district: str
    owner: str            # whose menu it is: `district` itself, or the district it shares
    version: int          # the owner's live version
    menu: Menu            # with `{district}` replaced by the called district's name


@dataclass(frozen=True)
class Announcement:
    texts: Mapping[str, str]     # language -> text
    audio: Mapping[str, str]     # language -> uploaded recording
    ends_at: str                 # ISO 8601 (UTC), played while now is before it


@dataclass(frozen=True)
class Catalogue:
    stamp: int
    hours: OpeningHours
    menus: Mapping[str, CallMenu]
    announcements: Mapping[str, Announcement]
    switchboard_skill: str | None = None          # the queue "transfer to the switchboard" reaches
    switchboards: Mapping[str, str] = field(default_factory=dict)   # district -> who answers for it
    transfer_codes: Mapping[str, str] = field(default_factory=dict)  # code -> queue:<skill> or number

    def switchboard_of(self, district: str) -> str:
        return self.switchboards.get(district) or district

    def menu_for(self, district: str) -> CallMenu | None:
        return self.menus.get(district)

    def announcement(self, district: str, now: datetime) -> Announcement | None:
        ann = self.announcements.get(district)
        return ann if ann is not None and ann.ends_at > iso(now) else None


stamp = organisation.data_stamp   # how many changes the call data has seen (any process)


def _call_menus(names: Mapping[str, str], shares: Mapping[str, str],
                live: Mapping[str, tuple[int, dict[str, Any]]]) -> dict[str, CallMenu]:
    out = {}
    for district, name in names.items():
        owner = shares.get(district, district)
        if owner not in live:
            continue
        version, body = live[owner]
        try:
            menu = Menu.from_dict(with_district(body, name))
        except MenuError as exc:   # published menus were validated; never fail the load on one
            log.error("live menu %s of %s cannot be read, %s has no menu: %s",
                      version, owner, district, exc)
            continue
        out[district] = CallMenu(district, owner, version, menu)
    return out


def load(db: sqlite_utils.Database) -> Catalogue:
    """A snapshot from the database. The stamp is read first: a change committed while the
    rest is read moves it again, so the next `current()` loads once more."""
    at = stamp(db)
    names = schedule_store.district_names(db)
    menus = _call_menus(names, menu_store.all_shares(db), menu_store.live_versions(db))
    announcements = {a["district"]: Announcement(MappingProxyType(a["texts"]),
                                                  MappingProxyType(a["audio"]), a["ends_at"])
                     for a in menu_store.all_announcements(db)}
    switchboards = {r["id"]: r["switchboard"] for r in db.query(
        "select id, switchboard from districts where switchboard is not null")}
    return Catalogue(at, schedule_store.load_hours(db), MappingProxyType(menus),
                     MappingProxyType(announcements),
                     organisation.settings(db).get("switchboard_skill"),
                     MappingProxyType(switchboards),
                     MappingProxyType(organisation.transfer_codes(db)))


class LiveCatalogue:
    """The service's current `Catalogue` (built by the composition root)."""

    def __init__(self, store: Store):
        self._store = store
        self._snapshot: Catalogue | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> Catalogue:
        """Load a new snapshot now."""
        async with self._lock:
            self._snapshot = await self._store.run(load)
            return self._snapshot

    async def current(self) -> Catalogue:
        """The snapshot to decide a call on: the one held, unless the data changed since."""
        held = self._snapshot
        if held is None:
            return await self.refresh()
        try:
            now = await self._store.read(stamp)
        except KcError:
            log.exception("call data stamp unreadable; deciding on the data held")
            return held
        if now == held.stamp:
            return held
        async with self._lock:
            if self._snapshot is not None and self._snapshot.stamp >= now:
                return self._snapshot         # another call loaded it meanwhile
            try:
                self._snapshot = await self._store.run(load)
            except KcError:
                log.exception("call data unreadable; deciding on the data held")
            return self._snapshot or held
