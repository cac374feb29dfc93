"""Opening hours: a pure calendar over Europe/Stockholm wall-clock time.

Nothing here reads a clock or the database: a `Schedule` (parsed from the JSON body stored per
district) answers `status(at)` for any aware moment. Wall-clock hours are turned into instants
day by day through `zoneinfo`, so the days when summer time starts (23 h) and ends (25 h) come
out right: 08:00 on the Monday after the last Sunday of March is 06:00 UTC, a week earlier 07:00.

Rules for one local day, first match wins:
1. `always_open`: open 00:00-24:00 (the demo at night, see README).
2. a one-off exception for the date: its hours (none = closed) and its message;
3. julafton, nyårsafton, midsommarafton: closed (`eves: "closed"`);
4. a Swedish public holiday (`holidays`, country SE, without the library's "every Sunday is a
   holiday" quirk): closed (`holidays: "closed"`);
5. the weekday's hours; on a day before a public holiday, `before_holiday` hours instead
   when configured and the day is open at all.
A queue may have its own week; it is open only when both it and its district are.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

import holidays as holidays_lib

TZ_NAME = "Europe/Stockholm"
TZ = ZoneInfo(TZ_NAME)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SEARCH_DAYS = 400          # how far ahead next_open looks (a year and a bit)
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$|^24:00$")
END_OF_DAY = time.max      # stands for "24:00"
SUNDAY_NAMES = {"söndag", "sunday"}

# Reasons (machine readable; `detail` carries the name or message).
OPEN = "open"
SHORT_HOURS = "short_hours"          # open, shortened day before a public holiday
EXCEPTION = "exception"              # a one-off day (open or closed)
EVE = "eve"
HOLIDAY = "holiday"
OUTSIDE_HOURS = "outside_hours"
ALWAYS_OPEN = "always_open"


class ScheduleError(ValueError):
    """A schedule body with problems; `problems` lists each, fit to show."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


Interval = tuple[time, time]   # local wall clock, start < end; end may be END_OF_DAY


@dataclass(frozen=True)
class DayException:
    day: date
    hours: tuple[Interval, ...]            # () = closed all day
    message: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Status:
    open: bool
    reason: str
    next_open: datetime | None             # == at when open; None if it never opens
    detail: str | None = None              # holiday/eve name or exception message (sv)
    closes_at: datetime | None = None      # when open: end of the current opening
    message: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> dict[str, Any]:
        from kc.clock import iso
        return {
            "open": self.open, "reason": self.reason,
            "next_open": iso(self.next_open) if self.next_open else None,
            "detail": self.detail,
            "closes_at": iso(self.closes_at) if self.closes_at else None,
            "message": dict(self.message),
        }


# ------------------------------------------------------------------------ the Swedish calendar

@lru_cache(maxsize=16)
def public_holidays(year: int) -> Mapping[date, str]:
    """Swedish public holidays (röda dagar) of `year`, Swedish names; Sundays as such excluded."""
    cal = holidays_lib.country_holidays("SE", years=year, include_sundays=False, language="sv")
    out = {}
    for day, name in cal.items():
        names = [n.strip() for n in str(name).split(";")
                 if n.strip() and n.strip().lower() not in SUNDAY_NAMES]
        if names:
            out[day] = "; ".join(names)
    return MappingProxyType(out)


def eve_name(day: date) -> str | None:
    """Julafton, nyårsafton or midsommarafton (the Friday between 19 and 25 June)."""
    if (day.month, day.day) == (12, 24):
        return "Julafton"
    if (day.month, day.day) == (12, 31):
        return "Nyårsafton"
    if day.month == 6 and 19 <= day.day <= 25 and day.weekday() == 4:
        return "Midsommarafton"
    return None


def holiday_name(day: date) -> str | None:
    return public_holidays(day.year).get(day)


# ------------------------------------------------------------------------ wall clock -> instants

def _exists(local: datetime) -> bool:
    back = local.astimezone(timezone.utc).astimezone(local.tzinfo)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def instant(day: date, at: time) -> datetime:
    """The UTC instant of wall-clock `at` on `day` in Stockholm.

    END_OF_DAY is the next midnight. A time in the spring-forward gap (02:00-03:00 on the last
    Sunday of March) is the moment the clocks jump; an ambiguous autumn time is its first
    occurrence (summer time)."""
    if at == END_OF_DAY:
        return instant(day + timedelta(days=1), time(0, 0))
    local = datetime.combine(day, at, tzinfo=TZ)
    step = 0
    while not _exists(local) and step < 180:
        local += timedelta(minutes=1)     # naive wall-clock arithmetic on aware datetime
        step += 1
    return local.replace(fold=0).astimezone(timezone.utc)


# ------------------------------------------------------------------------ parsing

def _parse_time(value: Any, where: str, problems: list[str]) -> time | None:
    if not isinstance(value, str) or not _HHMM.match(value):
        problems.append(f"{where}: {value!r} is not a time HH:MM (00:00-24:00)")
        return None
    if value == "24:00":
        return END_OF_DAY
    hh, mm = value.split(":")
    return time(int(hh), int(mm))


def _fmt(t: time) -> str:
    return "24:00" if t == END_OF_DAY else t.strftime("%H:%M")


def _parse_intervals(value: Any, where: str, problems: list[str]) -> tuple[Interval, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(f"{where}: must be a list of [start, end] pairs")
        return ()
    out: list[Interval] = []
    for i, pair in enumerate(value):
        w = f"{where}[{i}]"
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            problems.append(f"{w}: must be a [start, end] pair like [\"08:00\", \"16:30\"]")
            continue
        start = _parse_time(pair[0], f"{w} start", problems)
        end = _parse_time(pair[1], f"{w} end", problems)
        if start is None or end is None:
            continue
        if start == END_OF_DAY:
            problems.append(f"{w}: cannot start at 24:00")
            continue
        if end <= start:
            problems.append(f"{w}: ends {_fmt(end)} before it starts {_fmt(start)}")
            continue
        out.append((start, end))
    ordered = sorted(out)
    for (s1, e1), (s2, e2) in zip(ordered, ordered[1:]):
        if s2 < e1:
            problems.append(f"{where}: {_fmt(s1)}-{_fmt(e1)} overlaps {_fmt(s2)}-{_fmt(e2)}")
    return tuple(ordered)


def _parse_week(value: Any, where: str, problems: list[str]) -> dict[int, tuple[Interval, ...]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(f"{where}: must map days ({', '.join(DAYS)}) to lists of [start, end]")
        return {}
    week = {}
    for key, intervals in value.items():
        if key not in DAYS:
            problems.append(f"{where}: unknown day {key!r} (use {', '.join(DAYS)})")
            continue
        week[DAYS.index(key)] = _parse_intervals(intervals, f"{where}.{key}", problems)
    return week


def _parse_texts(value: Any, where: str, problems: list[str]) -> Mapping[str, str]:
    if value is None:
        return MappingProxyType({})
    if isinstance(value, str):
        return MappingProxyType({"sv": value})
    if isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str)
                                          for k, v in value.items()):
        return MappingProxyType(dict(value))
    problems.append(f"{where}: must be a text or a mapping language -> text")
    return MappingProxyType({})


def _closed_open(value: Any, where: str, problems: list[str], default: str = "closed") -> bool:
    value = default if value is None else value
    if value not in ("closed", "open"):
        problems.append(f"{where}: must be \"closed\" or \"open\", not {value!r}")
        return True
    return value == "closed"


# ------------------------------------------------------------------------ the schedule

@dataclass(frozen=True)
class Schedule:
    week: Mapping[int, tuple[Interval, ...]]
    exceptions: Mapping[date, DayException] = field(default_factory=dict)
    queues: Mapping[str, Mapping[int, tuple[Interval, ...]]] = field(default_factory=dict)
    closed_on_holidays: bool = True
    closed_on_eves: bool = True
    before_holiday: tuple[Interval, ...] | None = None
    always_open: bool = False

    KEYS = ("week", "exceptions", "queues", "holidays", "eves", "before_holiday", "always_open",
            "after_hours")

    @classmethod
    def from_dict(cls, data: Any) -> "Schedule":
        """Parse and validate the stored/PUT body; raises ScheduleError listing every problem."""
        problems: list[str] = []
        if not isinstance(data, Mapping):
            raise ScheduleError(["the schedule must be a JSON object"])
        for key in data:
            if key not in cls.KEYS:
                problems.append(f"unknown key {key!r} (allowed: {', '.join(cls.KEYS)})")
        week = _parse_week(data.get("week"), "week", problems)
        exceptions: dict[date, DayException] = {}
        raw_exc = data.get("exceptions") or []
        if not isinstance(raw_exc, list):
            problems.append("exceptions: must be a list")
            raw_exc = []
        for i, item in enumerate(raw_exc):
            where = f"exceptions[{i}]"
            if not isinstance(item, Mapping):
                problems.append(f"{where}: must be an object with date, hours, message")
                continue
            extra = set(item) - {"date", "hours", "message"}
            if extra:
                problems.append(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
            try:
                day = date.fromisoformat(str(item.get("date")))
            except ValueError:
                problems.append(f"{where}: date {item.get('date')!r} is not YYYY-MM-DD")
                continue
            if day in exceptions:
                problems.append(f"{where}: {day} has two exceptions")
                continue
            exceptions[day] = DayException(
                day, _parse_intervals(item.get("hours"), f"{where}.hours", problems),
                _parse_texts(item.get("message"), f"{where}.message", problems))
        queues = {}
        raw_queues = data.get("queues") or {}
        if not isinstance(raw_queues, Mapping):
            problems.append("queues: must map a skill to its week")
            raw_queues = {}
        for skill, qweek in raw_queues.items():
            queues[str(skill)] = _parse_week(qweek, f"queues.{skill}", problems)
        before = data.get("before_holiday")
        before_hours = None if before is None else _parse_intervals(before, "before_holiday", problems)
        always = data.get("always_open", False)
        if not isinstance(always, bool):
            problems.append("always_open: must be true or false")
        closed_on_holidays = _closed_open(data.get("holidays"), "holidays", problems)
        closed_on_eves = _closed_open(data.get("eves"), "eves", problems)
        if problems:
            raise ScheduleError(problems)
        return cls(
            week=MappingProxyType(week), exceptions=MappingProxyType(exceptions),
            queues=MappingProxyType(queues), closed_on_holidays=closed_on_holidays,
            closed_on_eves=closed_on_eves, before_holiday=before_hours, always_open=bool(always),
        )

    # -- one day ---------------------------------------------------------------------------
    def day_rule(self, day: date) -> tuple[tuple[Interval, ...], str, str | None, Mapping[str, str]]:
        """(local intervals, kind, detail, message) for `day`; kind is a reason constant."""
        if self.always_open:
            return ((time(0, 0), END_OF_DAY),), ALWAYS_OPEN, None, MappingProxyType({})
        exc = self.exceptions.get(day)
        if exc is not None:
            detail = exc.message.get("sv") or next(iter(exc.message.values()), None)
            return exc.hours, EXCEPTION, detail, exc.message
        eve = eve_name(day)
        if eve and self.closed_on_eves:
            return (), EVE, eve, MappingProxyType({})
        name = holiday_name(day)
        if name and self.closed_on_holidays:
            return (), HOLIDAY, name, MappingProxyType({})
        hours = self.week.get(day.weekday(), ())
        tomorrow = holiday_name(day + timedelta(days=1))
        if hours and tomorrow and self.before_holiday is not None:
            return self.before_holiday, SHORT_HOURS, tomorrow, MappingProxyType({})
        return hours, OPEN, None, MappingProxyType({})

    def intervals(self, day: date, queue: str | None = None) -> list[tuple[datetime, datetime]]:
        """Opening instants (UTC) of local `day`, for the district or one of its queues."""
        hours = self.day_rule(day)[0]
        spans = [(instant(day, s), instant(day, e)) for s, e in hours]
        if queue is not None and queue in self.queues and not self.always_open:
            qspans = [(instant(day, s), instant(day, e))
                      for s, e in self.queues[queue].get(day.weekday(), ())]
            spans = [(max(a, c), min(b, d)) for a, b in spans for c, d in qspans
                     if max(a, c) < min(b, d)]
        return [(a, b) for a, b in spans if a < b]

    # -- status ----------------------------------------------------------------------------
    def status(self, at: datetime, queue: str | None = None, *, closes: bool = True) -> Status:
        """Open or not at `at`. `closes=False` leaves `closes_at` out: finding the end of an
        opening may walk many days, and a call being routed does not need it."""
        if at.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one")
        at = at.astimezone(timezone.utc)
        today = at.astimezone(TZ).date()
        _, kind, detail, message = self.day_rule(today)
        for start, end in self.intervals(today, queue):
            if start <= at < end:
                return Status(True, kind if kind != EXCEPTION or detail else OPEN, at, detail,
                              self._closes(end, today, queue) if closes else None, message)
        next_open = self.next_open(at, queue)
        if kind in (OPEN, SHORT_HOURS, ALWAYS_OPEN):
            kind, detail, message = OUTSIDE_HOURS, None, MappingProxyType({})
        elif kind == EXCEPTION and self.day_rule(today)[0]:
            kind = OUTSIDE_HOURS if not detail else EXCEPTION
        return Status(False, kind, next_open, detail, None, message)

    def next_open(self, at: datetime, queue: str | None = None) -> datetime | None:
        """The first moment at or after `at` when open; None within SEARCH_DAYS."""
        at = at.astimezone(timezone.utc)
        day = at.astimezone(TZ).date()
        for offset in range(SEARCH_DAYS):
            for start, end in self.intervals(day + timedelta(days=offset), queue):
                if end > at:
                    return max(start, at)
        return None

    def _closes(self, end: datetime, day: date, queue: str | None) -> datetime | None:
        """End of an opening, following openings that continue it on the next days."""
        if self.always_open:
            return None
        for _ in range(SEARCH_DAYS * 4):
            local_day = (end - timedelta(microseconds=1)).astimezone(TZ).date()
            nxt = [e for d in (local_day, local_day + timedelta(days=1))
                   for s, e in self.intervals(d, queue) if s == end]
            if not nxt:
                return end
            end = nxt[0]
        return None

    # -- the year --------------------------------------------------------------------------
    def calendar(self, year: int) -> list[dict[str, Any]]:
        """Every day of `year` that differs from a plain week: holidays, eves, short days,
        exceptions (what the admin calendar shows)."""
        out = []
        day = date(year, 1, 1)
        while day.year == year:
            hours, kind, detail, message = self.day_rule(day)
            if kind in (EXCEPTION, EVE, HOLIDAY, SHORT_HOURS) or holiday_name(day) or eve_name(day):
                out.append({
                    "date": day.isoformat(), "kind": kind if kind != OPEN else "open_holiday",
                    "name": holiday_name(day) or eve_name(day), "detail": detail,
                    "hours": [[_fmt(s), _fmt(e)] for s, e in hours], "message": dict(message),
                })
            day += timedelta(days=1)
        return out


def week_to_json(week: Mapping[int, Iterable[Interval]]) -> dict[str, list[list[str]]]:
    return {DAYS[d]: [[_fmt(s), _fmt(e)] for s, e in week.get(d, ())] for d in range(7)}


ALWAYS_OPEN_BODY: dict[str, Any] = {"always_open": True, "week": {}, "exceptions": []}
