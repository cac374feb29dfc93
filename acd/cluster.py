"""Several Asterisk nodes as one PBX for the distributor.

Each node has its own AMI link. Its events reach the distributor with the node's name in front
of every channel name (`north|PJSIP/residents-00000001`: two nodes number their channels
alike), and the node's uniqueids start with its name already (Asterisk's `systemname`). Every
request goes to the node that holds the channel it names; an agent is rung from the node where
the caller waits, through the trunk to the agent's own node when that is another one
(`PJSIP/<agent>@kc-node-<node>`), so the caller's channel, the agent's leg and the bridge stay
on one node and the records are those of a local call.
"""
from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Awaitable, Callable, Iterable

from kc.errors import TelephonyDown

from .ami import AmiLink
from .ami_events import AmiEvent, CallerWaiting, ChannelCreated, ChannelHungUp
from .telephony import AmiTelephony, Bridged, PbxSnapshot

SEP = "|"


def qualify(node: str, channel: str) -> str:
    """The channel's name as the distributor knows it: with its node in front."""
    return f"{node}{SEP}{channel}" if channel else channel


def split(channel: str) -> tuple[str | None, str]:
    """(node, the channel's name on that node); node None for a one-Asterisk centre."""
    node, sep, rest = channel.partition(SEP)
    return (node, rest) if sep else (None, channel)


def node_of_uniqueid(uniqueid: str) -> str | None:
    """The node a uniqueid comes from (`north-1712345678.42`), None without a system name (or
    for the service's own agent legs, `kc-...`)."""
    if not uniqueid or uniqueid.startswith("kc-"):
        return None
    head, sep, _ = uniqueid.rpartition("-")
    return head if sep else None


def node_events(node: str, on_event: Callable[[AmiEvent], None]) -> Callable[[AmiEvent], None]:
    """A node's events with its name in front of their channel names."""
    def deliver(event: AmiEvent) -> None:
        if isinstance(event, (CallerWaiting, ChannelCreated, ChannelHungUp)):
            event = dataclasses.replace(event, channel=qualify(node, event.channel))
        on_event(event)
    return deliver


class ClusterTelephony:
    """The distributor's `Telephony` over every node. `agent_nodes`: agent -> the node their
    phone registers on (the node that homes their district), kept current by the root."""

    def __init__(self, links: dict[str, AmiLink], agent_nodes: dict[str, str]):
        self.links = links
        self.agent_nodes = agent_nodes
        self._nodes = {name: AmiTelephony(link) for name, link in links.items()}

    def _node(self, name: str | None) -> AmiTelephony:
        if name not in self._nodes:
            raise TelephonyDown(f"no node {name!r} in the cluster")
        return self._nodes[name]   # type: ignore[index]

    def _home(self, agent: str) -> str:
        node = self.agent_nodes.get(agent)
        if node is None:
            raise TelephonyDown(f"agent {agent!r} has no node")
        return node

    def ring_agent(self, *, agent: str, caller_channel: str, contact_id: int,
                   leg_id: str, caller_id: str, timeout: float) -> Awaitable[bool]:
        node, channel = split(caller_channel)
        home = self._home(agent)
        dial = f"PJSIP/{agent}" if home == node else f"PJSIP/{agent}@kc-node-{home}"
        return self._node(node).ring_agent(agent=agent, caller_channel=channel,
                                           contact_id=contact_id, leg_id=leg_id,
                                           caller_id=caller_id, timeout=timeout, dial=dial)

    def call_back(self, *, agent: str, contact_id: int, leg_id: str, number: str,
                  caller_id: str, timeout: float, ring_resident: int) -> Awaitable[bool]:
        return self._node(self._home(agent)).call_back(
            agent=agent, contact_id=contact_id, leg_id=leg_id, number=number,
            caller_id=caller_id, timeout=timeout, ring_resident=ring_resident)

    async def hangup(self, channel: str) -> None:
        node, name = split(channel)
        await self._node(node).hangup(name)

    async def redirect(self, channel: str, context: str, exten: str) -> None:
        node, name = split(channel)
        await self._node(node).redirect(name, context, exten)

    def _up(self) -> list[str]:
        return [name for name, link in self.links.items() if link.up]

    async def snapshot_registered(self, endpoints: Iterable[str]) -> frozenset[str]:
        wanted = list(endpoints)
        found: set[str] = set()
        for node in self._up():
            mine = [e for e in wanted if self.agent_nodes.get(e) == node]
            if mine:
                found |= await self._nodes[node].snapshot_registered(mine)
        return frozenset(found)

    async def snapshot(self, endpoints: Iterable[str]) -> PbxSnapshot:
        """Every node that is up; the snapshot says which (`nodes`): what a node that is down
        holds is not known, and is not taken for ended."""
        wanted = list(endpoints)
        nodes = self._up()
        snaps = await asyncio.gather(*(self._nodes[n].snapshot(
            [e for e in wanted if self.agent_nodes.get(e) == n]) for n in nodes))
        registered: set[str] = set()
        waiting, channels, bridged, legs = [], set(), [], []
        for node, snap in zip(nodes, snaps):
            registered |= snap.registered
            channels |= snap.channels
            waiting += [(u, qualify(node, c), cid) for u, c, cid in snap.waiting]
            bridged += [Bridged(b.uniqueid, qualify(node, b.channel), b.contact_id, b.agent,
                                b.leg_id) for b in snap.bridged]
            legs += [(u, qualify(node, c)) for u, c in snap.agent_legs]
        return PbxSnapshot(frozenset(registered), tuple(waiting), frozenset(channels),
                           tuple(bridged), tuple(legs), nodes=frozenset(nodes))


class ClusterLinks:
    """The nodes' AMI links where one link is asked for (health, the queue closer's Redirect):
    an action naming a channel goes to that channel's node."""

    def __init__(self, links: dict[str, AmiLink]):
        self.nodes = links

    @property
    def up(self) -> bool:
        return all(link.up for link in self.nodes.values())

    @property
    def reachable(self) -> bool:
        return all(link.reachable or link.up for link in self.nodes.values())

    @property
    def pbx_version(self) -> str | None:
        return next((link.pbx_version for link in self.nodes.values() if link.pbx_version), None)

    async def action(self, name: str, timeout: float | None = None, **fields: Any) -> dict[str, str]:
        node, channel = split(str(fields.get("Channel", "")))
        if node is None:
            raise TelephonyDown(f"{name}: which node holds {channel!r}?")
        if node not in self.nodes:
            raise TelephonyDown(f"no node {node!r} in the cluster")
        return await self.nodes[node].action(name, timeout, **{**fields, "Channel": channel})
