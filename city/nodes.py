"""The cluster's Asterisk nodes as data: the document's `nodes` section and its table.

A node is one Asterisk: a name, the address its SIP transport listens on (agents register
there, the other nodes and the front door send it calls), its AMI address, and the districts
it homes (their agents register on it; the front door sends their numbers to it first). No
`nodes` section (the default): one Asterisk, as the settings say. A district no node names
is homed by the first node.

`normalise(data, districts, problems)` checks the section (pure); `read`/`write` are plain
functions for `Store.run`.
"""
from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any

import sqlite_utils

NODE_RE_TEXT = r"^[a-z][a-z0-9-]{0,30}$"   # an Asterisk system name, a PJSIP endpoint suffix
KEYS = ("id", "sip", "ami", "districts")


@dataclass(frozen=True)
class Node:
    id: str
    sip_host: str
    sip_port: int
    ami_host: str
    ami_port: int
    districts: tuple[str, ...]   # homed here, as the document lists them

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "sip": f"{self.sip_host}:{self.sip_port}",
                "ami": f"{self.ami_host}:{self.ami_port}", "districts": list(self.districts)}


def _address(value: Any, where: str, key: str, problems: Any) -> tuple[str, int] | None:
    text = str(value or "")
    host, sep, port = text.rpartition(":")
    try:
        ipaddress.ip_address(host)
        number = int(port)
        if not sep or not 0 < number < 65536:
            raise ValueError
    except ValueError:
        problems.add(where, f"{key} {text!r}: an IP address and a port, e.g. 127.0.0.1:5062")
        return None
    return host, number


def normalise(data: dict, districts: set[str], problems: Any) -> list[dict[str, Any]]:
    """The `nodes` section in its normal form; problems added to `problems` (`.add(where, msg)`)."""
    raw = data.get("nodes") or []
    if not isinstance(raw, list):
        problems.add("nodes", "must be a list")
        return []
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    homes: dict[str, str] = {}
    ports: dict[tuple[str, int], str] = {}
    for i, item in enumerate(raw):
        where = f"nodes[{i}]"
        if not isinstance(item, dict):
            problems.add(where, "must be a mapping")
            continue
        for key in item:
            if key not in KEYS:
                problems.add(where, f"unknown key {key!r} (known: {', '.join(KEYS)})")
        name = str(item.get("id") or "")
        where = f"nodes[{i}] ({name})" if name else where
        if not re.match(NODE_RE_TEXT, name):
            problems.add(where, "id: a lower-case letter, then letters, digits or -, at most 31")
            continue
        if name in names:
            problems.add(where, f"node {name!r} is given twice")
        names.add(name)
        sip = _address(item.get("sip"), where, "sip", problems)
        ami = _address(item.get("ami"), where, "ami", problems)
        homed = item.get("districts") or []
        if not isinstance(homed, list) or not all(isinstance(d, str) for d in homed):
            problems.add(where, "districts must be a list of district ids")
            homed = []
        for district in homed:
            if district not in districts:
                problems.add(where, f"no district {district!r}")
            elif district in homes:
                problems.add(where, f"district {district!r} is homed by {homes[district]} too")
            homes.setdefault(district, name)
        for kind, addr in (("sip", sip), ("ami", ami)):
            if addr is None:
                continue
            key = (f"{kind}:{addr[0]}" if kind == "sip" else "tcp", addr[1])
            if key in ports:
                problems.add(where, f"{kind} port {addr[1]} is also {ports[key]}'s")
            ports[key] = name
        if sip and ami:
            out.append(Node(name, *sip, *ami, tuple(homed)).to_dict())
    return out


def parse(rows: list[dict[str, Any]]) -> list[Node]:
    """Normal-form entries as nodes."""
    nodes = []
    for r in rows:
        sip_host, _, sip_port = r["sip"].rpartition(":")
        ami_host, _, ami_port = r["ami"].rpartition(":")
        nodes.append(Node(r["id"], sip_host, int(sip_port), ami_host, int(ami_port),
                          tuple(r.get("districts") or ())))
    return nodes


def read(db: sqlite_utils.Database) -> list[Node]:
    """The nodes in their order; [] when the centre is one Asterisk."""
    if "pbx_nodes" not in db.table_names():
        return []
    return [Node(r["id"], r["sip_host"], r["sip_port"], r["ami_host"], r["ami_port"],
                 tuple(json.loads(r["districts"]))) for r in
            db.query("select * from pbx_nodes order by position")]


def write(db: sqlite_utils.Database, entries: list[dict[str, Any]]) -> None:
    """Replace the nodes by `entries` (normal form), in the caller's transaction."""
    db.execute("delete from pbx_nodes")
    for position, node in enumerate(parse(entries)):
        db.execute("insert into pbx_nodes (id, position, sip_host, sip_port, ami_host, ami_port, "
                   "districts) values (?, ?, ?, ?, ?, ?, ?)",
                   [node.id, position, node.sip_host, node.sip_port, node.ami_host,
                    node.ami_port, json.dumps(list(node.districts))])


def home_of(nodes: list[Node]) -> dict[str, str]:
    """District -> the node that homes it (explicitly); others go to the first node."""
    return {d: n.id for n in nodes for d in n.districts}


def node_of_district(nodes: list[Node], district: str | None) -> str | None:
    """The node a district's numbers and agents belong to; None for a one-Asterisk centre."""
    if not nodes:
        return None
    return home_of(nodes).get(district or "", nodes[0].id)
