"""The waiting room and the offers: callers who reached the queue (music on hold), ringing a
free agent for each (decided by `acd.routing.Router`), and what follows an offer (connected,
ring-no-answer, the caller gone meanwhile). Also what a waiting caller hears: their place and
the estimated wait.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Awaitable, Callable

from kc.clock import parse_iso
from kc.domain import AgentState
from kc.errors import TelephonyDown
from kc.queue_config import queue_name
from kc.telemetry import ACD_DECISION, ENQUEUE_TO_RING

from . import estimate
from .agents import AgentRuntime, Agents
from .calls import Connected
from .cluster import split
from .floor import Floor
from .routing import WaitingCall, escalated_priority

log = logging.getLogger(__name__)


@dataclass
class Waiting:
    call: WaitingCall
    uniqueid: str
    channel: str
    caller: str
    offered_to: str | None = None
    leg_id: str | None = None
    offers: int = 0
    callback: str | None = None       # number to call back: the caller hung up, keeping the place
    position: int = 1                 # the place it entered the queue at (queue_log)
    offered_at: float = 0.0           # when the current offer started ringing the agent
    callid: str = ""                  # queue_log's call id when not `uniqueid` (a call-back)
    logged_at: float | None = None    # when that call id entered the queue (None: enqueued_at)
    left_at_position: int = 1         # its place when taken out (`WaitingRoom.take`)
    base_priority: int | None = None  # before any escalation by waiting time

    @property
    def log_callid(self) -> str:
        return self.callid or self.uniqueid

    def log_wait(self, now: float) -> float:
        return max(0.0, now - (self.call.enqueued_at if self.logged_at is None else self.logged_at))


@dataclass(frozen=True)
class Queued:
    """What the menu knows as it sends a caller to wait: with it, the caller's `KcWaiting`
    event is handled at once, without reading the contact back (the agent's phone rings
    sooner)."""
    skill: str
    district: str
    language: str
    caller: str
    priority: int | None = None       # the menu option's; None: the queue's


# How a call-back offer is followed up (`acd.callbacks`): (entry, agent, answered?, rung at)
CallbackFollowUp = Callable[[Waiting, AgentRuntime, Awaitable[bool], float], Awaitable[None]]


async def _failed(exc: Exception) -> bool:
    raise exc


class WaitingRoom:
    EXPECT_SECONDS = 120.0

    def __init__(self, floor: Floor, agents: Agents):
        self.floor, self.agents = floor, agents
        self.waiting = floor.waiting
        self.expected: dict[int, tuple[float, Queued]] = {}   # see `expect`
        self.follow_callback: CallbackFollowUp | None = None
        self.closed_out_ids: set[int] = set()   # left a closed queue; may wait in a partner's
        self._wake: asyncio.TimerHandle | None = None
        self._places: dict[tuple[str, str], dict[int, int]] = {}   # see `position`
        self._places_version = -1
        floor.dispatch = self.dispatch

    def close(self) -> None:
        if self._wake is not None:
            self._wake.cancel()

    # ------------------------------------------------------------------ arrivals
    def expect(self, contact_id: int, queued: Queued) -> None:
        """The menu is sending this caller to wait: remember what it knows (kept for
        `EXPECT_SECONDS`; a caller who hangs up before reaching the waiting room is forgotten)."""
        now = self.floor.now()
        for cid, (at, _) in list(self.expected.items()):
            if now - at > self.EXPECT_SECONDS:
                del self.expected[cid]
        self.expected[contact_id] = (now, queued)

    def arrived(self, contact_id: int, uniqueid: str, channel: str) -> None:
        """The caller's `KcWaiting` event: admitted at once if the menu said what it knows,
        else after reading the contact."""
        known = self.expected.pop(contact_id, None)
        if known is not None:
            self._admit(contact_id, uniqueid, channel, known[1], None)
        else:
            self.floor.spawn(self.enqueue(contact_id, uniqueid, channel))

    def admit_callback(self, contact_id: int, queued: Queued, number: str) -> None:
        """A call-back the centre owes (asked for after hours, queued at opening): it waits in
        its queue like a caller who asked for a call-back and hung up; its turn rings the
        agent, then the resident (`acd.callbacks`)."""
        self._admit(contact_id, f"cb-{contact_id}", "", queued, None, callback=number)

    def _here(self, contact_id: int) -> bool:
        return contact_id in self.waiting or contact_id in self.floor.connected

    async def enqueue(self, contact_id: int, uniqueid: str, channel: str) -> None:
        """A caller has reached the waiting room (music on hold) after the menu, or is found
        there again after a restart: read the contact, then `_admit`."""
        if self._here(contact_id):
            return
        contact = await self.floor.records.read_contact(contact_id)
        if self._here(contact_id):
            return        # the event and a resync raced: already here
        if contact["outcome"] is not None or not contact["skill"]:
            log.warning("contact %s is not waiting for an agent; ignored", contact_id)
            return
        at = contact["enqueued_at"]
        queued = Queued(contact["skill"], contact["district"], contact["language"] or "sv",
                        contact["caller"] or "", contact.get("menu_priority"))
        # picked up again after a restart: the original enqueue time counts
        self._admit(contact_id, uniqueid, channel, queued,
                    parse_iso(at).timestamp() if at else None,
                    callback=contact.get("callback_number") if not channel else None,
                    position=contact.get("queue_position"))

    def _admit(self, contact_id: int, uniqueid: str, channel: str, queued: Queued,
               enqueued: float | None, callback: str | None = None,
               position: int | None = None) -> None:
        """Synchronous on purpose: from the PBX's event to the agent's Originate there is no
        await. `enqueued` is None for a new arrival (now; its records follow)."""
        if self._here(contact_id):
            return
        floor = self.floor
        skill = floor.skills.get(queued.skill)
        confidential = bool(skill and skill.confidential)
        now = floor.now()
        first = enqueued is None
        queue = queue_name(queued.skill, queued.district)
        priority = queued.priority
        if priority is None:
            priority = floor.policy.priority(queued.skill, queued.district)
        call = WaitingCall(contact_id, queued.skill, queued.district, queued.language,
                           int(priority), confidential, now if first else enqueued)
        entry = Waiting(call, uniqueid, channel, queued.caller, callback=callback,
                        base_priority=int(priority))
        if callback:    # a call-back still owed after a restart: its own queue_log call
            entry.callid = f"{uniqueid}-cb"
        self.waiting[contact_id] = entry
        entry.position = (self.position(contact_id) or 1) if first else (position or 1)
        floor.router.add_call(call)
        if first:   # spawned before any offer's records: tasks run in order of creation
            floor.spawn(floor.records.enqueued(contact_id, queue, queued.skill, confidential,
                                               uniqueid, channel, entry.position))
            floor.records.entered_queue(now, uniqueid, queue, queued.caller, entry.position)
        elif contact_id in self.closed_out_ids:   # its queue closed: now in a partner's queue
            self.closed_out_ids.discard(contact_id)
            entry.position, entry.logged_at = self.position(contact_id) or 1, now
            floor.records.entered_queue(now, uniqueid, queue, queued.caller, entry.position)
        self.dispatch()
        floor.changed()

    # ------------------------------------------------------------------ taken out, put back
    def take(self, contact_id: int) -> Waiting | None:
        """Remove a caller nobody is being offered yet (e.g. their queue closed); None if not."""
        entry = self.waiting.get(contact_id)
        if entry is None or entry.offered_to is not None:
            return None
        entry.left_at_position = self.position(contact_id) or 1
        del self.waiting[contact_id]
        self.floor.router.remove_call(contact_id)
        self.floor.changed()
        return entry

    def closed_out(self, entry: Waiting) -> None:
        """A caller `take`n out because their queue closed has left it (EXITWITHTIMEOUT)."""
        call, now = entry.call, self.floor.now()
        self.closed_out_ids.add(call.contact_id)
        self.floor.records.left_queue(now, entry.log_callid, queue_name(call.skill, call.district),
                                      entry.log_wait(now), entry.left_at_position, entry.position)

    def put_back(self, entry: Waiting) -> None:
        """Undo `take`: the caller keeps their place."""
        if self.waiting.setdefault(entry.call.contact_id, entry) is entry and entry.offered_to is None:
            self.floor.router.add_call(entry.call)
        self.floor.changed()
        self.dispatch()

    async def hung_up(self, uniqueid: str, now: float) -> bool:
        """The caller on this channel hung up: abandoned, unless they keep their place for a
        call-back. False if nobody waits on this channel."""
        for entry in list(self.waiting.values()):
            if entry.uniqueid == uniqueid:
                if entry.callback:
                    entry.channel = ""      # hung up after asking for a call-back: keeps the place
                else:
                    await self.abandon(entry, now)
                return True
        return False

    async def abandon(self, entry: Waiting, now: float, reason: str | None = None,
                      outcome: str = "abandoned") -> None:
        """The caller left at `now` (`reason`: the PBX lost them then)."""
        call = entry.call
        if self.waiting.get(call.contact_id) is not entry:
            return
        place = self.position(call.contact_id) or 1
        del self.waiting[call.contact_id]
        self.floor.router.remove_call(call.contact_id)
        wait = max(0.0, now - call.enqueued_at)
        queue = queue_name(call.skill, call.district)
        records = self.floor.records
        if entry.offered_to:
            records.ring_canceled(now, entry.log_callid, queue, entry.offered_to,
                                  int((now - entry.offered_at) * 1000))
        await records.abandoned(now, entry.log_callid, queue, call.contact_id, wait, place,
                                entry.position, entry.log_wait(now), reason, outcome)
        if entry.offered_to and entry.leg_id:
            leg = self.floor.leg_channels.get(entry.leg_id)
            if leg:
                try:
                    await self.floor.telephony.hangup(leg)
                except TelephonyDown:
                    pass
        self.floor.changed()

    # ------------------------------------------------------------------ offers
    def dispatch(self) -> None:
        """Offer waiting callers to free agents (no agent gets two offers); then sleep until
        the next overflow step could change the answer. The router holds only what changed
        since the last dispatch, so this costs little however many agents and callers wait."""
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        floor = self.floor
        now = floor.now()
        offered = False
        self._escalate(now)
        started = time.perf_counter()
        offers = floor.router.dispatch(now)
        if offers:   # a decision that found nothing to offer is not one (the wake-ups are many)
            floor.telemetry.timing(ACD_DECISION, time.perf_counter() - started)
        for call, agent in offers:
            entry = self.waiting.get(call.contact_id)
            rt = floor.agents.get(agent.id)
            if entry is None or entry.offered_to is not None or rt is None or not rt.snapshot().free:
                # cannot happen while every change reaches the router; never offer blindly
                log.error("router and distributor disagree on contact %s / agent %s",
                          call.contact_id, agent.id)
                if entry is not None and entry.offered_to is None:
                    floor.router.add_call(entry.call)
                if rt is not None:
                    floor.router.upsert_agent(rt.snapshot())
                continue
            entry.offered_to = agent.id
            entry.offers += 1
            entry.leg_id = f"kc-{call.contact_id}-{entry.offers}-{int(now)}"
            rt.state, rt.contact_id = AgentState.RINGING, call.contact_id
            offered = True
            self._start_offer(entry, rt)
        if offered:
            floor.changed()
        due = floor.router.next_wakeup(now)
        if due is not None:
            self._wake = asyncio.get_running_loop().call_later(max(0.02, due - now + 0.01),
                                                               self._on_wake)

    def _escalate(self, now: float) -> None:
        """Callers whose wait crossed a step of their queue's escalation get its priority
        (`acd.routing.escalated_priority`, pure) before the next decision. Only agents freed
        since decide anew, so this runs at each dispatch, not on a timer of its own."""
        policy, router = self.floor.policy, self.floor.router
        if not policy.escalates:
            return
        for entry in self.waiting.values():
            call = entry.call
            steps = policy.escalation(call.skill, call.district)
            if entry.offered_to is not None or not steps:
                continue
            base = call.priority if entry.base_priority is None else entry.base_priority
            priority, _ = escalated_priority(base, now - call.enqueued_at, steps)
            if priority != call.priority and router.remove_call(call.contact_id) is not None:
                entry.call = dataclasses.replace(call, priority=priority)
                self.waiting.touch()          # the queue's order changed
                router.add_call(entry.call)

    def _on_wake(self) -> None:
        self._wake = None
        self.dispatch()

    def _start_offer(self, entry: Waiting, rt: AgentRuntime) -> None:
        """Ring the agent now (the Originate leaves before this returns); a task follows it up."""
        floor, call = self.floor, entry.call
        kind = floor.skills[call.skill].name if call.skill in floor.skills else call.skill
        answer: Awaitable[bool]
        try:
            if entry.callback:
                answer = floor.telephony.call_back(
                    agent=rt.agent.id, contact_id=call.contact_id, leg_id=entry.leg_id or "",
                    number=entry.callback, caller_id=f"Återuppringning <{entry.callback}>",
                    timeout=floor.ring_timeout, ring_resident=floor.options.callback_ring_seconds)
            else:
                answer = floor.telephony.ring_agent(
                    agent=rt.agent.id, caller_channel=entry.channel, contact_id=call.contact_id,
                    leg_id=entry.leg_id or "", caller_id=f"{kind} <{entry.caller}>",
                    timeout=floor.ring_timeout)
        except TelephonyDown as exc:
            answer = _failed(exc)
        floor.spawn(floor.records.offered(call.contact_id, rt.agent.id, entry.leg_id,
                                          bool(entry.callback)))
        started = entry.offered_at = floor.now()
        if entry.offers == 1 and not entry.callback:
            floor.telemetry.timing(ENQUEUE_TO_RING, max(0.0, started - call.enqueued_at))
        if entry.callback and self.follow_callback is not None:
            floor.spawn(self.follow_callback(entry, rt, answer, started))
        else:
            floor.spawn(self._offer(entry, rt, answer, started))

    async def _offer(self, entry: Waiting, rt: AgentRuntime, answer: Awaitable[bool],
                     started: float) -> None:
        call = entry.call
        try:
            answered = await answer
        except TelephonyDown as exc:
            log.warning("offering contact %s to %s failed: %s", call.contact_id, rt.agent.id, exc)
            answered = False
            if call.contact_id in self.waiting:
                self.unoffer(entry)
                await self.agents.set_state(rt, AgentState.READY)
                rt.contact_id = None
                return
        still_waiting = self.waiting.get(call.contact_id) is entry
        if answered and still_waiting:
            await self._connect(entry, rt)
            return
        if answered and not still_waiting:
            # The caller left while the phone rang; the agent leg finds no one to bridge.
            await self.agents.after_call(rt)
            return
        if still_waiting:
            await self.ring_no_answer(entry, rt, started)
        else:
            await self.agents.after_call(rt)

    def unoffer(self, entry: Waiting) -> None:
        """The offer came to nothing: the caller waits again, with their original place."""
        entry.offered_to, entry.leg_id = None, None
        self.floor.router.add_call(entry.call)

    async def ring_no_answer(self, entry: Waiting, rt: AgentRuntime, started: float) -> None:
        """The caller goes back to the head of the queue (original enqueue time); the agent
        is paused with reason `rona`."""
        call = entry.call
        ring_ms = int((self.floor.now() - started) * 1000)
        self.unoffer(entry)               # at the head again: its original enqueue time
        await self.floor.records.ring_no_answer(self.floor.now(), entry.log_callid,
                                                queue_name(call.skill, call.district),
                                                rt.agent.id, ring_ms, call.contact_id)
        await self.agents.ring_no_answer(rt)

    async def _connect(self, entry: Waiting, rt: AgentRuntime) -> None:
        call = entry.call
        now = self.floor.now()
        wait = max(0.0, now - call.enqueued_at)
        queue = queue_name(call.skill, call.district)
        del self.waiting[call.contact_id]
        ring = max(0.0, now - entry.offered_at)
        self.floor.connected[call.contact_id] = Connected(
            call.contact_id, rt.agent.id, entry.uniqueid, entry.leg_id or "", queue,
            entry.log_wait(now), now,
            channel=entry.channel, skill=call.skill, district=call.district,
            position=entry.position, ring=ring, callid=entry.callid)
        await self.agents.set_state(rt, AgentState.ON_CALL)
        await self.floor.records.connected(now, call.contact_id, rt.agent, call.district,
                                           entry.log_callid, queue, wait, entry.leg_id or "", ring,
                                           entry.log_wait(now),
                                           (split(entry.channel)[0], self.floor.agent_nodes.get(rt.agent.id)))

    # ------------------------------------------------------------------ the waiting caller's view
    def position(self, contact_id: int) -> int | None:
        """1 = next in this caller's queue (same skill and called district, priority then FIFO).
        The places of a queue are ranked once per change of who waits (a thousand callers'
        announcements would otherwise each walk everyone waiting)."""
        entry = self.waiting.get(contact_id)
        if entry is None:
            return None
        if self._places_version != self.waiting.version:
            self._places, self._places_version = {}, self.waiting.version
        queue = (entry.call.skill, entry.call.district)
        places = self._places.get(queue)
        if places is None:
            ranked = sorted((w.call for w in self.waiting.values()
                             if (w.call.skill, w.call.district) == queue),
                            key=lambda c: (-c.priority, c.enqueued_at, c.contact_id))
            places = self._places[queue] = {c.contact_id: i for i, c in enumerate(ranked, 1)}
        return places[contact_id]

    async def waiting_info(self, contact_id: int) -> tuple[int, float, str] | None:
        """(place in the queue, estimated wait in seconds, language) for an announcement."""
        pos = self.position(contact_id)
        if pos is None:
            return None
        floor = self.floor
        call = self.waiting[contact_id].call
        staffed = sum(1 for rt in floor.agents.values()
                      if rt.state is not AgentState.LOGGED_OUT and rt.registered
                      and rt.agent.may_take(call.skill, call.district, call.confidential))
        recent = floor.handle_times.get(call.skill)
        if recent is None:     # once per skill (an empty history too), on a reader connection
            recent = deque(await floor.records.recent_handle_times(
                call.skill, floor.wrap_up_for(call.skill, call.district)), maxlen=50)
            floor.handle_times[call.skill] = recent
        eta = estimate.estimated_wait(pos, estimate.average_handle(recent), staffed)
        floor.records.announced(contact_id, pos, eta, staffed)   # queued, not waited for
        return pos, eta, call.language
