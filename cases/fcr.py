"""First-contact resolution: the share of registered cases resolved at the first contact,
per district, category and channel, against the goal; and forwards per department."""
from __future__ import annotations

from typing import Any

import sqlite_utils

FCR_GOAL = 0.70


def fcr(db: sqlite_utils.Database, since: str | None = None, until: str | None = None) -> dict[str, Any]:
    """First-contact resolution = resolved at first contact / all registered cases, per district,
    category and channel; plus forwards per department."""
    where, args = ["1 = 1"], []
    if since:
        where.append("c.created_at >= ?")
        args.append(since)
    if until:
        where.append("c.created_at < ?")
        args.append(until)
    cond = " and ".join(where)

    def grouped(expr: str) -> list[dict[str, Any]]:
        rows = db.query(
            f"select {expr} as key, count(*) as cases, "
            "sum(c.outcome = 'resolved_first_contact') as resolved from cases c "
            f"left join case_categories k on k.id = c.category_id where {cond} group by key "
            "order by key", args)
        return [dict(r, rate=(r["resolved"] / r["cases"]) if r["cases"] else None) for r in rows]

    total = grouped("'all'")
    forwards = list(db.query(
        "select d.name as department, count(*) as cases from cases c join departments d "
        f"on d.id = c.forwarded_to where {cond} and c.outcome = 'forwarded' group by d.name "
        "order by cases desc, d.name", args))
    return {
        "goal": FCR_GOAL,
        "total": total[0] if total else {"key": "all", "cases": 0, "resolved": 0, "rate": None},
        "by_district": grouped("coalesce(c.district, '–')"),
        "by_category": grouped("coalesce(k.name, '–')"),
        "by_channel": grouped("c.channel"),
        "forwarded": forwards,
    }
