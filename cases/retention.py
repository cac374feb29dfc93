"""Retention and a person's data: personal data older than the retention time is removed or
pseudonymised, and everything stored about one number or address can be exported."""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from kc.clock import iso
from kc.errors import InvalidInput

from .messages import contact_messages
from .records import case_for_contact

PSEUDONYM_PREFIX = "pseud:"


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
    return iso(now - timedelta(days=days))
