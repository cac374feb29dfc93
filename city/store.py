"""The organisation document against the database: read it out (`export`), compare
(`changes`), write it in one transaction (`apply`). Plain functions for `Store.run`.

What the file does not name is taken out of service, never out of history: a district or a
skill missing from the file is retired (its contacts and reports stay), a department or a
category is made inactive; agents, users, queues, keywords, codes and articles missing are
removed. Passwords and tokens are written only when the file gives them.
"""
from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from kc import organisation, web_store
from kc.domain import AgentState, QueueConfig
from kc.passwords import SIP_REALM, hash_password, sip_ha1, token_hash
from kc.queue_config import list_queue_configs, save_queue_config

from . import nodes
from .document import SECTIONS, public


def export(db: sqlite_utils.Database) -> dict[str, Any]:
    """The whole organisation in the document's normal form (no secrets)."""
    live = _live_menus(db)
    shares = {r["district"]: r["menu_of"] for r in db["menu_shares"].rows}
    hours = {r["district"]: json.loads(r["body"]) for r in db["schedules"].rows}
    numbers = _grouped(db, "select district, number from district_numbers order by rowid")
    addresses = _grouped(db, "select district, address from district_addresses order by rowid")
    districts = [{
        "id": r["id"], "name": r["name"], "numbers": numbers.get(r["id"], []),
        "addresses": addresses.get(r["id"], []), "region": r["region"],
        "switchboard": r["switchboard"], "hours": hours.get(r["id"]),
        "menu": None if r["id"] in shares else live.get(r["id"]),
        "menu_of": shares.get(r["id"]), "retired": r["retired_at"] is not None,
    } for r in db["districts"].rows_where(order_by="id")]
    skills = [{"id": r["id"], "name": r["name"], "confidential": bool(r["confidential"]),
               "retired": r["retired_at"] is not None} for r in db["skills"].rows_where(order_by="id")]
    levels: dict[str, dict[str, int]] = {}
    for r in db["agent_skills"].rows_where(order_by="agent, skill"):
        levels.setdefault(r["agent"], {})[r["skill"]] = r["proficiency"]
    agents = [{"id": r["id"], "name": r["name"], "district": r["district"],
               "skills": levels.get(r["id"], {}), "languages": json.loads(r["languages"] or "[]"),
               "cleared_for": sorted(json.loads(r["cleared_for"] or "[]"))}
              for r in db["agents"].rows_where(order_by="id")]
    users = [{"username": r["username"], "role": r["role"],
              "districts": sorted(json.loads(r["districts"] or "[]"))}
             for r in db["users"].rows_where("role != 'agent'", order_by="username")]
    queues = []
    for config in list_queue_configs(db):
        row = config.to_dict()
        row.pop("name")
        queues.append(row)
    tops = {r["id"]: r for r in db["case_categories"].rows_where("parent_id is null and active = 1")}
    children: dict[int, list[str]] = {}
    for r in db["case_categories"].rows_where("parent_id is not null and active = 1"):
        children.setdefault(r["parent_id"], []).append(r["name"])
    categories = sorted(({"name": t["name"], "skill": t["skill"],
                          "confidential": bool(t["confidential"]),
                          "children": sorted(children.get(i, []))} for i, t in tops.items()),
                        key=lambda c: c["name"])
    kb = sorted(({"category": tops[r["category_id"]]["name"], "question": r["question"],
                  "answer": r["answer"]} for r in db["kb_articles"].rows
                 if r["category_id"] in tops), key=lambda a: (a["category"], a["question"]))
    settings = organisation.settings(db)
    return {
        "organisation": {k: settings.get(k) for k in organisation.SETTING_KEYS},
        "skills": skills, "districts": districts,
        "queues": sorted(queues, key=lambda q: (q["district"], q["skill"])),
        "agents": agents, "users": users,
        "departments": sorted(r["name"] for r in db["departments"].rows_where("active = 1")),
        "case_categories": categories, "knowledge_base": kb,
        "keywords": organisation.keywords(db),
        "transfer_codes": organisation.transfer_codes(db),
        "nodes": [node.to_dict() for node in nodes.read(db)],
    }


def _grouped(db: sqlite_utils.Database, sql: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in db.execute(sql):
        out.setdefault(key, []).append(value)
    return out


def _live_menus(db: sqlite_utils.Database) -> dict[str, Any]:
    rows = db.query("select v.district, v.body from menu_versions v join ("
                    "select district, max(version) as version from menu_versions where published = 1 "
                    "group by district) live using (district, version)")
    return {r["district"]: json.loads(r["body"]) for r in rows}


# ---------------------------------------------------------------- what would change

def _key(section: str, item: Any) -> str:
    if section == "users":
        return item["username"]
    if section == "queues":
        return f"{item['skill']}@{item['district']}"
    if section == "knowledge_base":
        return f"{item['category']}: {item['question']}"
    if section == "case_categories":
        return item["name"]
    return item["id"]


def _keyed(section: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value if section != "organisation" else {k: v for k, v in value.items()}
    if section == "departments":
        return {name: True for name in value}
    return {_key(section, item): item for item in value}


def changes(current: dict[str, Any], target: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(section, key, what) for every difference, `what` one of add / change / remove /
    retire / set password. Secrets in `target` count as changes (they are written)."""
    out = []
    for section in SECTIONS:
        now = _keyed(section, public(current)[section])
        want_full = _keyed(section, target[section])
        want = _keyed(section, public(target)[section])
        for key in sorted(set(now) | set(want)):
            if key not in want:
                retire = section in ("districts", "skills", "departments", "case_categories")
                if retire and now[key] is not True and now[key].get("retired"):
                    continue
                out.append((section, key, "retire" if retire else "remove"))
            elif key not in now:
                out.append((section, key, "add"))
            elif now[key] != want[key]:
                out.append((section, key, "change"))
            elif isinstance(want_full[key], dict) and ("password" in want_full[key]
                                                      or "token" in want_full[key]):
                out.append((section, key, "set password"))
    return out


# ---------------------------------------------------------------- writing it

def apply(db: sqlite_utils.Database, target: dict[str, Any], by: str, at: str,
          note: str = "config import") -> list[tuple[str, str, str]]:
    """Make the database say what `target` (a validated document) says, in one transaction,
    with one audit entry; returns the changes made (none: nothing written at all)."""
    with db.conn:
        db.execute("begin immediate")
        current = export(db)
        todo = changes(current, target)
        if not todo:
            return []
        touched = {(s, k) for s, k, _ in todo}
        _write(db, current, target, touched, by, at, note)
        web_store.add_audit(db, at, by, "config.import", note,
                            [list(c) for c in todo if c[0] != "knowledge_base"] or None,
                            {"changes": len(todo)})
    return todo


def _write(db, current, target, touched, by, at, note) -> None:
    want = {s: _keyed(s, target[s]) for s in SECTIONS}
    have = {s: _keyed(s, current[s]) for s in SECTIONS}

    def changed(section: str) -> list[str]:
        return sorted(k for s, k in touched if s == section)

    organisation.set_settings(db, target["organisation"])
    for key in changed("skills"):
        s = want["skills"].get(key)
        if s is None:
            db.execute("update skills set retired_at = coalesce(retired_at, ?) where id = ?", [at, key])
        else:
            db["skills"].upsert({"id": key, "name": s["name"], "confidential": int(s["confidential"]),
                                 "retired_at": at if s["retired"] else None}, pk="id")
    districts = changed("districts")
    for key in districts:                         # numbers move freely between districts
        db.execute("delete from district_numbers where district = ?", [key])
        db.execute("delete from district_addresses where district = ?", [key])
    for key in districts:
        organisation.write_district(db, want["districts"].get(key), key, at)
    for key in districts:
        d = want["districts"].get(key)
        if d is not None:
            _hours_and_menu(db, d, have["districts"].get(key), by, at, note)
    for key in changed("queues"):
        q = want["queues"].get(key)
        skill, district = key.split("@", 1)
        if q is None:
            db.execute("delete from queues where skill = ? and district = ?", [skill, district])
        else:
            save_queue_config(db, QueueConfig.from_dict(q))
    for key in changed("agents"):
        _agent(db, want["agents"].get(key), key, at)
    for key in changed("users"):
        _user(db, want["users"].get(key), key, at)
    _casework(db, target, changed)
    organisation.set_keywords(db, target["keywords"])
    organisation.set_transfer_codes(db, target["transfer_codes"])
    if changed("nodes"):
        nodes.write(db, target["nodes"])


def _hours_and_menu(db, d: dict, before: dict | None, by: str, at: str, note: str) -> None:
    if d["hours"] is None:
        db.execute("delete from schedules where district = ?", [d["id"]])
    elif before is None or before["hours"] != d["hours"]:
        db["schedules"].upsert({"district": d["id"], "body": json.dumps(d["hours"], ensure_ascii=False),
                                "updated_at": at, "updated_by": by}, pk="district")
    if d["menu_of"] is not None:
        db["menu_shares"].upsert({"district": d["id"], "menu_of": d["menu_of"], "updated_at": at,
                                  "updated_by": by}, pk="district")
    else:
        db.execute("delete from menu_shares where district = ?", [d["id"]])
    if d["menu"] is not None and (before is None or before["menu"] != d["menu"]):
        top = db.execute("select coalesce(max(version), 0) from menu_versions where district = ?",
                         [d["id"]]).fetchone()[0]
        db["menu_versions"].insert({"district": d["id"], "version": top + 1,
                                    "body": json.dumps(d["menu"], ensure_ascii=False),
                                    "created_at": at, "created_by": by, "published": 1,
                                    "note": note})


def _agent(db, a: dict | None, key: str, at: str) -> None:
    if a is None:
        for sql in ("delete from agent_skills where agent = ?", "delete from agent_status where agent = ?",
                    "delete from agent_moves where agent = ?"):
            db.execute(sql, [key])
        _remove_user(db, "select username from users where agent = ?", key)
        db.execute("delete from agents where id = ?", [key])
        return
    row = {"id": key, "name": a["name"], "district": a["district"],
           "languages": json.dumps(a["languages"]), "cleared_for": json.dumps(a["cleared_for"])}
    if a.get("password") is not None:
        row["sip_ha1"] = sip_ha1(key, SIP_REALM, a["password"])
    exists = db["agents"].count_where("id = ?", [key])
    if not exists and "sip_ha1" not in row:
        row["sip_ha1"] = sip_ha1(key, SIP_REALM, organisation.new_secret())   # set one later
    db["agents"].upsert(row, pk="id")
    db.execute("delete from agent_skills where agent = ?", [key])
    db["agent_skills"].insert_all({"agent": key, "skill": s, "proficiency": level}
                                  for s, level in a["skills"].items())
    if not db["agent_status"].count_where("agent = ?", [key]):
        db["agent_status"].insert({"agent": key, "state": AgentState.LOGGED_OUT.value,
                                   "reason": None, "since": at})
    user = {"username": key, "role": "agent", "agent": key, "failed_logins": 0}
    if a.get("password") is not None:
        user["password_hash"] = hash_password(a["password"])
    elif not db["users"].count_where("username = ?", [key]):
        user["password_hash"] = hash_password(organisation.new_secret())
    db["users"].upsert(user, pk="username")


def _remove_user(db, query: str, key: str) -> None:
    for (username,) in db.execute(query, [key]).fetchall():
        db.execute("delete from api_tokens where username = ?", [username])
        db.execute("delete from web_sessions where username = ?", [username])
        db.execute("delete from users where username = ?", [username])


def _user(db, u: dict | None, key: str, at: str) -> None:
    if u is None:
        _remove_user(db, "select username from users where username = ? and role != 'agent'", key)
        return
    row = {"username": key, "role": u["role"], "districts": json.dumps(u["districts"])}
    if u.get("password") is not None:
        row["password_hash"] = hash_password(u["password"])
    elif not db["users"].count_where("username = ?", [key]):
        row["password_hash"] = hash_password(organisation.new_secret())
    db["users"].upsert(row, pk="username")
    if u.get("token") is not None:
        db["api_tokens"].upsert({"token_hash": token_hash(u["token"]), "username": key,
                                 "created_at": at}, pk="token_hash")


def _casework(db, target: dict, changed) -> None:
    for name in changed("departments"):
        if name in target["departments"]:
            if db["departments"].count_where("name = ?", [name]):
                db.execute("update departments set active = 1 where name = ?", [name])
            else:
                db["departments"].insert({"name": name, "active": 1})
        else:
            db.execute("update departments set active = 0 where name = ?", [name])
    wanted = {c["name"]: c for c in target["case_categories"]}
    for name in changed("case_categories"):
        top = wanted.get(name)
        row = db.execute("select id from case_categories where parent_id is null and name = ?",
                         [name]).fetchone()
        if top is None:
            if row:
                db.execute("update case_categories set active = 0 where id = ? or parent_id = ?",
                           [row[0], row[0]])
            continue
        fields = {"skill": top["skill"], "confidential": int(top["confidential"]), "active": 1}
        if row:
            top_id = row[0]
            db["case_categories"].update(top_id, fields)
        else:
            top_id = db["case_categories"].insert({"name": name, "parent_id": None, **fields}).last_pk
        db.execute("update case_categories set active = 0 where parent_id = ?", [top_id])
        for child in top["children"]:
            hit = db.execute("select id from case_categories where parent_id = ? and name = ?",
                             [top_id, child]).fetchone()
            if hit:
                db["case_categories"].update(hit[0], fields)
            else:
                db["case_categories"].insert({"name": child, "parent_id": top_id, **fields})
    tops = {r["name"]: r["id"] for r in db["case_categories"].rows_where("parent_id is null")}
    want = {f"{a['category']}: {a['question']}": a for a in target["knowledge_base"]}
    for r in list(db["kb_articles"].rows):
        key = next((f"{n}: {r['question']}" for n, i in tops.items() if i == r["category_id"]), None)
        if key not in want:
            db.execute("delete from kb_articles where id = ?", [r["id"]])
        elif want[key]["answer"] != r["answer"]:
            db["kb_articles"].update(r["id"], {"answer": want.pop(key)["answer"]})
        else:
            want.pop(key)
    for a in want.values():
        db["kb_articles"].insert({"category_id": tops[a["category"]], "question": a["question"],
                                  "answer": a["answer"], "updated_at": "1970-01-01T00:00:00.000Z",
                                  "updated_by": "config"})
