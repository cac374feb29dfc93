"""Every transfer of a caller, with its outcome (table `transfers`, migration
``0024_switchboard_callbacks``): blind to a queue or a number, or attended through the
directory. Module-level functions for `Store.record` / `Store.insert_record`.

Outcomes: `transferred` (a blind transfer handed the caller on), `consulting` (an attended
transfer's consultation is under way), `completed` (the caller reached the person),
`not_completed` (the consultation ended and the caller stayed with the agent), `failed`.
"""
from __future__ import annotations

from typing import Any

import sqlite_utils

OUTCOMES = ("transferred", "consulting", "completed", "not_completed", "failed")


def add_transfer(db: sqlite_utils.Database, **fields: Any) -> None:
    names = [n for n in ("id", "contact_id", "agent", "kind", "target", "target_name",
                         "started_at", "ended_at", "outcome") if n in fields]
    db.conn.execute(f"insert into transfers ({', '.join(names)}) values "
                    f"({', '.join('?' * len(names))})", [fields[n] for n in names])


def end_transfer(db: sqlite_utils.Database, transfer_id: int, outcome: str, at: str) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown transfer outcome {outcome!r}")
    db.conn.execute("update transfers set outcome = ?, ended_at = ? where id = ?",
                    [outcome, at, transfer_id])


def for_contact(db: sqlite_utils.Database, contact_id: int) -> list[dict[str, Any]]:
    return list(db["transfers"].rows_where("contact_id = ?", [contact_id], order_by="id"))
