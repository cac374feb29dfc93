"""The ACD at run time: the parts of the call distributor put together, and the PBX's events
routed to them.

Decisions come from `acd.routing` (pure). The parts, each in its own module, share one
`Floor` (what is held in memory):

- `agents.Agents`          agent states, registration, wrap-up, other work, the day's moves
- `waiting.WaitingRoom`    waiting callers, offers to agents, what a waiting caller hears
- `calls.Calls`            callers talking to an agent, and the end of their call
- `callbacks.Callbacks`    call-backs that keep the caller's place
- `transfers.Transfers`    blind transfer to another queue or a number
- `recovery.Recovery`      catching up with the PBX after a reconnect or a crash
- `records.Records`        contacts, their events and `queue_log` lines

The PBX is reached through the `Telephony` protocol; its events arrive typed (`acd.ami_events`)
through `on_event`. Everything runs on the event loop, one task at a time, so no locks.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from kc import agent_admin, queries
from kc.clock import Clock, iso
from kc.domain import Agent, AgentState
from kc.errors import InvalidInput, TelephonyDown
from kc.queue_config import list_queue_configs, queue_name
from kc.store import Store
from kc.telemetry import Telemetry

from .agents import AgentRuntime, Agents
from .ami_events import (CONTACT_DOWN, CONTACT_UP, UNREGISTERED_STATES, AmiEvent, AttendedTransferred,
                         CallerWaiting, ChannelCreated, ChannelHungUp, ContactStatusChanged,
                         DeviceStateChanged, DialEnded, HangupRequested)
from .callbacks import Callbacks
from .calls import Calls, Connected
from .floor import Floor
from .options import OUTBOUND_RE, AcdOptions
from .queue_log import QueueLog
from .records import Records
from .recovery import Recovery
from .routing import RoutingPolicy
from .telephony import Telephony
from .transfers import Transfers
from .waiting import Queued, Waiting, WaitingRoom

__all__ = ["Distributor", "AgentRuntime", "Connected", "Queued", "Waiting"]

log = logging.getLogger(__name__)

# Agents in these states hold no call: one removed from the organisation may leave the floor.
IDLE_STATES = (AgentState.LOGGED_OUT, AgentState.READY, AgentState.PAUSED)



class Distributor:
    def __init__(self, store: Store, telephony: Telephony, clock: Clock, queue_log: QueueLog,
                 ring_timeout: float = 15.0, wrap_up_seconds: float = 0.0,
                 options: AcdOptions | None = None, telemetry: Telemetry | None = None):
        telemetry = telemetry or Telemetry()
        self.floor = floor = Floor(store, telephony, clock,
                                   Records(store, clock, queue_log, telemetry),
                                   ring_timeout=ring_timeout, wrap_up_seconds=wrap_up_seconds,
                                   options=options or AcdOptions(), telemetry=telemetry)
        self.team = Agents(floor)
        self.room = WaitingRoom(floor, self.team)
        self.calls = Calls(floor, self.team)
        self.callbacks = Callbacks(floor, self.team, self.room, self.calls)
        self.transfers = Transfers(floor, self.calls)
        self.recovery = Recovery(floor, self.team, self.room, self.calls)

    # ------------------------------------------------------------------ what others read
    @property
    def store(self) -> Store:
        return self.floor.store

    @property
    def agents(self) -> dict[str, AgentRuntime]:
        return self.floor.agents

    @property
    def waiting(self) -> dict[int, Waiting]:
        return self.floor.waiting

    @property
    def connected(self) -> dict[int, Connected]:
        return self.floor.connected

    @property
    def skills(self) -> dict:
        return self.floor.skills

    @property
    def policy(self) -> RoutingPolicy:
        return self.floor.policy

    @property
    def router(self):
        return self.floor.router

    @property
    def on_change(self) -> list:
        """Callbacks run after every change of an agent, a caller or a call."""
        return self.floor.on_change

    def now(self) -> float:
        return self.floor.now()

    queue_name = staticmethod(queue_name)

    # ------------------------------------------------------------------ set-up
    async def load(self) -> None:
        self.floor.skills.update({s.id: s for s in await self.store.run(queries.list_skills)})
        await self.team.load()
        await self.reload_queues()

    async def reload_queues(self) -> None:
        """Queue configurations (overflow steps, wrap-up, priority) from the store; call again
        after they change."""
        self.floor.policy = RoutingPolicy.from_configs(await self.store.run(list_queue_configs))
        self.floor.router.set_policy(self.floor.policy)
        self.dispatch()

    async def reload_organisation(self) -> None:
        """Skills, agents and queues changed (an import, a district added or retired): the
        floor routes with the new data from the next offer on. Agents keep their state; one
        no longer in the organisation leaves the floor once no call is offered to or talking
        with them."""
        self.floor.skills.clear()
        self.floor.skills.update({s.id: s for s in await self.store.run(queries.list_skills)})
        agents = {a.id: a for a in await self.store.run(queries.list_agents)}
        moves = await self.store.run(agent_admin.active_moves, iso(self.floor.clock()))
        for agent in agents.values():
            self.team.apply(agent, moves.get(agent.id, (None,))[0])
        for agent_id, rt in list(self.team.all.items()):
            if agent_id not in agents and rt.state in IDLE_STATES:
                del self.team.all[agent_id]
                self.floor.router.remove_agent(agent_id)
        await self.reload_queues()

    async def close(self) -> None:
        self.room.close()
        await self.floor.close()

    def changed(self) -> None:
        """Something the floor shows changed outside the ACD (a written contact joined a
        queue): the listeners (the task runner, the wallboard, the desks) look again."""
        self.floor.changed()

    def dispatch(self) -> None:
        """Offer waiting callers to free agents (see `WaitingRoom.dispatch`)."""
        self.room.dispatch()

    # ------------------------------------------------------------------ agents
    def agent(self, agent_id: str) -> AgentRuntime:
        return self.team.get(agent_id)

    def apply_agent(self, agent: Agent, district: str | None = None) -> None:
        """An agent saved (or created) by an administrator: routed with the new data from the
        next offer on; `district` if they are moved there for the day."""
        self.team.apply(agent, district)

    def move_agent(self, agent: Agent, district: str | None, until: datetime) -> None:
        """A supervisor moves the agent to another district until `until` (None: home now)."""
        self.team.move(agent, district, until)

    async def restore_moves(self) -> None:
        """At start-up, after `load`: the day's moves survive a restart."""
        await self.team.restore_moves()

    async def request_state(self, agent_id: str, target: str, reason: str | None = None) -> AgentRuntime:
        """From the API or the phone: `ready`, `paused` or `logged_out` (kept pending while busy)."""
        return await self.team.request_state(agent_id, target, reason)

    async def toggle_pause(self, agent_id: str) -> AgentRuntime:
        return await self.team.toggle_pause(agent_id)

    def set_registered(self, agent_id: str, registered: bool) -> None:
        self.team.set_registered(agent_id, registered)

    async def occupy(self, agent_id: str, contact_id: int) -> bool:
        """A ready agent takes other work (an e-mail task); False if no longer ready."""
        return await self.team.occupy(agent_id, contact_id)

    def held(self, agent_id: str, contact_id: int):
        """Context: no call is offered to the ready agent while work is written for them."""
        return self.team.held(agent_id, contact_id)

    async def release(self, agent_id: str, contact_id: int | None = None) -> bool:
        """Other work done, or wrap-up ended early: ready, or what the agent asked for."""
        return await self.team.release(agent_id, contact_id)

    # ------------------------------------------------------------------ callers
    def expect(self, contact_id: int, queued: Queued) -> None:
        """The menu is sending this caller to wait (see `WaitingRoom.expect`)."""
        self.room.expect(contact_id, queued)

    async def enqueue(self, contact_id: int, uniqueid: str, channel: str) -> None:
        await self.room.enqueue(contact_id, uniqueid, channel)

    def take_waiting(self, contact_id: int) -> Waiting | None:
        """Remove a caller nobody is being offered yet (e.g. their queue closed); None if not."""
        return self.room.take(contact_id)

    def closed_out(self, entry: Waiting) -> None:
        """A caller `take_waiting` took out has left for the after-hours choices (the queue
        closed): its exit from the queue is written."""
        self.room.closed_out(entry)

    def return_waiting(self, entry: Waiting) -> None:
        """Undo `take_waiting`: the caller keeps their place."""
        self.room.put_back(entry)

    def position(self, contact_id: int) -> int | None:
        return self.room.position(contact_id)

    async def waiting_info(self, contact_id: int) -> tuple[int, float, str] | None:
        """(place in the queue, estimated wait in seconds, language) for an announcement."""
        return await self.room.waiting_info(contact_id)

    def queue_callback(self, contact_id: int, queued: Queued, number: str) -> None:
        """A call-back owed since the district was closed enters its queue now."""
        self.room.admit_callback(contact_id, queued, number)

    async def request_callback(self, contact_id: int) -> bool:
        """The waiting caller pressed 1: keep the place, call back (False if it cannot be done)."""
        return await self.callbacks.request(contact_id)

    async def transfer(self, contact_id: int, target: str, by: str | None = None,
                       redirect: bool = True, name: str | None = None) -> dict[str, Any]:
        """Blind transfer of a connected caller to `queue:<skill>` (or a skill id) or a number."""
        return await self.transfers.transfer(contact_id, target, by, redirect, name)

    async def attended_transfer(self, contact_id: int, number: str, by: str | None = None,
                                name: str | None = None) -> dict[str, Any]:
        """The agent consults `number`; hanging up hands the caller over (`acd.transfers`)."""
        return await self.transfers.attended(contact_id, number, by, name)

    async def click_to_call(self, agent_id: str, number: str) -> None:
        """Ring the agent's phone; answered, it calls `number` through the outbound trunk (the
        dialplan records the outbound contact). The agent must be logged in and not on a call."""
        rt = self.team.get(agent_id)
        if not OUTBOUND_RE.match(number):
            raise InvalidInput(f"{number!r} is not a number to call (0... or +...)")
        if not rt.registered:
            raise InvalidInput(f"{agent_id}'s phone is not registered")
        if rt.state not in (AgentState.READY, AgentState.PAUSED, AgentState.WRAP_UP):
            raise InvalidInput(f"{agent_id} is {rt.state.value}: not now")
        self.floor.spawn(self._call_for_agent(agent_id, number))

    async def _call_for_agent(self, agent_id: str, number: str) -> None:
        answered = await self.floor.telephony.call_for_agent(
            agent=agent_id, number=number, caller_id=f"Ring upp <{number}>",
            timeout=self.floor.ring_timeout)
        log.info("click to call %s for %s: %s", number, agent_id,
                 "answered" if answered else "not answered")

    async def agent_left(self, contact_id: int) -> bool:
        """The agent hung up; the caller stays for the survey (`acd.calls.Calls.agent_left`)."""
        return await self.calls.agent_left(contact_id, self.floor.now())

    async def resync(self, lost_at: float | None = None) -> None:
        """After an AMI (re)connect, and after a crash: read the PBX's state again; calls it
        no longer has ended at `lost_at` (when the link was lost), if known."""
        await self.recovery.resync(lost_at)

    def pbx_gone(self, at: float, node: str | None = None) -> None:
        """The PBX stopped (the link was lost at `at` and it refuses connections); in a
        cluster, the node `node`."""
        self.floor.spawn(self.recovery.pbx_gone(at, node))

    def node_down(self, node: str) -> None:
        """A node's AMI link was lost: its agents cannot be rung from now on (until the link
        is back and the node's registrations are read again)."""
        for agent, home in self.floor.agent_nodes.items():
            if home == node:
                self.team.set_registered(agent, False)

    # ------------------------------------------------------------------ PBX events
    def on_event(self, event: AmiEvent) -> None:
        """Called for every event the PBX sends (already typed); must not block (slow readers
        get disconnected)."""
        spawn = self.floor.spawn
        if isinstance(event, CallerWaiting):
            self.room.arrived(event.contact_id, event.uniqueid, event.channel)
        elif isinstance(event, HangupRequested):
            self.calls.note_who_ended(event.uniqueid)
        elif isinstance(event, ChannelHungUp):
            self.calls.note_who_ended(event.uniqueid)
            spawn(self._on_hangup(event.uniqueid))
        elif isinstance(event, DialEnded):
            if event.uniqueid.startswith("kc-"):
                spawn(self.callbacks.dial_ended(event.uniqueid, event.status))
        elif isinstance(event, AttendedTransferred):
            spawn(self.transfers.attended_ended(event))
        elif isinstance(event, ChannelCreated):
            if event.uniqueid.startswith("kc-"):
                self.floor.leg_channels[event.uniqueid] = event.channel
        elif isinstance(event, DeviceStateChanged):
            if event.device.startswith("PJSIP/"):
                self.set_registered(event.device[6:], event.state not in UNREGISTERED_STATES)
        elif isinstance(event, ContactStatusChanged):
            if event.status in CONTACT_UP:
                self.set_registered(event.endpoint, True)
            elif event.status in CONTACT_DOWN:
                # a phone registering from a new address replaces its old contact: "Removed"
                # may come after the new one's "Created", so ask the PBX what holds now
                spawn(self._recheck_registration(event.endpoint))

    async def _on_hangup(self, uniqueid: str) -> None:
        now = self.floor.now()
        contact_id = self._contact_of(uniqueid)
        try:
            if await self.room.hung_up(uniqueid, now) or await self.calls.hung_up(uniqueid, now):
                return
        except Exception:
            log.exception("hang-up of %s (contact %s) failed", uniqueid, contact_id)
            self.floor.changed()
            return
        self.floor.leg_channels.pop(uniqueid, None)

    def _contact_of(self, uniqueid: str) -> int | None:
        for entry in self.floor.waiting.values():
            if uniqueid in (entry.uniqueid, entry.leg_id):
                return entry.call.contact_id
        for conn in self.floor.connected.values():
            if uniqueid in (conn.uniqueid, conn.leg_id):
                return conn.contact_id
        return None

    async def _recheck_registration(self, agent: str) -> None:
        await asyncio.sleep(0.2)
        try:
            snap = await self.floor.telephony.snapshot_registered([agent])   # type: ignore[attr-defined]
        except (TelephonyDown, AttributeError):
            self.set_registered(agent, False)
            return
        self.set_registered(agent, agent in snap)
