"""What the distributor asks of the PBX, and its AMI implementation.

The distributor depends on the `Telephony` protocol only, so the simulator and unit tests can
give it another implementation; `AmiTelephony` is the real one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Iterable, NamedTuple, Protocol

from .ami import AmiActionFailed, AmiLink


class Bridged(NamedTuple):
    """A caller of `kc-wait` found in a bridge with an agent's leg."""
    uniqueid: str
    channel: str
    contact_id: int
    agent: str
    leg_id: str


@dataclass(frozen=True)
class PbxSnapshot:
    """What the PBX holds right now, read after every (re)connect."""

    registered: frozenset[str]                      # endpoints with a reachable contact
    waiting: tuple[tuple[str, str, int], ...]       # (uniqueid, channel, contact id) in kc-wait
    channels: frozenset[str]                        # uniqueids of every live channel
    bridged: tuple[Bridged, ...] = ()               # callers already talking to an agent
    agent_legs: tuple[tuple[str, str], ...] = ()    # (uniqueid, channel) of our Originate legs
    nodes: frozenset[str] | None = None             # the cluster's nodes it covers (None: all)


class Telephony(Protocol):
    """Ringing starts before `ring_agent`/`call_back` return (the request is on its way); the
    returned awaitable says whether the agent answered. `TelephonyDown` if it cannot start."""

    def ring_agent(self, *, agent: str, caller_channel: str, contact_id: int,
                   leg_id: str, caller_id: str, timeout: float) -> Awaitable[bool]:
        """Ring the agent; once answered, bridge them to the waiting caller. True if answered."""

    async def hangup(self, channel: str) -> None: ...

    async def snapshot(self, endpoints: Iterable[str]) -> PbxSnapshot: ...

    async def redirect(self, channel: str, context: str, exten: str) -> None:
        """Send a channel to `context,exten,1` (transfers)."""

    def call_back(self, *, agent: str, contact_id: int, leg_id: str, number: str,
                  caller_id: str, timeout: float, ring_resident: int) -> Awaitable[bool]:
        """Ring the agent; once answered, the PBX rings `number`. True if the agent answered."""

    def call_for_agent(self, *, agent: str, number: str, caller_id: str,
                       timeout: float) -> Awaitable[bool]:
        """Click to call: ring the agent's phone; once answered it dials `number` as if the
        agent had dialled it (`from-agents`). True if the agent answered."""

    async def attended_transfer(self, channel: str, context: str, exten: str) -> None:
        """The agent's `channel` consults `context,exten` (the caller waits with music)."""


def _caller_id(text: str) -> str:
    """`Name <number>` for AMI: the name stripped of quoting characters, the number of digits,
    so the agent's phone shows both (the number was lost when `<>` were stripped as text)."""
    def clean(value: str) -> str:
        return "".join(ch for ch in value if ch.isprintable() and ch not in '"<>;,|')[:64]
    name, sep, rest = text.rpartition("<")
    if sep and rest.endswith(">"):
        number = "".join(ch for ch in rest[:-1] if ch.isdigit() or ch == "+")[:32]
        return f'"{clean(name).strip()}" <{number}>' if number else clean(name).strip()
    return clean(text)


async def _answered(reply: Awaitable[dict[str, str]]) -> bool:
    try:
        return (await reply).get("Response") == "Success"
    except AmiActionFailed:
        return False


class AmiTelephony:
    def __init__(self, link: AmiLink):
        self._link = link

    def _ring(self, *, agent: str, context: str, leg_id: str, caller_id: str,
              timeout: float, variables: list[str], dial: str | None = None) -> Awaitable[bool]:
        """Originate to the agent's phone, sent before this returns; once answered the leg runs
        `context`. The awaitable: True if the agent answered (the async Originate's final
        OriginateResponse). `dial`: how this PBX reaches the agent (default their endpoint here;
        in a cluster, through the trunk to their node)."""
        reply = self._link.send(
            "Originate", timeout=timeout + 15,
            Channel=dial or f"PJSIP/{agent}", Context=context, Exten="s", Priority="1",
            Timeout=str(int(timeout * 1000)), Async="true", ChannelId=leg_id,
            CallerID=_caller_id(caller_id), Variable=variables,
        )
        return _answered(reply)

    def ring_agent(self, *, agent: str, caller_channel: str, contact_id: int,
                   leg_id: str, caller_id: str, timeout: float,
                   dial: str | None = None) -> Awaitable[bool]:
        return self._ring(
            agent=agent, context="kc-connect", leg_id=leg_id, caller_id=caller_id,
            timeout=timeout, dial=dial,
            variables=[f"KC_CALLER_CHANNEL={caller_channel}", f"KC_CONTACT_ID={contact_id}",
                       f"KC_AGENT={agent}", "TRANSFER_CONTEXT=kc-agent-transfer"])

    def call_back(self, *, agent: str, contact_id: int, leg_id: str, number: str,
                  caller_id: str, timeout: float, ring_resident: int) -> Awaitable[bool]:
        return self._ring(
            agent=agent, context="kc-callback", leg_id=leg_id, caller_id=caller_id,
            timeout=timeout,
            variables=[f"KC_CONTACT_ID={contact_id}", f"KC_CALLBACK_NUMBER={number}",
                       f"KC_CALLBACK_RING={int(ring_resident)}"])

    async def redirect(self, channel: str, context: str, exten: str) -> None:
        await self._link.action("Redirect", Channel=channel, Context=context, Exten=exten,
                                Priority="1")

    def call_for_agent(self, *, agent: str, number: str, caller_id: str,
                       timeout: float) -> Awaitable[bool]:
        reply = self._link.send(
            "Originate", timeout=timeout + 15, Channel=f"PJSIP/{agent}", Context="from-agents",
            Exten=number, Priority="1", Timeout=str(int(timeout * 1000)), Async="true",
            CallerID=_caller_id(caller_id))
        return _answered(reply)

    async def attended_transfer(self, channel: str, context: str, exten: str) -> None:
        # Asterisk answers "Atxfer successfully queued", which the AMI client takes for the
        # start of an event list unless the action says Async: false (Asterisk ignores it).
        await self._link.action("Atxfer", Channel=channel, Context=context, Exten=exten,
                                Async="false")

    async def hangup(self, channel: str) -> None:
        try:
            await self._link.action("Hangup", Channel=channel)
        except AmiActionFailed:
            pass  # already gone

    async def snapshot_registered(self, endpoints: Iterable[str]) -> frozenset[str]:
        # DEVICE_STATE() needs only `call` rights, unlike PJSIPShowEndpoints (`system`).
        registered = set()
        for endpoint in endpoints:
            reply = await self._link.action("Getvar", Variable=f"DEVICE_STATE(PJSIP/{endpoint})")
            if reply.get("Value", "UNAVAILABLE") not in ("UNAVAILABLE", "INVALID", "UNKNOWN", ""):
                registered.add(endpoint)
        return frozenset(registered)

    async def snapshot(self, endpoints: Iterable[str]) -> PbxSnapshot:
        registered = await self.snapshot_registered(endpoints)
        channels = [ch for ch in await self._link.action_list("CoreShowChannels")
                    if ch.get("Event") == "CoreShowChannel"]
        by_bridge: dict[str, list[dict[str, str]]] = {}
        for ch in channels:
            if ch.get("BridgeId"):
                by_bridge.setdefault(ch["BridgeId"], []).append(ch)
        waiting, bridged, legs = [], [], []
        for ch in channels:
            uid, name = ch.get("Uniqueid", ""), ch.get("Channel", "")
            if uid.startswith("kc-"):
                legs.append((uid, name))
                continue
            if ch.get("Context") != "kc-wait":
                continue
            try:
                var = await self._link.action("Getvar", Channel=name, Variable="KC_CONTACT_ID")
                contact_id = int(var.get("Value", ""))
            except (AmiActionFailed, ValueError):
                continue  # gone meanwhile, or not one of ours
            peer = next((p for p in by_bridge.get(ch.get("BridgeId") or "-", [])
                         if p.get("Uniqueid", "").startswith("kc-")), None)
            if peer is not None:
                agent = peer.get("Channel", "")[6:].rsplit("-", 1)[0]   # PJSIP/<agent>-0000001a
                if agent.startswith("kc-node-"):    # through the trunk to the agent's node
                    try:
                        agent = (await self._link.action("Getvar", Channel=peer["Channel"],
                                                         Variable="KC_AGENT")).get("Value", "")
                    except AmiActionFailed:
                        continue
                bridged.append(Bridged(uid, name, contact_id, agent, peer["Uniqueid"]))
            else:
                waiting.append((uid, name, contact_id))
        uniqueids = frozenset(ch.get("Uniqueid", "") for ch in channels)
        return PbxSnapshot(frozenset(registered), tuple(waiting), uniqueids, tuple(bridged),
                           tuple(legs))
