"""Retention and a person's data: personal data older than the retention time is removed or
pseudonymised, and everything stored about one number or address can be exported."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path
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


# Every column that holds a resident's personal data, and what retention does to it once the
# row is older than the retention time. `tests/fast/test_retention.py` lists every column of
# the schema: each one is either here or declared not personal there, so a new column cannot
# be forgotten.
PSEUDONYMISE = "pseudonymise"   # the same value gets the same pseudonym (statistics still work)
REMOVE = "remove"               # set to null
SCRUB = "scrub"                 # text/JSON: numbers and addresses inside it pseudonymised
DELETE_ROW = "delete row"       # the whole row goes (files sent with an e-mail)
DELETE_FILE = "delete file"     # a path to a recording: the file is deleted, the column nulled

PERSONAL_DATA: dict[str, dict[str, str]] = {
    "contacts": {"caller": PSEUDONYMISE, "caller_name": REMOVE, "callback_number": PSEUDONYMISE},
    "contact_events": {"data": SCRUB},
    "cases": {"caller": PSEUDONYMISE, "note": REMOVE, "forward_reason": REMOVE},
    "contact_messages": {"from_addr": PSEUDONYMISE, "to_addr": PSEUDONYMISE, "subject": REMOVE,
                         "body": REMOVE, "message_id": REMOVE},
    "message_attachments": {"filename": DELETE_ROW, "content_type": DELETE_ROW,
                            "size": DELETE_ROW, "data": DELETE_ROW},
    "after_hours_requests": {"callback_number": PSEUDONYMISE, "recording": DELETE_FILE},
    "audit_log": {"target": SCRUB, "before": SCRUB, "after": SCRUB},
}
# How old a row is: its own time column, or its parent's.
AGE = {
    "contacts": "started_at", "contact_events": "at", "cases": "created_at",
    "contact_messages": "at", "after_hours_requests": "created_at", "audit_log": "at",
    "message_attachments": "(select m.at from contact_messages m where m.id = message_attachments.message)",
}
# A phone number (5+ digits, with + - or spaces) or an e-mail address, inside any text.
_PERSONAL_IN_TEXT = re.compile(r"[^\s\"'<>(),;:@]{1,64}@[A-Za-z0-9.-]+\.[A-Za-z]{2,24}"
                               r"|\+?\d[\d -]{3,20}\d")


def scrub(key: str, text: str) -> str:
    """Numbers and addresses inside a text (or JSON) replaced by their pseudonyms."""
    def swap(m: re.Match[str]) -> str:
        value = m.group(0)
        digits = re.sub(r"\D", "", value)
        if "@" not in value and (len(digits) < 6 or re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", value)):
            return value       # a short number, a date: not a phone number
        return pseudonym(key, value if "@" in value else digits)
    return _PERSONAL_IN_TEXT.sub(swap, text)


def purge(db: sqlite_utils.Database, cutoff: str, key: str,
          recordings_dir: Path | None = None) -> dict[str, int]:
    """Personal data older than `cutoff`, every column of PERSONAL_DATA: removed, pseudonymised
    or scrubbed; attachments and voice-message recordings deleted."""
    counts: dict[str, int] = {}
    with db.conn:
        cur = db.execute("update cases set note_purged = 1 where created_at < ? and note_purged = 0",
                         [cutoff])
        counts["notes"] = cur.rowcount
        for table, columns in PERSONAL_DATA.items():
            age = AGE[table]
            if DELETE_ROW in columns.values():
                counts[table] = db.execute(f"delete from {table} where {age} < ?", [cutoff]).rowcount
                continue
            where = " or ".join(f"{c} is not null" for c in columns)
            rows = list(db.query(f"select rowid as rid, {', '.join(columns)} from {table} "
                                 f"where {age} < ? and ({where})", [cutoff]))
            changed = 0
            for row in rows:
                update = {}
                for column, action in columns.items():
                    value = row[column]
                    if value is None:
                        continue
                    if action == PSEUDONYMISE and not str(value).startswith(PSEUDONYM_PREFIX):
                        update[column] = pseudonym(key, str(value))
                    elif action == REMOVE:
                        update[column] = None
                    elif action == SCRUB and scrub(key, str(value)) != value:
                        update[column] = scrub(key, str(value))
                    elif action == DELETE_FILE:
                        _delete_recording(Path(str(value)), recordings_dir)
                        update[column] = None
                if update:
                    sets = ", ".join(f"{c} = ?" for c in update)
                    db.execute(f"update {table} set {sets} where rowid = ?",
                               [*update.values(), row["rid"]])
                    changed += 1
            counts[table] = changed
    # the names the earlier counts had
    counts["contacts"] = counts.get("contacts", 0)
    counts["messages"] = counts.pop("contact_messages", 0)
    counts["attachments"] = counts.pop("message_attachments", 0)
    return counts


def _delete_recording(path: Path, recordings_dir: Path | None) -> None:
    """A voice message's file, only from inside the recordings directory."""
    if recordings_dir is None:
        return
    try:
        resolved = path.resolve()
        if resolved.is_relative_to(recordings_dir.resolve()):
            resolved.unlink(missing_ok=True)
    except OSError:
        pass


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
        row["events"] = [dict(e) for e in db.query(
            "select at, kind, data from contact_events where contact_id = ? order by id", [row["id"]])]
        contacts.append(row)
    seen = {c["id"] for c in contacts}
    after_hours = [dict(r) for r in db.query(
        "select * from after_hours_requests where callback_number = ? or contact_id in "
        "(select id from contacts where caller = ? or callback_number = ?) order by id",
        [who, who, who])]
    for extra in db.query("select * from contacts where callback_number = ? order by started_at", [who]):
        if extra["id"] not in seen:       # asked to be called back on this number
            contacts.append(dict(extra))
    return {"person": who, "contacts": contacts, "after_hours": after_hours}


def cutoff_for(now: datetime, days: int) -> str:
    return iso(now - timedelta(days=days))
