"""Storage of opening hours and after-hours requests (plain functions for `Store.run`).

`schedules`: one JSON body per district (see `schedules.schedule.Schedule.from_dict`; the
`after_hours` key holds the routing policy, `schedules.hours.AfterHoursPolicy`). `after_hours_requests`: what callers left when
nobody was open -- a voice message (recording path) or a callback request -- due at the next
opening, plus the calls routed to another district, one row per contact.
"""
from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from kc.errors import NotFound
from schedules.hours import OpeningHours


# ---------------------------------------------------------------- schedules

def get_body(db: sqlite_utils.Database, district: str) -> dict[str, Any] | None:
    rows = list(db.query("select body from schedules where district = ?", [district]))
    return json.loads(rows[0]["body"]) if rows else None


def all_bodies(db: sqlite_utils.Database) -> dict[str, dict[str, Any]]:
    return {r["district"]: json.loads(r["body"]) for r in db["schedules"].rows}


def district_names(db: sqlite_utils.Database) -> dict[str, str]:
    return {r["id"]: r["name"] for r in db["districts"].rows_where(order_by="id")}


def load_hours(db: sqlite_utils.Database) -> OpeningHours:
    """Every district's opening hours and after-hours policy, parsed (see `schedules.hours`)."""
    return OpeningHours.from_stored(district_names(db), all_bodies(db))


def require_district(db: sqlite_utils.Database, district: str) -> str:
    rows = list(db.query("select name from districts where id = ?", [district]))
    if not rows:
        raise NotFound(f"no district {district!r}")
    return rows[0]["name"]


def put_body(db: sqlite_utils.Database, district: str, body: dict[str, Any], by: str,
             at: str) -> dict[str, Any] | None:
    """Replace the district's schedule; returns the previous body (for the audit log)."""
    require_district(db, district)
    before = get_body(db, district)
    db["schedules"].upsert({"district": district, "body": json.dumps(body, ensure_ascii=False),
                            "updated_at": at, "updated_by": by}, pk="district")
    return before


# ---------------------------------------------------------------- after-hours requests

def add_request(db: sqlite_utils.Database, **fields: Any) -> int:
    return db["after_hours_requests"].insert(fields).last_pk


def list_requests(db: sqlite_utils.Database, due_before: str | None = None,
                  include_handled: bool = True, limit: int = 500) -> list[dict[str, Any]]:
    where, args = ["kind in ('voice_message', 'callback')"], []
    if due_before:
        where.append("(due_at is null or due_at <= ?)")
        args.append(due_before)
    if not include_handled:
        where.append("handled_at is null")
    rows = db.query(
        "select r.*, c.caller, c.caller_name, c.district as contact_district, c.dialed, "
        "c.confidential, cb.outcome as callback_outcome "
        "from after_hours_requests r join contacts c on c.id = r.contact_id "
        "left join contacts cb on cb.id = r.callback_contact "
        f"where {' and '.join(where)} order by r.due_at, r.id limit ?", [*args, limit])
    return [dict(r) for r in rows]


def mark_handled(db: sqlite_utils.Database, request_id: int, by: str, at: str) -> dict[str, Any]:
    try:
        row = db["after_hours_requests"].get(request_id)
    except sqlite_utils.db.NotFoundError:
        raise NotFound(f"no after-hours request {request_id}") from None
    db["after_hours_requests"].update(request_id, {"handled_at": at, "handled_by": by})
    return {**row, "handled_at": at, "handled_by": by}


def get_request(db: sqlite_utils.Database, request_id: int) -> dict[str, Any]:
    rows = list(db.query(
        "select r.*, c.caller, c.channel, c.skill, c.agent as contact_agent, c.confidential "
        "from after_hours_requests r join contacts c on c.id = r.contact_id where r.id = ?",
        [request_id]))
    if not rows:
        raise NotFound(f"no after-hours request {request_id}")
    return dict(rows[0])


def due_for_districts(db: sqlite_utils.Database, districts: list[str], now: str,
                      limit: int = 100) -> list[dict[str, Any]]:
    """Open voice messages and call-back requests of these districts that are due by `now`
    (the agent desktop; whether each district is open now is the caller's check)."""
    if not districts:
        return []
    marks = ", ".join("?" for _ in districts)
    rows = db.query(
        "select r.id, r.contact_id, r.district, r.kind, r.recording, r.callback_number, "
        "r.language, r.created_at, r.due_at, c.caller, c.skill, c.confidential "
        "from after_hours_requests r join contacts c on c.id = r.contact_id "
        f"where r.kind in ('voice_message', 'callback') and r.handled_at is null "
        "and r.callback_contact is null "
        f"and r.district in ({marks}) and (r.due_at is null or r.due_at <= ?) "
        "order by coalesce(r.due_at, r.created_at), r.id limit ?", [*districts, now, limit])
    return [dict(r) for r in rows]


def pending_callbacks(db: sqlite_utils.Database, limit: int = 200) -> list[dict[str, Any]]:
    """After-hours call-back requests nobody has taken and the ACD has not queued yet, in
    order of request (whether each district is open now is the caller's check)."""
    rows = db.query(
        "select r.id, r.contact_id, r.district, r.callback_number, r.language, r.created_at, "
        "c.caller, c.caller_name, c.skill, c.dialed from after_hours_requests r "
        "join contacts c on c.id = r.contact_id "
        "where r.kind = 'callback' and r.handled_at is null and r.callback_contact is null "
        "order by r.created_at, r.id limit ?", [limit])
    return [dict(r) for r in rows]


def link_callback(db: sqlite_utils.Database, request_id: int, contact_id: int, at: str) -> bool:
    """The ACD queued the call-back of an after-hours request as `contact_id` (created just
    before, `Store.insert_record`): the request points at it and both contacts say so, in one
    transaction. False if the request was taken or queued meanwhile: the new contact, never
    dialled and without events, is removed again."""
    with db.conn:
        rows = list(db.query("select contact_id, callback_number from after_hours_requests "
                             "where id = ? and kind = 'callback' and handled_at is null "
                             "and callback_contact is null", [request_id]))
        if not rows:
            db.conn.execute("delete from contacts where id = ? and enqueued_at is null "
                            "and not exists (select 1 from contact_events e "
                            "where e.contact_id = contacts.id)", [contact_id])
            return False
        req = rows[0]
        db.conn.execute("update after_hours_requests set callback_contact = ? where id = ?",
                        [contact_id, request_id])
        for cid, kind, data in (
                (contact_id, "callback_requested", {"after_hours_request": request_id,
                                                    "from_contact": req["contact_id"],
                                                    "number": req["callback_number"]}),
                (req["contact_id"], "callback_queued", {"callback_contact": contact_id})):
            db.conn.execute("insert into contact_events (contact_id, at, kind, data) "
                            "values (?, ?, ?, ?)", [cid, at, kind, json.dumps(data)])
    return True


def handled_by(db: sqlite_utils.Database, contact_id: int, username: str) -> bool:
    """Did this user take the contact's after-hours request (so may register its case)?"""
    return bool(list(db.query(
        "select 1 from after_hours_requests where contact_id = ? and handled_by = ? "
        "and kind in ('voice_message', 'callback') limit 1", [contact_id, username])))


def last_language(db: sqlite_utils.Database, caller: str | None) -> str | None:
    """The language this caller chose last time (so the closed message speaks it)."""
    if not caller:
        return None
    rows = list(db.query(
        "select language from contacts where caller = ? and language is not null "
        "order by id desc limit 1", [caller]))
    return rows[0]["language"] if rows else None
