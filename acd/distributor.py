"""The ACD at run time: keeps agents and waiting callers, reacts to PBX events, records steps.

Decisions come from `acd.routing` (pure); this class applies them, talks to the PBX through
the `Telephony` protocol and writes contacts, contact events and `queue_log` lines. It runs on
the event loop; all state changes happen in one task at a time, so no locks are needed.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from kc import queries
from kc.clock import Clock, iso
from kc.domain import Agent, AgentState, Skill
from kc.errors import InvalidInput, NotFound, TelephonyDown
from kc.store import Store

from . import agent_states
from .queue_log import QueueLog
from .routing import AgentSnapshot, WaitingCall, assignments
from .telephony import Telephony

log = logging.getLogger(__name__)


@dataclass
class AgentRuntime:
    agent: Agent
    state: AgentState = AgentState.LOGGED_OUT
    reason: str | None = None
    pending: AgentState | None = None
    registered: bool = False
    idle_since: float = 0.0
    contact_id: int | None = None

    def snapshot(self) -> AgentSnapshot:
        a = self.agent
        return AgentSnapshot(a.id, a.district, a.skills, a.cleared_for, self.state,
                             self.registered, self.idle_since)


@dataclass
class Waiting:
    call: WaitingCall
    uniqueid: str
    channel: str
    caller: str
    offered_to: str | None = None
    leg_id: str | None = None
    offers: int = 0


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


@dataclass
class Distributor:
    store: Store
    telephony: Telephony
    clock: Clock
    queue_log: QueueLog
    ring_timeout: float = 15.0
    wrap_up_seconds: float = 0.0
    agents: dict[str, AgentRuntime] = field(default_factory=dict)
    skills: dict[str, Skill] = field(default_factory=dict)
    waiting: dict[int, Waiting] = field(default_factory=dict)
    connected: dict[int, Connected] = field(default_factory=dict)
    leg_channels: dict[str, str] = field(default_factory=dict)   # agent leg uniqueid -> channel name
    on_change: list[Callable[[], None]] = field(default_factory=list)
    _tasks: set[asyncio.Task] = field(default_factory=set)

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
            self.agents[agent.id] = AgentRuntime(agent, state, reason, idle_since=now)

    async def close(self) -> None:
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

    async def _after_call(self, rt: AgentRuntime) -> None:
        rt.contact_id = None
        target, rt.pending = rt.pending, None
        if target is None and self.wrap_up_seconds > 0:
            await self._set_state(rt, AgentState.WRAP_UP)
            self._spawn(self._end_wrap_up(rt, self.wrap_up_seconds))
            return
        await self._set_state(rt, target or AgentState.READY)
        self.dispatch()

    async def _end_wrap_up(self, rt: AgentRuntime, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if rt.state is AgentState.WRAP_UP:
            target, rt.pending = rt.pending, None
            await self._set_state(rt, target or AgentState.READY)
            self.dispatch()

    # ------------------------------------------------------------------ callers
    async def enqueue(self, contact_id: int, uniqueid: str, channel: str) -> None:
        """A caller has reached the waiting room (music on hold) after the menu."""
        if contact_id in self.waiting or contact_id in self.connected:
            return
        contact = await self.store.run(queries.get_contact, contact_id)
        if contact["outcome"] is not None or not contact["skill"]:
            log.warning("contact %s is not waiting for an agent; ignored", contact_id)
            return
        skill = self.skills.get(contact["skill"])
        confidential = bool(skill and skill.confidential)
        at = contact["enqueued_at"]
        now = self._now()
        enqueued = now
        if at:  # picked up again after a restart: the original enqueue time counts
            from kc.clock import parse_iso
            enqueued = parse_iso(at).timestamp()
        else:
            await self.store.run(queries.update_contact, contact_id, enqueued_at=iso(self.clock()),
                                 confidential=confidential, uniqueid=uniqueid, channel_name=channel)
            await self.store.run(queries.add_event, contact_id, iso(self.clock()), "enqueued",
                                 {"skill": contact["skill"], "queue": self.queue_name(contact["skill"], contact["district"])})
            self.queue_log.write(now, uniqueid, self.queue_name(contact["skill"], contact["district"]),
                                 "NONE", "ENTERQUEUE", "", contact["caller"] or "", 1)
        call = WaitingCall(contact_id, contact["skill"], contact["district"],
                           contact["language"] or "sv", 0, confidential, enqueued)
        self.waiting[contact_id] = Waiting(call, uniqueid, channel, contact["caller"] or "")
        self._changed()
        self.dispatch()

    def dispatch(self) -> None:
        """Offer waiting callers to free agents (no agent gets two offers)."""
        calls = [w.call for w in self.waiting.values() if w.offered_to is None]
        if not calls:
            return
        for call, agent in assignments(calls, (rt.snapshot() for rt in self.agents.values())):
            entry = self.waiting[call.contact_id]
            rt = self.agents[agent.id]
            entry.offered_to = agent.id
            entry.offers += 1
            entry.leg_id = f"kc-{call.contact_id}-{entry.offers}-{int(self._now())}"
            rt.state, rt.contact_id = AgentState.RINGING, call.contact_id
            self._spawn(self._offer(entry, rt))
        self._changed()

    async def _offer(self, entry: Waiting, rt: AgentRuntime) -> None:
        call = entry.call
        queue = self.queue_name(call.skill, call.district)
        await self.store.run(queries.set_agent_state, rt.agent.id, AgentState.RINGING, None, iso(self.clock()))
        await self.store.run(queries.add_event, call.contact_id, iso(self.clock()), "offered",
                             {"agent": rt.agent.id, "leg": entry.leg_id})
        started = self._now()
        try:
            answered = await self.telephony.ring_agent(
                agent=rt.agent.id, caller_channel=entry.channel, contact_id=call.contact_id,
                leg_id=entry.leg_id or "", caller_id=f"{self.skills[call.skill].name if call.skill in self.skills else call.skill} <{entry.caller}>",
                timeout=self.ring_timeout,
            )
        except TelephonyDown as exc:
            log.warning("offering contact %s to %s failed: %s", call.contact_id, rt.agent.id, exc)
            answered = False
            if call.contact_id in self.waiting:
                entry.offered_to = None
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
            ring_ms = int((self._now() - started) * 1000)
            entry.offered_to, entry.leg_id = None, None
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
        else:
            await self._after_call(rt)

    async def _connect(self, entry: Waiting, rt: AgentRuntime, queue: str) -> None:
        call = entry.call
        now = self._now()
        wait = max(0.0, now - call.enqueued_at)
        del self.waiting[call.contact_id]
        self.connected[call.contact_id] = Connected(call.contact_id, rt.agent.id, entry.uniqueid,
                                                    entry.leg_id or "", queue, wait, now)
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
        """After an AMI (re)connect: events were lost, so read the PBX's state again."""
        snap = await self.telephony.snapshot(list(self.agents))
        for agent_id, rt in self.agents.items():
            self.set_registered(agent_id, agent_id in snap.registered)
        now = self._now()
        for entry in list(self.waiting.values()):
            if entry.uniqueid not in snap.channels:
                await self._abandon(entry, now)
        for conn in list(self.connected.values()):
            if conn.uniqueid not in snap.channels:
                await self._complete(conn, now)
        for uniqueid, channel, contact_id in snap.waiting:
            await self.enqueue(contact_id, uniqueid, channel)
        self.dispatch()

    # ------------------------------------------------------------------ PBX events
    def on_event(self, event: dict[str, str]) -> None:
        """Called for every AMI event; must not block (slow readers get disconnected)."""
        name = event.get("Event", "")
        if name == "UserEvent" and event.get("UserEvent") == "KcWaiting":
            try:
                contact_id = int(event.get("ContactID", ""))
            except ValueError:
                log.warning("KcWaiting without a contact id: %s", event)
                return
            self._spawn(self.enqueue(contact_id, event.get("Uniqueid", ""), event.get("Channel", "")))
        elif name == "Hangup":
            self._spawn(self._on_hangup(event.get("Uniqueid", ""), event.get("Channel", "")))
        elif name == "Newchannel":
            uid = event.get("Uniqueid", "")
            if uid.startswith("kc-"):
                self.leg_channels[uid] = event.get("Channel", "")
        elif name == "DeviceStateChange":
            device = event.get("Device", "")
            if device.startswith("PJSIP/"):
                self.set_registered(device[6:], event.get("State") not in ("UNAVAILABLE", "INVALID", "UNKNOWN"))
        elif name == "ContactStatus":
            status = event.get("ContactStatus", "")
            agent = event.get("EndpointName") or event.get("AOR", "")
            if status in ("Created", "Reachable", "NonQualified"):
                self.set_registered(agent, True)
            elif status in ("Removed", "Unreachable"):
                self.set_registered(agent, False)

    async def _on_hangup(self, uniqueid: str, channel: str) -> None:
        now = self._now()
        for contact_id, entry in list(self.waiting.items()):
            if entry.uniqueid == uniqueid:
                await self._abandon(entry, now)
                return
        for contact_id, conn in list(self.connected.items()):
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
        del self.connected[conn.contact_id]
        self.leg_channels.pop(conn.leg_id, None)
        talk = max(0.0, now - conn.answered_at)
        event = "COMPLETEAGENT" if conn.agent_hung_up else "COMPLETECALLER"
        self.queue_log.write(now, conn.uniqueid, conn.queue, conn.agent, event,
                             int(conn.wait), int(talk), 1)
        await self.store.run(queries.update_contact, conn.contact_id, outcome="answered",
                             ended_at=iso(self.clock()), talk_seconds=round(talk, 3))
        await self.store.run(queries.add_event, conn.contact_id, iso(self.clock()), "completed",
                             {"by": "agent" if conn.agent_hung_up else "caller", "talk": round(talk, 3)})
        rt = self.agents.get(conn.agent)
        if rt is not None and rt.contact_id == conn.contact_id:
            await self._after_call(rt)
        self._changed()
