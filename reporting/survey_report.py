"""The survey after a call, reported per called district, queue, agent or case category.

Of the contacts an agent answered in the period (and scope): how many were asked, how many of
those answered at least one question (the share who answered), and the mean score (1-5) of each
question and of all. Pure SQL over the store (`contact_surveys`, `survey_answers`, `kc.surveys`).
"""
from __future__ import annotations

from typing import Any

import sqlite_utils

from kc.errors import InvalidInput
from kc.surveys import MAX_QUESTIONS
from reporting.definitions import Period, Scope

SURVEY_BREAKDOWNS = ("district", "queue", "agent", "category")

_KEY = {
    "district": "c.district",
    "queue": "c.skill || '@' || c.district",
    "agent": "coalesce(c.agent, '')",
    "category": "coalesce(cat.name, '')",
}

COLUMNS = ("answered_calls", "asked", "responded", "response_rate", "mean_score",
           *(f"q{n}_mean" for n in range(1, MAX_QUESTIONS + 1)),
           *(f"q{n}_answers" for n in range(1, MAX_QUESTIONS + 1)))

DEFINITIONS = {
    "answered_calls": "contacts an agent answered in the period",
    "asked": "of those, callers who heard the survey (agreed in the menu, or the queue's n-th caller)",
    "responded": "of those asked, callers who gave at least one score",
    "response_rate": "responded / asked, in percent (the share who answered)",
    "mean_score": "the mean of every score given (1-5, 5 best)",
    "qN_mean": "the mean score of question N; qN_answers how many answered it",
}


def columns(by: str) -> list[str]:
    return [by, *COLUMNS]


def survey_table(db: sqlite_utils.Database, period: Period, scope: Scope,
                 by: str | None = None) -> list[dict[str, Any]]:
    """One row per `by` value (or one row for all when `by` is None), `COLUMNS` each."""
    if by is not None and by not in SURVEY_BREAKDOWNS:
        raise InvalidInput(f"by must be one of {', '.join(SURVEY_BREAKDOWNS)}")
    key = _KEY[by] if by else "''"
    where = ["c.started_at >= ?", "c.started_at < ?", "c.answered_at is not null"]
    args: list[Any] = [period.start_iso, period.end_iso]
    if scope.district_filter:
        where.append("c.district = ?")
        args.append(scope.district_filter)
    if scope.skill_filter:
        where.append("c.skill = ?")
        args.append(scope.skill_filter)
    per_q = ", ".join(f"avg(case when a.question = {n} then a.score end), "
                      f"count(case when a.question = {n} then 1 end)"
                      for n in range(1, MAX_QUESTIONS + 1))
    sql = (f"select {key} as k, count(distinct c.id), count(distinct s.contact_id), "
           f"count(distinct a.contact_id), avg(a.score), {per_q} "
           "from contacts c left join contact_surveys s on s.contact_id = c.id "
           "left join survey_answers a on a.contact_id = c.id "
           "left join cases cs on cs.contact_id = c.id "
           "left join case_categories cat on cat.id = cs.category_id "
           f"where {' and '.join(where)} group by k order by k")
    rows = []
    for r in db.execute(sql, args).fetchall():
        asked, responded = r[2], r[3]
        row: dict[str, Any] = {"answered_calls": r[1], "asked": asked, "responded": responded,
                               "response_rate": round(100.0 * responded / asked, 1) if asked else None,
                               "mean_score": _round(r[4])}
        for n in range(1, MAX_QUESTIONS + 1):
            row[f"q{n}_mean"] = _round(r[3 + 2 * n])
            row[f"q{n}_answers"] = r[4 + 2 * n]
        rows.append({by: r[0], **row} if by else row)
    if not by and not rows:
        rows = [{"answered_calls": 0, "asked": 0, "responded": 0, "response_rate": None,
                 "mean_score": None, **{f"q{n}_mean": None for n in range(1, MAX_QUESTIONS + 1)},
                 **{f"q{n}_answers": 0 for n in range(1, MAX_QUESTIONS + 1)}}]
    return rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
