"""The cluster put together from the organisation's data (`city/nodes.py`): each node's Asterisk
configuration, the front door's, and which node each agent's phone registers on.

No nodes in the data: one Asterisk as the settings say, and every function here says so
(`[]`, `{}`, None), so the one-node centre runs exactly as before.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from city import nodes as city_nodes
from city.nodes import Node
from kc import queries
from kc.settings import Settings
from kc.store import Store
from pbx.asterisk import AsteriskContext, PeerNode
from pbx.kamailio import Destination, FrontDoor


def read_nodes(store: Store) -> list[Node]:
    return store.run_sync(city_nodes.read)


def node_root(settings: Settings, node: str) -> Path:
    return settings.asterisk_root / "nodes" / node


def agent_nodes(store: Store) -> dict[str, str]:
    """Agent -> the node their phone registers on (the one that homes their district)."""
    nodes = read_nodes(store)
    if not nodes:
        return {}
    return {agent: city_nodes.node_of_district(nodes, district) or nodes[0].id
            for agent, district, _ in store.run_sync(queries.agent_sip_credentials)}


def node_contexts(settings: Settings, store: Store, base: AsteriskContext) -> dict[str, AsteriskContext]:
    """Each node's Asterisk: its own root, SIP and AMI ports, a slice of the RTP range, its
    own agents, every district number (the front door sends a district's calls to another
    node when its home node is down) and a trunk to each other node."""
    nodes = read_nodes(store)
    if not nodes:
        return {}
    homes = agent_nodes(store)
    span = (settings.rtp_end - settings.rtp_start + 1) // len(nodes)
    if span < 20:
        raise ValueError(f"RTP range {settings.rtp_start}-{settings.rtp_end} is too small for "
                         f"{len(nodes)} nodes")
    for node in nodes:
        if (node.sip_host, node.sip_port) == (settings.sip_host, settings.sip_port):
            raise ValueError(f"node {node.id}'s SIP port {node.sip_port} is the front door's "
                             "(KC_SIP_PORT)")
    out = {}
    for i, node in enumerate(nodes):
        start = settings.rtp_start + i * span
        start += start % 2    # RTP on even ports
        out[node.id] = dataclasses.replace(
            base, root=node_root(settings, node.id), sip_host=node.sip_host,
            sip_port=node.sip_port, ami_host=node.ami_host, ami_port=node.ami_port,
            rtp_start=start, rtp_end=start + span - 2,
            agents=tuple(a for a in base.agents if homes.get(a.id) == node.id),
            node=node.id,
            peers=tuple(PeerNode(o.id, o.sip_host, o.sip_port) for o in nodes if o.id != node.id))
    return out


def front_door(settings: Settings, store: Store) -> FrontDoor | None:
    """Kamailio on the residents' SIP address (KC_SIP_HOST:KC_SIP_PORT): each district's
    numbers to its home node first, then to every other node in the data's order."""
    nodes = read_nodes(store)
    if not nodes:
        return None
    districts = store.run_sync(queries.list_districts)
    sets = []
    for d in districts:
        home = city_nodes.node_of_district(nodes, d.id)
        ordered = sorted(nodes, key=lambda n: n.id != home)
        sets.append((d.id, tuple(d.numbers),
                     tuple(Destination(n.id, n.sip_host, n.sip_port) for n in ordered)))
    return FrontDoor(settings.asterisk_root / "front-door", settings.sip_host, settings.sip_port,
                     tuple(sets))
