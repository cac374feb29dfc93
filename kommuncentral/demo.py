"""`kc init --demo`: the demo centre from config/demo.yaml, with the demo menus published.

Until the city is data (its mailboxes and keywords in the database), the running service also
takes the e-mail channel's mailboxes and categorisation keywords from here (`demo_mail`)."""
from __future__ import annotations

import json
from pathlib import Path

import sqlite_utils
import yaml

from agi.menu import Menu, demo_menu
from cases.email import Mailboxes
from cases.messages import Categoriser
from kc.clock import Clock, iso
from kc.domain import AgentState
from kc.passwords import SIP_REALM, hash_password, sip_ha1, token_hash
from kc.queue_config import demo_queue_configs, save_queue_config
from kc.settings import PROJECT_ROOT
from schedules.schedule_store import load_demo_schedules

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
        load_demo_casework(db, data)   # case categories, departments, knowledge base


def load_demo_casework(db: sqlite_utils.Database, data: dict) -> None:
    """Departments, the category tree and some knowledge-base articles."""
    if db["case_categories"].count:
        return
    db["departments"].insert_all({"name": name, "active": 1} for name in data["departments"])
    top_ids: dict[str, int] = {}
    for top in data["case_categories"]:
        confidential = int(bool(top.get("confidential")))
        top_id = db["case_categories"].insert({"name": top["name"], "skill": top["skill"],
                                               "parent_id": None, "confidential": confidential,
                                               "active": 1}).last_pk
        top_ids[top["name"]] = top_id
        for child in top["children"]:
            db["case_categories"].insert({"name": child, "skill": top["skill"], "parent_id": top_id,
                                          "confidential": confidential, "active": 1})
    for article in data["knowledge_base"]:
        db["kb_articles"].insert({"category_id": top_ids[article["category"]],
                                  "question": article["question"], "answer": article["answer"],
                                  "updated_at": "1970-01-01T00:00:00.000Z", "updated_by": "demo"})


def demo_mail(source: Path = DEMO_FILE) -> tuple[Mailboxes, Categoriser]:
    """The e-mail channel's mailboxes (address → district) and categorisation keywords."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    mailboxes = Mailboxes(data["mail_domain"],
                          {address.lower(): district for address, district in data["mailboxes"].items()})
    keywords = {skill: tuple(words) for skill, words in data["keywords"].items()}
    return mailboxes, Categoriser(keywords, data["keyword_fallback"])


def demo_logins(source: Path = DEMO_FILE) -> list[tuple[str, str, str]]:
    """(username, password, role) for printing by `kc up`."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    users = [(u["username"], u["password"], u["role"]) for u in data["users"]]
    users += [(a["id"], data["agent_password"], "agent") for a in data["agents"]]
    return users
