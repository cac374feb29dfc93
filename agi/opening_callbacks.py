"""Call-backs asked for after hours are made at opening.

A caller who found the district closed and pressed for a call-back left an after-hours request
(`agi.after_hours`). Once the district is open again (its opening hours, or a schedule changed
to open it now), each such request becomes a call-back contact that enters the queue in order
of request and is dialled like a call-back asked for while waiting (`acd.callbacks`: the agent
first, then the resident through the outbound trunk, with retries and an outcome).

`due_callbacks` is the decision (pure); `OpeningCallbacks` runs it every few seconds and hands
what is due to the distributor. The request keeps a link to its call-back contact, whose
outcome is the request's outcome; the desk no longer lists it as something to ring by hand.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping

from kc import queries
from kc.clock import Clock, iso
from kc.store import Store
from schedules import schedule_store

from .call_catalogue import Catalogue, LiveCatalogue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DueCallback:
    request_id: int
    skill: str
    district: str            # whose queue dials it (the switchboard's district for the switchboard)
    language: str
    number: str
    dialed: str | None = None        # the number the resident called


def due_callbacks(requests: Iterable[Mapping[str, Any]], catalogue: Catalogue,
                  now: datetime) -> list[DueCallback]:
    """The requests to dial now, in order of request: their district's queue is open. A request
    made before the menu (no skill yet) goes to the switchboard that answers for the district;
    one without a number or a queue to go to stays on the desk."""
    out = []
    for r in sorted(requests, key=lambda r: (r["created_at"], r["id"])):
        number = r.get("callback_number") or r.get("caller")
        skill, district = r.get("skill"), r["district"]
        if not skill:
            skill, district = catalogue.switchboard_skill, catalogue.switchboard_of(district)
        if not number or not skill or not catalogue.hours.is_open(district, now, skill):
            continue
        out.append(DueCallback(r["id"], skill, district, r.get("language") or "sv", number,
                               r.get("dialed")))
    return out


@dataclass
class OpeningCallbacks:
    store: Store
    clock: Clock
    catalogue: LiveCatalogue
    queue: Callable[[int, DueCallback], None]   # the distributor: (call-back contact, what is due)
    interval: float = 5.0
    _task: asyncio.Task | None = field(default=None, repr=False)

    async def sweep(self) -> list[int]:
        rows = await self.store.run(schedule_store.pending_callbacks)
        if not rows:
            return []
        catalogue, now = await self.catalogue.current(), self.clock()
        queued = []
        for due in due_callbacks(rows, catalogue, now):
            at = iso(self.clock())
            contact_id = await self.store.insert_record(
                queries.create_contact, "contacts", channel="phone", district=due.district,
                dialed=due.dialed, caller=due.number, started_at=at, language=due.language,
                skill=due.skill, callback_number=due.number)
            if not await self.store.run(schedule_store.link_callback, due.request_id,
                                        contact_id, at):
                continue          # taken on the desk meanwhile
            log.info("after-hours call-back %s queued as contact %s (%s@%s)", due.request_id,
                     contact_id, due.skill, due.district)
            self.queue(contact_id, due)
            queued.append(contact_id)
        return queued

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("queuing after-hours call-backs failed")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
