"""Blind transfer of a connected caller: to another skill queue (a new contact waits there,
same caller and channel) or to a back-office number (the call leaves the centre)."""
from __future__ import annotations

from typing import Any

from kc.errors import InvalidInput, TelephonyDown
from kc.queue_config import queue_name

from .calls import Calls
from .floor import Floor
from .options import NUMBER_RE


class Transfers:
    def __init__(self, floor: Floor, calls: Calls):
        self.floor, self.calls = floor, calls

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

    async def transfer(self, contact_id: int, target: str, by: str | None = None,
                       redirect: bool = True) -> dict[str, Any]:
        """`redirect=False` when the PBX already moved the caller (the agent's phone
        transferred it). Returns what happened."""
        floor = self.floor
        conn = floor.connected.get(contact_id)
        if conn is None or conn.callback:
            raise InvalidInput(f"contact {contact_id} is not connected to an agent")
        if by is not None and by != conn.agent:
            raise InvalidInput(f"contact {contact_id} is not with agent {by}")
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
                raise TelephonyDown(f"transfer failed: {exc}") from exc
        now = floor.now()
        talk = max(0.0, now - conn.answered_at)
        to = f"queue:{skill}" if kind == "queue" else target
        extension = queue_name(skill, contact["district"]) if kind == "queue" else target
        await floor.records.transferred(now, conn, talk, to, extension, context, new_id)
        leg = floor.leg_channels.get(conn.leg_id)
        if leg and redirect:
            try:
                await floor.telephony.hangup(leg)
            except TelephonyDown:
                pass
        await self.calls.agent_done(conn, floor.wrap_up_for(conn.skill, conn.district))
        floor.changed()
        return {"contact": contact_id, "to": to, "new_contact": new_id}
