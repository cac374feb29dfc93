"""Call-backs: a waiting caller asks to be called back (pressing 1) and hangs up, keeping
their place, or one asked for after hours enters the queue at opening
(`agi.opening_callbacks`); when their turn comes the agent is rung first and, once they answer,
the dialplan (`kc-callback`) rings the resident. A resident who does not answer is called
again after `callback_retry_seconds`, up to `callback_retries` more times, then the call-back
has failed.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable

from kc.domain import AgentState
from kc.errors import TelephonyDown
from kc.queue_config import queue_name

from .agents import AgentRuntime, Agents
from .calls import Calls, Connected
from .floor import Floor
from .options import NUMBER_RE
from .waiting import Waiting, WaitingRoom

log = logging.getLogger(__name__)


class Callbacks:
    def __init__(self, floor: Floor, agents: Agents, room: WaitingRoom, calls: Calls):
        self.floor, self.agents, self.room = floor, agents, room
        self.attempts: dict[int, int] = {}     # contact -> call-backs the resident missed
        room.follow_callback = self._follow_offer
        calls.retry_callback = self._retry

    async def _retry(self, conn: Connected, now: float) -> bool:
        """The resident did not answer: back in the queue later (True), or it has failed."""
        missed = self.attempts.get(conn.contact_id, 0) + 1
        options = self.floor.options
        if missed > options.callback_retries:
            self.attempts.pop(conn.contact_id, None)
            return False
        self.attempts[conn.contact_id] = missed
        delay = options.callback_retry_seconds
        await self.floor.records.callback_retry(now, conn, missed, delay)
        self.floor.spawn(self._again(conn.contact_id, delay))
        return True

    async def _again(self, contact_id: int, delay: float) -> None:
        await asyncio.sleep(delay)
        contact = await self.floor.records.read_contact(contact_id)
        # its original place in the queue, under the queue call it entered with
        await self.room.enqueue(contact_id, contact["uniqueid"] or f"cb-{contact_id}", "")

    async def request(self, contact_id: int) -> bool:
        """The waiting caller pressed 1: keep the place, call back the caller's number.
        False when it cannot be done (not waiting, being offered right now, no usable number)."""
        entry = self.floor.waiting.get(contact_id)
        if entry is None or entry.offered_to is not None or entry.callback:
            return False
        number = entry.caller.strip()
        if not NUMBER_RE.match(number):
            return False
        entry.callback = number
        place = self.room.position(contact_id) or 1
        # queue_log: the caller leaves by key 1; the call-back is a call of its own that keeps
        # the caller's place (as a call-back re-entering app_queue's queue would be written)
        now, call = self.floor.now(), entry.call
        queue = queue_name(call.skill, call.district)
        records = self.floor.records
        records.left_queue(now, entry.log_callid, queue, entry.log_wait(now), place,
                           entry.position, key="1")
        entry.callid, entry.logged_at = f"{entry.uniqueid}-cb", now
        records.entered_queue(now, entry.callid, queue, number, place)
        await records.callback_requested(contact_id, number, place)
        self.floor.changed()
        return True

    async def _follow_offer(self, entry: Waiting, rt: AgentRuntime, answer: Awaitable[bool],
                            started: float) -> None:
        """The agent is rung first; once they answer, the dialplan rings the resident."""
        floor, call = self.floor, entry.call
        try:
            answered = await answer
        except TelephonyDown as exc:
            log.warning("call-back of contact %s via %s failed: %s", call.contact_id, rt.agent.id, exc)
            if floor.waiting.get(call.contact_id) is entry:
                self.room.unoffer(entry)
            rt.contact_id = None
            await self.agents.set_state(rt, AgentState.READY)
            floor.dispatch()
            return
        if floor.waiting.get(call.contact_id) is not entry:
            if answered and entry.leg_id in floor.leg_channels:
                await floor.telephony.hangup(floor.leg_channels[entry.leg_id])
            await self.agents.after_call(rt)
            return
        if not answered:
            await self.room.ring_no_answer(entry, rt, started)
            return
        now = floor.now()
        wait = max(0.0, now - call.enqueued_at)
        del floor.waiting[call.contact_id]
        leg = entry.leg_id or ""
        floor.connected[call.contact_id] = Connected(
            call.contact_id, rt.agent.id, leg, leg, queue_name(call.skill, call.district),
            entry.log_wait(now), now, callback=True, skill=call.skill, district=call.district,
            position=entry.position, ring=max(0.0, now - started), callid=entry.log_callid)
        await self.agents.set_state(rt, AgentState.ON_CALL)
        await floor.records.callback_agent_answered(call.contact_id, rt.agent, call.district, wait,
                                                    call.skill)

    async def dial_ended(self, leg: str, status: str) -> None:
        """The agent's leg dialled the resident: answered (the call-back is connected) or not."""
        conn = next((c for c in self.floor.connected.values() if c.callback and c.leg_id == leg), None)
        if conn is None:
            return
        if status == "ANSWER":
            now = self.floor.now()
            conn.resident_answered, conn.answered_at = True, now
            await self.floor.records.callback_dial(now, conn, status)
        else:
            await self.floor.records.callback_dial(self.floor.now(), conn, status)
