"""Catching up with the PBX after an AMI (re)connect, when events were lost, and after a crash
of the service (kill -9): what the PBX holds now is the truth the distributor adopts."""
from __future__ import annotations

import logging

from kc.clock import iso
from kc.errors import TelephonyDown
from kc.queue_config import queue_name

from .agents import Agents
from .calls import Calls
from .floor import Floor
from .waiting import WaitingRoom

log = logging.getLogger(__name__)


class Recovery:
    def __init__(self, floor: Floor, agents: Agents, room: WaitingRoom, calls: Calls):
        self.floor, self.agents, self.room, self.calls = floor, agents, room, calls
        self._reconciled = False

    async def resync(self) -> None:
        """Read the PBX's state again. Callers still waiting in `kc-wait` come back with their
        original enqueue time, callers already bridged to an agent are adopted as connected (not
        offered twice), agent legs still ringing for an offer we no longer know are hung up,
        pending call-backs are reloaded, and open contacts whose channel is gone are closed."""
        floor = self.floor
        started = iso(floor.clock())
        snap = await floor.telephony.snapshot(list(floor.agents))
        for agent_id in list(floor.agents):
            self.agents.set_registered(agent_id, agent_id in snap.registered)
        now = floor.now()
        for entry in list(floor.waiting.values()):
            if entry.callback and entry.offered_to is None:
                continue
            if entry.uniqueid not in snap.channels and not entry.callback:
                await self.room.abandon(entry, now)
        for conn in list(floor.connected.values()):
            if conn.uniqueid not in snap.channels:
                await self.calls.complete(conn, now)
        known_legs = {e.leg_id for e in floor.waiting.values() if e.leg_id}
        known_legs |= {c.leg_id for c in floor.connected.values()}
        for b in snap.bridged:
            if b.contact_id not in floor.connected:
                await self.calls.adopt(b.contact_id, b.uniqueid, b.channel, b.agent, b.leg_id, now)
            known_legs.add(b.leg_id)
        for leg_uid, leg_channel in snap.agent_legs:
            if leg_uid not in known_legs:
                log.info("hanging up orphan agent leg %s", leg_channel)
                try:
                    await floor.telephony.hangup(leg_channel)
                except TelephonyDown:
                    pass
        for uniqueid, channel, contact_id in snap.waiting:
            await self.room.enqueue(contact_id, uniqueid, channel)
        if not self._reconciled:
            self._reconciled = True
            await self._reconcile_open_contacts(started, snap.channels)
        floor.dispatch()

    async def _reconcile_open_contacts(self, before: str, live: frozenset[str]) -> None:
        """Contacts left open by a crash whose caller is no longer in the PBX."""
        floor = self.floor
        for c in await floor.records.open_queued_contacts(before):
            cid = c["id"]
            if cid in floor.waiting or cid in floor.connected:
                continue
            if c.get("callback_number") and not c["answered_at"]:
                await self.room.enqueue(cid, c["uniqueid"] or "", "")   # the call-back still owed
                continue
            if c["uniqueid"] in live:
                continue
            await floor.records.closed_while_down(floor.now(), c,
                                                  queue_name(c["skill"], c["district"]))
