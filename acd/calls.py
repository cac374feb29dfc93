"""Calls in progress: a caller talking to an agent, who ended it, and its end (records,
the agent's wrap-up). Also adopting, after a restart, a call the PBX still holds.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Awaitable, Callable

from kc.clock import parse_iso
from kc.domain import AgentState
from kc.queue_config import queue_name

from .agents import Agents
from .floor import Floor

log = logging.getLogger(__name__)


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
    position: int = 1                 # the place it entered the queue at (queue_log)
    ring: float = 0.0                 # seconds the agent's phone rang before answering
    callid: str = ""                  # queue_log's call id when not `uniqueid` (a call-back)

    @property
    def log_callid(self) -> str:
        return self.callid or self.uniqueid


class Calls:
    def __init__(self, floor: Floor, agents: Agents):
        self.floor, self.agents = floor, agents
        self.connected = floor.connected
        # set by `acd.callbacks`: a call-back the resident did not answer is tried again (True)
        self.retry_callback: Callable[[Connected, float], Awaitable[bool]] | None = None
        # set by `acd.transfers`: the call ended (an open consultation came to nothing)
        self.call_ended: Callable[[int], Awaitable[None]] | None = None

    def note_who_ended(self, uniqueid: str) -> None:
        """The first hang-up request (or bridge leave) of a talking pair says who ended the
        call: the two channels' Hangup events race each other, these arrive in order."""
        for conn in self.connected.values():
            if conn.ended_by is None and uniqueid in (conn.leg_id, conn.uniqueid):
                conn.ended_by = "agent" if uniqueid == conn.leg_id else "caller"
                return

    async def hung_up(self, uniqueid: str, now: float) -> bool:
        """A channel of a talking pair hung up; False if it is none of ours."""
        for conn in list(self.connected.values()):
            if conn.callback and conn.leg_id == uniqueid:
                await self.complete(conn, now)
                return True
            if conn.leg_id == uniqueid:
                conn.agent_hung_up = True
                return True
            if conn.uniqueid == uniqueid:
                await self.complete(conn, now)
                return True
        return False

    async def agent_left(self, contact_id: int, now: float) -> bool:
        """The agent hung up and the caller stays on the line (the survey after the call,
        `kc-survey`): the call is complete now and the agent goes on to wrap-up, not when the
        caller hangs up. False if the contact is not talking to an agent."""
        conn = self.connected.get(contact_id)
        if conn is None or conn.callback:
            return False
        conn.ended_by = conn.ended_by or "agent"
        await self.complete(conn, now)
        return True

    async def complete(self, conn: Connected, now: float) -> None:
        floor = self.floor
        if self.connected.get(conn.contact_id) is not conn:
            return
        del self.connected[conn.contact_id]
        floor.leg_channels.pop(conn.leg_id, None)
        talk = max(0.0, now - conn.answered_at)
        wrap = floor.wrap_up_for(conn.skill, conn.district)
        if conn.callback and not conn.resident_answered:
            # the agent called, the resident did not answer: tried again later, or failed
            if self.retry_callback is None or not await self.retry_callback(conn, now):
                await floor.records.callback_failed(now, conn)
        else:
            if conn.ended_by is not None:
                conn.agent_hung_up = conn.ended_by == "agent"
            await floor.records.completed(now, conn, talk)
            if conn.skill:
                floor.remember_handle_time(conn.skill, talk + wrap)
        if self.call_ended is not None:
            await self.call_ended(conn.contact_id)
        await self.agent_done(conn, wrap)
        floor.changed()

    async def agent_done(self, conn: Connected, wrap_up: float) -> None:
        """The call left the agent (ended or transferred): on to wrap-up."""
        rt = self.floor.agents.get(conn.agent)
        if rt is not None and rt.contact_id == conn.contact_id:
            await self.agents.after_call(rt, wrap_up, conn.contact_id)

    async def adopt(self, contact_id: int, uniqueid: str, channel: str, agent_id: str,
                    leg_id: str, now: float) -> None:
        """A caller found bridged to an agent after our restart: connected, not waiting."""
        floor = self.floor
        floor.waiting.pop(contact_id, None)
        floor.router.remove_call(contact_id)
        contact = await floor.records.contact(contact_id)
        rt = floor.agents.get(agent_id)
        if contact["outcome"] is not None or rt is None:
            return
        enq = parse_iso(contact["enqueued_at"]).timestamp() if contact["enqueued_at"] else now
        ans = parse_iso(contact["answered_at"]).timestamp() if contact["answered_at"] else now
        queue = queue_name(contact["skill"], contact["district"])
        self.connected[contact_id] = Connected(contact_id, agent_id, uniqueid, leg_id, queue,
                                               max(0.0, ans - enq), ans, channel=channel,
                                               skill=contact["skill"], district=contact["district"],
                                               position=contact.get("queue_position") or 1)
        rt.contact_id = contact_id
        await floor.records.adopted_answer(contact_id, rt.agent, contact, ans - enq)
        await self.agents.set_state(rt, AgentState.ON_CALL)
        await floor.records.adopted(contact_id, agent_id)
