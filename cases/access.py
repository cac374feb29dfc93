"""Who may see what of a confidential matter: agents cleared for its district and supervisors
of the district read it in full; everyone else sees only that it exists."""
from __future__ import annotations

import json
from typing import Any, Iterable

import sqlite_utils

from kc.web_store import user_districts

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
