"""Plain SQL functions over a `sqlite_utils.Database`, run by `Store.run` in the writer thread."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from .domain import Agent, AgentState, District, Skill
from .errors import NotFound

# ---------------------------------------------------------------- organisation


def list_districts(db: sqlite_utils.Database, retired: bool = False) -> list[District]:
    """The districts in service (with `retired`: those retired too, for reports)."""
    numbers: dict[str, list[str]] = {}
    for number, district in db.execute("select number, district from district_numbers order by rowid"):
        numbers.setdefault(district, []).append(number)
    addresses: dict[str, list[str]] = {}
    for address, district in db.execute(
            "select address, district from district_addresses order by rowid"):
        addresses.setdefault(district, []).append(address)
    where = None if retired else "retired_at is null"
    return [District(id=r["id"], name=r["name"], number=r["number"],
                     numbers=tuple(numbers.get(r["id"], ())),
                     addresses=tuple(addresses.get(r["id"], ())), region=r["region"],
                     switchboard=r["switchboard"], retired_at=r["retired_at"])
            for r in db["districts"].rows_where(where, order_by="id")]


def names(db: sqlite_utils.Database) -> dict[str, dict[str, str]]:
    """The names of every district and skill, retired ones too, by id (for pages)."""
    return {"districts": {r[0]: r[1] for r in db.execute("select id, name from districts")},
            "skills": {r[0]: r[1] for r in db.execute("select id, name from skills")}}


def list_skills(db: sqlite_utils.Database, retired: bool = False) -> list[Skill]:
    where = None if retired else "retired_at is null"
    return [
        Skill(id=r["id"], name=r["name"], confidential=bool(r["confidential"]),
              retired_at=r["retired_at"])
        for r in db["skills"].rows_where(where, order_by="id")
    ]


def list_agents(db: sqlite_utils.Database) -> list[Agent]:
    skills: dict[str, dict[str, int]] = {}
    for row in db["agent_skills"].rows_where(order_by="agent, skill"):
        skills.setdefault(row["agent"], {})[row["skill"]] = row["proficiency"]
    return [
        Agent(
            id=r["id"], name=r["name"], district=r["district"],
            skills=skills.get(r["id"], {}),
            languages=tuple(json.loads(r["languages"] or "[]")),
            cleared_for=tuple(json.loads(r["cleared_for"] or "[]")),
        )
        for r in db["agents"].rows_where(order_by="id")
    ]


def agent_sip_credentials(db: sqlite_utils.Database) -> list[tuple[str, str, str]]:
    """(agent id, district, HA1) for rendering PJSIP."""
    return [(r["id"], r["district"], r["sip_ha1"]) for r in db["agents"].rows_where(order_by="id")]


def agent_states(db: sqlite_utils.Database) -> dict[str, tuple[AgentState, str | None, str | None]]:
    return {
        r["agent"]: (AgentState(r["state"]), r["reason"], r["since"])
        for r in db["agent_status"].rows
    }


def set_agent_state(db: sqlite_utils.Database, agent: str, state: AgentState,
                    reason: str | None, since: str) -> None:
    db.conn.execute(
        "insert into agent_status (agent, state, reason, since) values (?, ?, ?, ?) "
        "on conflict (agent) do update set state = excluded.state, reason = excluded.reason, "
        "since = excluded.since", [agent, AgentState(state).value, reason, since])


# ---------------------------------------------------------------- users and tokens


def user_for_token(db: sqlite_utils.Database, token_hash: str) -> dict[str, Any] | None:
    rows = list(db.query(
        "select u.username, u.role, u.agent, u.districts, u.language from api_tokens t "
        "join users u using (username) "
        "where t.token_hash = ?", [token_hash],
    ))
    return rows[0] if rows else None


# ---------------------------------------------------------------- menus


def published_menu(db: sqlite_utils.Database, district: str) -> tuple[int, dict] | None:
    rows = list(db.query(
        "select version, body from menu_versions where district = ? and published = 1 "
        "order by version desc limit 1", [district],
    ))
    if not rows:
        return None
    return rows[0]["version"], json.loads(rows[0]["body"])


# ---------------------------------------------------------------- contacts

_CONTACT_JSON = ("menu_path",)
_CONTACT_BOOL = ("overflowed", "confidential")


def _contact_out(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["menu_path"] = json.loads(row["menu_path"] or "[]")
    for key in _CONTACT_BOOL:
        out[key] = bool(row[key])
    return out


def _contact_in(fields: dict[str, Any]) -> dict[str, Any]:
    row = dict(fields)
    for key in _CONTACT_JSON:
        if key in row:
            row[key] = json.dumps(row[key], ensure_ascii=False)
    for key in _CONTACT_BOOL:
        if key in row:
            row[key] = int(bool(row[key]))
    return row


# The contact functions run on every step of a call: plain SQL, no schema look-up per statement
# (sqlite-utils' Table.insert/update/get ask SQLite for the table's columns every time).
_COLUMN = re.compile(r"^[a-z_][a-z0-9_]*$")


def _columns(fields: dict[str, Any]) -> list[str]:
    names = list(fields)
    for name in names:
        if not _COLUMN.match(name):   # names are ours (keyword arguments), never input
            raise ValueError(f"bad column name {name!r}")
    return names


def create_contact(db: sqlite_utils.Database, **fields: Any) -> int:
    row = _contact_in(fields)
    names = _columns(row)
    cur = db.conn.execute(f"insert into contacts ({', '.join(names)}) "
                          f"values ({', '.join('?' * len(names))})", [row[n] for n in names])
    return cur.lastrowid


def update_contact(db: sqlite_utils.Database, contact_id: int, **fields: Any) -> None:
    if not fields:
        return
    row = _contact_in(fields)
    names = _columns(row)
    cur = db.conn.execute(f"update contacts set {', '.join(f'{n} = ?' for n in names)} where id = ?",
                          [*(row[n] for n in names), contact_id])
    if cur.rowcount == 0:
        raise NotFound(f"contact {contact_id}")


def get_contact(db: sqlite_utils.Database, contact_id: int) -> dict[str, Any]:
    cur = db.conn.execute("select * from contacts where id = ?", [contact_id])
    row = cur.fetchone()
    if row is None:
        raise NotFound(f"contact {contact_id}")
    return _contact_out(dict(zip((d[0] for d in cur.description), row)))


def add_event(db: sqlite_utils.Database, contact_id: int, at: str, kind: str,
              data: dict[str, Any] | None = None) -> None:
    db.conn.execute("insert into contact_events (contact_id, at, kind, data) values (?, ?, ?, ?)",
                    [contact_id, at, kind, json.dumps(data or {}, ensure_ascii=False)])


@dataclass
class ContactRecord:
    """What one step of a call writes about its contact: fields, then events, in one job.

    Built on the event loop, written by `write_record` in the writer thread as one transaction,
    so a call step costs one trip to the writer however many fields and events it records."""
    contact_id: int
    fields: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def set(self, **fields: Any) -> "ContactRecord":
        self.fields.update(fields)
        return self

    def event(self, at: str, kind: str, data: dict[str, Any] | None = None) -> "ContactRecord":
        self.events.append((at, kind, data or {}))
        return self

    def __bool__(self) -> bool:
        return bool(self.fields or self.events)

    def plain(self) -> tuple[int, dict[str, Any], list[list[Any]]]:
        """`write_record`'s arguments as plain values (a delayed write waits as JSON)."""
        return self.contact_id, dict(self.fields), [list(e) for e in self.events]


def write_record(db: sqlite_utils.Database, contact_id: int, fields: dict[str, Any],
                 events: list[list[Any]]) -> None:
    """A `ContactRecord`'s writes (given as plain values, so a delayed write can wait in the
    store's journal): the fields, then the events, as one transaction."""
    if not fields and not events:
        return
    outer = db.conn.in_transaction   # one transaction: the fields and the events land together
    if not outer:
        db.conn.execute("begin")
    try:
        if fields:
            update_contact(db, contact_id, **fields)
        if events:
            db.conn.executemany(
                "insert into contact_events (contact_id, at, kind, data) values (?, ?, ?, ?)",
                [(contact_id, at, kind, json.dumps(data, ensure_ascii=False))
                 for at, kind, data in events])
    except BaseException:
        if not outer:
            db.conn.execute("rollback")
        raise
    if not outer:
        db.conn.execute("commit")


def list_contacts(db: sqlite_utils.Database, since: str | None = None,
                  limit: int = 1000) -> list[dict[str, Any]]:
    where, args = ("started_at >= ?", [since]) if since else (None, [])
    return [
        _contact_out(r)
        for r in db["contacts"].rows_where(where, args, order_by="started_at, id", limit=limit)
    ]


def contact_events(db: sqlite_utils.Database, contact_id: int) -> list[dict[str, Any]]:
    """A contact's events in order, their data decoded (what an auditor reads of one call)."""
    return [
        {**r, "data": json.loads(r["data"])}
        for r in db["contact_events"].rows_where("contact_id = ?", [contact_id], order_by="id")
    ]


def open_queued_contacts(db: sqlite_utils.Database, before: str) -> list[dict[str, Any]]:
    """Phone contacts that reached the queue before `before` and are not finished (the ACD's
    recovery after a crash)."""
    return [_contact_out(r) for r in db["contacts"].rows_where(
        "channel = 'phone' and outcome is null and enqueued_at is not null and enqueued_at < ?",
        [before], order_by="id")]


def open_calls(db: sqlite_utils.Database, before: str) -> list[dict[str, Any]]:
    """Phone contacts started before `before` and not finished, in the menu, waiting or
    talking, each with `last_seen`: the latest time anything was recorded of it."""
    rows = db.query(
        "select c.*, max(c.started_at, coalesce(c.enqueued_at, ''), coalesce(c.answered_at, ''), "
        "coalesce((select max(e.at) from contact_events e where e.contact_id = c.id), '')) "
        "as last_seen from contacts c "
        "where c.channel = 'phone' and c.outcome is null and c.started_at < ? order by c.id",
        [before])
    return [{**_contact_out(r), "last_seen": r["last_seen"]} for r in rows]


def register_fallback_call(db: sqlite_utils.Database, record: dict[str, Any]) -> int | None:
    """A call that met Asterisk's fallback (the service unreachable), once: the contact the
    menu had already created for its channel is closed `failed`, else one is created. None
    if it was registered already."""
    at, uniqueid = record.get("at") or "", record.get("uniqueid") or None
    existing = list(db.query("select id, outcome from contacts where channel = 'phone' and "
                             "uniqueid = ? order by id desc limit 1", [uniqueid])) if uniqueid else []
    if existing:
        cid = existing[0]["id"]
        done = db.execute("select 1 from contact_events where contact_id = ? and kind = 'failed' "
                          "and data like '%fallback%'", [cid]).fetchone()
        if done:
            return None
        if existing[0]["outcome"] is None:
            update_contact(db, cid, outcome="failed", ended_at=at)
    else:
        cid = create_contact(db, channel="phone", district=record.get("district") or None,
                             dialed=record.get("dialed"), caller=record.get("caller") or None,
                             caller_name=record.get("caller_name") or None, started_at=at,
                             ended_at=at, outcome="failed", uniqueid=uniqueid)
    add_event(db, cid, at, "failed", {"reason": "service unreachable (fallback)"})
    return cid


def recent_handle_times(db: sqlite_utils.Database, skill: str, wrap_up: float,
                        limit: int = 50) -> list[float]:
    """Talk time plus wrap-up of the skill's last answered contacts (for the estimated wait)."""
    rows = db.execute(
        "select talk_seconds from contacts where skill = ? and outcome = 'answered' "
        "and talk_seconds is not null order by id desc limit ?", [skill, limit]).fetchall()
    return [float(r[0]) + wrap_up for r in rows]
