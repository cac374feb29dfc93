"""Cases (every matter registered), the category tree, departments, the knowledge base,
messages of written channels, the e-mail task queue, retention and first-contact resolution.

Plain SQL functions over a `sqlite_utils.Database`, run by `Store.run` in the writer thread.
The schema is created by the migration step `kc.schema.cases_channels_kb`.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import sqlite3
import unicodedata
from datetime import datetime, timedelta
from typing import Any, Iterable

import sqlite_utils

from .errors import InvalidInput, NotFound
from .web_store import user_districts

OUTCOMES = ("resolved_first_contact", "forwarded", "referred_eservice", "visit_booked")
WRITTEN_CHANNELS = ("email", "web", "fax", "post")
MANUAL_CHANNELS = ("fax", "post")
FCR_GOAL = 0.70
PSEUDONYM_PREFIX = "pseud:"
NOTE_LIMIT = 4000


# ---------------------------------------------------------------------------- schema


# ---------------------------------------------------------------------------- demo data

DEMO_DEPARTMENTS = ("Biståndsenheten", "Hemtjänsten", "Skolförvaltningen", "Förskoleenheten",
                    "Socialtjänstens mottagning", "Stadsbyggnadskontoret")
DEMO_CATEGORIES: dict[tuple[str, str | None, bool], tuple[str, ...]] = {
    ("Äldreomsorg", "elderly-care", False): ("Hemtjänst", "Särskilt boende", "Trygghetslarm",
                                             "Färdtjänst"),
    ("Förskola och skola", "school", False): ("Förskoleplats", "Skolval", "Skolskjuts",
                                              "Fritidshem"),
    ("Ekonomiskt bistånd och socialtjänst", "social-services", True): (
        "Ekonomiskt bistånd", "Orosanmälan", "Missbruk", "Våld i nära relation"),
    ("Övrigt", "switchboard", False): ("Växel", "Synpunkt", "Felanmälan"),
}
DEMO_KB = [
    ("Äldreomsorg", "Hur ansöker jag om hemtjänst?",
     "Du ansöker om hemtjänst hos biståndshandläggaren i din stadsdel, via e-tjänsten "
     "\"Ansök om äldreomsorg\" eller per telefon. Handläggaren gör en utredning och ett hembesök."),
    ("Äldreomsorg", "Vad kostar hemtjänsten?",
     "Avgiften för hemtjänst beror på din inkomst och hur många timmar du får. "
     "Maxtaxan gäller. Fakturan kommer månaden efter."),
    ("Äldreomsorg", "Hur får jag ett trygghetslarm?",
     "Trygghetslarm beviljas av biståndshandläggaren. Larmet installeras inom några dagar."),
    ("Äldreomsorg", "Hur ansöker jag om plats på äldreboende?",
     "Plats på särskilt boende (äldreboende) söks hos biståndshandläggaren."),
    ("Förskola och skola", "Hur ställer jag mitt barn i kö till förskola?",
     "Ansök om förskoleplats i e-tjänsten \"Förskola\" tidigast när barnet är fyra månader. "
     "Du får erbjudande inom fyra månader."),
    ("Förskola och skola", "När är skolvalet?",
     "Skolvalet görs i januari i e-tjänsten \"Skolval\" inför förskoleklass och årskurs 7."),
    ("Ekonomiskt bistånd och socialtjänst", "Hur söker jag ekonomiskt bistånd?",
     "Boka ett första möte med socialtjänstens mottagning eller ansök i e-tjänsten "
     "\"Ekonomiskt bistånd\". Ta med kontoutdrag och hyresavtal."),
    ("Ekonomiskt bistånd och socialtjänst", "Hur gör jag en orosanmälan om ett barn?",
     "Ring socialtjänstens mottagning. Vid akut fara ring 112. Du kan vara anonym som privatperson."),
]


def load_demo_casework(db: sqlite_utils.Database) -> None:
    """Departments, the category tree and some knowledge-base articles for `kc init --demo`."""
    if db["case_categories"].count:
        return
    db["departments"].insert_all({"name": name, "active": 1} for name in DEMO_DEPARTMENTS)
    top_ids: dict[str, int] = {}
    for (name, skill, confidential), children in DEMO_CATEGORIES.items():
        top = db["case_categories"].insert({"name": name, "skill": skill, "parent_id": None,
                                            "confidential": int(confidential), "active": 1}).last_pk
        top_ids[name] = top
        for child in children:
            db["case_categories"].insert({"name": child, "skill": skill, "parent_id": top,
                                          "confidential": int(confidential), "active": 1})
    for category, question, answer in DEMO_KB:
        db["kb_articles"].insert({"category_id": top_ids[category], "question": question,
                                  "answer": answer, "updated_at": "1970-01-01T00:00:00.000Z",
                                  "updated_by": "demo"})


# ---------------------------------------------------------------------------- departments

def list_departments(db: sqlite_utils.Database, active_only: bool = False) -> list[dict[str, Any]]:
    where = "active = 1" if active_only else None
    return list(db["departments"].rows_where(where, order_by="name"))


def save_department(db: sqlite_utils.Database, name: str, dept_id: int | None = None,
                    active: bool = True) -> int:
    name = _clean_name(name)
    try:
        if dept_id is None:
            return db["departments"].insert({"name": name, "active": int(active)}).last_pk
        _get(db, "departments", dept_id)
        db["departments"].update(dept_id, {"name": name, "active": int(active)})
        return dept_id
    except sqlite3.IntegrityError:
        raise InvalidInput(f"department {name!r} already exists") from None


# ---------------------------------------------------------------------------- categories

def list_categories(db: sqlite_utils.Database, active_only: bool = False) -> list[dict[str, Any]]:
    """Flat, ordered as a tree: each top category followed by its subcategories."""
    rows = list(db["case_categories"].rows_where("active = 1" if active_only else None,
                                                 order_by="name"))
    tops = [r for r in rows if r["parent_id"] is None]
    out = []
    for top in tops:
        out.append({**top, "depth": 0, "path": top["name"]})
        for child in rows:
            if child["parent_id"] == top["id"]:
                out.append({**child, "depth": 1, "path": f"{top['name']} / {child['name']}"})
    return out


def category_tree(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    flat = list_categories(db, active_only=True)
    tops = [dict(r, children=[]) for r in flat if r["depth"] == 0]
    by_id = {t["id"]: t for t in tops}
    for r in flat:
        if r["depth"] == 1 and r["parent_id"] in by_id:
            by_id[r["parent_id"]]["children"].append(r)
    return tops


def save_category(db: sqlite_utils.Database, name: str, parent_id: int | None, skill: str | None,
                  confidential: bool, cat_id: int | None = None, active: bool = True) -> int:
    name = _clean_name(name)
    if parent_id is not None:
        parent = _get(db, "case_categories", parent_id)
        if parent["parent_id"] is not None:
            raise InvalidInput("subcategories are one level deep: choose a top category as parent")
        confidential = confidential or bool(parent["confidential"])
        skill = skill or parent["skill"]
    if skill and not list(db["skills"].rows_where("id = ?", [skill])):
        raise InvalidInput(f"no skill {skill!r}")
    row = {"name": name, "parent_id": parent_id, "skill": skill or None,
           "confidential": int(bool(confidential)), "active": int(active)}
    try:
        if cat_id is None:
            return db["case_categories"].insert(row).last_pk
        current = _get(db, "case_categories", cat_id)
        if parent_id == cat_id or (parent_id is not None and current["parent_id"] is None
                                   and list(db["case_categories"].rows_where("parent_id = ?", [cat_id]))):
            raise InvalidInput("a category with subcategories cannot become a subcategory")
        db["case_categories"].update(cat_id, row)
        if row["confidential"]:   # confidentiality is inherited downwards
            db.execute("update case_categories set confidential = 1 where parent_id = ?", [cat_id])
        return cat_id
    except sqlite3.IntegrityError:
        raise InvalidInput(f"category {name!r} already exists there") from None


def category_for_skill(db: sqlite_utils.Database, skill: str | None) -> dict[str, Any] | None:
    if not skill:
        return None
    rows = list(db["case_categories"].rows_where(
        "skill = ? and parent_id is null and active = 1", [skill], order_by="id", limit=1))
    return rows[0] if rows else None


# ---------------------------------------------------------------------------- contacts of written channels

def create_written_contact(db: sqlite_utils.Database, *, channel: str, district: str | None,
                           caller: str | None, caller_name: str | None, skill: str | None,
                           at: str, subject: str | None, body: str | None,
                           to_addr: str | None = None, message_id: str | None = None,
                           queue_task: bool = False,
                           attachments: Iterable[tuple[str, str, bytes]] = ()) -> int:
    """An e-mail, web form, fax or letter becomes a contact (and, for e-mail, a task);
    attachments (file name, content type, bytes) are kept with the message."""
    if channel not in WRITTEN_CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(WRITTEN_CHANNELS)}")
    confidential = _skill_confidential(db, skill)
    with db.conn:
        contact_id = db["contacts"].insert({
            "channel": channel, "district": district, "dialed": to_addr, "caller": caller,
            "caller_name": caller_name, "started_at": at, "menu_path": "[]",
            "language": "sv", "skill": skill, "confidential": int(confidential),
            "overflowed": 0, "enqueued_at": at if queue_task else None,
        }).last_pk
        msg_id = db["contact_messages"].insert({
            "contact_id": contact_id, "direction": "in", "at": at, "from_addr": caller,
            "to_addr": to_addr, "subject": subject, "body": body, "message_id": message_id}).last_pk
        for filename, content_type, data in attachments:
            db.conn.execute(
                "insert into message_attachments (contact_id, message, filename, content_type, "
                "size, data) values (?, ?, ?, ?, ?, ?)",
                [contact_id, msg_id, filename, content_type, len(data), sqlite3.Binary(data)])
        db["contact_events"].insert({"contact_id": contact_id, "at": at, "kind": "received",
                                     "data": json.dumps({"channel": channel}, ensure_ascii=False)})
        if queue_task:
            db["contact_tasks"].insert({
                "contact_id": contact_id, "skill": skill or "switchboard", "district": district,
                "confidential": int(confidential), "state": "queued", "created_at": at})
    return contact_id


def _skill_confidential(db: sqlite_utils.Database, skill: str | None) -> bool:
    if not skill:
        return False
    rows = list(db["skills"].rows_where("id = ?", [skill]))
    return bool(rows and rows[0]["confidential"])


def contact_messages(db: sqlite_utils.Database, contact_id: int) -> list[dict[str, Any]]:
    """The contact's messages, each with `attachments`: [{id, filename, content_type, size}]."""
    messages = list(db["contact_messages"].rows_where("contact_id = ?", [contact_id], order_by="id"))
    files: dict[int, list[dict[str, Any]]] = {}
    for row in db.execute("select id, message, filename, content_type, size from message_attachments "
                          "where contact_id = ? order by id", [contact_id]).fetchall():
        files.setdefault(row[1], []).append(
            {"id": row[0], "filename": row[2], "content_type": row[3], "size": row[4]})
    for m in messages:
        m["attachments"] = files.get(m["id"], [])
    return messages


def attachment(db: sqlite_utils.Database, attachment_id: int) -> dict[str, Any]:
    """One attachment with its bytes and its contact's district and confidentiality."""
    row = db.execute(
        "select a.id, a.contact_id, a.filename, a.content_type, a.size, a.data, c.district, "
        "c.confidential, c.agent from message_attachments a join contacts c on c.id = a.contact_id "
        "where a.id = ?", [attachment_id]).fetchone()
    if row is None:
        raise NotFound(f"no attachment {attachment_id}")
    keys = ("id", "contact_id", "filename", "content_type", "size", "data", "district",
            "confidential", "agent")
    return dict(zip(keys, row))


def add_reply(db: sqlite_utils.Database, contact_id: int, at: str, from_addr: str, to_addr: str,
              subject: str, body: str, message_id: str) -> None:
    db["contact_messages"].insert({"contact_id": contact_id, "direction": "out", "at": at,
                                   "from_addr": from_addr, "to_addr": to_addr, "subject": subject,
                                   "body": body, "message_id": message_id})
    db["contact_events"].insert({"contact_id": contact_id, "at": at, "kind": "replied",
                                 "data": json.dumps({"to": to_addr}, ensure_ascii=False)})


# ---------------------------------------------------------------------------- tasks (e-mail in the ACD)

def queued_tasks(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(db["contact_tasks"].rows_where("state = 'queued'", order_by="created_at, contact_id"))


def assigned_tasks(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(db["contact_tasks"].rows_where("state = 'assigned'", order_by="assigned_at"))


def assign_task(db: sqlite_utils.Database, contact_id: int, agent: str, agent_district: str,
                at: str) -> bool:
    with db.conn:
        cur = db.execute("update contact_tasks set state = 'assigned', assigned_to = ?, assigned_at = ? "
                         "where contact_id = ? and state = 'queued'", [agent, at, contact_id])
        if cur.rowcount != 1:
            return False
        row = db["contacts"].get(contact_id)
        wait = None
        try:
            wait = round((datetime.fromisoformat(at.replace("Z", "+00:00"))
                          - datetime.fromisoformat(row["started_at"].replace("Z", "+00:00"))).total_seconds(), 3)
        except (TypeError, ValueError):
            pass
        db["contacts"].update(contact_id, {"agent": agent, "agent_district": agent_district,
                                           "answered_at": at, "wait_seconds": wait,
                                           "overflowed": int(agent_district != row["district"])})
        db["contact_events"].insert({"contact_id": contact_id, "at": at, "kind": "offered",
                                     "data": json.dumps({"agent": agent, "task": True})})
    return True


def requeue_task(db: sqlite_utils.Database, contact_id: int) -> None:
    db.execute("update contact_tasks set state = 'queued', assigned_to = null, assigned_at = null "
               "where contact_id = ? and state = 'assigned'", [contact_id])


def finish_task(db: sqlite_utils.Database, contact_id: int, at: str) -> None:
    with db.conn:
        db.execute("update contact_tasks set state = 'done', done_at = ? where contact_id = ?",
                   [at, contact_id])
        row = db["contacts"].get(contact_id)
        if row["outcome"] is None:
            db["contacts"].update(contact_id, {"outcome": "answered", "ended_at": at})


def task_for(db: sqlite_utils.Database, contact_id: int) -> dict[str, Any] | None:
    rows = list(db["contact_tasks"].rows_where("contact_id = ?", [contact_id]))
    return rows[0] if rows else None


# ---------------------------------------------------------------------------- cases

def _get(db: sqlite_utils.Database, table: str, pk: int) -> dict[str, Any]:
    try:
        return db[table].get(pk)
    except sqlite_utils.db.NotFoundError:
        raise NotFound(f"{table} {pk}") from None


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not 1 <= len(name) <= 80:
        raise InvalidInput("name: 1–80 characters")
    return name


def save_case(db: sqlite_utils.Database, *, contact_id: int, category_id: int,
              subcategory_id: int | None, note: str, outcome: str, forwarded_to: int | None,
              forward_reason: str | None, eservice: str | None, agent: str | None,
              created_by: str, at: str) -> int:
    """Validate and register the case of a contact (one per contact)."""
    problems = []
    contact = _get(db, "contacts", contact_id)
    if outcome not in OUTCOMES:
        problems.append(f"outcome: one of {', '.join(OUTCOMES)}")
    category = _get(db, "case_categories", category_id) if category_id else None
    if category is None or category["parent_id"] is not None:
        problems.append("category: choose a top category")
    sub = None
    if subcategory_id:
        sub = _get(db, "case_categories", subcategory_id)
        if category and sub["parent_id"] != category["id"]:
            problems.append("subcategory: must belong to the category")
    note = (note or "").replace("\r\n", "\n").strip()
    if len(note) > NOTE_LIMIT:
        problems.append(f"note: at most {NOTE_LIMIT} characters")
    if outcome == "forwarded":
        if not forwarded_to:
            problems.append("forwarded: choose the department")
        else:
            dept = _get(db, "departments", forwarded_to)
            if not dept["active"]:
                problems.append("forwarded: that department is no longer in use")
        forward_reason = (forward_reason or "").strip()
        if not forward_reason:
            problems.append("forwarded: give the reason")
        if len(forward_reason) > 200:
            problems.append("forward reason: at most 200 characters")
    else:
        forwarded_to, forward_reason = None, None
    if outcome == "referred_eservice":
        eservice = (eservice or "").strip()
        if not 1 <= len(eservice) <= 100:
            problems.append("e-service: name the e-service (at most 100 characters)")
    else:
        eservice = None
    if list(db["cases"].rows_where("contact_id = ?", [contact_id])):
        problems.append("this contact already has a case")
    if problems:
        raise InvalidInput("; ".join(problems))
    confidential = bool(contact["confidential"]) or bool(category and category["confidential"])
    with db.conn:
        case_id = db["cases"].insert({
            "contact_id": contact_id, "channel": contact["channel"], "district": contact["district"],
            "category_id": category_id, "subcategory_id": subcategory_id or None, "note": note,
            "outcome": outcome, "forwarded_to": forwarded_to, "forward_reason": forward_reason,
            "eservice": eservice, "agent": agent, "created_by": created_by, "created_at": at,
            "confidential": int(confidential), "caller": contact["caller"],
        }).last_pk
        if confidential and not contact["confidential"]:
            db["contacts"].update(contact_id, {"confidential": 1})
        db["contact_events"].insert({"contact_id": contact_id, "at": at, "kind": "case",
                                     "data": json.dumps({"case": case_id, "outcome": outcome})})
        if outcome == "forwarded":
            db["contact_events"].insert({"contact_id": contact_id, "at": at, "kind": "forwarded",
                                         "data": json.dumps({"department": forwarded_to,
                                                             "reason": forward_reason},
                                                            ensure_ascii=False)})
    return case_id


_CASE_SELECT = """
select c.*, k.name as category, s.name as subcategory, d.name as forwarded_to_name,
       ct.caller_name as caller_name, ct.started_at as contact_started_at
from cases c
left join case_categories k on k.id = c.category_id
left join case_categories s on s.id = c.subcategory_id
left join departments d on d.id = c.forwarded_to
left join contacts ct on ct.id = c.contact_id
"""


def list_cases(db: sqlite_utils.Database, since: str | None = None, limit: int = 1000,
               agent: str | None = None) -> list[dict[str, Any]]:
    where, args = [], []
    if since:
        where.append("c.created_at >= ?")
        args.append(since)
    if agent:
        where.append("c.agent = ?")
        args.append(agent)
    sql = _CASE_SELECT + (" where " + " and ".join(where) if where else "") + \
        " order by c.created_at, c.id limit ?"
    return [_case_out(r) for r in db.query(sql, [*args, limit])]


def get_case(db: sqlite_utils.Database, case_id: int) -> dict[str, Any]:
    rows = list(db.query(_CASE_SELECT + " where c.id = ?", [case_id]))
    if not rows:
        raise NotFound(f"case {case_id}")
    return _case_out(rows[0])


def case_for_contact(db: sqlite_utils.Database, contact_id: int) -> dict[str, Any] | None:
    rows = list(db.query(_CASE_SELECT + " where c.contact_id = ?", [contact_id]))
    return _case_out(rows[0]) if rows else None


def _case_out(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["confidential"] = bool(row["confidential"])
    out["note_purged"] = bool(row["note_purged"])
    return out


def agent_clearance(db: sqlite_utils.Database, agent: str | None) -> tuple[str, ...]:
    if not agent:
        return ()
    rows = list(db["agents"].rows_where("id = ?", [agent]))
    return tuple(json.loads(rows[0]["cleared_for"] or "[]")) if rows else ()


def supervises(user: dict[str, Any] | None, district: str | None) -> bool:
    """A supervisor of this district (the user's `districts`, migration 0010_user_districts)."""
    return bool(user and user.get("role") == "supervisor" and district
                and district in user_districts(user))


def may_read(user: dict[str, Any] | None, district: str | None, cleared_for: Iterable[str]) -> bool:
    """Confidential matters: agents cleared for the district, and supervisors of it."""
    if not user:
        return False
    if user["role"] == "supervisor":
        return supervises(user, district)
    return user["role"] == "agent" and district in tuple(cleared_for)


CASE_PUBLIC_FIELDS = ("id", "contact_id", "channel", "district", "category", "subcategory",
                      "outcome", "forwarded_to", "forwarded_to_name", "forward_reason", "eservice",
                      "confidential", "agent", "created_at")


def case_view(case: dict[str, Any], full: bool) -> dict[str, Any]:
    """What a user sees: everything, or (confidential, not cleared) only that it exists."""
    if full:
        out = {k: case[k] for k in CASE_PUBLIC_FIELDS}
        out.update(note=case["note"], caller=case["caller"], caller_name=case.get("caller_name"),
                   note_purged=case["note_purged"], redacted=False)
        return out
    return {"id": case["id"], "contact_id": case["contact_id"], "channel": case["channel"],
            "district": case["district"], "category": None, "subcategory": None,
            "outcome": None, "forwarded_to": None, "forwarded_to_name": None,
            "forward_reason": None, "eservice": None, "confidential": True,
            "agent": None, "created_at": case["created_at"], "note": None, "caller": None,
            "caller_name": None, "note_purged": case["note_purged"], "redacted": True}


def caller_history(db: sqlite_utils.Database, caller: str | None, before_id: int, since: str,
                   limit: int = 10) -> list[dict[str, Any]]:
    """Earlier contacts from the same number/address, with how they ended."""
    if not caller:
        return []
    rows = db.query(
        "select ct.id, ct.channel, ct.district, ct.started_at, ct.outcome, ct.skill, ct.confidential, "
        "c.outcome as case_outcome, k.name as category from contacts ct "
        "left join cases c on c.contact_id = ct.id left join case_categories k on k.id = c.category_id "
        "where ct.caller = ? and ct.id != ? and ct.started_at >= ? order by ct.started_at desc limit ?",
        [caller, before_id, since, limit])
    return [dict(r, confidential=bool(r["confidential"])) for r in rows]


def contact_row(db: sqlite_utils.Database, contact_id: int) -> dict[str, Any]:
    row = _get(db, "contacts", contact_id)
    row["menu_path"] = json.loads(row["menu_path"] or "[]")
    row["confidential"] = bool(row["confidential"])
    return row


def skill_names(db: sqlite_utils.Database) -> dict[str, str]:
    return {r["id"]: r["name"] for r in db["skills"].rows}


def open_contacts_without_case(db: sqlite_utils.Database, agent: str, since: str) -> list[dict[str, Any]]:
    """Contacts this agent answered recently that still lack a case (the desktop's to-do list)."""
    return list(db.query(
        "select ct.id, ct.channel, ct.caller, ct.district, ct.skill, ct.started_at, ct.confidential "
        "from contacts ct left join cases c on c.contact_id = ct.id "
        "where ct.agent = ? and c.id is null and ct.started_at >= ? and ct.answered_at is not null "
        "order by ct.started_at desc limit 20", [agent, since]))


# ---------------------------------------------------------------------------- knowledge base

_SUFFIXES = sorted((
    "arnas", "ernas", "ornas", "andes", "endes", "heten", "heter", "arna", "erna", "orna", "ande",
    "ende", "aste", "ast", "het", "ens", "ets", "are", "ast", "en", "et", "ar", "er", "or", "na",
    "as", "es", "a", "e", "s",
), key=len, reverse=True)
_WORD = re.compile(r"\w+", re.UNICODE)


def swedish_stem(word: str) -> str:
    """A light Swedish stemmer (common inflection suffixes), keeping at least 3 letters."""
    word = unicodedata.normalize("NFC", word.lower())
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def fts_query(text: str, any_term: bool = False) -> str | None:
    """User text → an FTS5 MATCH expression of quoted stem prefixes (no FTS syntax injection)."""
    terms = []
    for word in _WORD.findall(unicodedata.normalize("NFC", text or ""))[:12]:
        stem = swedish_stem(word)
        if len(stem) >= 2:
            terms.append('"' + stem.replace('"', "") + '"*')
    if not terms:
        return None
    return (" OR " if any_term else " AND ").join(terms)


def kb_search(db: sqlite_utils.Database, text: str, category_id: int | None = None,
              limit: int = 10) -> list[dict[str, Any]]:
    """Articles matching all words (else any word), best first; optionally within a category."""
    for any_term in (False, True):
        match = fts_query(text, any_term)
        if match is None:
            return []
        sql = ("select a.id, a.category_id, a.question, a.answer, k.name as category, "
               "bm25(kb_fts, 5.0, 1.0) as rank from kb_fts join kb_articles a on a.id = kb_fts.rowid "
               "left join case_categories k on k.id = a.category_id where kb_fts match ?")
        args: list[Any] = [match]
        if category_id:
            sql += " and (a.category_id = ? or k.parent_id = ?)"
            args += [category_id, category_id]
        rows = list(db.query(sql + " order by rank limit ?", [*args, limit]))
        if rows:
            return rows
    return []


def kb_for_category(db: sqlite_utils.Database, category_id: int | None, limit: int = 10) -> list[dict[str, Any]]:
    if not category_id:
        return []
    return list(db.query(
        "select a.id, a.category_id, a.question, a.answer, k.name as category from kb_articles a "
        "left join case_categories k on k.id = a.category_id "
        "where a.category_id = ? or k.parent_id = ? order by a.id limit ?",
        [category_id, category_id, limit]))


def list_kb(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(db.query(
        "select a.*, k.name as category from kb_articles a "
        "left join case_categories k on k.id = a.category_id order by k.name, a.question"))


def save_kb(db: sqlite_utils.Database, question: str, answer: str, category_id: int | None,
            by: str, at: str, article_id: int | None = None) -> int:
    question, answer = (question or "").strip(), (answer or "").strip()
    if not 3 <= len(question) <= 300:
        raise InvalidInput("question: 3–300 characters")
    if not 1 <= len(answer) <= 5000:
        raise InvalidInput("answer: 1–5000 characters")
    if category_id:
        _get(db, "case_categories", category_id)
    row = {"question": question, "answer": answer, "category_id": category_id or None,
           "updated_at": at, "updated_by": by}
    if article_id is None:
        return db["kb_articles"].insert(row).last_pk
    _get(db, "kb_articles", article_id)
    db["kb_articles"].update(article_id, row)
    return article_id


def delete_kb(db: sqlite_utils.Database, article_id: int) -> None:
    _get(db, "kb_articles", article_id)
    db["kb_articles"].delete(article_id)


# ---------------------------------------------------------------------------- retention

def pseudonym(key: str, value: str) -> str:
    digest = hmac.new(key.encode(), value.strip().lower().encode(), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:16]


def purge(db: sqlite_utils.Database, cutoff: str, key: str) -> dict[str, int]:
    """Personal data older than `cutoff`: notes, message texts and attachments removed, numbers and addresses
    pseudonymised (the same number gets the same pseudonym, so statistics still work)."""
    counts = {"notes": 0, "contacts": 0, "messages": 0, "cases": 0}
    with db.conn:
        cur = db.execute("update cases set note = null, forward_reason = null, note_purged = 1 "
                         "where created_at < ? and note_purged = 0", [cutoff])
        counts["notes"] = cur.rowcount
        for table, ts, cols, count in (
                ("contacts", "started_at", ("caller",), "contacts"),
                ("cases", "created_at", ("caller",), "cases"),
                ("contact_messages", "at", ("from_addr", "to_addr"), "messages")):
            where = " or ".join(f"({c} is not null and {c} not like '{PSEUDONYM_PREFIX}%')" for c in cols)
            rows = list(db.query(f"select rowid as rid, {', '.join(cols)} from {table} "
                                 f"where {ts} < ? and ({where})", [cutoff]))
            for row in rows:
                update = {c: pseudonym(key, row[c]) for c in cols
                          if row[c] and not str(row[c]).startswith(PSEUDONYM_PREFIX)}
                sets = ", ".join(f"{c} = ?" for c in update)
                db.execute(f"update {table} set {sets} where rowid = ?", [*update.values(), row["rid"]])
            counts[count] = len(rows)
        db.execute("update contacts set caller_name = null where started_at < ? and caller_name is not null",
                   [cutoff])
        cur = db.execute("update contact_messages set subject = null, body = null "
                         "where at < ? and (body is not null or subject is not null)", [cutoff])
        counts["messages"] = max(counts["messages"], cur.rowcount)
        cur = db.execute("delete from message_attachments where message in "
                         "(select id from contact_messages where at < ?)", [cutoff])
        counts["attachments"] = cur.rowcount
    return counts


def export_person(db: sqlite_utils.Database, who: str) -> dict[str, Any]:
    """Everything stored about one number or e-mail address (a data subject's request)."""
    who = (who or "").strip()
    if not 3 <= len(who) <= 200:
        raise InvalidInput("give the phone number or e-mail address")
    contacts = []
    for row in db.query("select * from contacts where caller = ? or lower(caller) = lower(?) "
                        "order by started_at", [who, who]):
        row = dict(row)
        row["menu_path"] = json.loads(row["menu_path"] or "[]")
        row["messages"] = contact_messages(db, row["id"])
        row["case"] = case_for_contact(db, row["id"])
        contacts.append(row)
    return {"person": who, "contacts": contacts}


def cutoff_for(now: datetime, days: int) -> str:
    from .clock import iso
    return iso(now - timedelta(days=days))


# ---------------------------------------------------------------------------- first-contact resolution

def fcr(db: sqlite_utils.Database, since: str | None = None, until: str | None = None) -> dict[str, Any]:
    """First-contact resolution = resolved at first contact / all registered cases, per district,
    category and channel; plus forwards per department."""
    where, args = ["1 = 1"], []
    if since:
        where.append("c.created_at >= ?")
        args.append(since)
    if until:
        where.append("c.created_at < ?")
        args.append(until)
    cond = " and ".join(where)

    def grouped(expr: str) -> list[dict[str, Any]]:
        rows = db.query(
            f"select {expr} as key, count(*) as cases, "
            "sum(c.outcome = 'resolved_first_contact') as resolved from cases c "
            f"left join case_categories k on k.id = c.category_id where {cond} group by key "
            "order by key", args)
        return [dict(r, rate=(r["resolved"] / r["cases"]) if r["cases"] else None) for r in rows]

    total = grouped("'all'")
    forwards = list(db.query(
        "select d.name as department, count(*) as cases from cases c join departments d "
        f"on d.id = c.forwarded_to where {cond} and c.outcome = 'forwarded' group by d.name "
        "order by cases desc, d.name", args))
    return {
        "goal": FCR_GOAL,
        "total": total[0] if total else {"key": "all", "cases": 0, "resolved": 0, "rate": None},
        "by_district": grouped("coalesce(c.district, '–')"),
        "by_category": grouped("coalesce(k.name, '–')"),
        "by_channel": grouped("c.channel"),
        "forwarded": forwards,
    }
