"""Agents as the distributor holds them: their state (with what they asked for while busy),
registration, wrap-up, other work they take (e-mail tasks), and the day's moves to another
district. Every change reaches the router at once (`AgentRuntime.watch`).
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Callable, Iterator

from kc import agent_admin, queries
from kc.clock import iso, parse_iso
from kc.domain import Agent, AgentState
from kc.errors import InvalidInput, NotFound

from . import agent_states
from .floor import Floor
from .routing import AgentSnapshot

log = logging.getLogger(__name__)


# The fields an `AgentSnapshot` is made of: setting one tells the distributor's router.
_ROUTED_FIELDS = frozenset({"agent", "state", "registered", "idle_since"})


@dataclass
class AgentRuntime:
    """An agent as the distributor sees them. Setting a routed field (state, registration,
    idle time, the agent's data) calls `watch`, so the router's index never goes stale
    whoever changes it."""
    agent: Agent
    state: AgentState = AgentState.LOGGED_OUT
    reason: str | None = None
    pending: AgentState | None = None
    pending_reason: str | None = None
    registered: bool = False
    idle_since: float = 0.0
    contact_id: int | None = None
    wrap_ups: int = 0                 # which wrap-up a timer belongs to (an early end starts anew)
    logged_in_at: float | None = None  # for AGENTLOGOFF's log-in time (None: not known)
    wrap_contact: int | None = None   # the contact whose wrap-up runs, and since when
    wrap_started: float = 0.0
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


class Agents:
    def __init__(self, floor: Floor):
        self.floor = floor
        self.all = floor.agents

    # ------------------------------------------------------------------ set-up and data
    async def load(self) -> None:
        store = self.floor.store
        agents = await store.run(queries.list_agents)
        states = await store.run(queries.agent_states)
        now = self.floor.now()
        for agent in agents:
            state, reason, _ = states.get(agent.id, (AgentState.LOGGED_OUT, None, None))
            if state in agent_states.BUSY:
                state, reason = AgentState.READY, None    # a call cannot survive our restart
            self.add(AgentRuntime(agent, state, reason, idle_since=now,
                                  logged_in_at=None if state is AgentState.LOGGED_OUT else now))

    def add(self, rt: AgentRuntime) -> None:
        """A new agent (or one replaced): routed from now on."""
        rt.watch = self._changed
        self.all[rt.agent.id] = rt
        self.floor.router.upsert_agent(rt.snapshot())

    def _changed(self, rt: AgentRuntime) -> None:
        if self.all.get(rt.agent.id) is rt:
            self.floor.router.upsert_agent(rt.snapshot())

    def apply(self, agent: Agent, district: str | None = None) -> None:
        """The agent's data changed (or a new agent was saved): routed with it from the next
        offer on. `district`: where the agent works today when moved from home."""
        effective = replace(agent, district=district) if district else agent
        rt = self.all.get(agent.id)
        if rt is None:
            self.add(AgentRuntime(effective, idle_since=self.floor.now()))
        else:
            rt.agent = effective
        self.floor.changed()
        self.floor.dispatch()

    def move(self, agent: Agent, district: str | None, until: datetime) -> None:
        """A supervisor moves the agent to `district` until `until` (None: back home now)."""
        self.apply(agent, district)
        if district:
            self._return_home_at(agent.id, until)

    async def restore_moves(self) -> None:
        """At start-up: the day's moves survive a restart of the service."""
        store = self.floor.store
        moves = await store.run(agent_admin.active_moves, iso(self.floor.clock()))
        for agent_id, (district, until) in moves.items():
            try:
                agent = await store.run(agent_admin.get_agent, agent_id)
            except NotFound:
                continue
            self.apply(agent, district)
            self._return_home_at(agent_id, parse_iso(until))

    def _return_home_at(self, agent_id: str, until: datetime) -> None:
        delay = max(0.0, (until - self.floor.clock()).total_seconds())

        async def back_home() -> None:
            await asyncio.sleep(delay)
            store = self.floor.store
            moves = await store.run(agent_admin.active_moves, iso(self.floor.clock()))
            if agent_id not in moves:
                self.apply(await store.run(agent_admin.get_agent, agent_id))

        self.floor.spawn(back_home())

    def get(self, agent_id: str) -> AgentRuntime:
        try:
            return self.all[agent_id]
        except KeyError:
            raise NotFound(f"no agent {agent_id!r}") from None

    # ------------------------------------------------------------------ states
    async def set_state(self, rt: AgentRuntime, state: AgentState, reason: str | None = None) -> None:
        before = rt.state
        if before is state and rt.reason == reason:
            return
        rt.state, rt.reason = state, reason
        now = self.floor.now()
        if state is AgentState.READY:
            rt.idle_since = now
        logged_in_at = rt.logged_in_at
        if before is AgentState.LOGGED_OUT and state is not AgentState.LOGGED_OUT:
            rt.logged_in_at = now
        elif state is AgentState.LOGGED_OUT:
            rt.logged_in_at = None
        await self.floor.records.agent_state(now, rt.agent.id, before, state, reason,
                                             self.floor.served_queues(rt.agent), logged_in_at)
        if before is AgentState.WRAP_UP and state is not AgentState.WRAP_UP \
                and rt.wrap_contact is not None:
            contact, rt.wrap_contact = rt.wrap_contact, None
            await self.floor.records.wrapped_up(contact, now - rt.wrap_started)
        self.floor.changed()

    async def request_state(self, agent_id: str, target: str, reason: str | None = None) -> AgentRuntime:
        """From the API or the phone: `ready`, `paused` or `logged_out`."""
        rt = self.get(agent_id)
        try:
            wanted = AgentState(target)
        except ValueError:
            raise InvalidInput(f"unknown state {target!r}") from None
        now_state, pending = agent_states.request(rt.state, wanted)
        before = (rt.state, rt.reason, rt.pending, rt.pending_reason, rt.idle_since)
        rt.pending = pending
        rt.pending_reason = reason if pending is AgentState.PAUSED else None
        try:
            await self.set_state(rt, now_state, reason if now_state is AgentState.PAUSED else None)
        except Exception:   # answered with an error: nothing changed (a store fault only delays)
            rt.state, rt.reason, rt.pending, rt.pending_reason, rt.idle_since = before
            raise
        self.floor.dispatch()
        return rt

    async def toggle_pause(self, agent_id: str) -> AgentRuntime:
        rt = self.get(agent_id)
        return await self.request_state(agent_id, agent_states.toggle_pause(rt.state).value)

    def set_registered(self, agent_id: str, registered: bool) -> None:
        rt = self.all.get(agent_id)
        if rt is None or rt.registered == registered:
            return
        rt.registered = registered
        log.info("agent %s %s", agent_id, "registered" if registered else "unregistered")
        self.floor.changed()
        if registered:
            self.floor.dispatch()

    async def _take_pending(self, rt: AgentRuntime) -> None:
        """Ready again, or the state the agent asked for while busy."""
        target, rt.pending = rt.pending, None
        await self.set_state(rt, target or AgentState.READY,
                             rt.pending_reason if target is AgentState.PAUSED else None)
        self.floor.dispatch()

    async def after_call(self, rt: AgentRuntime, wrap_up: float | None = None,
                         contact_id: int | None = None) -> None:
        """The agent's call ended: wrap-up (if any and nothing else was asked for), then ready.
        The wrap-up's length is recorded on `contact_id` (the call that ended) when it ends."""
        rt.contact_id = None
        wrap_up = self.floor.wrap_up_seconds if wrap_up is None else wrap_up
        if rt.pending is None and wrap_up > 0:
            rt.wrap_ups += 1
            rt.wrap_contact, rt.wrap_started = contact_id, self.floor.now()
            await self.set_state(rt, AgentState.WRAP_UP)
            self.floor.spawn(self._end_wrap_up(rt, wrap_up, rt.wrap_ups))
            return
        if contact_id is not None:
            await self.floor.records.wrapped_up(contact_id, 0.0)
        await self._take_pending(rt)

    CATEGORY_CHECK_SECONDS = 2.0

    async def _end_wrap_up(self, rt: AgentRuntime, seconds: float, number: int) -> None:
        """At the end of the wrap-up time: ready again; when the options ask for a category,
        only once the contact's case is registered (saving it also ends the wrap-up early)."""
        await asyncio.sleep(seconds)
        if self.floor.options.wrap_up_needs_category and rt.wrap_contact is not None:
            while rt.state is AgentState.WRAP_UP and rt.wrap_ups == number \
                    and not await self.floor.records.has_case(rt.wrap_contact):
                await asyncio.sleep(self.CATEGORY_CHECK_SECONDS)
        if rt.state is AgentState.WRAP_UP and rt.wrap_ups == number:
            await self._take_pending(rt)

    async def ring_no_answer(self, rt: AgentRuntime) -> None:
        """The agent let an offer ring out: paused (reason `rona`) unless they asked to log out."""
        rt.contact_id = None
        target = rt.pending
        rt.pending = None
        if target in (AgentState.LOGGED_OUT,):
            await self.set_state(rt, target)
        else:
            await self.set_state(rt, AgentState.PAUSED, "rona")
        self.floor.dispatch()

    # ------------------------------------------------------------------ other work
    async def occupy(self, agent_id: str, contact_id: int) -> bool:
        """A ready agent takes other work (an e-mail): no call is offered to them meanwhile.

        The check and the change happen without an await between them, so `dispatch` cannot
        give the agent a call in the meantime."""
        rt = self.all.get(agent_id)
        if rt is None or rt.state is not AgentState.READY:
            return False
        rt.state, rt.contact_id = AgentState.ON_CALL, contact_id
        self.floor.changed()
        await self.floor.records.stored_state(agent_id, AgentState.ON_CALL)
        return True

    @contextmanager
    def held(self, agent_id: str, contact_id: int) -> Iterator[AgentRuntime]:
        """Keep a ready agent from being offered a call while work is written for them (an
        e-mail task being assigned); ready again after."""
        rt = self.all[agent_id]
        rt.state, rt.contact_id = AgentState.RINGING, contact_id
        try:
            yield rt
        finally:
            rt.state, rt.contact_id = AgentState.READY, None

    async def release(self, agent_id: str, contact_id: int | None = None) -> bool:
        """Work is done (a task, or wrap-up ended early by saving the case): the agent becomes
        ready, or takes the state they asked for meanwhile. False if nothing to release."""
        rt = self.all.get(agent_id)
        if rt is None:
            return False
        if contact_id is not None:
            if rt.contact_id != contact_id:
                return False
            rt.contact_id = None
        elif rt.state is not AgentState.WRAP_UP:
            return False
        rt.wrap_ups += 1           # a wrap-up timer still running no longer applies
        await self._take_pending(rt)
        return True
