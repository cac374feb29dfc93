"""Contacts of the written channels (e-mail, web form, fax, letter): each becomes a contact with
its messages and their attachments; e-mail and web contacts are queued as tasks.

Plain SQL functions over a `sqlite_utils.Database`, run by `Store.run` in the writer thread.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import sqlite_utils

from kc import organisation
from kc.errors import InvalidInput, NotFound

WRITTEN_CHANNELS = ("email", "web", "fax", "post")
MANUAL_CHANNELS = ("fax", "post")


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
            task_skill = skill or _fallback_skill(db)
            # its place in the queue, behind the written contacts already waiting there
            ahead = db.execute("select count(*) from contact_tasks where state = 'queued' "
                               "and skill is ? and district is ?", [task_skill, district]).fetchone()[0]
            db["contact_tasks"].insert({
                "contact_id": contact_id, "skill": task_skill, "district": district,
                "confidential": int(confidential), "state": "queued", "created_at": at})
            db.conn.execute("update contacts set queue_position = ? where id = ?",
                            [ahead + 1, contact_id])
            db["contact_events"].insert({
                "contact_id": contact_id, "at": at, "kind": "enqueued",
                "data": json.dumps({"skill": task_skill, "queue": f"{task_skill}@{district}",
                                    "position": ahead + 1})})
    return contact_id


def _fallback_skill(db: sqlite_utils.Database) -> str | None:
    """Where a written matter without a skill waits: the organisation's fallback skill."""
    return organisation.settings(db).get("keyword_fallback")


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


def mark_handled(db: sqlite_utils.Database, contact_id: int, agent: str, agent_district: str,
                 at: str) -> None:
    """A contact registered by hand (fax, letter) is handled, and ended, by that agent."""
    row = db["contacts"].get(contact_id)
    db["contacts"].update(contact_id, {"agent": agent, "agent_district": agent_district,
                                       "answered_at": at, "ended_at": at, "outcome": "answered",
                                       "overflowed": int(agent_district != row["district"])})


def drop_contact(db: sqlite_utils.Database, contact_id: int) -> None:
    """Undo `create_written_contact` (its case could not be registered)."""
    for table in ("message_attachments", "contact_messages", "contact_events", "contact_tasks"):
        db.execute(f"delete from {table} where contact_id = ?", [contact_id])
    db.execute("delete from contacts where id = ?", [contact_id])


# ---------------------------------------------------------------------------- categorising

@dataclass(frozen=True)
class Categoriser:
    """Which skill a written matter goes to: the one whose keywords occur most often in its
    text, else `fallback`. The keywords are data (given by the composition root)."""
    keywords: Mapping[str, tuple[str, ...]]
    fallback: str

    def __call__(self, text: str) -> str:
        low = (text or "").lower()
        scores = {skill: sum(low.count(word) for word in words)
                  for skill, words in self.keywords.items()}
        if not scores:
            return self.fallback
        best = max(scores, key=lambda s: scores[s])
        return best if scores[best] > 0 else self.fallback
