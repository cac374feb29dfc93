"""SQL of the ACD's run-time side (plain functions for `Store.run`); its table changes are
migration steps in `kc.migrations`."""
from __future__ import annotations

from typing import Any

import sqlite_utils

from kc.queries import _contact_out


def open_queued_contacts(db: sqlite_utils.Database, before: str) -> list[dict[str, Any]]:
    """Phone contacts that reached the queue before `before` and are not finished."""
    return [_contact_out(r) for r in db["contacts"].rows_where(
        "channel = 'phone' and outcome is null and enqueued_at is not null and enqueued_at < ?",
        [before], order_by="id")]


def recent_handle_times(db: sqlite_utils.Database, skill: str, wrap_up: float,
                        limit: int = 50) -> list[float]:
    """Talk time plus wrap-up of the skill's last answered contacts (for the estimated wait)."""
    rows = db.execute(
        "select talk_seconds from contacts where skill = ? and outcome = 'answered' "
        "and talk_seconds is not null order by id desc limit ?", [skill, limit]).fetchall()
    return [float(r[0]) + wrap_up for r in rows]
