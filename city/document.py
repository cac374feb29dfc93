"""The organisation as one document: read, checked as a whole, put in its one normal form.

The same document is what `kc config export` writes, what `kc config import`, `kc init
--config` and `PUT /api/config` read, and what `config/demo.yaml` and `config/stockholm.yaml`
are. Sections (every one optional on input, every one present on output):

- `organisation`: `mail_domain`, `switchboard_skill` (the queue "transfer to the switchboard"
  goes to), `keyword_fallback` (a written matter without a keyword goes to this skill);
- `skills`: `id`, `name`, `confidential`; `districts`: `id`, `name`, `numbers`, `addresses`,
  `region`, `switchboard` (the district whose switchboard answers for it), `hours` (opening hours,
  `schedules.schedule.Schedule`), `menu` (its live menu) or `menu_of` (the district whose menu it
  plays); `retired: true` keeps a district's or skill's history without serving it;
- `queues` (skill × district: service level, wrap-up, overflow, priority), `agents`, `users`
  (never a password or token on output; on input `password`, `token`, and for agents
  `agent_password` at the top, set them), `departments`, `case_categories`, `knowledge_base`,
  `keywords` (skill → words), `transfer_codes` (code an agent dials → `queue:<skill>` or a number),
  `nodes` (the cluster's Asterisk nodes and the districts each homes, `city/nodes.py`).

`normalise(data)` returns `(document, problems)`: every problem names where it is
(`districts[3] (<id>).numbers[1]: ...`); nothing is written while any problem remains. Pure: no
database, no I/O.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

from agi.menu import Menu, MenuError
from agi.menus import check as check_menu, sharing_problems
from kc.domain import QueueConfig, Role
from kc.errors import InvalidInput

from . import nodes
from schedules.schedule import Schedule, ScheduleError

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")            # districts, skills (the PBX's rule)
AGENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")   # PJSIP endpoint names
NUMBER_RE = re.compile(r"^\+?[0-9]{3,32}$")
ADDRESS_RE = re.compile(r"^[^@\s<>\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
CODE_RE = re.compile(r"^[0-9]{1,2}$")
SECTIONS = ("organisation", "skills", "districts", "queues", "agents", "users", "departments",
            "case_categories", "knowledge_base", "keywords", "transfer_codes", "nodes")
SECRET_KEYS = ("password", "token", "agent_password")


class ConfigInvalid(InvalidInput):
    """The document has problems; `problems` lists every one, each naming where it is."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s): " + "; ".join(problems[:5]))


class _Problems(list):
    def add(self, where: str, message: str) -> None:
        self.append(f"{where}: {message}")


def _label(section: str, i: int, item: Any, key: str = "id") -> str:
    ident = item.get(key) if isinstance(item, dict) else None
    return f"{section}[{i}]" + (f" ({ident})" if ident else "")


def _items(data: dict, section: str, p: _Problems) -> list[tuple[str, dict]]:
    raw = data.get(section) or []
    if not isinstance(raw, list):
        p.add(section, "must be a list")
        return []
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            p.add(f"{section}[{i}]", "must be a mapping")
            continue
        out.append((_label(section, i, item, "username" if section == "users" else "id"), item))
    return out


def _text(item: dict, key: str, where: str, p: _Problems, required: bool = True) -> str | None:
    value = item.get(key)
    if value is None or value == "":
        if required:
            p.add(where, f"{key} is missing")
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        p.add(where, f"{key} must be text")
        return None
    return str(value)


def _strings(item: dict, key: str, where: str, p: _Problems) -> list[str]:
    value = item.get(key)
    if value is None:
        return []
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [str(value)]
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        p.add(where, f"{key} must be a list of text")
        return []
    return [str(v) for v in value]


def _unique(seen: dict[str, str], key: str, where: str, what: str, p: _Problems) -> None:
    if key in seen:
        p.add(where, f"{what} {key!r} is also given at {seen[key]}")
    else:
        seen[key] = where


def _unknown_keys(item: dict, allowed: Iterable[str], where: str, p: _Problems) -> None:
    for key in item:
        if key not in allowed:
            p.add(where, f"unknown key {key!r} (known: {', '.join(allowed)})")


def normalise(data: Any) -> tuple[dict[str, Any], list[str]]:
    """(document, problems) for the parsed YAML/JSON `data` (see the module docstring)."""
    p = _Problems()
    if not isinstance(data, dict):
        return {}, ["document: must be a mapping of sections"]
    _unknown_keys(data, (*SECTIONS, "agent_password"), "document", p)
    skills = _skills(data, p)
    skill_ids = {s["id"] for s in skills}
    live_skills = {s["id"] for s in skills if not s.get("retired")}
    districts = _districts(data, p)
    district_ids = {d["id"] for d in districts}
    live = {d["id"] for d in districts if not d.get("retired")}
    org = _organisation(data, live_skills, p)
    agents = _agents(data, live, live_skills, p)
    doc = {
        "organisation": org,
        "skills": skills,
        "districts": districts,
        "queues": _queues(data, district_ids, skill_ids, p),
        "agents": agents,
        "users": _users(data, district_ids, {a["id"] for a in agents}, p),
        "departments": _departments(data, p),
        "case_categories": _categories(data, skill_ids, p),
        "knowledge_base": [],
        "keywords": _keywords(data, skill_ids, p),
        "transfer_codes": _codes(data, live_skills, p),
        "nodes": nodes.normalise(data, district_ids, p),
    }
    doc["knowledge_base"] = _kb(data, {c["name"] for c in doc["case_categories"]}, p)
    _check_districts(doc, p)
    return doc, list(p)


def _organisation(data: dict, skills: set[str], p: _Problems) -> dict[str, Any]:
    raw = data.get("organisation") or {}
    if not isinstance(raw, dict):
        p.add("organisation", "must be a mapping")
        raw = {}
    _unknown_keys(raw, ("mail_domain", "switchboard_skill", "keyword_fallback"), "organisation", p)
    out = {key: _text(raw, key, "organisation", p, required=False)
           for key in ("mail_domain", "switchboard_skill", "keyword_fallback")}
    for key in ("switchboard_skill", "keyword_fallback"):
        if out[key] is not None and out[key] not in skills:
            p.add(f"organisation.{key}", f"no skill {out[key]!r}")
    return out


def _skills(data: dict, p: _Problems) -> list[dict[str, Any]]:
    out, seen = [], {}
    for where, item in _items(data, "skills", p):
        _unknown_keys(item, ("id", "name", "confidential", "retired"), where, p)
        sid, name = _text(item, "id", where, p), _text(item, "name", where, p)
        if sid is None or name is None:
            continue
        if not ID_RE.match(sid):
            p.add(where, f"id {sid!r}: lower-case letters, digits, - and _ only")
        _unique(seen, sid, where, "skill", p)
        out.append({"id": sid, "name": name, "confidential": bool(item.get("confidential")),
                    "retired": bool(item.get("retired"))})
    return sorted(out, key=lambda s: s["id"])


def _districts(data: dict, p: _Problems) -> list[dict[str, Any]]:
    out, seen, numbers, addresses = [], {}, {}, {}
    keys = ("id", "name", "number", "numbers", "addresses", "region", "switchboard", "hours",
            "menu", "menu_of", "retired")
    for where, item in _items(data, "districts", p):
        _unknown_keys(item, keys, where, p)
        did, name = _text(item, "id", where, p), _text(item, "name", where, p)
        if did is None or name is None:
            continue
        if not ID_RE.match(did):
            p.add(where, f"id {did!r}: lower-case letters, digits, - and _ only")
        _unique(seen, did, where, "district", p)
        retired = bool(item.get("retired"))
        nums = _strings(item, "number", where, p) + _strings(item, "numbers", where, p)
        for j, number in enumerate(nums):
            if not NUMBER_RE.match(number):
                p.add(f"{where}.numbers[{j}]", f"{number!r} is not a phone number (digits, 3 to 32)")
            _unique(numbers, number, f"{where}.numbers[{j}]", "number", p)
        mails = [a.lower() for a in _strings(item, "addresses", where, p)]
        for j, address in enumerate(mails):
            if not ADDRESS_RE.match(address):
                p.add(f"{where}.addresses[{j}]", f"{address!r} is not an e-mail address")
            _unique(addresses, address, f"{where}.addresses[{j}]", "address", p)
        if not nums and not retired:
            p.add(where, "a district in service needs at least one number")
        hours = item.get("hours")
        if hours is not None:
            try:
                Schedule.from_dict(hours)
            except (ScheduleError, InvalidInput) as exc:
                p.add(f"{where}.hours", str(exc))
        menu = item.get("menu")
        if menu is not None:
            try:
                menu = Menu.from_dict(menu).to_dict()
            except MenuError as exc:
                p.add(f"{where}.menu", str(exc))
                menu = None
        if menu is not None and item.get("menu_of"):
            p.add(where, "give either menu or menu_of, not both")
        out.append({"id": did, "name": name, "numbers": [] if retired else nums,
                    "addresses": [] if retired else mails,
                    "region": _text(item, "region", where, p, required=False),
                    "switchboard": _text(item, "switchboard", where, p, required=False),
                    "hours": hours, "menu": menu,
                    "menu_of": _text(item, "menu_of", where, p, required=False),
                    "retired": retired})
    return sorted(out, key=lambda d: d["id"])


def _check_districts(doc: dict[str, Any], p: _Problems) -> None:
    """References between districts, and each menu against the skills agents have."""
    districts = {d["id"]: d for d in doc["districts"]}
    live = {i for i, d in districts.items() if not d["retired"]}
    names = {i: d["name"] for i, d in districts.items()}
    skills_of: dict[str, set[str]] = {}
    for agent in doc["agents"]:
        skills_of.setdefault(agent["district"], set()).update(agent["skills"])
    have = set().union(*skills_of.values()) if skills_of else set()
    switchboard = doc["organisation"]["switchboard_skill"]
    for i, d in enumerate(doc["districts"]):
        where = f"districts ({d['id']})"
        if d["retired"]:
            continue
        if d["switchboard"] is not None and d["switchboard"] not in live:
            p.add(f"{where}.switchboard", f"no district {d['switchboard']!r} in service")
        if d["hours"] is not None:
            for target in (d["hours"].get("after_hours") or {}).get("route_to") or []:
                if target not in live:
                    p.add(f"{where}.hours.after_hours.route_to", f"no district {target!r} in service")
        owner = d["menu_of"]
        if owner is not None:
            if owner == d["id"] or owner not in districts:
                p.add(f"{where}.menu_of", f"no other district {owner!r}")
            elif districts[owner]["menu_of"] is not None:
                p.add(f"{where}.menu_of", f"{owner} itself plays the menu of "
                                          f"{districts[owner]['menu_of']} (no chains)")
            elif districts[owner]["menu"] is None:
                p.add(f"{where}.menu_of", f"{owner} has no menu to share")
        if d["menu"] is not None:
            users = [d["id"], *(o for o, e in districts.items()
                                if e["menu_of"] == d["id"] and not e["retired"])]
            _, problems = check_menu(d["menu"], have)
            menu = Menu.from_dict(d["menu"])
            problems += sharing_problems(menu, users, names, skills_of)
            for problem in problems:
                p.add(f"{where}.menu", problem)
            if switchboard is None and _menu_uses_switchboard(d["menu"]):
                p.add("organisation.switchboard_skill",
                      f"the menu of {d['id']} transfers to the switchboard: name its skill")


def _menu_uses_switchboard(body: Any) -> bool:
    if isinstance(body, dict):
        if body.get("action") == "transfer" and body.get("number") == "switchboard":
            return True
        return any(_menu_uses_switchboard(v) for v in body.values())
    if isinstance(body, list):
        return any(_menu_uses_switchboard(v) for v in body)
    return False


def _queues(data: dict, districts: set[str], skills: set[str], p: _Problems) -> list[dict[str, Any]]:
    out, seen = [], {}
    for i, item in enumerate(data.get("queues") or []):
        where = f"queues[{i}]"
        if not isinstance(item, dict):
            p.add(where, "must be a mapping")
            continue
        try:
            config = QueueConfig.from_dict(item)
            config.validate()
        except InvalidInput as exc:
            p.add(where, str(exc))
            continue
        where = f"queues[{i}] ({config.name})"
        _unknown_keys(item, ("name", "skill", "district", "service_level_seconds",
                             "wrap_up_seconds", "overflow", "priority",
                             "written_service_level_seconds", "escalation",
                             "alert_seconds"), where, p)
        if config.skill not in skills:
            p.add(where, f"no skill {config.skill!r}")
        if config.district not in districts:
            p.add(where, f"no district {config.district!r}")
        for j, step in enumerate(config.overflow):
            for d in step.districts:
                if d != "*" and d not in districts:
                    p.add(f"{where}.overflow[{j}]", f"no district {d!r}")
        _unique(seen, config.name, where, "queue", p)
        row = config.to_dict()
        row.pop("name")
        out.append(row)
    return sorted(out, key=lambda q: (q["district"], q["skill"]))


def _agents(data: dict, districts: set[str], skills: set[str], p: _Problems) -> list[dict[str, Any]]:
    out, seen = [], {}
    shared = data.get("agent_password")
    for where, item in _items(data, "agents", p):
        _unknown_keys(item, ("id", "name", "district", "skills", "languages", "cleared_for",
                             "password"), where, p)
        aid, name = _text(item, "id", where, p), _text(item, "name", where, p)
        district = _text(item, "district", where, p)
        if aid is None or name is None or district is None:
            continue
        if not AGENT_RE.match(aid):
            p.add(where, f"id {aid!r}: letters, digits, ., - and _ only")
        _unique(seen, aid, where, "agent", p)
        if district not in districts:
            p.add(where, f"no district {district!r} in service")
        levels = item.get("skills") or {}
        if not isinstance(levels, dict):
            p.add(where, "skills must map a skill to a level 1-5")
            levels = {}
        for skill, level in levels.items():
            if skill not in skills:
                p.add(f"{where}.skills", f"no skill {skill!r}")
            if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 5:
                p.add(f"{where}.skills.{skill}", "level must be 1 to 5")
        cleared = _strings(item, "cleared_for", where, p)
        for d in cleared:
            if d not in districts:
                p.add(f"{where}.cleared_for", f"no district {d!r} in service")
        agent = {"id": aid, "name": name, "district": district,
                 "skills": {str(k): v for k, v in sorted(levels.items())},
                 "languages": _strings(item, "languages", where, p) or ["sv", "en"],
                 "cleared_for": sorted(cleared)}
        password = item.get("password", shared)
        if password is not None:
            agent["password"] = str(password)
        out.append(agent)
    return sorted(out, key=lambda a: a["id"])


def _users(data: dict, districts: set[str], agents: set[str], p: _Problems) -> list[dict[str, Any]]:
    out, seen = [], {}
    roles = [r.value for r in Role if r is not Role.AGENT]
    for where, item in _items(data, "users", p):
        _unknown_keys(item, ("username", "role", "districts", "password", "token"), where, p)
        name, role = _text(item, "username", where, p), _text(item, "role", where, p)
        if name is None or role is None:
            continue
        if role not in roles:
            p.add(where, f"role {role!r}: one of {', '.join(roles)} (agents log in as agents)")
        if name in agents:
            p.add(where, f"{name!r} is an agent's log-in")
        _unique(seen, name, where, "user", p)
        supervised = _strings(item, "districts", where, p)
        for d in supervised:
            if d not in districts:
                p.add(f"{where}.districts", f"no district {d!r}")
        user = {"username": name, "role": role, "districts": sorted(supervised)}
        for key in ("password", "token"):
            if item.get(key) is not None:
                user[key] = str(item[key])
        out.append(user)
    return sorted(out, key=lambda u: u["username"])


def _departments(data: dict, p: _Problems) -> list[str]:
    raw = data.get("departments") or []
    if not isinstance(raw, list) or not all(isinstance(n, str) and n for n in raw):
        p.add("departments", "must be a list of names")
        return []
    seen: dict[str, str] = {}
    for i, name in enumerate(raw):
        _unique(seen, name, f"departments[{i}]", "department", p)
    return sorted(set(raw))


def _categories(data: dict, skills: set[str], p: _Problems) -> list[dict[str, Any]]:
    out, seen = [], {}
    for i, item in enumerate(data.get("case_categories") or []):
        where = _label("case_categories", i, item, "name")
        if not isinstance(item, dict):
            p.add(where, "must be a mapping")
            continue
        _unknown_keys(item, ("name", "skill", "confidential", "children"), where, p)
        name, skill = _text(item, "name", where, p), _text(item, "skill", where, p)
        if name is None or skill is None:
            continue
        if skill not in skills:
            p.add(where, f"no skill {skill!r}")
        _unique(seen, name, where, "category", p)
        children = _strings(item, "children", where, p)
        if len(set(children)) != len(children):
            p.add(f"{where}.children", "a subcategory is given twice")
        out.append({"name": name, "skill": skill, "confidential": bool(item.get("confidential")),
                    "children": sorted(set(children))})
    return sorted(out, key=lambda c: c["name"])


def _kb(data: dict, categories: set[str], p: _Problems) -> list[dict[str, Any]]:
    out, seen = [], {}
    for i, item in enumerate(data.get("knowledge_base") or []):
        where = f"knowledge_base[{i}]"
        if not isinstance(item, dict):
            p.add(where, "must be a mapping")
            continue
        _unknown_keys(item, ("category", "question", "answer"), where, p)
        values = [_text(item, k, where, p) for k in ("category", "question", "answer")]
        if None in values:
            continue
        category, question, answer = values
        if category not in categories:
            p.add(where, f"no category {category!r}")
        _unique(seen, f"{category}: {question}", where, "question", p)
        out.append({"category": category, "question": question, "answer": answer})
    return sorted(out, key=lambda a: (a["category"], a["question"]))


def _keywords(data: dict, skills: set[str], p: _Problems) -> dict[str, list[str]]:
    raw = data.get("keywords") or {}
    if not isinstance(raw, dict):
        p.add("keywords", "must map a skill to its words")
        return {}
    out = {}
    for skill, words in raw.items():
        if skill not in skills:
            p.add(f"keywords.{skill}", f"no skill {skill!r}")
        if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
            p.add(f"keywords.{skill}", "must be a list of words")
            continue
        out[str(skill)] = sorted({w.strip().lower() for w in words})
    return dict(sorted(out.items()))


def _codes(data: dict, skills: set[str], p: _Problems) -> dict[str, str]:
    raw = data.get("transfer_codes") or {}
    if not isinstance(raw, dict):
        p.add("transfer_codes", "must map a code to queue:<skill> or a number")
        return {}
    out = {}
    for code, target in raw.items():
        code, target = str(code), str(target)
        where = f"transfer_codes.{code}"
        if not CODE_RE.match(code):
            p.add(where, "a code is one or two digits (three or more are dialled as numbers)")
        if target.startswith("queue:"):
            if target[6:] not in skills:
                p.add(where, f"no skill {target[6:]!r}")
        elif not NUMBER_RE.match(target.lstrip("+")):
            p.add(where, f"{target!r}: queue:<skill> or a phone number")
        out[code] = target
    return dict(sorted(out.items()))


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """The document as exported: no passwords or tokens, no empty keys."""
    def clean(entity: Any) -> Any:    # one level: menus and hours are kept exactly
        if isinstance(entity, dict):
            return {k: v for k, v in entity.items()
                    if k not in SECRET_KEYS and v is not None and v is not False}
        return entity
    return {section: ([clean(e) for e in doc[section]] if isinstance(doc[section], list)
                      else clean(doc[section]) if section == "organisation" else doc[section])
            for section in SECTIONS}


def validated(data: Any) -> dict[str, Any]:
    """The normal form of `data`, or `ConfigInvalid` listing every problem."""
    doc, problems = normalise(data)
    if problems:
        raise ConfigInvalid(problems)
    return doc
