"""What the distributor asks of the PBX, and its AMI implementation.

The distributor depends on the `Telephony` protocol only, so the simulator and unit tests can
give it another implementation; `AmiTelephony` is the real one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol

from .ami import AmiActionFailed, AmiLink


@dataclass(frozen=True)
class PbxSnapshot:
    """What the PBX holds right now, read after every (re)connect."""

    registered: frozenset[str]                      # endpoints with a reachable contact
    waiting: tuple[tuple[str, str, int], ...]       # (uniqueid, channel, contact id) in kc-wait
    channels: frozenset[str]                        # uniqueids of every live channel


class Telephony(Protocol):
    async def ring_agent(self, *, agent: str, caller_channel: str, contact_id: int,
                         leg_id: str, caller_id: str, timeout: float) -> bool:
        """Ring the agent; once answered, bridge them to the waiting caller. True if answered."""

    async def hangup(self, channel: str) -> None: ...

    async def snapshot(self, endpoints: Iterable[str]) -> PbxSnapshot: ...


def _caller_id(text: str) -> str:
    return "".join(ch for ch in text if ch.isprintable() and ch not in '"<>;,|')[:64]


class AmiTelephony:
    def __init__(self, link: AmiLink):
        self._link = link

    async def ring_agent(self, *, agent: str, caller_channel: str, contact_id: int,
                         leg_id: str, caller_id: str, timeout: float) -> bool:
        try:
            reply = await self._link.action(
                "Originate", timeout=timeout + 15,
                Channel=f"PJSIP/{agent}", Context="kc-connect", Exten="s", Priority="1",
                Timeout=str(int(timeout * 1000)), Async="true", ChannelId=leg_id,
                CallerID=_caller_id(caller_id),
                Variable=[f"KC_CALLER_CHANNEL={caller_channel}", f"KC_CONTACT_ID={contact_id}"],
            )
        except AmiActionFailed:
            return False
        return reply.get("Response") == "Success"

    async def hangup(self, channel: str) -> None:
        try:
            await self._link.action("Hangup", Channel=channel)
        except AmiActionFailed:
            pass  # already gone

    async def snapshot(self, endpoints: Iterable[str]) -> PbxSnapshot:
        # DEVICE_STATE() needs only `call` rights, unlike PJSIPShowEndpoints (`system`).
        registered = set()
        for endpoint in endpoints:
            reply = await self._link.action("Getvar", Variable=f"DEVICE_STATE(PJSIP/{endpoint})")
            if reply.get("Value", "UNAVAILABLE") not in ("UNAVAILABLE", "INVALID", "UNKNOWN", ""):
                registered.add(endpoint)
        channels = await self._link.action_list("CoreShowChannels")
        waiting = []
        for ch in channels:
            if ch.get("Event") != "CoreShowChannel" or ch.get("Context") != "kc-wait":
                continue
            try:
                var = await self._link.action("Getvar", Channel=ch.get("Channel", ""),
                                              Variable="KC_CONTACT_ID")
                waiting.append((ch.get("Uniqueid", ""), ch.get("Channel", ""), int(var.get("Value", ""))))
            except (AmiActionFailed, ValueError):
                continue  # gone meanwhile, or not one of ours
        uniqueids = frozenset(ch.get("Uniqueid", "") for ch in channels if ch.get("Event") == "CoreShowChannel")
        return PbxSnapshot(frozenset(registered), tuple(waiting), uniqueids)
