"""`kc report verify`: every figure of a period recomputed from the raw contacts and events and
compared with the report the hourly cache gives (`reporting.reports`); any difference is listed.

The cache is refreshed first, as every report does; a difference then means a change reached
the contacts without marking its hour (a missed trigger, a write around the store), or a bug.
"""
from __future__ import annotations

from typing import Any

import sqlite_utils

from reporting.definitions import BREAKDOWNS, Period, Scope
from reporting.reports import figures, queue_targets


def _rows(result: Any, by: str | None) -> dict[Any, dict[str, Any]]:
    return {"": result} if by is None else {r[by]: r for r in result}


def verify(db: sqlite_utils.Database, period: Period, rundgang_days: int) -> tuple[int, list[str]]:
    """(figures compared, differences as text): the summary and every breakdown, each figure of
    each row, cached against recomputed."""
    targets = queue_targets(db)
    compared, problems = 0, []
    for by in (None, *BREAKDOWNS):
        cached = _rows(figures(db, period, Scope(), by, targets, True, rundgang_days), by)
        fresh = _rows(figures(db, period, Scope(), by, targets, False, rundgang_days), by)
        for key in sorted(set(cached) | set(fresh), key=lambda k: (k is None, str(k))):
            a, b = cached.get(key, {}), fresh.get(key, {})
            for name in sorted(set(a) | set(b)):
                if name == by:
                    continue
                compared += 1
                if a.get(name) != b.get(name):
                    where = "summary" if by is None else f"{by} {key}"
                    problems.append(f"{where}: {name} is {a.get(name)!r} in the report, "
                                    f"{b.get(name)!r} from the contacts")
    return compared, problems
