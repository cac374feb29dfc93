"""The ACD at run time: keeps agents and waiting callers, reacts to PBX events, records steps.

Decisions come from `acd.routing` (pure); this class applies them, talks to the PBX through
the `Telephony` protocol and writes contacts, contact events and `queue_log` lines. It runs on
the event loop; all state changes happen in one task at a time, so no locks are needed.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from kc import queries
from kc.clock import Clock, iso, parse_iso
from kc.domain import Agent, AgentState, Skill
from kc.errors import InvalidInput, NotFound, TelephonyDown
from kc.store import Store

from kc.queue_config import list_queue_configs

from . import acd_store, agent_states, estimate
from .options import NUMBER_RE, AcdOptions
from .queue_log import QueueLog
from .routing import AgentSnapshot, Router, RoutingPolicy, WaitingCall
from .telephony import Telephony

log = logging.getLogger(__name__)


# The fields an `AgentSnapshot` is made of: setting one tells the distributor's router.
_ROUTED_FIELDS = frozenset({"agent", "state", "registered", "idle_since"})


@dataclass
class AgentRuntime:
    """An agent as the distributor sees them. Setting a routed field (state, registration,
    idle time, the agent's data) calls `watch`, so the router's index never goes stale
    whoever changes it (the distributor, the task runner, the admin pages)."""
    agent: Agent
    state: AgentState = AgentState.LOGGED_OUT
    reason: str | None = None
    pending: AgentState | None = None
    pending_reason: str | None = None
    registered: bool = False
    idle_since: float = 0.0
    contact_id: int | None = None
    wrap_ups: int = 0                 # which wrap-up a timer belongs to (an early end starts anew)
    watch: Callable[["AgentRuntime"], None] | None = field(default=None, repr=False, compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in _ROUTED_FIELDS:
            watch = self.__dict__.get("watch")
            if watch is not None:
                watch(self)

    def snapshot(self) -> AgentSnapshot:
        a = self.agent
        return AgentSnapshot(a.id, a.district, a.skills, a.cleared_for, self.state,
                             self.registered, self.idle_since, a.languages)


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


@dataclass
class Connected:
    contact_id: int
    agent: str
    uniqueid: str
    leg_id: str
    queue: str
    wait: float
    answered_at: float
    agent_hung_up: bool = False
    ended_by: str | None = None       # "agent" | "caller": whose hang-up request came first
    channel: str = ""                 # the caller's channel (for transfers)
    skill: str = ""
    district: str = ""
    callback: bool = False            # uniqueid is the agent leg, which dials the resident
    resident_answered: bool = False


async def _failed(exc: Exception) -> bool:
    raise exc


@dataclass
class Distributor:
    store: Store
    telephony: Telephony
    clock: Clock
    queue_log: QueueLog
    ring_timeout: float = 15.0
    wrap_up_seconds: float = 0.0      # for queues without a configuration
    options: AcdOptions = field(default_factory=AcdOptions)
    policy: RoutingPolicy = field(default_factory=RoutingPolicy)
    router: Router = field(default_factory=Router)   # free agents and unoffered callers, indexed
    agents: dict[str, AgentRuntime] = field(default_factory=dict)
    skills: dict[str, Skill] = field(default_factory=dict)
    waiting: dict[int, Waiting] = field(default_factory=dict)
    connected: dict[int, Connected] = field(default_factory=dict)
    leg_channels: dict[str, str] = field(default_factory=dict)   # agent leg uniqueid -> channel name
    on_change: list[Callable[[], None]] = field(default_factory=list)
    _tasks: set[asyncio.Task] = field(default_factory=set)
    _wake: asyncio.TimerHandle | None = None
    _reconciled: bool = False
    handle_times: dict[str, deque] = field(default_factory=dict)   # skill -> recent handle seconds
    expected: dict[int, tuple[float, Queued]] = field(default_factory=dict)   # see `expect`

    # ------------------------------------------------------------------ set-up
    async def load(self) -> None:
        agents = await self.store.run(queries.list_agents)
        states = await self.store.run(queries.agent_states)
        self.skills = {s.id: s for s in await self.store.run(queries.list_skills)}
        now = self._now()
        for agent in agents:
            state, reason, _ = states.get(agent.id, (AgentState.LOGGED_OUT, None, None))
            if state in agent_states.BUSY:
                state, reason = AgentState.READY, None    # a call cannot survive our restart
            self.add_agent(AgentRuntime(agent, state, reason, idle_since=now))
        await self.reload_queues()

    def add_agent(self, rt: AgentRuntime) -> None:
        """A new agent (or one replaced): routed from now on."""
        rt.watch = self._agent_changed
        self.agents[rt.agent.id] = rt
        self.router.upsert_agent(rt.snapshot())

    def _agent_changed(self, rt: AgentRuntime) -> None:
        if self.agents.get(rt.agent.id) is rt:
            self.router.upsert_agent(rt.snapshot())

    async def reload_queues(self) -> None:
        """Queue configurations (overflow steps, wrap-up, priority) from the store; call again
        after they change."""
        self.policy = RoutingPolicy.from_configs(await self.store.run(list_queue_configs))
        self.router.set_policy(self.policy)
        self.dispatch()

    def wrap_up_for(self, skill: str, district: str) -> float:
        """The queue's configured wrap-up; `wrap_up_seconds` for queues without one."""
        for q in self.policy.queues:
            if q.skill == skill and q.district == district:
                return q.wrap_up_seconds
        return self.wrap_up_seconds

    async def close(self) -> None:
        if self._wake is not None:
            self._wake.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _now(self) -> float:
        return self.clock().timestamp()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()

    @staticmethod
    def queue_name(skill: str, district: str) -> str:
        return f"{skill}@{district}"

    # ------------------------------------------------------------------ agents
    def agent(self, agent_id: str) -> AgentRuntime:
        try:
            return self.agents[agent_id]
        except KeyError:
            raise NotFound(f"no agent {agent_id!r}") from None

    async def _set_state(self, rt: AgentRuntime, state: AgentState, reason: str | None = None) -> None:
        before = rt.state
        if before is state and rt.reason == reason:
            return
        rt.state, rt.reason = state, reason
        now = self._now()
        if state is AgentState.READY:
            rt.idle_since = now
        queue = ""
        if before is AgentState.LOGGED_OUT and state is not AgentState.LOGGED_OUT:
            self.queue_log.write(now, "NONE", queue, rt.agent.id, "ADDMEMBER", "")
        if state is AgentState.LOGGED_OUT and before is not AgentState.LOGGED_OUT:
            self.queue_log.write(now, "NONE", queue, rt.agent.id, "REMOVEMEMBER", "")
        if state is AgentState.PAUSED and before is not AgentState.PAUSED:
            self.queue_log.write(now, "NONE", queue, rt.agent.id, "PAUSE", reason or "")
        if before is AgentState.PAUSED and state is AgentState.READY:
            self.queue_log.write(now, "NONE", queue, rt.agent.id, "UNPAUSE", "")
        await self.store.run(queries.set_agent_state, rt.agent.id, state, reason, iso(self.clock()))
        self._changed()

    async def request_state(self, agent_id: str, target: str, reason: str | None = None) -> AgentRuntime:
        """From the API or the phone: `ready`, `paused` or `logged_out`."""
        rt = self.agent(agent_id)
        try:
            wanted = AgentState(target)
        except ValueError:
            raise InvalidInput(f"unknown state {target!r}") from None
        now_state, pending = agent_states.request(rt.state, wanted)
        rt.pending = pending
        rt.pending_reason = reason if pending is AgentState.PAUSED else None
        await self._set_state(rt, now_state, reason if now_state is AgentState.PAUSED else None)
        self.dispatch()
        return rt

    async def toggle_pause(self, agent_id: str) -> AgentRuntime:
        rt = self.agent(agent_id)
        return await self.request_state(agent_id, agent_states.toggle_pause(rt.state).value)

    def set_registered(self, agent_id: str, registered: bool) -> None:
        rt = self.agents.get(agent_id)
        if rt is None or rt.registered == registered:
            return
        rt.registered = registered
        log.info("agent %s %s", agent_id, "registered" if registered else "unregistered")
        self._changed()
        if registered:
            self.dispatch()

    async def _after_call(self, rt: AgentRuntime, wrap_up: float | None = None) -> None:
        rt.contact_id = None
        target, rt.pending = rt.pending, None
        wrap_up = self.wrap_up_seconds if wrap_up is None else wrap_up
        if target is None and wrap_up > 0:
            rt.wrap_ups += 1
            await self._set_state(rt, AgentState.WRAP_UP)
            self._spawn(self._end_wrap_up(rt, wrap_up, rt.wrap_ups))
            return
        await self._set_state(rt, target or AgentState.READY,
                              rt.pending_reason if target is AgentState.PAUSED else None)
        self.dispatch()

    async def _end_wrap_up(self, rt: AgentRuntime, seconds: float, number: int) -> None:
        await asyncio.sleep(seconds)
        if rt.state is AgentState.WRAP_UP and rt.wrap_ups == number:
            target, rt.pending = rt.pending, None
            await self._set_state(rt, target or AgentState.READY,
                                  rt.pending_reason if target is AgentState.PAUSED else None)
            self.dispatch()

    # ------------------------------------------------------------------ seams for other areas
    def take_waiting(self, contact_id: int) -> Waiting | None:
        """Remove a caller nobody is being offered yet (e.g. their queue closed); None if not."""
        entry = self.waiting.get(contact_id)
        if entry is None or entry.offered_to is not None:
            return None
        del self.waiting[contact_id]
        self.router.remove_call(contact_id)
        self._changed()
        return entry

    def return_waiting(self, entry: Waiting) -> None:
        """Undo `take_waiting`: the caller keeps their place."""
        if self.waiting.setdefault(entry.call.contact_id, entry) is entry and entry.offered_to is None:
            self.router.add_call(entry.call)
        self._changed()
        self.dispatch()

    async def occupy(self, agent_id: str, contact_id: int) -> bool:
        """A ready agent takes other work (an e-mail): no call is offered to them meanwhile.

        The check and the change happen without an await between them, so `dispatch` cannot
        give the agent a call in the meantime."""
        rt = self.agents.get(agent_id)
        if rt is None or rt.state is not AgentState.READY:
            return False
        rt.state, rt.contact_id = AgentState.ON_CALL, contact_id
        self._changed()
        await self.store.run(queries.set_agent_state, agent_id, AgentState.ON_CALL, None,
                             iso(self.clock()))
        return True

    async def release(self, agent_id: str, contact_id: int | None = None) -> bool:
        """Work is done (a task, or wrap-up ended early by saving the case): the agent becomes
        ready, or takes the state they asked for meanwhile. False if nothing to release."""
        rt = self.agents.get(agent_id)
        if rt is None:
            return False
        if contact_id is not None:
            if rt.contact_id != contact_id:
                return False
            rt.contact_id = None
        elif rt.state is not AgentState.WRAP_UP:
            return False
        rt.wrap_ups += 1           # a wrap-up timer still running no longer applies
        target, rt.pending = rt.pending, None
        await self._set_state(rt, target or AgentState.READY,
                              rt.pending_reason if target is AgentState.PAUSED else None)
        self.dispatch()
        return True

    # ------------------------------------------------------------------ callers
    EXPECT_SECONDS = 120.0

    def expect(self, contact_id: int, queued: Queued) -> None:
        """The menu is sending this caller to wait: remember what it knows (kept for
        `EXPECT_SECONDS`; a caller who hangs up before reaching the waiting room is forgotten)."""
        now = self._now()
        for cid, (at, _) in list(self.expected.items()):
            if now - at > self.EXPECT_SECONDS:
                del self.expected[cid]
        self.expected[contact_id] = (now, queued)

    async def enqueue(self, contact_id: int, uniqueid: str, channel: str) -> None:
        """A caller has reached the waiting room (music on hold) after the menu, or is found
        there again after a restart: read the contact, then `_admit`."""
        if contact_id in self.waiting or contact_id in self.connected:
            return
        contact = await self.store.read(queries.get_contact, contact_id)
        if contact_id in self.waiting or contact_id in self.connected:
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
                    callback=contact.get("callback_number") if not channel else None)

    def _admit(self, contact_id: int, uniqueid: str, channel: str, queued: Queued,
               enqueued: float | None, callback: str | None = None) -> None:
        """Synchronous on purpose: from the PBX's event to the agent's Originate there is no
        await. `enqueued` is None for a new arrival (now; its records follow)."""
        if contact_id in self.waiting or contact_id in self.connected:
            return
        skill = self.skills.get(queued.skill)
        confidential = bool(skill and skill.confidential)
        now = self._now()
        first = enqueued is None
        queue = self.queue_name(queued.skill, queued.district)
        priority = queued.priority
        if priority is None:
            priority = self.policy.priority(queued.skill, queued.district)
        call = WaitingCall(contact_id, queued.skill, queued.district, queued.language,
                           int(priority), confidential, now if first else enqueued)
        self.waiting[contact_id] = Waiting(call, uniqueid, channel, queued.caller, callback=callback)
        self.router.add_call(call)
        if first:   # spawned before any offer's records: tasks run in order of creation
            self._spawn(self._record_enqueue(contact_id, queue, queued.skill, confidential,
                                             uniqueid, channel))
        self.dispatch()
        if first:
            self.queue_log.write(now, uniqueid, queue, "NONE", "ENTERQUEUE", "", queued.caller, 1)
        self._changed()

    async def _record_enqueue(self, contact_id: int, queue: str, skill: str, confidential: bool,
                              uniqueid: str, channel: str) -> None:
        at = iso(self.clock())
        await self.store.run(queries.update_contact, contact_id, enqueued_at=at,
                             confidential=confidential, uniqueid=uniqueid, channel_name=channel)
        await self.store.run(queries.add_event, contact_id, at, "enqueued",
                             {"skill": skill, "queue": queue})

    def dispatch(self) -> None:
        """Offer waiting callers to free agents (no agent gets two offers); then sleep until
        the next overflow step could change the answer. The router holds only what changed
        since the last dispatch, so this costs little however many agents and callers wait."""
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        now = self._now()
        offered = False
        for call, agent in self.router.dispatch(now):
            entry = self.waiting.get(call.contact_id)
            rt = self.agents.get(agent.id)
            if entry is None or entry.offered_to is not None or rt is None or not rt.snapshot().free:
                # cannot happen while every change reaches the router; never offer blindly
                log.error("router and distributor disagree on contact %s / agent %s",
                          call.contact_id, agent.id)
                if entry is not None and entry.offered_to is None:
                    self.router.add_call(entry.call)
                if rt is not None:
                    self.router.upsert_agent(rt.snapshot())
                continue
            entry.offered_to = agent.id
            entry.offers += 1
            entry.leg_id = f"kc-{call.contact_id}-{entry.offers}-{int(now)}"
            rt.state, rt.contact_id = AgentState.RINGING, call.contact_id
            offered = True
            self._start_offer(entry, rt)
        if offered:
            self._changed()
        due = self.router.next_wakeup(now)
        if due is not None:
            self._wake = asyncio.get_running_loop().call_later(max(0.02, due - now + 0.01),
                                                               self._on_wake)

    def _on_wake(self) -> None:
        self._wake = None
        self.dispatch()

    def _start_offer(self, entry: Waiting, rt: AgentRuntime) -> None:
        """Ring the agent now (the Originate leaves before this returns); a task follows it up."""
        call = entry.call
        kind = self.skills[call.skill].name if call.skill in self.skills else call.skill
        answer: Awaitable[bool]
        try:
            if entry.callback:
                answer = self.telephony.call_back(
                    agent=rt.agent.id, contact_id=call.contact_id, leg_id=entry.leg_id or "",
                    number=entry.callback, caller_id=f"Återuppringning <{entry.callback}>",
                    timeout=self.ring_timeout, ring_resident=self.options.callback_ring_seconds)
            else:
                answer = self.telephony.ring_agent(
                    agent=rt.agent.id, caller_channel=entry.channel, contact_id=call.contact_id,
                    leg_id=entry.leg_id or "", caller_id=f"{kind} <{entry.caller}>",
                    timeout=self.ring_timeout)
        except TelephonyDown as exc:
            answer = _failed(exc)
        self._spawn(self._record_offer(call.contact_id, rt.agent.id, entry.leg_id,
                                       bool(entry.callback)))
        started = self._now()
        self._spawn(self._offer_callback(entry, rt, answer, started) if entry.callback
                    else self._offer(entry, rt, answer, started))

    async def _offer(self, entry: Waiting, rt: AgentRuntime, answer: Awaitable[bool],
                     started: float) -> None:
        call = entry.call
        queue = self.queue_name(call.skill, call.district)
        try:
            answered = await answer
        except TelephonyDown as exc:
            log.warning("offering contact %s to %s failed: %s", call.contact_id, rt.agent.id, exc)
            answered = False
            if call.contact_id in self.waiting:
                self._unoffer(entry)
                await self._set_state(rt, AgentState.READY)
                rt.contact_id = None
                return
        still_waiting = self.waiting.get(call.contact_id) is entry
        if answered and still_waiting:
            await self._connect(entry, rt, queue)
            return
        if answered and not still_waiting:
            # The caller left while the phone rang; the agent leg finds no one to bridge.
            await self._after_call(rt)
            return
        if still_waiting:
            await self._ring_no_answer(entry, rt, queue, started)
        else:
            await self._after_call(rt)

    def _unoffer(self, entry: Waiting) -> None:
        """The offer came to nothing: the caller waits again, with their original place."""
        entry.offered_to, entry.leg_id = None, None
        self.router.add_call(entry.call)

    async def _record_offer(self, contact_id: int, agent_id: str, leg_id: str | None,
                            callback: bool) -> None:
        at = iso(self.clock())
        await self.store.run(queries.set_agent_state, agent_id, AgentState.RINGING, None, at)
        await self.store.run(queries.add_event, contact_id, at, "offered",
                             {"agent": agent_id, "leg": leg_id, **({"callback": True} if callback else {})})

    async def _ring_no_answer(self, entry: Waiting, rt: AgentRuntime, queue: str, started: float) -> None:
        """The caller goes back to the head of the queue (original enqueue time); the agent
        is paused with reason `rona`."""
        call = entry.call
        ring_ms = int((self._now() - started) * 1000)
        self._unoffer(entry)               # at the head again: its original enqueue time
        self.queue_log.write(self._now(), entry.uniqueid, queue, rt.agent.id, "RINGNOANSWER", ring_ms)
        await self.store.run(queries.add_event, call.contact_id, iso(self.clock()), "ring_no_answer",
                             {"agent": rt.agent.id, "ms": ring_ms})
        rt.contact_id = None
        target = rt.pending
        rt.pending = None
        if target in (AgentState.LOGGED_OUT,):
            await self._set_state(rt, target)
        else:
            await self._set_state(rt, AgentState.PAUSED, "rona")
        self.dispatch()

    async def _connect(self, entry: Waiting, rt: AgentRuntime, queue: str) -> None:
        call = entry.call
        now = self._now()
        wait = max(0.0, now - call.enqueued_at)
        del self.waiting[call.contact_id]
        self.connected[call.contact_id] = Connected(call.contact_id, rt.agent.id, entry.uniqueid,
                                                    entry.leg_id or "", queue, wait, now,
                                                    channel=entry.channel, skill=call.skill,
                                                    district=call.district)
        await self._set_state(rt, AgentState.ON_CALL)
        await self.store.run(
            queries.update_contact, call.contact_id, agent=rt.agent.id,
            agent_district=rt.agent.district, overflowed=rt.agent.district != call.district,
            answered_at=iso(self.clock()), wait_seconds=round(wait, 3),
        )
        await self.store.run(queries.add_event, call.contact_id, iso(self.clock()), "connected",
                             {"agent": rt.agent.id})
        self.queue_log.write(now, entry.uniqueid, queue, rt.agent.id, "CONNECT", int(wait),
                             entry.leg_id or "", 0)

    async def resync(self) -> None:
        """After an AMI (re)connect: events were lost, so read the PBX's state again.

        Also after a crash (kill -9): callers still waiting in `kc-wait` come back with their
        original enqueue time, callers already bridged to an agent are adopted as connected (not
        offered twice), agent legs still ringing for an offer we no longer know are hung up,
        pending call-backs are reloaded, and open contacts whose channel is gone are closed."""
        started = iso(self.clock())
        snap = await self.telephony.snapshot(list(self.agents))
        for agent_id, rt in self.agents.items():
            self.set_registered(agent_id, agent_id in snap.registered)
        now = self._now()
        for entry in list(self.waiting.values()):
            if entry.callback and entry.offered_to is None:
                continue
            if entry.uniqueid not in snap.channels and not entry.callback:
                await self._abandon(entry, now)
        for conn in list(self.connected.values()):
            if conn.uniqueid not in snap.channels:
                await self._complete(conn, now)
        known_legs = {e.leg_id for e in self.waiting.values() if e.leg_id}
        known_legs |= {c.leg_id for c in self.connected.values()}
        for b in snap.bridged:
            if b.contact_id not in self.connected:
                await self._adopt(b.contact_id, b.uniqueid, b.channel, b.agent, b.leg_id, now)
            known_legs.add(b.leg_id)
        for leg_uid, leg_channel in snap.agent_legs:
            if leg_uid not in known_legs:
                log.info("hanging up orphan agent leg %s", leg_channel)
                try:
                    await self.telephony.hangup(leg_channel)
                except TelephonyDown:
                    pass
        for uniqueid, channel, contact_id in snap.waiting:
            await self.enqueue(contact_id, uniqueid, channel)
        if not self._reconciled:
            self._reconciled = True
            await self._reconcile_open_contacts(started, snap.channels)
        self.dispatch()

    async def _adopt(self, contact_id: int, uniqueid: str, channel: str, agent_id: str,
                     leg_id: str, now: float) -> None:
        """A caller found bridged to an agent after our restart: connected, not waiting."""
        self.waiting.pop(contact_id, None)
        self.router.remove_call(contact_id)
        contact = await self.store.run(queries.get_contact, contact_id)
        rt = self.agents.get(agent_id)
        if contact["outcome"] is not None or rt is None:
            return
        from kc.clock import parse_iso
        enq = parse_iso(contact["enqueued_at"]).timestamp() if contact["enqueued_at"] else now
        ans = parse_iso(contact["answered_at"]).timestamp() if contact["answered_at"] else now
        queue = self.queue_name(contact["skill"], contact["district"])
        self.connected[contact_id] = Connected(contact_id, agent_id, uniqueid, leg_id, queue,
                                               max(0.0, ans - enq), ans, channel=channel,
                                               skill=contact["skill"], district=contact["district"])
        rt.contact_id = contact_id
        if not contact["answered_at"]:
            await self.store.run(queries.update_contact, contact_id, agent=agent_id,
                                 agent_district=rt.agent.district,
                                 overflowed=rt.agent.district != contact["district"],
                                 answered_at=iso(self.clock()), wait_seconds=round(ans - enq, 3))
        await self._set_state(rt, AgentState.ON_CALL)
        await self.store.run(queries.add_event, contact_id, iso(self.clock()), "adopted",
                             {"agent": agent_id, "after": "restart"})

    async def _reconcile_open_contacts(self, before: str, live: frozenset[str]) -> None:
        """Contacts left open by a crash whose caller is no longer in the PBX."""
        for c in await self.store.run(acd_store.open_queued_contacts, before):
            cid = c["id"]
            if cid in self.waiting or cid in self.connected:
                continue
            if c.get("callback_number") and not c["answered_at"]:
                await self.enqueue(cid, c["uniqueid"] or "", "")   # the call-back still owed
                continue
            if c["uniqueid"] in live:
                continue
            at = iso(self.clock())
            if c["answered_at"]:
                await self.store.run(queries.update_contact, cid, outcome="answered", ended_at=at)
                await self.store.run(queries.add_event, cid, at, "completed", {"by": "unknown (service restarted)"})
            else:
                await self.store.run(queries.update_contact, cid, outcome="abandoned", ended_at=at)
                await self.store.run(queries.add_event, cid, at, "abandoned", {"where": "queue (while the service was down)"})
                self.queue_log.write(self._now(), c["uniqueid"] or "NONE",
                                     self.queue_name(c["skill"], c["district"]), "NONE", "ABANDON", 1, 1, 0)

    # ------------------------------------------------------------------ PBX events
    # What `on_event` reads; the PBX is told to send no others (kc.asterisk.AMI_EVENTS).
    PBX_EVENTS = frozenset({"UserEvent", "HangupRequest", "SoftHangupRequest", "BridgeLeave",
                            "Hangup", "DialEnd", "Newchannel", "DeviceStateChange", "ContactStatus"})
    # The fields `on_event` reads from each, and only these: what differs between Asterisk 16
    # and 22 (22 drops HangupRequest's Cause, adds Hangup's TechCause, numbers some causes
    # differently) is never read. tests/test_asterisk_telephony.py checks these fields and the
    # values compared below against the real Asterisk of each run. ContactStatus names its
    # endpoint in EndpointName, or only in AOR (one AOR per agent here).
    PBX_EVENT_FIELDS = {
        "UserEvent": ("UserEvent", "Uniqueid", "Channel"),   # + ContactID for KcWaiting
        "HangupRequest": ("Uniqueid",), "SoftHangupRequest": ("Uniqueid",), "BridgeLeave": ("Uniqueid",),
        "Hangup": ("Uniqueid", "Channel"),
        "DialEnd": ("DestUniqueid", "DialStatus"),   # + Uniqueid when a channel dialled
                                                     # (an Originate's own dial has none)
        "Newchannel": ("Uniqueid", "Channel"),
        "DeviceStateChange": ("Device", "State"),
        "ContactStatus": ("ContactStatus", "AOR"),
    }
    UNREGISTERED_STATES = ("UNAVAILABLE", "INVALID", "UNKNOWN")
    CONTACT_UP = ("Created", "Reachable", "NonQualified")
    CONTACT_DOWN = ("Removed", "Unreachable")

    def on_event(self, event: dict[str, str]) -> None:
        """Called for every AMI event; must not block (slow readers get disconnected)."""
        name = event.get("Event", "")
        if name == "UserEvent" and event.get("UserEvent") == "KcWaiting":
            try:
                contact_id = int(event.get("ContactID", ""))
            except ValueError:
                log.warning("KcWaiting without a contact id: %s", event)
                return
            uniqueid, channel = event.get("Uniqueid", ""), event.get("Channel", "")
            known = self.expected.pop(contact_id, None)
            if known is not None:
                self._admit(contact_id, uniqueid, channel, known[1], None)
            else:
                self._spawn(self.enqueue(contact_id, uniqueid, channel))
        elif name in ("HangupRequest", "SoftHangupRequest", "BridgeLeave"):
            self._note_who_ended(event.get("Uniqueid", ""))
        elif name == "Hangup":
            self._note_who_ended(event.get("Uniqueid", ""))
            self._spawn(self._on_hangup(event.get("Uniqueid", ""), event.get("Channel", "")))
        elif name == "DialEnd" and event.get("Uniqueid", "").startswith("kc-"):
            self._spawn(self._on_callback_dial_end(event.get("Uniqueid", ""), event.get("DialStatus", "")))
        elif name == "Newchannel":
            uid = event.get("Uniqueid", "")
            if uid.startswith("kc-"):
                self.leg_channels[uid] = event.get("Channel", "")
        elif name == "DeviceStateChange":
            device = event.get("Device", "")
            if device.startswith("PJSIP/"):
                self.set_registered(device[6:], event.get("State") not in self.UNREGISTERED_STATES)
        elif name == "ContactStatus":
            status = event.get("ContactStatus", "")
            agent = event.get("EndpointName") or event.get("AOR", "")
            if status in self.CONTACT_UP:
                self.set_registered(agent, True)
            elif status in self.CONTACT_DOWN:
                # a phone registering from a new address replaces its old contact: "Removed"
                # may come after the new one's "Created", so ask the PBX what holds now
                self._spawn(self._recheck_registration(agent))

    def _note_who_ended(self, uniqueid: str) -> None:
        """The first hang-up request (or bridge leave) of a talking pair says who ended the
        call: the two channels' Hangup events race each other, these arrive in order."""
        for conn in self.connected.values():
            if conn.ended_by is None and uniqueid in (conn.leg_id, conn.uniqueid):
                conn.ended_by = "agent" if uniqueid == conn.leg_id else "caller"
                return

    async def _recheck_registration(self, agent: str) -> None:
        await asyncio.sleep(0.2)
        try:
            snap = await self.telephony.snapshot_registered([agent])
        except (TelephonyDown, AttributeError):
            self.set_registered(agent, False)
            return
        self.set_registered(agent, agent in snap)

    async def _on_hangup(self, uniqueid: str, channel: str) -> None:
        now = self._now()
        for contact_id, entry in list(self.waiting.items()):
            if entry.uniqueid == uniqueid:
                if entry.callback:
                    entry.channel = ""      # hung up after asking for a call-back: keeps the place
                    return
                await self._abandon(entry, now)
                return
        for contact_id, conn in list(self.connected.items()):
            if conn.callback and conn.leg_id == uniqueid:
                await self._complete(conn, now)
                return
            if conn.leg_id == uniqueid:
                conn.agent_hung_up = True
                return
            if conn.uniqueid == uniqueid:
                await self._complete(conn, now)
                return
        self.leg_channels.pop(uniqueid, None)

    async def _abandon(self, entry: Waiting, now: float) -> None:
        call = entry.call
        del self.waiting[call.contact_id]
        self.router.remove_call(call.contact_id)
        wait = max(0.0, now - call.enqueued_at)
        queue = self.queue_name(call.skill, call.district)
        self.queue_log.write(now, entry.uniqueid, queue, "NONE", "ABANDON", 1, 1, int(wait))
        await self.store.run(queries.update_contact, call.contact_id, outcome="abandoned",
                             ended_at=iso(self.clock()), wait_seconds=round(wait, 3))
        await self.store.run(queries.add_event, call.contact_id, iso(self.clock()), "abandoned",
                             {"where": "queue", "wait": round(wait, 3)})
        if entry.offered_to and entry.leg_id:
            leg = self.leg_channels.get(entry.leg_id)
            if leg:
                try:
                    await self.telephony.hangup(leg)
                except TelephonyDown:
                    pass
        self._changed()

    async def _complete(self, conn: Connected, now: float) -> None:
        if self.connected.get(conn.contact_id) is not conn:
            return
        del self.connected[conn.contact_id]
        self.leg_channels.pop(conn.leg_id, None)
        talk = max(0.0, now - conn.answered_at)
        wrap = self.wrap_up_for(conn.skill, conn.district)
        if conn.callback and not conn.resident_answered:
            # the agent called, the resident did not answer: the call-back failed
            self.queue_log.write(now, conn.uniqueid, conn.queue, conn.agent, "COMPLETEAGENT",
                                 int(conn.wait), 0, 1)
            await self.store.run(queries.update_contact, conn.contact_id, outcome="failed",
                                 ended_at=iso(self.clock()))
            await self.store.run(queries.add_event, conn.contact_id, iso(self.clock()),
                                 "callback_unanswered", {"agent": conn.agent})
        else:
            if conn.ended_by is not None:
                conn.agent_hung_up = conn.ended_by == "agent"
            event = "COMPLETEAGENT" if conn.agent_hung_up or conn.callback else "COMPLETECALLER"
            self.queue_log.write(now, conn.uniqueid, conn.queue, conn.agent, event,
                                 int(conn.wait), int(talk), 1)
            await self.store.run(queries.update_contact, conn.contact_id, outcome="answered",
                                 ended_at=iso(self.clock()), talk_seconds=round(talk, 3))
            await self.store.run(queries.add_event, conn.contact_id, iso(self.clock()), "completed",
                                 {"by": "agent" if conn.agent_hung_up else "caller", "talk": round(talk, 3),
                                  **({"callback": True} if conn.callback else {})})
            if conn.skill:
                self.handle_times.setdefault(conn.skill, deque(maxlen=50)).append(talk + wrap)
        rt = self.agents.get(conn.agent)
        if rt is not None and rt.contact_id == conn.contact_id:
            await self._after_call(rt, wrap)
        self._changed()

    # ------------------------------------------------------------------ call-back
    async def request_callback(self, contact_id: int) -> bool:
        """The waiting caller pressed 1: keep the place, call back the caller's number.
        False when it cannot be done (not waiting, being offered right now, no usable number)."""
        entry = self.waiting.get(contact_id)
        if entry is None or entry.offered_to is not None or entry.callback:
            return False
        number = entry.caller.strip()
        if not NUMBER_RE.match(number):
            return False
        entry.callback = number
        at = iso(self.clock())
        await self.store.run(queries.update_contact, contact_id, callback_number=number)
        await self.store.run(queries.add_event, contact_id, at, "callback_requested",
                             {"number": number, "position": self.position(contact_id)})
        self._changed()
        return True

    async def _offer_callback(self, entry: Waiting, rt: AgentRuntime, answer: Awaitable[bool],
                              started: float) -> None:
        """The agent is rung first; once they answer, the dialplan (`kc-callback`) rings the
        resident."""
        call = entry.call
        queue = self.queue_name(call.skill, call.district)
        try:
            answered = await answer
        except TelephonyDown as exc:
            log.warning("call-back of contact %s via %s failed: %s", call.contact_id, rt.agent.id, exc)
            if self.waiting.get(call.contact_id) is entry:
                self._unoffer(entry)
            rt.contact_id = None
            await self._set_state(rt, AgentState.READY)
            self.dispatch()
            return
        if self.waiting.get(call.contact_id) is not entry:
            if answered and entry.leg_id in self.leg_channels:
                await self.telephony.hangup(self.leg_channels[entry.leg_id])
            await self._after_call(rt)
            return
        if not answered:
            await self._ring_no_answer(entry, rt, queue, started)
            return
        now = self._now()
        wait = max(0.0, now - call.enqueued_at)
        del self.waiting[call.contact_id]
        leg = entry.leg_id or ""
        self.connected[call.contact_id] = Connected(
            call.contact_id, rt.agent.id, leg, leg, queue, wait, now, callback=True,
            skill=call.skill, district=call.district)
        await self._set_state(rt, AgentState.ON_CALL)
        await self.store.run(
            queries.update_contact, call.contact_id, agent=rt.agent.id,
            agent_district=rt.agent.district, overflowed=rt.agent.district != call.district,
            wait_seconds=round(wait, 3))
        await self.store.run(queries.add_event, call.contact_id, iso(self.clock()),
                             "callback_agent_answered", {"agent": rt.agent.id})

    async def _on_callback_dial_end(self, leg: str, status: str) -> None:
        conn = next((c for c in self.connected.values() if c.callback and c.leg_id == leg), None)
        if conn is None:
            return
        at = iso(self.clock())
        if status == "ANSWER":
            now = self._now()
            conn.resident_answered, conn.answered_at = True, now
            await self.store.run(queries.update_contact, conn.contact_id, answered_at=at)
            await self.store.run(queries.add_event, conn.contact_id, at, "callback_connected",
                                 {"agent": conn.agent})
            self.queue_log.write(now, conn.uniqueid, conn.queue, conn.agent, "CONNECT",
                                 int(conn.wait), conn.leg_id, 0)
        else:
            await self.store.run(queries.add_event, conn.contact_id, at, "callback_dial",
                                 {"status": status})

    # ------------------------------------------------------------------ transfer
    async def transfer(self, contact_id: int, target: str, by: str | None = None,
                       redirect: bool = True) -> dict[str, Any]:
        """Blind transfer of a connected caller: to another skill queue (`queue:<skill>` or a
        skill id; a new contact waits there, same caller and channel) or to a back-office
        number (the call leaves the centre). `redirect=False` when the PBX already moved the
        caller (the agent's phone transferred it). Returns what happened."""
        conn = self.connected.get(contact_id)
        if conn is None or conn.callback:
            raise InvalidInput(f"contact {contact_id} is not connected to an agent")
        if by is not None and by != conn.agent:
            raise InvalidInput(f"contact {contact_id} is not with agent {by}")
        target = target.strip()
        skill = target[6:] if target.startswith("queue:") else target
        if skill in self.skills:
            kind = "queue"
        elif NUMBER_RE.match(target):
            kind = "number"
        else:
            raise InvalidInput(f"transfer target {target!r} is neither a skill queue nor a number")
        if kind == "queue" and skill == conn.skill:
            raise InvalidInput("the caller is already in that queue")
        contact = await self.store.run(queries.get_contact, contact_id)
        new_id = None
        if kind == "queue":
            new_id = await self.store.run(
                queries.create_contact, channel="phone", district=contact["district"],
                dialed=contact["dialed"], caller=contact["caller"], caller_name=contact["caller_name"],
                started_at=iso(self.clock()), menu_path=contact["menu_path"],
                language=contact["language"], skill=skill, uniqueid=conn.uniqueid,
                channel_name=conn.channel)
        del self.connected[contact_id]
        if redirect:
            try:
                if kind == "queue":
                    await self.telephony.redirect(conn.channel, "kc-transfer-queue", str(new_id))
                else:
                    await self.telephony.redirect(conn.channel, "kc-transfer-out", target)
            except Exception as exc:
                self.connected[contact_id] = conn
                if new_id is not None:
                    await self.store.run(queries.update_contact, new_id, outcome="failed",
                                         ended_at=iso(self.clock()))
                raise TelephonyDown(f"transfer failed: {exc}") from exc
        now = self._now()
        talk = max(0.0, now - conn.answered_at)
        at = iso(self.clock())
        to = f"queue:{skill}" if kind == "queue" else target
        extension = self.queue_name(skill, contact["district"]) if kind == "queue" else target
        self.queue_log.write(now, conn.uniqueid, conn.queue, conn.agent, "TRANSFER", extension,
                             "kc-transfer-queue" if kind == "queue" else "kc-transfer-out",
                             int(conn.wait), int(talk), 1)
        await self.store.run(queries.update_contact, contact_id, outcome="transferred",
                             ended_at=at, talk_seconds=round(talk, 3))
        await self.store.run(queries.add_event, contact_id, at, "transferred",
                             {"to": to, "agent": conn.agent, "new_contact": new_id})
        if new_id is not None:
            await self.store.run(queries.add_event, new_id, at, "transferred_in",
                                 {"from_contact": contact_id, "agent": conn.agent})
        leg = self.leg_channels.get(conn.leg_id)
        if leg and redirect:
            try:
                await self.telephony.hangup(leg)
            except TelephonyDown:
                pass
        rt = self.agents.get(conn.agent)
        if rt is not None and rt.contact_id == contact_id:
            await self._after_call(rt, self.wrap_up_for(conn.skill, conn.district))
        self._changed()
        return {"contact": contact_id, "to": to, "new_contact": new_id}

    # ------------------------------------------------------------------ waiting callers' view
    def position(self, contact_id: int) -> int | None:
        """1 = next in this caller's queue (same skill and called district, priority then FIFO)."""
        entry = self.waiting.get(contact_id)
        if entry is None:
            return None
        me = entry.call
        key = (-me.priority, me.enqueued_at, me.contact_id)
        ahead = sum(1 for w in self.waiting.values()
                    if w.call.skill == me.skill and w.call.district == me.district
                    and (-w.call.priority, w.call.enqueued_at, w.call.contact_id) < key)
        return ahead + 1

    async def waiting_info(self, contact_id: int) -> tuple[int, float, str] | None:
        """(place in the queue, estimated wait in seconds, language) for an announcement."""
        pos = self.position(contact_id)
        if pos is None:
            return None
        call = self.waiting[contact_id].call
        staffed = sum(1 for rt in self.agents.values()
                      if rt.state is not AgentState.LOGGED_OUT and rt.registered
                      and rt.agent.may_take(call.skill, call.district, call.confidential))
        recent = self.handle_times.get(call.skill)
        if not recent:
            recent = deque(await self.store.run(acd_store.recent_handle_times, call.skill,
                                                self.wrap_up_for(call.skill, call.district)),
                           maxlen=50)
            self.handle_times[call.skill] = recent
        eta = estimate.estimated_wait(pos, estimate.average_handle(recent), staffed)
        await self.store.run(queries.add_event, contact_id, iso(self.clock()), "announced",
                             {"position": pos, "estimate_seconds": round(eta), "staffed": staffed})
        return pos, eta, call.language
