"""Reports against seeded contacts: every expected figure is computed here independently, by
plain loops over the seeded rows, and compared with `kc.reports` (cache and direct)."""
from __future__ import annotations

import csv
import io
import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from reporting import reports
from kc.errors import InvalidInput
from reporting.report_output import CHARTS, chart, to_csv
from kc.store import connect

UTC = timezone.utc
T0 = datetime(2025, 3, 28, 6, 0, tzinfo=UTC)      # spans the switch to summer time (30 March)
DISTRICTS = ("bromma", "hasselby-vallingby")
SKILLS = ("elderly-care", "school", "switchboard")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_contacts(n: int, seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        start = T0 + timedelta(seconds=rnd.randrange(0, 4 * 86400))
        district = rnd.choice(DISTRICTS)
        skill = rnd.choice(SKILLS)
        caller = rnd.choice(["0701", "0702", "0703", "0704", "0705", "", None])
        kind = rnd.random()
        written = i % 7 == 0      # an e-mail: waits in the same queue, against its own target
        c = dict(id=i, channel="email" if written else "phone", district=district, caller=caller, started_at=iso(start),
                 skill=None, outcome=None, agent=None, agent_district=None, overflowed=0,
                 wait_seconds=None, talk_seconds=None, enqueued_at=None, answered_at=None,
                 wrap_up_seconds=None)
        if kind < 0.1:
            c.update(outcome="after_hours", skill=skill)
        elif kind < 0.2:
            c.update(outcome="abandoned")                      # in the menu
        elif kind < 0.25:
            c.update(outcome="info", skill=skill)
        else:
            wait = rnd.choice([0.5, 3, 4.99, 5, 12, 29.9, 30, 30.5, 45, 120]) * (600 if written else 1)
            c.update(skill=skill, enqueued_at=iso(start + timedelta(seconds=10)), wait_seconds=wait)
            if rnd.random() < 0.7:
                other = rnd.random() < 0.2
                agent_district = DISTRICTS[(DISTRICTS.index(district) + other) % 2]
                c.update(answered_at=iso(start + timedelta(seconds=10 + wait)), agent="x",
                         agent_district=agent_district, overflowed=int(other),
                         talk_seconds=rnd.choice([None, 30, 90, 200]),
                         wrap_up_seconds=rnd.choice([None, 0.0, 10.0, 25.5]),
                         outcome="answered" if rnd.random() < 0.9 else None)   # some still on the line
            elif rnd.random() < 0.9:
                c.update(outcome="abandoned")
        out.append(c)
    return out


CALLBACK_IDS = {3, 10, 11, 40}
CASE_IDS = set(range(1, 400, 3))      # contacts with a registered case (the rest: uncategorised)
AFTER_HOURS_CALLBACK_IDS = {5}


def seed(db, contacts: list[dict]) -> None:
    for c in contacts:
        db["contacts"].insert(c)
    for cid in CALLBACK_IDS:
        db["contact_events"].insert({"contact_id": cid, "at": "x", "kind": "callback_requested", "data": "{}"})
    db["contact_events"].insert({"contact_id": 10, "at": "x", "kind": "callback_made", "data": "{}"})
    for cid in AFTER_HOURS_CALLBACK_IDS:
        db["contact_events"].insert({"contact_id": cid, "at": "x", "kind": "after_hours",
                                     "data": '{"kind": "callback"}'})
    db["contact_events"].insert({"contact_id": 6, "at": "x", "kind": "after_hours", "data": '{"kind": "informed"}'})
    for c in contacts:
        if c["id"] in CASE_IDS:
            db["cases"].insert({"contact_id": c["id"], "channel": c["channel"], "district": c["district"],
                                "outcome": "resolved_first_contact", "created_at": c["started_at"]})


# ----------------------------------------------------------------------------- the oracle


def in_scope(c, district=None, skill=None):
    return (district is None or c["district"] == district) and (skill is None or c["skill"] == skill)


def expected(contacts, start, end, district=None, skill=None, targets=None):
    targets = targets or {}
    period = [c for c in contacts if iso(start) <= c["started_at"] < iso(end)]
    mine = [c for c in period if in_scope(c, district, skill)]
    offered = [c for c in mine if c["enqueued_at"]]
    answered = [c for c in offered if c["answered_at"]]
    abandoned = [c for c in offered if not c["answered_at"] and c["outcome"] == "abandoned"]
    short = [c for c in abandoned if c["wait_seconds"] < 5]
    def target(c):
        written = c["channel"] in ("email", "web")
        return targets.get(f"{c['skill']}@{c['district']}" + ("#written" if written else ""),
                           8 * 3600 if written else 30)
    in_target = [c for c in answered if c["wait_seconds"] <= target(c)]
    talks = [c["talk_seconds"] for c in answered if c["talk_seconds"] is not None]
    handled = [c for c in answered if c["talk_seconds"] is not None and c["wrap_up_seconds"] is not None]
    avg = lambda xs: round(sum(xs) / len(xs), 1) if xs else None  # noqa: E731
    ov_in = [c for c in period if c["answered_at"] and c["overflowed"]
             and (district is None or c["agent_district"] == district)
             and (skill is None or c["skill"] == skill)]
    callbacks = CALLBACK_IDS | AFTER_HOURS_CALLBACK_IDS
    by_caller = sorted(contacts, key=lambda c: (c["started_at"], c["id"]))
    repeats = 0
    for c in mine:
        if not c["caller"]:
            continue
        earlier = [p for p in by_caller if p["caller"] == c["caller"]
                   and (p["started_at"], p["id"]) < (c["started_at"], c["id"])]
        if earlier:
            prev = earlier[-1]
            gap = datetime.fromisoformat(c["started_at"][:-1]) - datetime.fromisoformat(prev["started_at"][:-1])
            if gap <= timedelta(hours=24) and not prev["answered_at"]:
                repeats += 1
    pct = lambda a, b: round(100 * a / b, 1) if b else None  # noqa: E731
    return {
        "contacts": len(mine),
        "offered": len(offered),
        "answered": len(answered),
        "abandoned": len(abandoned) - len(short),
        "abandoned_short": len(short),
        "menu_abandoned": len([c for c in mine if not c["enqueued_at"] and c["outcome"] == "abandoned"]),
        "answered_in_target": len(in_target),
        "service_level": pct(len(in_target), len(offered) - len(short)),
        "availability": pct(len(answered), len(offered)),
        "asa": round(sum(c["wait_seconds"] for c in answered) / len(answered), 1) if answered else None,
        "abandon_rate": pct(len(abandoned) - len(short), len(offered) - len(short)),
        "average_talk": avg(talks),
        "average_wrap_up": avg([c["wrap_up_seconds"] for c in handled]),
        "aht": avg([c["talk_seconds"] + c["wrap_up_seconds"] for c in handled]),
        "uncategorised": len([c for c in answered if c["id"] not in CASE_IDS]),
        "longest_wait": round(max(c["wait_seconds"] for c in offered), 1) if offered else None,
        "overflowed_out": len([c for c in answered if c["overflowed"]]),
        "overflowed_in": len(ov_in),
        "after_hours": len([c for c in mine if c["outcome"] == "after_hours"]),
        "callbacks": len([c for c in mine if c["id"] in callbacks]),
        "repeat_callers": repeats,
        "rundgang": len([c for c in mine if c["outcome"] == "transferred" or _earlier(contacts, c)]),
        "first_contact_resolution": pct(
            len([c for c in mine if c["answered_at"] and c["id"] in CASE_IDS
                 and not _earlier(contacts, c, later=True)]),
            len([c for c in mine if c["answered_at"]])),
    }


def _earlier(contacts, c, later=False, days=14):
    """A contact of the same resident about the same matter (skill) within `days` before
    (after, with `later`) this one."""
    if not c["caller"] or not c["skill"]:
        return False
    me = (c["started_at"], c["id"])
    for p in contacts:
        if p["caller"] != c["caller"] or p["skill"] != c["skill"] or p["id"] == c["id"]:
            continue
        them = (p["started_at"], p["id"])
        a, b = (me, them) if later else (them, me)
        if a < b and datetime.fromisoformat(b[0][:-1]) - datetime.fromisoformat(a[0][:-1]) <= timedelta(days=days):
            return True
    return False


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def db(tmp_path):
    database = connect(tmp_path / "reports.db")
    yield database
    database.conn.close()


@pytest.fixture
def seeded(db):
    contacts = make_contacts(400)
    seed(db, contacts)
    return db, contacts


START = T0 + timedelta(minutes=17)          # not on an hour: partial hours are computed live
END = T0 + timedelta(days=3, hours=5, minutes=3)


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("district,skill", [(None, None), ("bromma", None), (None, "school"),
                                            ("hasselby-vallingby", "elderly-care")])
def test_summary_matches_independent_computation(seeded, use_cache, district, skill):
    db, contacts = seeded
    scope = reports.Scope(queue=f"{skill}@{district}") if district and skill else \
        reports.Scope(district=district, skill=skill)
    got = reports.figures(db, reports.Period(START, END), scope, use_cache=use_cache)
    assert got == expected(contacts, START, END, district, skill)


def test_breakdowns_sum_up_and_match_per_key(seeded):
    db, contacts = seeded
    period = reports.Period(START, END)
    total = reports.figures(db, period)
    for by in reports.BREAKDOWNS:
        rows = reports.figures(db, period, by=by)
        for key in ("offered", "answered", "abandoned", "contacts", "callbacks", "repeat_callers"):
            assert sum(r[key] for r in rows) == total[key], (by, key)
    queues = {r["queue"]: r for r in reports.figures(db, period, by="queue")}
    assert None in queues        # contacts that never reached a queue
    for name, row in queues.items():
        if name is None:
            continue
        skill, district = name.split("@")
        exp = expected(contacts, START, END, district, skill)
        assert {k: row[k] for k in exp if k not in SUMMARY_ONLY} == \
            {k: v for k, v in exp.items() if k not in SUMMARY_ONLY}, name
    districts = {r["district"]: r for r in reports.figures(db, period, by="district")}
    for name in DISTRICTS:
        exp = expected(contacts, START, END, name)
        assert {k: districts[name][k] for k in exp if k not in SUMMARY_ONLY} == \
            {k: v for k, v in exp.items() if k not in SUMMARY_ONLY}


SUMMARY_ONLY = ("first_contact_resolution", "rundgang")


def test_hour_of_day_and_day_are_local_time(seeded):
    db, contacts = seeded
    period = reports.Period(START, END)
    zone = ZoneInfo("Europe/Stockholm")
    hours = reports.figures(db, period, by="hour")
    assert [r["hour"] for r in hours] == list(range(24))
    days = {r["day"]: r for r in reports.figures(db, period, by="day")}
    for h in range(24):
        want = [c for c in contacts if iso(START) <= c["started_at"] < iso(END)
                and datetime.fromisoformat(c["started_at"][:-1]).replace(tzinfo=UTC).astimezone(zone).hour == h]
        assert hours[h]["contacts"] == len(want)
        assert hours[h]["offered"] == len([c for c in want if c["enqueued_at"]])
    for day, row in days.items():
        want = [c for c in contacts if iso(START) <= c["started_at"] < iso(END)
                and datetime.fromisoformat(c["started_at"][:-1]).replace(tzinfo=UTC).astimezone(zone).date().isoformat() == day]
        assert row["contacts"] == len(want)


def test_cache_follows_every_change_of_the_contacts(seeded):
    db, contacts = seeded
    period = reports.Period(START, END)
    reports.figures(db, period)                           # cache filled
    # change outcomes, answer an earlier contact (changes the next one's repeat status),
    # delete one, add a callback event and a new contact
    victim = next(c for c in contacts if c["enqueued_at"] and not c["answered_at"] and c["caller"])
    db["contacts"].update(victim["id"], {"answered_at": victim["enqueued_at"], "outcome": "answered"})
    victim.update(answered_at=victim["enqueued_at"], outcome="answered")
    gone = contacts.pop(50)
    db["contact_events"].delete_where("contact_id = ?", [gone["id"]])
    db["contacts"].delete(gone["id"])
    new = dict(contacts[0], id=9999, started_at=iso(T0 + timedelta(hours=30)), caller="0701")
    db["contacts"].insert(new)
    contacts.append(new)
    db["contact_events"].insert({"contact_id": 40, "at": "x", "kind": "callback_done", "data": "{}"})
    db["contact_events"].insert({"contact_id": 41, "at": "x", "kind": "callback_requested", "data": "{}"})
    CALLBACK_IDS.add(41)
    try:
        assert reports.figures(db, period) == expected(contacts, START, END)
        assert reports.figures(db, period) == reports.figures(db, period, use_cache=False)
    finally:
        CALLBACK_IDS.discard(41)


def test_a_backlog_is_caught_up_in_bounded_steps(seeded):
    db, contacts = seeded
    dirty = lambda: db.execute("select count(*) from report_dirty").fetchone()[0]   # noqa: E731
    backlog = dirty()
    assert backlog > 10                                # every hour of the seeded contacts
    steps = []
    while (n := reports.refresh_step(db, limit=10)) > 0:
        steps.append(n)
        assert dirty() == backlog - sum(steps)         # the rest stays marked for later steps
    assert max(steps) == 10 and sum(steps) == backlog and dirty() == 0
    period = reports.Period(START, END)
    assert reports.figures(db, period) == expected(contacts, START, END)
    assert reports.figures(db, period) == reports.figures(db, period, use_cache=False)


def test_per_queue_service_level_targets(seeded):
    db, contacts = seeded
    targets = {"school@bromma": 1.0, "elderly-care@hasselby-vallingby": 60.0,
               "school@bromma#written": 3600.0}
    period = reports.Period(START, END)
    reports.figures(db, period)                           # cache built with the default targets
    got = reports.figures(db, period, targets=targets)    # targets changed: recomputed
    assert got == expected(contacts, START, END, targets=targets)
    assert got["answered_in_target"] != reports.figures(db, period, targets={})["answered_in_target"]


def test_rundgang_and_first_contact_resolution_checked_against_it(db):
    """An answered, resolved matter that comes back within N days is rundgång and not resolved;
    the same resident by e-mail counts too; another category, a hidden number or a contact
    after N days do not; a contact passed on to another unit is rundgång whatever its caller."""
    from reporting import rundgang
    db["case_categories"].insert_all([{"id": 1, "name": "Äldreomsorg", "skill": "elderly-care"},
                                      {"id": 2, "name": "Skola", "skill": "school"},
                                      {"id": 3, "name": "Hemtjänst", "parent_id": 1}])
    day = timedelta(days=1)

    def contact(i, when, caller, skill, outcome="answered", channel="phone", case=None, category=None):
        db["contacts"].insert(dict(id=i, channel=channel, district="bromma", caller=caller, skill=skill,
                                   started_at=iso(T0 + when), enqueued_at=iso(T0 + when),
                                   answered_at=iso(T0 + when) if outcome in ("answered", "transferred") else None,
                                   outcome=outcome, confidential=0))
        if case:
            db["cases"].insert({"contact_id": i, "outcome": case, "category_id": category,
                                "created_at": iso(T0 + when)})

    contact(1, 0 * day, "0701", "elderly-care", case="resolved_first_contact", category=3)
    contact(2, 3 * day, "0701", "elderly-care")                       # back: same category (3 -> 1)
    contact(3, 4 * day, "0701", "school", case="resolved_first_contact", category=2)
    contact(4, 5 * day, "Anna@Example.se ", "school", channel="email")  # another resident
    contact(5, 6 * day, "anna@example.se", "school", channel="email")   # her again: rundgång
    contact(6, 7 * day, "", "school")
    contact(7, 7 * day, "", "school")                                 # hidden numbers: never
    contact(8, 8 * day, "0702", "elderly-care", outcome="transferred")  # passed to another unit
    contact(9, 30 * day, "0701", "elderly-care")                      # 27 days after contact 2
    period = reports.Period(T0, T0 + 40 * day)
    found = rundgang.analyse(db, period, reports.Scope(), 14)
    r = found["rundgang"]
    assert [(c["contact"], c["why"], c["earlier_contact"]) for c in r["contacts"]] == \
        [(2, "again", 1), (5, "again", 4), (8, "passed", None)]
    assert (r["total"], r["again"], r["passed"]) == (3, 2, 1)
    assert r["by_category"] == {"Skola": 1, "Äldreomsorg": 2}
    assert r["by_channel"] == {"email": 1, "phone": 2} and r["by_district"] == {"bromma": 3}
    fcr = found["first_contact_resolution"]
    answered = 9              # every contact here was answered (8 before it was transferred)
    assert fcr["answered"] == answered and fcr["resolved"] == 1      # only contact 3 held
    assert [(c["contact"], c["came_back_contact"]) for c in fcr["contacts"]] == [(1, 2)]
    summary = reports.figures(db, period, rundgang_days=14)
    assert summary["rundgang"] == 3
    assert summary["first_contact_resolution"] == round(100 / answered, 1)
    # with a window of 30 days, contact 9 comes back about contact 2's matter too
    assert rundgang.analyse(db, period, reports.Scope(), 30)["rundgang"]["again"] == 3


def test_period_parsing():
    now = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
    p = reports.period_from("2025-06-01", "2025-06-14", now)
    assert p.start_iso == "2025-05-31T22:00:00.000Z"          # local midnight, summer time
    assert p.end_iso == "2025-06-14T22:00:00.000Z"            # `to` date included
    p = reports.period_from("2025-01-01T00:00Z", "2025-01-02T00:00:00+00:00", now)
    assert (p.start_iso, p.end_iso) == ("2025-01-01T00:00:00.000Z", "2025-01-02T00:00:00.000Z")
    default = reports.period_from(None, None, now)
    assert default.end == now and default.start < now - timedelta(days=30)
    for bad in (("2025-02-30", None), ("yesterday", None), ("2025-06-10", "2025-06-01")):
        with pytest.raises(InvalidInput):
            reports.period_from(bad[0], bad[1], now)
    with pytest.raises(InvalidInput):
        reports.Scope(queue="school")
    t = reports.today(now)
    assert t.start_iso == "2025-06-14T22:00:00.000Z" and t.end == now


def test_staffing_uses_measured_arrivals_and_handle_times(seeded):
    from reporting import erlang
    db, contacts = seeded
    period = reports.Period(START, END)
    hourly = reports.figures(db, period, by="hour")
    rows = reports.staffing(db, period, hourly=hourly)
    assert len(rows) == 24
    days = (END - START).total_seconds() / 86400
    for r, h in zip(rows, hourly):
        if h["offered"] and h["aht"]:
            assert r["agents"] == erlang.agents_needed(h["offered"] / days, h["aht"], 30, 0.8)
        elif not h["offered"]:
            assert r["agents"] == 0


def test_csv_export_has_header_every_row_and_no_formulas(seeded):
    db, _ = seeded
    rows = reports.figures(db, reports.Period(START, END), by="queue")
    rows.append({"queue": "=HYPERLINK(\"x\")@bromma", "offered": 1})
    text = to_csv(rows, reports.columns("queue"), ["a note"])
    lines = text.splitlines()
    comments = [ln for ln in lines if ln.startswith("#")]
    assert lines[:len(comments)] == comments and comments[0] == "# a note"
    for key in reports.FIGURES:          # each figure's definition in the header comment
        d = reports.DEFINITION_BY_KEY[key]
        assert any(c.startswith(f"# {key}: {d.label}") and " ".join(d.text.split()) in c
                   for c in comments), key
    parsed = list(csv.DictReader(io.StringIO("\n".join(lines[len(comments):]))))
    assert list(parsed[0]) == reports.columns("queue")
    assert len(parsed) == len(rows)
    assert parsed[0]["offered"] == str(rows[0]["offered"])
    assert parsed[-1]["queue"].startswith("'=")
    assert parsed[-1]["service_level"] == ""


def test_charts_are_svg(seeded):
    db, _ = seeded
    for name, (by, series, title, kind) in CHARTS.items():
        rows = reports.figures(db, reports.Period(START, END), by=by)
        svg = chart(rows, by, series, title, kind)
        assert svg.lstrip().startswith("<svg") and "</svg>" in svg, name
        assert "<script" not in svg
    empty = chart([], "day", ("offered",), "Nothing", "line")
    assert "No contacts" in empty


def test_definitions_cover_every_figure():
    keys = [d.key for d in reports.DEFINITIONS]
    assert len(keys) == len(set(keys))
    summary_keys = set(expected([], T0, END))
    assert summary_keys == set(keys)
    assert all(len(d.text) > 20 for d in reports.DEFINITIONS)


def test_report_verify_finds_a_cache_that_missed_a_change(seeded, tmp_path, monkeypatch, capsys):
    """`kc report verify`: 0 when the cache agrees with the contacts; a change that did not mark
    its hour (written with the triggers off) is found, and the command exits 1."""
    from reporting.verify import verify
    db, contacts = seeded
    period = reports.Period(START, END)
    compared, problems = verify(db, period, 14)
    assert compared > 500 and problems == []
    answered = next(c for c in contacts if c["answered_at"] and iso(START) < c["started_at"] < iso(END)
                    and c["started_at"][:13] != iso(START)[:13] and c["started_at"][:13] != iso(END)[:13])
    db.execute("drop trigger report_contacts_update")
    with db.conn:
        db.execute("update contacts set answered_at = null, outcome = 'abandoned' where id = ?",
                   [answered["id"]])
    compared, problems = verify(db, period, 14)
    assert any(p.startswith("summary: answered is ") for p in problems), problems


def test_kc_report_verify_exit_codes(tmp_path, monkeypatch, capsys):
    from kommuncentral import cli
    from kc.migrations import migrate
    monkeypatch.setenv("KC_VAR", str(tmp_path))
    database = connect(tmp_path / "kc.db")
    migrate(database)
    seed(database, make_contacts(60))
    database.conn.close()
    assert cli.main(["report", "verify", "--from", "2025-03-01", "--to", "2025-04-30"]) == 0
    assert "figures agree" in capsys.readouterr().out
    database = connect(tmp_path / "kc.db")
    database.execute("drop trigger report_contacts_update")
    with database.conn:
        database.execute("update contacts set skill = 'school', district = 'bromma'")
    database.conn.close()
    assert cli.main(["report", "verify", "--from", "2025-03-01", "--to", "2025-04-30"]) == 1
    assert "figures differ" in capsys.readouterr().out


def test_the_hour_totals_agree_with_the_buckets_and_the_contacts(seeded):
    """Reports over everything read `report_hours` (one row an hour); it is kept by the same
    refresh as the buckets, and the migration that adds it fills it from them."""
    from kc import schema
    db, contacts = seeded
    period = reports.Period(START, END)
    for by in (None, "hour", "day"):
        assert reports.figures(db, period, by=by) == reports.figures(db, period, by=by, use_cache=False)
    db["contacts"].update(contacts[3]["id"], {"outcome": "abandoned", "answered_at": None})
    for by in (None, "day"):
        assert reports.figures(db, period, by=by) == reports.figures(db, period, by=by, use_cache=False)
    want = db.execute("select * from report_hours order by hour").fetchall()
    assert len(want) > 10
    db.execute("delete from report_hours")
    schema.report_hours(db)
    assert db.execute("select * from report_hours order by hour").fetchall() == want
