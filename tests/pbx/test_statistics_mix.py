"""A scripted mix of real calls on a private centre (real Asterisk, SIPp residents and agents'
phones) and one e-mail; afterwards every report figure equals what the test counts from its
own records of what it did, `kc report verify` agrees, and every queue_log line is in
app_queue's format with each queue call entering once and leaving once.

The mix, one call at a time so each wait is what the script made it (targets: Bromma's elderly
care 5 s, Hässelby-Vällingby's 20 s; short abandon under 5 s):
  within   answered at once (the agent is ready)                          wait ~1 s
  after    answered once the agent turns ready 9 s after the call began     wait ~8 s
  short    hangs up 2 s after entering the queue (nobody ready)            wait ~2 s
  long     the same number again, hangs up after 9 s                       wait ~9 s: repeat caller, rundgång
  menu     hangs up in the menu
  overflow Hässelby-Vällingby's queue, answered by Bromma after the 4 s overflow step
  transfer answered, passed on to the school queue by the agent, answered there
  closed   Hässelby-Vällingby closed today: after hours
  e-mail   to Bromma's address (a written contact: offered as a task, waits)
"""
from __future__ import annotations

import smtplib
import sqlite3
import subprocess
import time
from datetime import datetime, timedelta
from email.message import EmailMessage

import pytest

from acd.queue_log import EXITS, check_line
from conftest import registered_phone
from kc.queue_config import OverflowStep, QueueConfig
from kc_instance import KC, ROOT, init_with_queues, make_instance, now_iso, remove_instance
from own_agents import Crew
from sipp_driver import call

pytestmark = pytest.mark.telephony

BROMMA, HV = "0850810000", "0850820000"
TARGET_BROMMA, TARGET_HV, SHORT = 5.0, 20.0, 5.0
CREW = Crew(__name__)
ELDER, SCHOOL = CREW.of("elder", "school")      # Bromma's: elderly care, school
crew = CREW.fixture("centre")


@pytest.fixture(scope="module")
def centre():
    inst = make_instance()
    inst.env.update(KC_RING_TIMEOUT="8", KC_ANNOUNCE_SECONDS="30", KC_WRAP_UP_SECONDS="0")
    try:
        init_with_queues(inst, [
            QueueConfig("elderly-care", "bromma", service_level_seconds=TARGET_BROMMA, overflow=()),
            QueueConfig("elderly-care", "hasselby-vallingby", service_level_seconds=TARGET_HV,
                        overflow=(OverflowStep(4, ("bromma",)),)),
            QueueConfig("school", "bromma", overflow=()),
        ])
        inst.start()
        yield inst
    finally:
        remove_instance(inst)


def _contact(kc, since, caller, pred=lambda c: c["outcome"], timeout=40):
    return kc.wait_for(lambda: next((c for c in kc.contacts(since)
                                     if c["caller"] == caller and pred(c)), None),
                       timeout, f"the contact of {caller}")


def _ready(kc, agent, state="ready"):
    kc.set_state(agent, state)
    kc.wait_for(lambda: kc.agent(agent)["state"] == state, 10, f"{agent} {state}")


def run_mix(kc, workdir) -> list[dict]:
    """Place the calls; returns the test's own record of each contact it caused."""
    mine: list[dict] = []
    phone = registered_phone(kc, workdir, ELDER)        # elderly care and switchboard

    def record(caller, district, skill, **facts):
        mine.append({"caller": caller, "district": district, "skill": skill, "offered": True,
                     "answered": False, "wait": None, **facts})

    # within target: the agent is ready, rings 0.5 s, talks 2 s
    _ready(kc, ELDER)
    answering = phone.answer_calls(count=1, ring_seconds=0.5, talk_seconds=2, hangup="agent")
    call(workdir, kc.sip_port, BROMMA, digits=[(1.5, "1")], caller_number="0712000001",
         hangup_after=None, wait_far_bye=30).wait_ok(40)
    answering.wait_ok(20)
    record("0712000001", "bromma", "elderly-care", answered=True, wait=(0.0, 3.0), talk=2.0)
    # after target: nobody ready for 8 s
    _ready(kc, ELDER, "logged_out")
    answering = phone.answer_calls(count=1, ring_seconds=0.5, talk_seconds=2, hangup="agent")
    resident = call(workdir, kc.sip_port, BROMMA, digits=[(1.5, "1")], caller_number="0712000002",
                    hangup_after=None, wait_far_bye=40)
    _contact(kc, "2020-01-01T00:00:00Z", "0712000002", lambda c: True)
    time.sleep(9)            # the contact exists from the menu on: ~7.5 s of it in the queue
    _ready(kc, ELDER)
    resident.wait_ok(40)
    answering.wait_ok(20)
    record("0712000002", "bromma", "elderly-care", answered=True, wait=(TARGET_BROMMA + 1.5, 14.0),
           talk=2.0)
    _ready(kc, ELDER, "logged_out")
    # abandoned short, then the same number again, abandoned long (a repeat caller, rundgång)
    call(workdir, kc.sip_port, BROMMA, digits=[(1.5, "1")], caller_number="0712000003",
         hangup_after=2).wait_ok(30)
    record("0712000003", "bromma", "elderly-care", wait=(1.0, SHORT - 1.0))
    _contact(kc, "2020-01-01T00:00:00Z", "0712000003")
    call(workdir, kc.sip_port, BROMMA, digits=[(1.5, "1")], caller_number="0712000003",
         hangup_after=9).wait_ok(40)
    record("0712000003", "bromma", "elderly-care", wait=(8.0, 11.0), repeat=True, again=True)
    # hung up in the menu
    call(workdir, kc.sip_port, BROMMA, caller_number="0712000004", hangup_after=2).wait_ok(30)
    record("0712000004", "bromma", None, offered=False, menu=True)
    # overflow: Hässelby-Vällingby's queue, Bromma's agent after 4 s
    _ready(kc, ELDER)
    answering = phone.answer_calls(count=1, ring_seconds=0.5, talk_seconds=2, hangup="agent")
    call(workdir, kc.sip_port, HV, digits=[(1.5, "1")], caller_number="0712000005",
         hangup_after=None, wait_far_bye=40).wait_ok(40)
    answering.wait_ok(20)
    record("0712000005", "hasselby-vallingby", "elderly-care", answered=True, wait=(4.0, 8.0),
           talk=2.0, overflowed=True)
    # passed on: ELDER answers, the agent transfers to the school queue, SCHOOL answers
    talking = phone.answer_calls(count=1, ring_seconds=0.3, talk_seconds=30, hangup="far")
    resident = call(workdir, kc.sip_port, BROMMA, digits=[(1.5, "1")], caller_number="0712000006",
                    hangup_after=None, wait_far_bye=60)
    kc.wait_for(lambda: kc.agent(ELDER)["state"] == "on_call", 30, "on call")
    first = _contact(kc, "2020-01-01T00:00:00Z", "0712000006", lambda c: True)
    time.sleep(1.5)
    school = registered_phone(kc, workdir, SCHOOL)
    _ready(kc, SCHOOL)
    answering = school.answer_calls(count=1, ring_seconds=0.3, talk_seconds=1.5, hangup="agent")
    status, body = kc.request("POST", f"/api/contacts/{first['id']}/transfer", {"to": "queue:school"})
    assert status == 200, body
    talking.wait(20)
    answering.wait_ok(30)
    resident.wait_ok(30)
    record("0712000006", "bromma", "elderly-care", answered=True, wait=(0.0, 3.0), passed=True)
    record("0712000006", "bromma", "school", answered=True, wait=(0.0, 3.0), talk=1.5)
    _ready(kc, SCHOOL, "logged_out")
    # after hours: Hässelby-Vällingby closed today
    today = datetime.now().astimezone().date().isoformat()
    status, body = kc.request("PUT", "/api/schedule/hasselby-vallingby", {
        "always_open": False, "holidays": "closed", "eves": "closed", "week": {},
        "exceptions": [{"date": today, "hours": [], "message": {"sv": "Stängt."}}],
        "after_hours": {"route_to": [], "voice_message": False, "callback": False}})
    assert status == 200, body
    call(workdir, kc.sip_port, HV, caller_number="0712000007", hangup_after=None,
         wait_far_bye=40).wait_ok(60)
    record("0712000007", "hasselby-vallingby", None, offered=False, after_hours=True)
    assert kc.request("PUT", "/api/schedule/hasselby-vallingby",
                      {"always_open": True, "week": {}, "exceptions": []})[0] == 200
    # an e-mail to Bromma
    mail = EmailMessage()
    mail["From"], mail["To"] = "Resident <statistik@example.se>", "bromma@kontakt.example"
    mail["Subject"] = "Hemtjänst"
    mail.set_content("Hej! Fråga om hemtjänst.")
    with smtplib.SMTP("127.0.0.1", int(kc.env["KC_SMTP_PORT"]), timeout=10) as smtp:
        smtp.send_message(mail)
    # a written contact waits in the queue as a task for an agent: offered, neither answered
    # nor abandoned while it waits (no one is ready)
    record("statistik@example.se", "bromma", None, email=True)
    _contact(kc, "2020-01-01T00:00:00Z", "statistik@example.se", lambda c: True)
    _ready(kc, ELDER, "logged_out")
    return mine


def expected(mine: list[dict], contacts: list[dict]) -> dict:
    """Every figure from the test's own records (counts) and, for the times, from the
    contacts whose waits were checked against the script above."""
    offered = [m for m in mine if m["offered"]]
    answered = [m for m in offered if m["answered"]]
    abandoned = [m for m in offered if not m["answered"] and not m.get("email")]
    short = [m for m in abandoned if m["wait"][1] < SHORT]
    target = {"bromma": TARGET_BROMMA, "hasselby-vallingby": TARGET_HV}
    in_target = [m for m in answered if m["wait"][1] <= target[m["district"]]]
    queued = [c for c in contacts if c["enqueued_at"]]
    got_answered = [c for c in queued if c["answered_at"]]
    handled = [c for c in got_answered if c["talk_seconds"] is not None and c["wrap_up_seconds"] is not None]
    pct = lambda a, b: round(100.0 * a / b, 1) if b else None   # noqa: E731
    avg = lambda xs: round(sum(xs) / len(xs), 1) if xs else None   # noqa: E731
    return {
        "contacts": len(mine), "offered": len(offered), "answered": len(answered),
        "abandoned": len(abandoned) - len(short), "abandoned_short": len(short),
        "menu_abandoned": sum(1 for m in mine if m.get("menu")),
        "answered_in_target": len(in_target),
        "service_level": pct(len(in_target), len(offered) - len(short)),
        "abandon_rate": pct(len(abandoned) - len(short), len(offered) - len(short)),
        "availability": pct(len(answered), len(offered)),
        "asa": avg([c["wait_seconds"] for c in got_answered]),
        "average_talk": avg([c["talk_seconds"] for c in got_answered if c["talk_seconds"] is not None]),
        "average_wrap_up": avg([c["wrap_up_seconds"] for c in handled]),
        "aht": avg([c["talk_seconds"] + c["wrap_up_seconds"] for c in handled]),
        "longest_wait": round(max(c["wait_seconds"] for c in queued if c["wait_seconds"] is not None), 1),
        "overflowed_out": sum(1 for m in mine if m.get("overflowed")),
        "overflowed_in": sum(1 for m in mine if m.get("overflowed")),
        "after_hours": sum(1 for m in mine if m.get("after_hours")),
        "callbacks": 0,
        "repeat_callers": sum(1 for m in mine if m.get("repeat")),
        "uncategorised": len(answered),                 # no case was registered
        "rundgang": sum(1 for m in mine if m.get("again") or m.get("passed")),
        "first_contact_resolution": 0.0,                # answered, none resolved
    }


def test_every_report_figure_equals_the_scripts_own_count(centre, workdir):
    kc = centre
    since = now_iso()
    mine = run_mix(kc, workdir)
    time.sleep(1)
    until = now_iso()
    with sqlite3.connect(kc.var / "kc.db") as db:      # every column, as the reports read them
        db.row_factory = sqlite3.Row
        contacts = [dict(r) for r in db.execute(
            "select * from contacts where started_at >= ? order by id", [since])]
    # the centre recorded what the script did, contact by contact
    assert [(c["caller"], c["district"]) for c in contacts] == [(m["caller"], m["district"]) for m in mine]
    for m, c in zip(mine, contacts):
        assert bool(c["enqueued_at"]) == m["offered"], (m, c)
        assert bool(c["answered_at"]) == m["answered"], (m, c)
        if m["wait"]:
            lo, hi = m["wait"]
            assert lo <= c["wait_seconds"] <= hi, (m, c)
        if m.get("talk"):
            assert abs(c["talk_seconds"] - m["talk"]) < 1.5, (m, c)
        assert bool(c["overflowed"]) == bool(m.get("overflowed")), (m, c)
    want = expected(mine, contacts)
    frm = urllib_quote(since)
    to = urllib_quote((datetime.fromisoformat(until.replace("Z", "+00:00")) + timedelta(seconds=1))
                      .isoformat().replace("+00:00", "Z"))
    status, body = kc.request("GET", f"/api/reports/summary?from={frm}&to={to}", token="demo-manager-token")
    assert status == 200, body
    got = body["figures"]
    assert set(got) == set(want), set(got) ^ set(want)            # every figure is checked
    assert got == want
    # the cached report and a recomputation from the raw contacts agree
    verify = subprocess.run([*KC, "report", "verify", "--from", since, "--to", until], cwd=ROOT,
                            env=kc.env, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    check_queue_log(kc, contacts)


def urllib_quote(text: str) -> str:
    from urllib.parse import quote
    return quote(text, safe="")


def check_queue_log(kc, contacts: list[dict]) -> None:
    """Every line in app_queue's format; each queue call of the mix (the channel's uniqueid in
    one queue: a call passed on enters the next queue as app_queue writes it) enters once and
    leaves once, with the wait and the position the contact has."""
    lines = (kc.var / "log" / "queue_log").read_text().splitlines()
    assert lines
    for line in lines:
        assert check_line(line) == [], line
    rows_of: dict[tuple[str, str], list[list[str]]] = {}
    for line in lines:
        fields = line.split("|")
        rows_of.setdefault((fields[1], fields[2]), []).append(fields)
    with sqlite3.connect(kc.var / "kc.db") as db:
        uniqueid = dict(db.execute("select id, uniqueid from contacts"))
    for c in contacts:
        if not c["enqueued_at"] or c["channel"] != "phone":
            continue
        rows = rows_of.get((uniqueid[c["id"]], f"{c['skill']}@{c['district']}"), [])
        events = [r[4] for r in rows]
        assert events.count("ENTERQUEUE") == 1, (c["id"], events)
        assert sum(1 for e in events if e in EXITS) == 1, (c["id"], events)
        enter = next(r for r in rows if r[4] == "ENTERQUEUE")
        assert enter[7] == "1", enter                       # one caller at a time: first in line
        exit_ = next(r for r in rows if r[4] in EXITS)
        if c["answered_at"]:
            connect = next(r for r in rows if r[4] == "CONNECT")
            assert abs(int(connect[5]) - c["wait_seconds"]) <= 1, (connect, c)
            assert exit_[4] in ("COMPLETEAGENT", "COMPLETECALLER", "TRANSFER"), exit_
        else:
            assert exit_[4] == "ABANDON" and abs(int(exit_[7]) - c["wait_seconds"]) <= 1, (exit_, c)
