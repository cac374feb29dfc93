"""Waiting too long: the queues with a caller waiting past the queue's limit, for the people
who should act on it — a supervisor for the districts they supervise, an agent for the
queues they work today (their district, their skills). Shown in the header of every page
(the desk included) from the wallboard's stream (`GET /wallboard/events?only=alerts`); the
browser ticks the wait and raises the alert when the limit is passed
(`static/wait_alerts.js`, which the wallboard's own alert list shares).
"""
from __future__ import annotations

from typing import Any, Iterable

from cases.access import supervises
from kc.i18n import gettext

WATCHERS = ("supervisor", "agent")
FIELDS = ("name", "district", "district_name", "skill", "skill_name", "longest_wait_since",
          "alert_seconds")


def watched(queues: Iterable[dict[str, Any]], user: dict[str, Any] | None,
            works: tuple[str, frozenset[str]] | None) -> list[dict[str, Any]]:
    """The snapshot's queues this user watches that have a limit and a caller waiting.
    `works` is an agent's (district today, skills); None for a user with no agent."""
    if not user or user.get("role") not in WATCHERS:
        return []

    def mine(q: dict[str, Any]) -> bool:
        if user["role"] == "supervisor":
            return supervises(user, q["district"])
        return works is not None and q["district"] == works[0] and q["skill"] in works[1]
    return [{k: q[k] for k in FIELDS} for q in queues
            if q.get("alert_seconds") and q.get("longest_wait_since") is not None and mine(q)]


def payload(snapshot: dict[str, Any], user: dict[str, Any] | None,
            works: tuple[str, frozenset[str]] | None) -> dict[str, Any]:
    """What the header's stream sends: the server's time and the watched queues only."""
    return {"now": snapshot["now"], "queues": watched(snapshot["queues"], user, works)}


def words() -> dict[str, str]:
    """The alert's sentence in the page's language (the header's and the wallboard's)."""
    return {"too_long": gettext("Waiting too long: %(queue)s %(wait)s (limit %(limit)s s)")}


def shown(user: dict[str, Any] | None, here: str) -> bool:
    """Does this page's header carry the alerts? (The wallboard lists them itself.)"""
    return bool(user and user.get("role") in WATCHERS and not here.startswith("/wallboard"))
