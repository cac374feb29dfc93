"""Rundgång: residents who come back about the same matter, and contacts passed between units;
and first-contact resolution checked against it.

A contact of the period is *rundgång* when
- **again**: the same resident (the caller's number, or the sender's e-mail address, compared
  without case or surrounding spaces; hidden numbers never) had a contact about the same
  category at most `days` days earlier, whatever that earlier contact's outcome; or
- **passed**: an agent passed it on to another unit (outcome `transferred`).

A contact's *category* is its registered case's top category; without a case, the top category
whose skill is the contact's skill (the matter the menu sent it to); else the skill itself.

First-contact resolution: of the answered contacts of the period, those whose case says
"resolved at first contact" and whose resident did not come back about the same category
within `days` days. A contact without a case is never counted as resolved; a resolved matter
that comes back is listed as such.

Pure SQL reads and arithmetic over a `sqlite_utils.Database`; who may see the list behind a
number is decided by the caller (the web layer, with `cases.access`).
"""
from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlite_utils

from reporting.definitions import Period, Scope, _iso

RESOLVED = "resolved_first_contact"


def _parse(stamp: str) -> datetime:
    value = stamp[:-1] + "+00:00" if stamp.endswith("Z") else stamp
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _contacts(db: sqlite_utils.Database, start: str, end: str) -> list[dict[str, Any]]:
    has_cases = db["cases"].exists()
    case_cols = ("s.outcome as case_outcome, coalesce(k.parent_id, k.id) as case_category"
                 if has_cases else "null as case_outcome, null as case_category")
    case_join = ("left join cases s on s.contact_id = c.id "
                 "left join case_categories k on k.id = s.category_id" if has_cases else "")
    skill_category = ("(select min(t.id) from case_categories t where t.skill = c.skill "
                      "and t.parent_id is null)" if db["case_categories"].exists() else "null")
    sql = f"""
        select c.id, c.started_at, c.district, c.skill, c.channel, c.outcome, c.answered_at,
               c.confidential, lower(trim(coalesce(c.caller, ''))) as resident,
               {case_cols}, {skill_category} as skill_category
        from contacts c {case_join}
        where c.started_at >= ? and c.started_at < ?
        order by c.started_at, c.id"""
    cursor = db.execute(sql, [start, end])
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r)) for r in cursor.fetchall()]
    names_by_id = ({r[0]: r[1] for r in db.execute("select id, name from case_categories")}
                   if db["case_categories"].exists() else {})
    for r in rows:
        cat = r["case_category"] or r["skill_category"]
        r["category"] = names_by_id.get(cat, cat) if cat is not None else r["skill"]
        r["matter"] = f"c{cat}" if cat is not None else (f"s{r['skill']}" if r["skill"] else None)
        r["at"] = _parse(r["started_at"])
    return rows


def _in_scope(row: dict[str, Any], scope: Scope) -> bool:
    return ((scope.district_filter is None or row["district"] == scope.district_filter)
            and (scope.skill_filter is None or row["skill"] == scope.skill_filter))


def _history(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(resident, matter) -> that resident's contacts about it, oldest first."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["resident"] and r["resident"] != "anonymous" and r["matter"]:
            out[(r["resident"], r["matter"])].append(r)
    return out


def analyse(db: sqlite_utils.Database, period: Period, scope: Scope, days: int) -> dict[str, Any]:
    """Rundgång and first-contact resolution for the period's contacts in scope.

    Returns `{"days", "rundgang": {"total", "again", "passed", "by_district", "by_category",
    "by_channel", "contacts": [...]}, "first_contact_resolution": {"answered", "resolved",
    "resolved_but_came_back", "rate", "contacts": [...]}}`. Each listed contact carries its
    district and `confidential`, for the caller to filter by who may see it."""
    window = timedelta(days=days)
    rows = _contacts(db, _iso(period.start - window), _iso(period.end + window))
    history = _history(rows)
    keys = {k: [r["at"] for r in v] for k, v in history.items()}
    start, end = period.start, period.end
    mine = [r for r in rows if start <= r["at"] < end and _in_scope(r, scope)]

    listed: list[dict[str, Any]] = []
    counts = {"district": defaultdict(int), "category": defaultdict(int), "channel": defaultdict(int)}
    again_n = passed_n = 0
    fcr_answered = fcr_resolved = 0
    came_back: list[dict[str, Any]] = []
    for r in mine:
        key = (r["resident"], r["matter"])
        earlier = later = None
        if key in history:
            times, same = keys[key], history[key]
            i = bisect_left(times, r["at"])
            while i < len(same) and same[i]["id"] != r["id"]:
                i += 1
            if i > 0 and r["at"] - same[i - 1]["at"] <= window:
                earlier = same[i - 1]
            if i + 1 < len(same) and same[i + 1]["at"] - r["at"] <= window:
                later = same[i + 1]
        passed = r["outcome"] == "transferred"
        if earlier is not None or passed:
            again_n += earlier is not None
            passed_n += passed
            for by in counts:
                counts[by][r[by] or "–"] += 1
            listed.append(_item(r, "again" if earlier is not None else "passed",
                                earlier, passed))
        if r["answered_at"]:
            fcr_answered += 1
            if r["case_outcome"] == RESOLVED:
                if later is None:
                    fcr_resolved += 1
                else:
                    came_back.append({**_item(r, "came_back", None, passed),
                                      "came_back_contact": later["id"],
                                      "came_back_at": later["started_at"]})
    return {
        "days": days,
        "rundgang": {"total": len(listed), "again": again_n, "passed": passed_n,
                     **{f"by_{by}": dict(sorted(c.items())) for by, c in counts.items()},
                     "contacts": listed},
        "first_contact_resolution": {
            "answered": fcr_answered, "resolved": fcr_resolved,
            "resolved_but_came_back": len(came_back),
            "rate": round(100.0 * fcr_resolved / fcr_answered, 1) if fcr_answered else None,
            "contacts": came_back},
    }


def _item(r: dict[str, Any], why: str, earlier: dict[str, Any] | None, passed: bool) -> dict[str, Any]:
    return {"contact": r["id"], "started_at": r["started_at"], "district": r["district"],
            "category": r["category"], "channel": r["channel"], "why": why, "passed": passed,
            "earlier_contact": earlier["id"] if earlier else None,
            "earlier_outcome": (earlier["case_outcome"] or earlier["outcome"]) if earlier else None,
            "confidential": bool(r["confidential"]), "resident": r["resident"]}
