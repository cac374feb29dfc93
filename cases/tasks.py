"""The queue of written contacts waiting for an agent (`contact_tasks`): queued, assigned,
done. The ACD's task runner (`acd.tasks.TaskRunner`) decides who gets which."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlite_utils

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
