"""Agents as administrators edit them: skills with proficiency, languages, district, clearance,
SIP credentials; and supervisors' moves of an agent to another district for the day.

Plain functions over a `sqlite_utils.Database` (run with `Store.run`) plus the pure checks.
"""
from __future__ import annotations

import json
import re
import secrets
from typing import Any

import sqlite_utils

from .domain import Agent, AgentState
from .errors import InvalidInput, NotFound
from .passwords import SIP_REALM, sip_ha1

AGENT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,30}$")
LANG_RE = re.compile(r"^[a-z]{2,3}$")
PROFICIENCY = range(1, 6)


def new_sip_password() -> str:
    return secrets.token_urlsafe(15)


def validate(agent_id: str, name: str, district: str, skills: dict[str, int], languages: list[str],
             cleared_for: list[str], districts: set[str], known_skills: set[str]) -> None:
    if not AGENT_ID_RE.match(agent_id) or agent_id in ("global", "system", "residents"):
        raise InvalidInput("agent id: 2–31 lower-case letters, digits, '.', '_' or '-'")
    if not name.strip() or len(name) > 80:
        raise InvalidInput("name: 1–80 characters")
    if district not in districts:
        raise InvalidInput(f"unknown district {district!r}")
    for skill, level in skills.items():
        if skill not in known_skills:
            raise InvalidInput(f"unknown skill {skill!r}")
        if level not in PROFICIENCY:
            raise InvalidInput(f"proficiency for {skill} must be 1–5")
    if not languages or any(not LANG_RE.match(x) for x in languages):
        raise InvalidInput("languages: codes like sv, en")
    for d in cleared_for:
        if d not in districts:
            raise InvalidInput(f"unknown district {d!r} in clearance")


def get_agent(db: sqlite_utils.Database, agent_id: str) -> Agent:
    from .queries import list_agents
    for agent in list_agents(db):
        if agent.id == agent_id:
            return agent
    raise NotFound(f"no agent {agent_id!r}")


def agent_dict(agent: Agent) -> dict[str, Any]:
    return {"id": agent.id, "name": agent.name, "district": agent.district, "skills": dict(agent.skills),
            "languages": list(agent.languages), "cleared_for": list(agent.cleared_for)}


def save_agent(db: sqlite_utils.Database, agent: Agent, sip_password: str | None, at: str) -> None:
    """Create or update the agent and its skills (replaced); a new SIP password when given."""
    with db.conn:
        db.execute("begin")
        row = {"id": agent.id, "name": agent.name, "district": agent.district,
               "languages": json.dumps(list(agent.languages)),
               "cleared_for": json.dumps(list(agent.cleared_for))}
        exists = db.execute("select 1 from agents where id = ?", [agent.id]).fetchone()
        if sip_password is not None:
            row["sip_ha1"] = sip_ha1(agent.id, SIP_REALM, sip_password)
        elif not exists:
            raise InvalidInput("a new agent needs SIP credentials")
        if exists:
            db.execute(f"update agents set {', '.join(f'{k} = ?' for k in row if k != 'id')} where id = ?",
                       [v for k, v in row.items() if k != "id"] + [agent.id])
        else:
            db.execute(f"insert into agents ({', '.join(row)}) values ({', '.join('?' for _ in row)})",
                       list(row.values()))
            db.execute("insert or ignore into agent_status (agent, state, reason, since) values (?, ?, null, ?)",
                       [agent.id, AgentState.LOGGED_OUT.value, at])
        db.execute("delete from agent_skills where agent = ?", [agent.id])
        db.conn.executemany("insert into agent_skills (agent, skill, proficiency) values (?, ?, ?)",
                            [(agent.id, s, p) for s, p in sorted(agent.skills.items())])


# ----------------------------------------------------------------------------- moves for the day


def set_move(db: sqlite_utils.Database, agent: str, district: str | None, until: str, by: str, at: str) -> None:
    if district is None:
        db.execute("delete from agent_moves where agent = ?", [agent])
    else:
        db.execute("insert or replace into agent_moves (agent, district, until, by, at) values (?, ?, ?, ?, ?)",
                   [agent, district, until, by, at])


def active_moves(db: sqlite_utils.Database, now: str) -> dict[str, tuple[str, str]]:
    """agent -> (district, until) for moves not yet over."""
    db.execute("delete from agent_moves where until <= ?", [now])
    return {r[0]: (r[1], r[2]) for r in db.execute("select agent, district, until from agent_moves")}
