"""The opening-hours calendar (pure): Swedish holidays and eves, DST, exceptions, queues, and
the spoken next opening."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from agi.after_hours_decision import opening_phrase
from schedules.schedule import (DAYS, TZ, Schedule, ScheduleError, eve_name, holiday_name, instant,
                         public_holidays)
from schedules.hours import validate_policy
from demo_facts import DEMO_SCHEDULES

UTC = timezone.utc
BROMMA = Schedule.from_dict(DEMO_SCHEDULES["bromma"])
HV = Schedule.from_dict(DEMO_SCHEDULES["hasselby-vallingby"])


def local(y, m, d, hh=0, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


def test_sundays_are_not_holidays_but_easter_day_is():
    assert date(2026, 3, 1) not in public_holidays(2026)          # an ordinary Sunday
    assert holiday_name(date(2026, 4, 5)) == "Påskdagen"
    assert holiday_name(date(2027, 1, 6)) == "Trettondedag jul"
    assert all("Söndag" not in name for name in public_holidays(2026).values())


def test_eves():
    assert eve_name(date(2026, 6, 19)) == "Midsommarafton"
    assert eve_name(date(2027, 6, 25)) == "Midsommarafton"
    assert eve_name(date(2026, 6, 26)) is None
    assert eve_name(date(2026, 12, 24)) == "Julafton"
    assert eve_name(date(2026, 12, 31)) == "Nyårsafton"


@pytest.mark.parametrize("moment, reason, detail, next_open", [
    (local(2026, 6, 19, 10), "eve", "Midsommarafton", local(2026, 6, 22, 8)),
    (local(2026, 12, 24, 10), "eve", "Julafton", local(2026, 12, 28, 8)),
    (local(2027, 1, 6, 10), "holiday", "Trettondedag jul", local(2027, 1, 7, 8)),
    (local(2026, 12, 31, 9), "eve", "Nyårsafton", local(2027, 1, 4, 8)),   # 1 Jan is a holiday too
    (local(2026, 11, 27, 16, 30), "outside_hours", None, local(2026, 11, 30, 8)),
])
def test_bromma_closed_on_holidays_and_eves(moment, reason, detail, next_open):
    status = BROMMA.status(moment)
    assert not status.open and status.reason == reason and status.detail == detail
    assert status.next_open == next_open


def test_bromma_open_in_office_hours_until_1630():
    status = BROMMA.status(local(2026, 11, 27, 16, 29))
    assert status.open and status.closes_at == local(2026, 11, 27, 16, 30)


def test_always_open_never_closes_and_routing_skips_the_closing_time():
    always = Schedule.from_dict({**DEMO_SCHEDULES["bromma"], "always_open": True})
    status = always.status(local(2026, 12, 24, 3))
    assert status.open and status.reason == "always_open" and status.closes_at is None
    routing = BROMMA.status(local(2026, 11, 27, 16, 29), closes=False)
    assert routing.open and routing.closes_at is None      # the same answer, without the end


def test_hv_open_on_eves_and_holidays_07_to_22():
    assert HV.status(local(2026, 12, 24, 21, 59)).open
    assert not HV.status(local(2026, 12, 24, 22, 0)).open
    assert HV.status(local(2026, 12, 24, 22, 0)).next_open == local(2026, 12, 25, 7)


def test_dst_spring_forward_last_sunday_of_march():
    # 2026-03-29: 02:00 CET -> 03:00 CEST. H-V opens 07:00 CEST = 05:00 UTC that day.
    assert HV.status(datetime(2026, 3, 29, 4, 59, tzinfo=UTC)).next_open == \
        datetime(2026, 3, 29, 5, 0, tzinfo=UTC)
    assert HV.status(datetime(2026, 3, 28, 6, 0, tzinfo=UTC)).open          # 07:00 CET
    assert not HV.status(datetime(2026, 3, 29, 4, 30, tzinfo=UTC)).open     # 06:30 CEST
    # Bromma: Friday before closes 16:30 CET = 15:30 UTC; Monday opens 08:00 CEST = 06:00 UTC
    friday = BROMMA.status(datetime(2026, 3, 27, 15, 0, tzinfo=UTC))
    assert friday.closes_at == datetime(2026, 3, 27, 15, 30, tzinfo=UTC)
    assert BROMMA.status(datetime(2026, 3, 28, 12, tzinfo=UTC)).next_open == \
        datetime(2026, 3, 30, 6, 0, tzinfo=UTC)


def test_dst_fall_back_last_sunday_of_october():
    # 2026-10-25: 03:00 CEST -> 02:00 CET. H-V opens 07:00 CET = 06:00 UTC.
    assert not HV.status(datetime(2026, 10, 25, 5, 30, tzinfo=UTC)).open
    assert HV.status(datetime(2026, 10, 25, 6, 0, tzinfo=UTC)).open
    assert HV.status(datetime(2026, 10, 24, 5, 0, tzinfo=UTC)).open        # 07:00 CEST
    assert BROMMA.status(datetime(2026, 10, 25, 12, tzinfo=UTC)).next_open == \
        datetime(2026, 10, 26, 7, 0, tzinfo=UTC)


def test_a_whole_day_is_23_and_25_hours_long():
    always = Schedule.from_dict({"week": {d: [["00:00", "24:00"]] for d in DAYS},
                                 "holidays": "open", "eves": "open"})
    spring = always.intervals(date(2026, 3, 29))[0]
    autumn = always.intervals(date(2026, 10, 25))[0]
    assert spring[1] - spring[0] == timedelta(hours=23)
    assert autumn[1] - autumn[0] == timedelta(hours=25)
    assert always.status(datetime(2026, 3, 29, 1, 30, tzinfo=UTC)).open


def test_time_in_the_spring_gap_opens_when_clocks_jump():
    assert instant(date(2026, 3, 29), datetime(2000, 1, 1, 2, 30).time()) == \
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_short_hours_before_a_public_holiday():
    sched = Schedule.from_dict({**DEMO_SCHEDULES["bromma"], "before_holiday": [["08:00", "13:00"]]})
    # 2027-01-05 (Tuesday) is the day before Trettondedag jul
    status = sched.status(local(2027, 1, 5, 12))
    assert status.open and status.reason == "short_hours" and status.detail == "Trettondedag jul"
    assert not sched.status(local(2027, 1, 5, 14)).open
    assert sched.status(local(2027, 1, 5, 14)).next_open == local(2027, 1, 7, 8)
    # without the setting the day is a normal one
    assert BROMMA.status(local(2027, 1, 5, 14)).open


def test_exception_with_message_and_short_day():
    sched = Schedule.from_dict({**DEMO_SCHEDULES["bromma"], "exceptions": [
        {"date": "2026-11-26", "hours": [], "message": {"sv": "Personaldag i dag.", "en": "Staff day."}},
        {"date": "2026-11-27", "hours": [["10:00", "12:00"]]},
    ]})
    closed = sched.status(local(2026, 11, 26, 10))
    assert not closed.open and closed.reason == "exception" and closed.message["en"] == "Staff day."
    assert closed.next_open == local(2026, 11, 27, 10)
    assert sched.status(local(2026, 11, 27, 11)).open
    assert sched.status(local(2026, 11, 27, 13)).next_open == local(2026, 11, 30, 8)


def test_queue_hours_inside_district_hours():
    sched = Schedule.from_dict({**DEMO_SCHEDULES["bromma"],
                                "queues": {"school": {d: [["09:00", "12:00"]] for d in DAYS}}})
    at = local(2026, 11, 27, 13)
    assert sched.status(at).open
    assert not sched.status(at, "school").open
    assert sched.status(at, "school").next_open == local(2026, 11, 30, 9)
    assert sched.status(local(2026, 11, 28, 10), "school").next_open == local(2026, 11, 30, 9)


@pytest.mark.parametrize("body, fragment", [
    ({"week": {"mon": [["08:00", "12:00"], ["11:00", "13:00"]]}}, "overlaps"),
    ({"week": {"mon": [["16:00", "08:00"]]}}, "before it starts"),
    ({"week": {"fun": [["08:00", "12:00"]]}}, "unknown day"),
    ({"week": {"mon": [["8", "12:00"]]}}, "not a time"),
    ({"week": {}, "exceptions": [{"date": "2026-13-01", "hours": []}]}, "YYYY-MM-DD"),
    ({"week": {}, "holidays": "maybe"}, "closed"),
])
def test_validation_problems(body, fragment):
    with pytest.raises(ScheduleError) as err:
        Schedule.from_dict(body)
    assert any(fragment in p for p in err.value.problems), err.value.problems


def test_policy_validation():
    assert validate_policy({"route_to": ["bromma"]}, {"bromma", "hv"}, "bromma")
    assert validate_policy({"route_to": ["nowhere"]}, {"bromma"}, "hv")
    assert validate_policy({"route_to": ["hv"], "emergency": {"sv": "Ring 112."}}, {"hv"}, "b") == []


@pytest.mark.parametrize("at, language, expected", [
    (local(2026, 11, 27, 17), "sv", "Vi öppnar igen måndag klockan 8."),
    (local(2026, 11, 27, 17), "en", "We open again on Monday at 8 a.m."),
    (local(2027, 1, 6, 10), "sv", "Vi öppnar igen i morgon klockan 8."),
    (local(2026, 12, 24, 10), "en", "We open again on Monday at 8 a.m."),
    (local(2026, 6, 5, 17), "sv", "Vi öppnar igen måndag klockan 8."),   # 6 June is a Saturday
])
def test_spoken_next_opening(at, language, expected):
    assert opening_phrase(BROMMA.status(at).next_open, at, language) == expected


def test_spoken_times_with_minutes_today_and_far_ahead():
    now = local(2026, 11, 27, 7)
    assert opening_phrase(local(2026, 11, 27, 13, 30), now, "sv") == "Vi öppnar igen i dag klockan 13 och 30."
    assert opening_phrase(local(2026, 11, 27, 13, 30), now, "en") == "We open again today at 1:30 p.m."
    assert opening_phrase(local(2026, 12, 14, 8), now, "sv") == "Vi öppnar igen måndag den 14 december klockan 8."
    assert opening_phrase(None, now, "sv").startswith("Vi kan inte")


# --------------------------------------------------------------------- properties

times = st.sampled_from(["00:00", "06:30", "07:00", "08:00", "12:00", "13:00", "16:30", "22:00", "24:00"])


@st.composite
def schedules(draw):
    week = {}
    for day in DAYS:
        if draw(st.booleans()):
            a, b = sorted(draw(st.lists(times, min_size=2, max_size=2, unique=True)))
            week[day] = [[a, b]]
    exceptions = []
    for offset in draw(st.lists(st.integers(0, 700), max_size=3, unique=True)):
        exceptions.append({"date": (date(2026, 1, 1) + timedelta(days=offset)).isoformat(),
                           "hours": [] if draw(st.booleans()) else [["10:00", "11:00"]]})
    return Schedule.from_dict({"week": week, "exceptions": exceptions,
                               "holidays": draw(st.sampled_from(["open", "closed"])),
                               "eves": draw(st.sampled_from(["open", "closed"]))})


moments = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31),
                       timezones=st.just(UTC))


@settings(max_examples=150, deadline=None)
@given(schedules(), moments)
def test_next_open_is_open_and_never_before_at(sched, at):
    status = sched.status(at)
    if status.next_open is None:
        assert not status.open and not any(sched.week.values())
        return
    assert status.next_open >= at
    assert sched.status(status.next_open).open
    if status.open:
        assert status.next_open == at
        assert status.closes_at is None or status.closes_at > at
    else:
        # closed all the way from at until next_open (checked at a few points)
        span = status.next_open - at
        for k in range(1, 4):
            probe = at + span * k / 4
            if probe < status.next_open:
                assert not sched.status(probe).open


@settings(max_examples=80, deadline=None)
@given(moments)
def test_demo_bromma_never_open_on_weekends_holidays_or_eves(at):
    status = BROMMA.status(at)
    day = at.astimezone(TZ).date()
    if day.weekday() >= 5 or holiday_name(day) or eve_name(day):
        assert not status.open
    if status.open:
        assert 8 <= at.astimezone(TZ).hour < 17
