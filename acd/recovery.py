"""Catching up with the PBX after an AMI (re)connect, when events were lost, and after a crash
of the service (kill -9): what the PBX holds now is the truth the distributor adopts."""
from __future__ import annotations

import logging

from kc.clock import iso, parse_iso
from kc.errors import TelephonyDown
from kc.queue_config import queue_name

from .agents import Agents
from .calls import Calls
from .cluster import node_of_uniqueid, split
from .floor import Floor
from .waiting import WaitingRoom

log = logging.getLogger(__name__)


class Recovery:
    def __init__(self, floor: Floor, agents: Agents, room: WaitingRoom, calls: Calls):
        self.floor, self.agents, self.room, self.calls = floor, agents, room, calls
        self._reconciled = False

    async def pbx_gone(self, at: float, node: str | None = None) -> None:
        """The PBX stopped (its AMI refuses connections after the link was lost at `at`): every
        call it held ended then. Closed at once, with that time, so none is shown as live. In a
        cluster, `node` stopped: its callers' calls are closed (waiting ones `failed`), and the
        calls of other nodes' callers with one of its agents are hung up (no voice is left)."""
        floor = self.floor
        if node is None:
            log.warning("the PBX is gone: closing %d waiting and %d talking calls as of the "
                        "link's loss", len(floor.waiting), len(floor.connected))
            await self._lost(frozenset(), at, "the PBX stopped")
        else:
            log.warning("node %s is gone: closing its calls as of the link's loss", node)
            for agent, home in floor.agent_nodes.items():
                if home == node:
                    self.agents.set_registered(agent, False)
            await self._lost(frozenset(), at, f"node {node} stopped", frozenset({node}), "failed")
            # and its callers still in a menu (no part of the distributor holds them yet)
            await self._reconcile_open_contacts(iso(floor.clock()), frozenset(),
                                                f"node {node} stopped", frozenset({node}), "failed")
            for conn in list(floor.connected.values()):
                if floor.agent_nodes.get(conn.agent_id) == node and conn.leg_id in floor.leg_channels:
                    try:
                        await floor.telephony.hangup(floor.leg_channels[conn.leg_id])
                    except TelephonyDown:
                        pass
        floor.changed()

    async def _lost(self, live: frozenset[str], at: float, reason: str,
                    nodes: frozenset[str] | None = None, outcome: str = "abandoned") -> None:
        """Waiting and talking calls whose channel is not in `live` ended at `at`; in a
        cluster only those of `nodes` (what the others hold is not known)."""
        floor = self.floor

        def known(channel: str) -> bool:
            return nodes is None or split(channel)[0] in nodes
        for entry in list(floor.waiting.values()):
            if entry.callback and entry.offered_to is None:
                continue          # the resident hung up already; the call-back is still owed
            if entry.uniqueid not in live and not entry.callback and known(entry.channel):
                await self.room.abandon(entry, at, reason, outcome)
        for conn in list(floor.connected.values()):
            if conn.uniqueid not in live and known(conn.channel):
                conn.ended_by = "pbx"
                await self.calls.complete(conn, max(at, conn.answered_at))

    async def resync(self, lost_at: float | None = None) -> None:
        """Read the PBX's state again. Callers still waiting in `kc-wait` come back with their
        original enqueue time, callers already bridged to an agent are adopted as connected (not
        offered twice), agent legs still ringing for an offer we no longer know are hung up,
        pending call-backs are reloaded, and open contacts whose channel is gone are closed:
        as of `lost_at` (when the link was lost) or the last time they were seen."""
        floor = self.floor
        started = iso(floor.clock())
        snap = await floor.telephony.snapshot(list(floor.agents))
        for agent_id in list(floor.agents):
            self.agents.set_registered(agent_id, agent_id in snap.registered)
        now = floor.now()
        await self._lost(snap.channels, now if lost_at is None else min(lost_at, now),
                         "ended while the PBX link was down", snap.nodes)
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
        reason = ("ended while the PBX link was down" if self._reconciled
                  else "ended while the service was down")
        self._reconciled = True
        await self._reconcile_open_contacts(started, snap.channels, reason, snap.nodes)
        floor.dispatch()

    async def _reconcile_open_contacts(self, before: str, live: frozenset[str], reason: str,
                                       nodes: frozenset[str] | None = None,
                                       outcome: str = "abandoned") -> None:
        """Open phone contacts (in the menu, waiting, ringing, talking) the PBX no longer has a
        channel for, and no part of the distributor holds: closed as of the last time anything
        was seen of them."""
        floor = self.floor
        for c in await floor.records.open_calls(before):
            cid = c["id"]
            if cid in floor.waiting or cid in floor.connected:
                continue
            if c.get("callback_number") and not c["answered_at"]:
                await self.room.enqueue(cid, c["uniqueid"] or "", "")   # the call-back still owed
                continue
            if c["uniqueid"] in live:
                continue
            if nodes is not None and node_of_uniqueid(c["uniqueid"] or "") not in nodes:
                continue   # a node that is down: its calls are closed when it is known gone
            end = parse_iso(c["last_seen"]).timestamp()
            log.info("contact %s closed: its call ended (%s)", cid, reason)
            await floor.records.closed_unseen(end, c, queue_name(c["skill"], c["district"]),
                                              reason, outcome)
