"""Agents calling residents: dialled on the agent's own phone (a number starting with 0 or +
in `from-agents`) or clicked on the desk (`click_to_call`: the PBX rings the agent's phone
first, then runs the same dialplan), always through the outbound trunk (`kc-outbound`).

Each call is an outbound contact (`outcome` `outbound`, the resident's number as `caller`, the
agent and their district, the talk time); a ready agent is busy for the call (no queue call is
offered meanwhile) and ready again after it.

  AGI outbound,<endpoint>,<digits>        from-agents: checks the phone, records the contact,
                                          sets KC_OUT (the number to dial) and KC_CONTACT_ID
  AGI outbound-end,<contact>,<status>,<answered seconds>   the `h` extension: the outcome
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from acd.options import OUTBOUND_RE
from kc import queries
from kc.clock import Clock, iso
from kc.store import Store

from .call_flow import from_agent_phone
from .fastagi import AgiChannel

log = logging.getLogger(__name__)


def dialable(digits: str) -> str | None:
    """The resident's number an agent may dial out to (a national or international number,
    never a short code, which stays a feature code), or None."""
    digits = digits.strip()
    return digits if OUTBOUND_RE.match(digits) else None


@dataclass
class OutboundCalls:
    store: Store
    clock: Clock
    distributor: Any            # acd.distributor.Distributor: the agent busy during the call

    def routes(self) -> dict[str, Any]:
        return {"outbound": self.start, "outbound-end": self.end}

    async def start(self, chan: AgiChannel) -> None:
        agent, digits = (chan.args + ["", ""])[:2]
        number = dialable(digits)
        if number is None or not from_agent_phone(chan, agent):
            log.warning("outbound call to %r from %r refused", digits, agent)
            return
        rt = self.distributor.agents.get(agent)
        district = rt.agent.district if rt is not None else None
        contact_id = await self.store.insert_record(
            queries.create_contact, "contacts", channel="phone", district=district,
            dialed=number, caller=number, started_at=iso(self.clock()), agent=agent,
            agent_district=district, uniqueid=chan.header("uniqueid"),
            channel_name=chan.header("channel"))
        await self.store.record(queries.add_event, contact_id, iso(self.clock()), "outbound",
                                {"agent": agent, "to": number})
        if rt is not None:
            await self.distributor.occupy(agent, contact_id)   # only if ready: then busy
        await chan.set_variables(KC_OUT=number, KC_CONTACT_ID=contact_id)

    async def end(self, chan: AgiChannel) -> None:
        raw_id, status, answered = (chan.args + ["", "", ""])[:3]
        try:
            contact_id = int(raw_id)
            seconds = float(answered or 0)
        except ValueError:
            return
        contact = await self.store.run(queries.get_contact, contact_id)
        if contact["outcome"] is not None or contact["channel_name"] != chan.header("channel"):
            return                           # not this channel's outbound call
        at = iso(self.clock())
        fields: dict[str, Any] = {"outcome": "outbound", "ended_at": at,
                                  "talk_seconds": round(seconds, 3)}
        await self.store.record(queries.update_contact, contact_id, **fields)
        await self.store.record(queries.add_event, contact_id, at, "outbound_end",
                                {"status": status[:20], "talk": round(seconds, 3)})
        if contact["agent"]:
            await self.distributor.release(contact["agent"], contact_id)
