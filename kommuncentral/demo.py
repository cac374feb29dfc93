"""`kc init --demo`: the demo centre from config/demo.yaml, with the demo menus published."""
from __future__ import annotations

import json
from pathlib import Path

import sqlite_utils
import yaml

from agi.menu import Menu, demo_menu
from kc.clock import Clock, iso
from kc.domain import AgentState
from kc.passwords import SIP_REALM, hash_password, sip_ha1, token_hash
from kc.queue_config import demo_queue_configs, save_queue_config
from schedules.schedule_store import load_demo_schedules
from kc.cases import load_demo_casework
from kc.settings import PROJECT_ROOT

DEMO_FILE = PROJECT_ROOT / "config" / "demo.yaml"


def load_demo(db: sqlite_utils.Database, clock: Clock, source: Path = DEMO_FILE,
              always_open: bool = False) -> None:
    """The demo centre; `always_open` (setting KC_DEMO_ALWAYS_OPEN) opens every district
    around the clock."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    now = iso(clock())
    with db.conn:
        db["districts"].insert_all(data["districts"])
        db["skills"].insert_all(
            {"id": s["id"], "name": s["name"], "confidential": int(bool(s.get("confidential")))}
            for s in data["skills"]
        )
        password = data["agent_password"]
        for agent in data["agents"]:
            db["agents"].insert({
                "id": agent["id"], "name": agent["name"], "district": agent["district"],
                "languages": json.dumps(agent.get("languages", ["sv", "en"])),
                "cleared_for": json.dumps(agent.get("cleared_for", [])),
                "sip_ha1": sip_ha1(agent["id"], SIP_REALM, password),
            })
            db["agent_skills"].insert_all(
                {"agent": agent["id"], "skill": skill, "proficiency": level}
                for skill, level in agent["skills"].items()
            )
            db["agent_status"].insert(
                {"agent": agent["id"], "state": AgentState.LOGGED_OUT.value, "reason": None,
                 "since": now})
            db["users"].insert({
                "username": agent["id"], "role": "agent", "agent": agent["id"],
                "password_hash": hash_password(password), "failed_logins": 0,
            })
        for user in data["users"]:
            db["users"].insert({
                "username": user["username"], "role": user["role"],
                "password_hash": hash_password(user["password"]), "failed_logins": 0,
                "districts": json.dumps(user.get("districts", [])),   # supervised districts
            })
            if user.get("token"):
                db["api_tokens"].insert({
                    "token_hash": token_hash(user["token"]), "username": user["username"],
                    "created_at": now,
                })
        for district in data["districts"]:
            body = Menu.from_dict(demo_menu(district["name"])).to_dict()
            db["menu_versions"].insert({
                "district": district["id"], "version": 1,
                "body": json.dumps(body, ensure_ascii=False), "created_at": now,
                "created_by": "demo", "published": 1,
            })
        # Every skill × district queue: 30 s service level, overflow to the other district after 30 s.
        for config in demo_queue_configs([d["id"] for d in data["districts"]],
                                         [s["id"] for s in data["skills"]]):
            save_queue_config(db, config)
        load_demo_schedules(db, now, always_open)   # opening hours: Bromma office hours, H-V 07-22 daily
        load_demo_casework(db)         # case categories, departments, knowledge base


def demo_logins(source: Path = DEMO_FILE) -> list[tuple[str, str, str]]:
    """(username, password, role) for printing by `kc up`."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    users = [(u["username"], u["password"], u["role"]) for u in data["users"]]
    users += [(a["id"], data["agent_password"], "agent") for a in data["agents"]]
    return users
