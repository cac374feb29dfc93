"""Transfers of a connected caller, each written to the transfers log with its outcome
(`kc.transfer_log`):

- blind, to another skill queue (a new contact waits there, same caller and channel) or to a
  number (the call leaves the centre through the outbound trunk);
- attended, to a number (a person of the staff directory): the agent's leg consults the number
  (AMI Atxfer from the desk, or *2 on the agent's phone; dialplan `kc-consult`) while the caller
  hears music; when the agent hangs up with the person on the line, Asterisk hands the caller
  over and says so (`AttendedTransfer`): the contact ends `transferred`. A consultation that
  ends otherwise leaves the caller with the agent (`not_completed`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kc.errors import InvalidInput, TelephonyDown
from kc.queue_config import queue_name

from .ami_events import AttendedTransferred
from .calls import Calls, Connected
from .floor import Floor
from .options import NUMBER_RE

CONSULT_CONTEXT = "kc-consult"


@dataclass
class Consultation:
    transfer_id: int
    number: str
    name: str | None


class Transfers:
    def __init__(self, floor: Floor, calls: Calls):
        self.floor, self.calls = floor, calls
        self.consulting: dict[int, Consultation] = {}     # contact -> its open consultation
        calls.call_ended = self._call_ended

    def _target(self, target: str, current_skill: str) -> tuple[str, str]:
        """(kind, skill or number): `queue:<skill>` or a skill id is a queue, digits a number."""
        skill = target[6:] if target.startswith("queue:") else target
        if skill in self.floor.skills:
            kind = "queue"
        elif NUMBER_RE.match(target):
            kind = "number"
        else:
            raise InvalidInput(f"transfer target {target!r} is neither a skill queue nor a number")
        if kind == "queue" and skill == current_skill:
            raise InvalidInput("the caller is already in that queue")
        return kind, skill if kind == "queue" else target

    def _connected(self, contact_id: int, by: str | None) -> Connected:
        conn = self.floor.connected.get(contact_id)
        if conn is None or conn.callback:
            raise InvalidInput(f"contact {contact_id} is not connected to an agent")
        if by is not None and by != conn.agent:
            raise InvalidInput(f"contact {contact_id} is not with agent {by}")
        return conn

    async def transfer(self, contact_id: int, target: str, by: str | None = None,
                       redirect: bool = True, name: str | None = None) -> dict[str, Any]:
        """Blind. `redirect=False` when the PBX already moved the caller (the agent's phone
        transferred it). Returns what happened."""
        floor = self.floor
        conn = self._connected(contact_id, by)
        target = target.strip()
        kind, skill = self._target(target, conn.skill)
        contact = await floor.records.contact(contact_id)
        new_id = await floor.records.transfer_contact(contact, skill, conn) if kind == "queue" else None
        context = "kc-transfer-queue" if kind == "queue" else "kc-transfer-out"
        del floor.connected[contact_id]
        if redirect:
            try:
                await floor.telephony.redirect(conn.channel, context,
                                               str(new_id) if kind == "queue" else target)
            except Exception as exc:
                floor.connected[contact_id] = conn
                if new_id is not None:
                    await floor.records.transfer_failed(new_id)
                await floor.records.transfer_logged(contact_id, conn.agent, "blind", target, name,
                                                    "failed")
                raise TelephonyDown(f"transfer failed: {exc}") from exc
        to = f"queue:{skill}" if kind == "queue" else target
        extension = queue_name(skill, contact["district"]) if kind == "queue" else target
        await floor.records.transfer_logged(contact_id, conn.agent, "blind", to, name, "transferred")
        await self._handed_over(conn, to, extension, context, new_id, hang_up_leg=redirect)
        return {"contact": contact_id, "to": to, "new_contact": new_id}

    async def _handed_over(self, conn: Connected, to: str, extension: str, context: str,
                           new_id: int | None, hang_up_leg: bool) -> None:
        """The caller left the agent for `to`: the contact ends `transferred`, the agent wraps up."""
        floor = self.floor
        floor.connected.pop(conn.contact_id, None)
        now = floor.now()
        talk = max(0.0, now - conn.answered_at)
        await floor.records.transferred(now, conn, talk, to, extension, context, new_id)
        leg = floor.leg_channels.get(conn.leg_id)
        if leg and hang_up_leg:
            try:
                await floor.telephony.hangup(leg)
            except TelephonyDown:
                pass
        await self.calls.agent_done(conn, floor.wrap_up_for(conn.skill, conn.district))
        floor.changed()

    async def attended(self, contact_id: int, number: str, by: str | None = None,
                       name: str | None = None) -> dict[str, Any]:
        """The agent consults `number` (the caller hears music); hanging up hands them over."""
        floor = self.floor
        conn = self._connected(contact_id, by)
        number = number.strip()
        if not NUMBER_RE.match(number):
            raise InvalidInput(f"{number!r} is not a number to transfer to")
        await self._call_ended(contact_id)     # an earlier consultation came to nothing
        leg = floor.leg_channels.get(conn.leg_id)
        if not leg:
            raise InvalidInput(f"the agent's line of contact {contact_id} is not known (yet)")
        transfer_id = await floor.records.transfer_logged(contact_id, conn.agent, "attended",
                                                          number, name, "consulting", ended=False)
        try:
            await floor.telephony.attended_transfer(leg, CONSULT_CONTEXT, number)
        except Exception as exc:
            await floor.records.transfer_ended(transfer_id, "failed")
            raise TelephonyDown(f"attended transfer failed: {exc}") from exc
        self.consulting[contact_id] = Consultation(transfer_id, number, name)
        await floor.records.transfer_consulting(contact_id, conn.agent, number, transfer_id)
        floor.changed()
        return {"contact": contact_id, "to": number, "transfer": transfer_id,
                "state": "consulting"}

    async def attended_ended(self, event: AttendedTransferred) -> None:
        """Asterisk's word on an attended transfer of one of our agent legs (from the desk or
        the phone)."""
        floor = self.floor
        conn = next((c for c in floor.connected.values() if not c.callback and
                     (c.leg_id in (event.transferer, event.second)
                      or (event.transferee and c.uniqueid == event.transferee))), None)
        if conn is None:
            return
        consult = self.consulting.pop(conn.contact_id, None)
        if consult is None:        # the agent's phone started it (*2 or its own transfer key)
            consult = Consultation(await floor.records.transfer_logged(
                conn.contact_id, conn.agent, "attended", "phone", None, "consulting",
                ended=False), "phone", None)
        if event.result != "Success":
            await floor.records.transfer_ended(consult.transfer_id, "failed")
            return
        await floor.records.transfer_ended(consult.transfer_id, "completed")
        await self._handed_over(conn, consult.number, consult.number, CONSULT_CONTEXT, None,
                                hang_up_leg=False)

    async def _call_ended(self, contact_id: int) -> None:
        """The call ended while (or after) the agent consulted: the caller was not handed over."""
        consult = self.consulting.pop(contact_id, None)
        if consult is not None:
            await self.floor.records.transfer_ended(consult.transfer_id, "not_completed")
