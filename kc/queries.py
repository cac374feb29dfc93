"""Plain SQL functions over a `sqlite_utils.Database`, run by `Store.run` in the writer thread."""
from __future__ import annotations

import json
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
    db["agent_status"].upsert(
        {"agent": agent, "state": state.value, "reason": reason, "since": since}, pk="agent"
    )


# ---------------------------------------------------------------- users and tokens


def user_for_token(db: sqlite_utils.Database, token_hash: str) -> dict[str, Any] | None:
    rows = list(db.query(
        "select u.username, u.role, u.agent, u.districts from api_tokens t "
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


def create_contact(db: sqlite_utils.Database, **fields: Any) -> int:
    return db["contacts"].insert(_contact_in(fields)).last_pk


def update_contact(db: sqlite_utils.Database, contact_id: int, **fields: Any) -> None:
    if not fields:
        return
    try:
        db["contacts"].update(contact_id, _contact_in(fields))
    except sqlite_utils.db.NotFoundError:
        raise NotFound(f"contact {contact_id}") from None


def get_contact(db: sqlite_utils.Database, contact_id: int) -> dict[str, Any]:
    try:
        return _contact_out(db["contacts"].get(contact_id))
    except sqlite_utils.db.NotFoundError:
        raise NotFound(f"contact {contact_id}") from None


def list_contacts(db: sqlite_utils.Database, since: str | None = None,
                  limit: int = 1000) -> list[dict[str, Any]]:
    where, args = ("started_at >= ?", [since]) if since else (None, [])
    return [
        _contact_out(r)
        for r in db["contacts"].rows_where(where, args, order_by="started_at, id", limit=limit)
    ]


def add_event(db: sqlite_utils.Database, contact_id: int, at: str, kind: str,
              data: dict[str, Any] | None = None) -> None:
    db["contact_events"].insert({
        "contact_id": contact_id, "at": at, "kind": kind,
        "data": json.dumps(data or {}, ensure_ascii=False),
    })


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


def recent_handle_times(db: sqlite_utils.Database, skill: str, wrap_up: float,
                        limit: int = 50) -> list[float]:
    """Talk time plus wrap-up of the skill's last answered contacts (for the estimated wait)."""
    rows = db.execute(
        "select talk_seconds from contacts where skill = ? and outcome = 'answered' "
        "and talk_seconds is not null order by id desc limit ?", [skill, limit]).fetchall()
    return [float(r[0]) + wrap_up for r in rows]
