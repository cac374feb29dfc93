"""Cases: the matter registered for a contact (one per contact), with its outcome, and the
readers the desktop needs around it (the contact, the caller's history, the agent's to-do list).

Plain SQL functions over a `sqlite_utils.Database`, run by `Store.run` in the writer thread.
"""
from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from kc.errors import InvalidInput, NotFound

OUTCOMES = ("resolved_first_contact", "forwarded", "referred_eservice", "visit_booked")
NOTE_LIMIT = 4000


def get_row(db: sqlite_utils.Database, table: str, pk: int) -> dict[str, Any]:
    """One row by primary key, or NotFound."""
    try:
        return db[table].get(pk)
    except sqlite_utils.db.NotFoundError:
        raise NotFound(f"{table} {pk}") from None


def save_case(db: sqlite_utils.Database, *, contact_id: int, category_id: int,
              subcategory_id: int | None, note: str, outcome: str, forwarded_to: int | None,
              forward_reason: str | None, eservice: str | None, agent: str | None,
              created_by: str, at: str) -> int:
    """Validate and register the case of a contact (one per contact)."""
    problems = []
    contact = get_row(db, "contacts", contact_id)
    if outcome not in OUTCOMES:
        problems.append(f"outcome: one of {', '.join(OUTCOMES)}")
    category = get_row(db, "case_categories", category_id) if category_id else None
    if category is None or category["parent_id"] is not None:
        problems.append("category: choose a top category")
    sub = None
    if subcategory_id:
        sub = get_row(db, "case_categories", subcategory_id)
        if category and sub["parent_id"] != category["id"]:
            problems.append("subcategory: must belong to the category")
    note = (note or "").replace("\r\n", "\n").strip()
    if len(note) > NOTE_LIMIT:
        problems.append(f"note: at most {NOTE_LIMIT} characters")
    if outcome == "forwarded":
        if not forwarded_to:
            problems.append("forwarded: choose the department")
        else:
            dept = get_row(db, "departments", forwarded_to)
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
    row = get_row(db, "contacts", contact_id)
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
