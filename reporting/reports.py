"""Reports managers steer by: every figure derived from the recorded contacts and contact events.

Pure SQL and arithmetic over a `sqlite_utils.Database` (run them through `Store.run`); no I/O
besides the database. The definitions (`reporting.definitions.DEFINITIONS`) are written once and shown on the
reports page and in the API answer.

How the figures are computed
----------------------------
`_bucket_rows` is the one place where contacts become numbers: it aggregates the contacts of a
time range per (UTC hour, called district, skill). Everything else sums those rows.

For speed over long periods (a year is ~1,000,000 contacts) the rows of whole past hours are kept
in `report_buckets` / `report_overflow_in`. They are a *cache of that aggregation*, never
counters: SQLite triggers on `contacts` and `contact_events` mark the hour of any contact that is
inserted, changed or deleted (and the hours that contact's change can affect, see repeat callers)
in `report_dirty`, in the same transaction as the change; before every report the dirty hours are
recomputed from the contacts. Nothing is ever incremented. `figures(..., use_cache=False)`
computes straight from the contacts, and tests check both ways agree.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import math
import operator
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterable
from zoneinfo import ZoneInfo

import sqlite_utils

from reporting import erlang, rundgang
from kc.domain import DEFAULT_WRITTEN_SERVICE_LEVEL_SECONDS
from kc.errors import InvalidInput
from kc.schema import REPEAT_WINDOW_HOURS
from reporting.definitions import (  # what a figure means; callers may take it from here too
    _SUMS, BREAKDOWNS, DEFAULT_TARGET_SECONDS, DEFINITION_BY_KEY, DEFINITIONS, FIGURES, REPORT_TZ,
    RUNDGANG_DAYS, SERVICE_LEVEL_GOAL, SHORT_ABANDON_SECONDS, Definition, Period, Scope, _iso, period_from, today)

__all__ = ["SHORT_ABANDON_SECONDS", "DEFAULT_TARGET_SECONDS", "SERVICE_LEVEL_GOAL", "REPORT_TZ",
           "BREAKDOWNS", "Definition", "DEFINITIONS", "DEFINITION_BY_KEY", "FIGURES", "Period",
           "period_from", "today", "Scope", "REFRESH_CHUNK_HOURS", "queue_targets",
           "refresh_cache", "refresh_step", "catch_up", "figures",
           "staffing", "definitions_json", "columns"]

if TYPE_CHECKING:
    from kc.store import Store

# Written contacts wait in the same queues with their own target (`<queue>#written`).
WRITTEN = "#written"
WRITTEN_CHANNELS_SQL = "('email', 'web')"
DEFAULT_WRITTEN_TARGET_SECONDS = DEFAULT_WRITTEN_SERVICE_LEVEL_SECONDS


def queue_targets(db: sqlite_utils.Database) -> dict[str, float]:
    """Service-level target (seconds) per queue `skill@district` from the queue configuration
    (`kc.queue_config`), and per `skill@district#written` for its written contacts; queues
    without one use DEFAULT_TARGET_SECONDS (written: DEFAULT_WRITTEN_TARGET_SECONDS)."""
    try:
        from kc.queue_config import list_queue_configs
        targets = {}
        for q in list_queue_configs(db):
            targets[q.name] = float(q.service_level_seconds)
            targets[q.name + WRITTEN] = float(q.written_service_level_seconds)
        return targets
    except Exception:   # table not there yet (older database) or module changed
        return {}


# ------------------------------------------------------------------------------ the aggregation


def _target_case(targets: dict[str, float]) -> tuple[str, list[Any]]:
    """A contact's answer-time target: its queue's, for its kind of channel (a written contact
    has the queue's `written_service_level_seconds`, key `<queue>#written`)."""
    default = (f"(case when c.channel in {WRITTEN_CHANNELS_SQL} then ? else ? end)",
               [DEFAULT_WRITTEN_TARGET_SECONDS, DEFAULT_TARGET_SECONDS])
    if not targets:
        return default
    whens = " ".join("when ? then ?" for _ in targets)
    args: list[Any] = []
    for name, seconds in sorted(targets.items()):
        args += [name, seconds]
    key = (f"c.skill || '@' || c.district || (case when c.channel in {WRITTEN_CHANNELS_SQL} "
           f"then '{WRITTEN}' else '' end)")
    return f"(case {key} {whens} else {default[0]} end)", [*args, *default[1]]


# One contact's previous contact from the same number (index contacts(caller, started_at)).
_PREVIOUS_UNANSWERED = f"""
    (c.caller is not null and c.caller != '' and exists (
        select 1 from (
            select p.started_at, p.answered_at from contacts p
            where p.caller = c.caller
              and (p.started_at < c.started_at or (p.started_at = c.started_at and p.id < c.id))
            order by p.started_at desc, p.id desc limit 1) prev
        where prev.answered_at is null
          and prev.started_at >= strftime('%Y-%m-%dT%H:%M:%fZ', c.started_at, '-{REPEAT_WINDOW_HOURS} hours')))
"""


_CALLBACK_EVENT = ("(({e}.kind >= 'callback' and {e}.kind < 'callbacl') or ({e}.kind = 'after_hours' "
                   "and json_valid({e}.data) and json_extract({e}.data, '$.kind') = 'callback'))")


def _callback_sql(db: sqlite_utils.Database) -> str:
    expr = ("exists (select 1 from contact_events e where e.contact_id = c.id and "
            + _CALLBACK_EVENT.format(e="e") + ")")
    if "callback_number" in db["contacts"].columns_dict:
        expr = f"(coalesce(c.callback_number, '') != '' or {expr})"
    return expr


def _bucket_rows(db: sqlite_utils.Database, start: str, end: str, targets: dict[str, float],
                 scope: Scope | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Aggregate contacts with start <= started_at < end per (UTC hour, district, skill), and the
    overflows in per (UTC hour, agent district, skill). The one definition of every figure."""
    target_sql, target_args = _target_case(targets)
    where, where_args = (scope or Scope()).where("c.district", "c.skill")
    short = SHORT_ABANDON_SECONDS
    sql = f"""
    select substr(c.started_at, 1, 13) as hour, c.district as district, c.skill as skill,
      count(*) as contacts,
      sum(c.enqueued_at is not null) as offered,
      sum(c.enqueued_at is not null and c.answered_at is not null) as answered,
      sum(c.enqueued_at is not null and c.answered_at is null and c.outcome = 'abandoned'
          and coalesce(c.wait_seconds, 0) >= {short}) as abandoned,
      sum(c.enqueued_at is not null and c.answered_at is null and c.outcome = 'abandoned'
          and coalesce(c.wait_seconds, 0) < {short}) as abandoned_short,
      sum(c.enqueued_at is null and c.outcome = 'abandoned') as menu_abandoned,
      sum(c.enqueued_at is not null and c.answered_at is not null
          and coalesce(c.wait_seconds, 0) <= {target_sql}) as answered_in_target,
      total(case when c.enqueued_at is not null and c.answered_at is not null
                 then coalesce(c.wait_seconds, 0) end) as wait_answered,
      total(case when c.answered_at is not null and c.talk_seconds is not null
                 then c.talk_seconds end) as talk_sum,
      count(case when c.answered_at is not null and c.talk_seconds is not null then 1 end) as talk_count,
      total(case when c.answered_at is not null and c.talk_seconds is not null
                 and c.wrap_up_seconds is not null then c.wrap_up_seconds end) as wrap_sum,
      total(case when c.answered_at is not null and c.talk_seconds is not null
                 and c.wrap_up_seconds is not null then c.talk_seconds + c.wrap_up_seconds end) as handle_sum,
      count(case when c.answered_at is not null and c.talk_seconds is not null
                 and c.wrap_up_seconds is not null then 1 end) as handle_count,
      sum(c.answered_at is not null
          and not exists (select 1 from cases k where k.contact_id = c.id)) as uncategorised,
      max(case when c.enqueued_at is not null then c.wait_seconds end) as longest_wait,
      sum(c.answered_at is not null and c.overflowed = 1) as overflowed_out,
      sum(c.outcome = 'after_hours') as after_hours,
      sum({_callback_sql(db)}) as callbacks,
      sum({_PREVIOUS_UNANSWERED}) as repeat_callers
    from contacts c
    where c.started_at >= ? and c.started_at < ? and {where}
    group by 1, 2, 3
    """
    rows = [dict(r) for r in _query(db, sql, [*target_args, start, end, *where_args])]
    where_in, args_in = (scope or Scope()).where("c.agent_district", "c.skill")
    overflow = [dict(r) for r in _query(db, f"""
        select substr(c.started_at, 1, 13) as hour, c.agent_district as district, c.skill as skill,
               count(*) as overflowed_in
        from contacts c
        where c.started_at >= ? and c.started_at < ? and c.overflowed = 1
          and c.answered_at is not null and {where_in}
        group by 1, 2, 3""", [start, end, *args_in])]
    return rows, overflow


def _query(db: sqlite_utils.Database, sql: str, args: list[Any]) -> Iterable[dict[str, Any]]:
    cursor = db.execute(sql, args)
    names = [d[0] for d in cursor.description]
    return (dict(zip(names, row)) for row in cursor.fetchall())


# ------------------------------------------------------------------------------ the cache


def _insert(db: sqlite_utils.Database, table: str, rows: list[dict[str, Any]]) -> None:
    """Plain executemany: sqlite_utils' insert_all would commit our open transaction."""
    if not rows:
        return
    names = list(rows[0])
    db.conn.executemany(
        f"insert into {table} ({', '.join(names)}) values ({', '.join('?' for _ in names)})",
        [[r[n] for n in names] for r in rows])


def _targets_key(targets: dict[str, float]) -> str:
    return hashlib.sha256(json.dumps(sorted(targets.items())).encode()).hexdigest()


def _hour_bounds(hour: str) -> tuple[str, str]:
    start = datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=timezone.utc)
    return _iso(start), _iso(start + timedelta(hours=1))


_HOUR_SUMS = ", ".join(f"total({k})" for k in _SUMS)
REFRESH_CHUNK_HOURS = 3    # per writer transaction when catching up: 4-15 ms an hour at 115 contacts/h


def refresh_cache(db: sqlite_utils.Database, targets: dict[str, float],
                  limit: int | None = None) -> int:
    """Recompute the dirty hours (all of them when the targets changed), oldest first; at most
    `limit` of them (None: all). Returns how many were recomputed."""
    with db.conn:
        db.execute("begin immediate")
        row = db.execute("select value from report_meta where key = 'targets'").fetchone()
        key = _targets_key(targets)
        if row is None or row[0] != key:
            db.execute("insert or ignore into report_dirty (hour) select distinct hour from report_buckets")
            db.execute("insert or replace into report_meta (key, value) values ('targets', ?)", [key])
        hours = [r[0] for r in db.execute("select hour from report_dirty order by hour limit ?",
                                          [limit or -1])]
        for hour in hours:
            db.execute("delete from report_buckets where hour = ?", [hour])
            db.execute("delete from report_overflow_in where hour = ?", [hour])
            db.execute("delete from report_hours where hour = ?", [hour])
            if len(hour) != 13:
                continue
            start, end = _hour_bounds(hour)
            rows, overflow = _bucket_rows(db, start, end, targets)
            for r in rows:
                r["target"] = targets.get(f"{r['skill']}@{r['district']}", DEFAULT_TARGET_SECONDS)
            _insert(db, "report_buckets", rows)
            _insert(db, "report_overflow_in", overflow)
            db.execute("delete from report_hours where hour = ?", [hour])
            db.execute(f"insert into report_hours select hour, {_HOUR_SUMS}, max(longest_wait), "
                       "(select total(overflowed_in) from report_overflow_in where hour = ?) "
                       "from report_buckets where hour = ? group by hour", [hour, hour])
        db.conn.executemany("delete from report_dirty where hour = ?", [[h] for h in hours])
    return len(hours)


def refresh_step(db: sqlite_utils.Database, limit: int = REFRESH_CHUNK_HOURS) -> int:
    """One bounded step of catching the cache up: a big backlog (after an upgrade, or a
    changed target: every hour) never holds the one writer for long, so calls being
    registered meanwhile wait for one step at most."""
    return refresh_cache(db, queue_targets(db), limit)


async def catch_up(store: "Store", pause: float = 0.0) -> int:
    """`refresh_step` until the cache is current, other writes in between (and `pause`
    seconds between steps); returns the hours recomputed."""
    done = 0
    while True:
        n = await store.run(refresh_step)
        done += n
        if n < REFRESH_CHUNK_HOURS:
            return done
        await asyncio.sleep(pause)


# ------------------------------------------------------------------------------ putting it together


def _key_sql(by: str | None, district_col: str = "district") -> str:
    return {
        None: "''",
        "district": district_col,
        "queue": f"skill || '@' || {district_col}",
        "category": "skill",
        "hour": "hour",
        "day": "hour",
    }[by]


@lru_cache(maxsize=65536)
def _local_hour(hour: str, tz: str) -> tuple[str, int]:
    start = datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=timezone.utc)
    local = start.astimezone(ZoneInfo(tz))
    return local.date().isoformat(), local.hour


def _rekey(key: Any, by: str | None, tz: str) -> Any:
    if by == "hour":
        return _local_hour(key, tz)[1]
    if by == "day":
        return _local_hour(key, tz)[0]
    return key


def _add(acc: dict[Any, dict[str, Any]], key: Any, row: dict[str, Any]) -> None:
    into = acc.get(key)
    if into is None:
        into = acc[key] = {k: 0 for k in _SUMS}
        into["longest_wait"] = None
        into["overflowed_in"] = 0
    for k in _SUMS:
        if k in row and row[k] is not None:
            into[k] += row[k]
    if row.get("overflowed_in"):
        into["overflowed_in"] += row["overflowed_in"]
    lw = row.get("longest_wait")
    if lw is not None and (into["longest_wait"] is None or lw > into["longest_wait"]):
        into["longest_wait"] = lw


def _finish(sums: dict[str, Any]) -> dict[str, Any]:
    pct = lambda num, den: round(100.0 * num / den, 1) if den else None  # noqa: E731
    avg = lambda num, den: round(num / den, 1) if den else None  # noqa: E731
    out = {k: int(sums[k]) for k in ("contacts", "offered", "answered", "abandoned", "abandoned_short",
                                     "menu_abandoned", "answered_in_target", "overflowed_out",
                                     "overflowed_in", "after_hours", "callbacks", "repeat_callers",
                                     "uncategorised")}
    out["service_level"] = pct(sums["answered_in_target"], sums["offered"] - sums["abandoned_short"])
    out["abandon_rate"] = pct(sums["abandoned"], sums["offered"] - sums["abandoned_short"])
    out["availability"] = pct(sums["answered"], sums["offered"])
    out["asa"] = avg(sums["wait_answered"], sums["answered"])
    out["average_talk"] = avg(sums["talk_sum"], sums["talk_count"])
    out["average_wrap_up"] = avg(sums["wrap_sum"], sums["handle_count"])
    out["aht"] = avg(sums["handle_sum"], sums["handle_count"])
    out["longest_wait"] = None if sums["longest_wait"] is None else round(sums["longest_wait"], 1)
    out["rundgang"] = None
    out["first_contact_resolution"] = None
    return out


def _empty() -> dict[str, Any]:
    acc: dict[Any, dict[str, Any]] = {}
    _add(acc, "", {})
    return acc[""]


_HOUR_COLS = (*_SUMS, "overflowed_in")


def _add_hours(db: sqlite_utils.Database, acc: dict[Any, dict[str, Any]], lo: str, hi: str,
               by: str | None, tz: str) -> None:
    """The rows of `report_hours` (everything, one row an hour) summed per key: tuples added in
    C (`map(operator.add)`), one `_add` per key, as a year by day is ~8,800 rows."""
    if by is None:
        cols = ", ".join(f"total({k})" for k in _HOUR_COLS)
        sql = f"select '', {cols}, max(longest_wait) from report_hours where hour >= ? and hour < ?"
    else:
        sql = (f"select hour, {', '.join(_HOUR_COLS)}, longest_wait from report_hours "
               "where hour >= ? and hour < ?")
    sums: dict[Any, list[float]] = {}
    longest: dict[Any, float | None] = {}
    for row in db.conn.execute(sql, [lo, hi]).fetchall():
        key = _rekey(row[0], by, tz)
        values = row[1:-1]
        have = sums.get(key)
        sums[key] = list(values) if have is None else list(map(operator.add, have, values))
        lw, before = row[-1], longest.get(key)
        longest[key] = lw if before is None or (lw is not None and lw > before) else before
    for key, values in sums.items():
        _add(acc, key, {**dict(zip(_HOUR_COLS, values)), "longest_wait": longest[key]})


def _aggregate(db: sqlite_utils.Database, period: Period, scope: Scope, by: str | None,
               targets: dict[str, float], use_cache: bool) -> dict[Any, dict[str, Any]]:
    start, end = period.start, period.end
    first_full = start.replace(minute=0, second=0, microsecond=0)
    if first_full < start:
        first_full += timedelta(hours=1)
    last_full = end.replace(minute=0, second=0, microsecond=0)
    acc: dict[Any, dict[str, Any]] = {}
    live: list[tuple[datetime, datetime]] = []
    if not use_cache or first_full >= last_full:
        live.append((start, end))
    else:
        if start < first_full:
            live.append((start, first_full))
        if last_full < end:
            live.append((last_full, end))
        lo, hi = _iso(first_full)[:13], _iso(last_full)[:13]
        where, args = scope.where()
        key = _key_sql(by)
        if where == "1" and by in (None, "hour", "day"):   # everything: one row an hour
            _add_hours(db, acc, lo, hi, by, period.tz)
            lo = hi   # nothing left for the per-district rows below
        sums = ", ".join(f"total({k}) as {k}" for k in _SUMS)
        for row in _query(db, f"select {key} as k, {sums}, max(longest_wait) as longest_wait "
                              f"from report_buckets where hour >= ? and hour < ? and {where} group by k",
                          [lo, hi, *args]):
            _add(acc, _rekey(row["k"], by, period.tz), row)
        where_in, args_in = scope.where()
        for row in _query(db, f"select {key} as k, total(overflowed_in) as overflowed_in "
                              f"from report_overflow_in where hour >= ? and hour < ? and {where_in} "
                              f"group by k", [lo, hi, *args_in]):
            _add(acc, _rekey(row["k"], by, period.tz), row)
    for a, b in live:
        rows, overflow = _bucket_rows(db, _iso(a), _iso(b), targets, scope)
        for row in rows + overflow:
            key = "" if by is None else ((f"{row['skill']}@{row['district']}" if row["skill"] and row["district"]
                                          else None) if by == "queue"
                                         else row["skill"] if by == "category"
                                         else row["hour"] if by in ("hour", "day") else row["district"])
            _add(acc, _rekey(key, by, period.tz), row)
    return acc


def figures(db: sqlite_utils.Database, period: Period, scope: Scope = Scope(), by: str | None = None,
            targets: dict[str, float] | None = None, use_cache: bool = True,
            rundgang_days: int = RUNDGANG_DAYS) -> Any:
    """The figures of `DEFINITIONS` for the period and scope: one dict (by=None) or a list of
    rows, one per district / queue / category / local hour of day / local day. Rundgång and
    first-contact resolution (`reporting.rundgang`) are in the summary only."""
    if by not in (None, *BREAKDOWNS):
        raise InvalidInput(f"unknown breakdown {by!r}; one of {', '.join(BREAKDOWNS)}")
    if targets is None:
        targets = queue_targets(db)
    if use_cache:
        refresh_cache(db, targets)
    acc = _aggregate(db, period, scope, by, targets, use_cache)
    if by is None:
        out = _finish(acc.get("", _empty()))
        found = rundgang.analyse(db, period, scope, rundgang_days)
        out["rundgang"] = found["rundgang"]["total"]
        out["first_contact_resolution"] = found["first_contact_resolution"]["rate"]
        return out
    rows = []
    for key in sorted(acc, key=lambda k: (k is None, k)):
        rows.append({by: key, **_finish(acc[key])})
    if by == "hour":   # every hour of the day, even quiet ones
        present = {r["hour"] for r in rows}
        rows += [{"hour": h, **_finish(_empty())} for h in range(24) if h not in present]
        rows.sort(key=lambda r: r["hour"])
    return rows


def staffing(db: sqlite_utils.Database, period: Period, scope: Scope = Scope(),
             hourly: list[dict[str, Any]] | None = None, target_seconds: float | None = None,
             goal: float = SERVICE_LEVEL_GOAL) -> list[dict[str, Any]]:
    """Erlang C per local hour of day: the agents needed to answer `goal` of the callers within the
    target, for the measured arrivals (offered per day in that hour, averaged over the period's
    days) and the measured handle time (AHT of that hour, else of the whole period)."""
    if hourly is None:
        hourly = figures(db, period, scope, by="hour")
    if target_seconds is None:
        targets = queue_targets(db)
        target_seconds = targets.get(scope.queue or "", DEFAULT_TARGET_SECONDS)
    days = max(1.0, (period.end - period.start).total_seconds() / 86400.0)
    talk = sum((r["aht"] or 0) * r["answered"] for r in hourly)
    answered = sum(r["answered"] for r in hourly if r["aht"] is not None)
    overall_aht = talk / answered if answered else None
    out = []
    for r in hourly:
        rate = r["offered"] / days
        aht = r["aht"] or overall_aht
        if not rate or not aht:
            out.append({"hour": r["hour"], "calls_per_hour": round(rate, 2), "aht": aht,
                        "erlangs": 0.0, "agents": 0, "predicted_service_level": None,
                        "predicted_asa": None})
            continue
        s = erlang.staffing(rate, aht, target_seconds, goal)
        out.append({"hour": r["hour"], "calls_per_hour": round(rate, 2), "aht": round(aht, 1),
                    "erlangs": round(s.erlangs, 2), "agents": s.agents,
                    "predicted_service_level": round(100 * s.service_level, 1),
                    "predicted_asa": None if math.isinf(s.asa_seconds) else round(s.asa_seconds, 1)})
    return out


def definitions_json() -> list[dict[str, str]]:
    return [{"key": d.key, "label": d.label, "unit": d.unit, "definition": d.text} for d in DEFINITIONS]


def columns(by: str | None) -> list[str]:
    return ([by] if by else []) + list(FIGURES)
