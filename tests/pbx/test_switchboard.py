"""The switchboard and the call-backs the centre owes, on a real Asterisk with SIPp: a
call-back asked for after hours is dialled at opening (the agent first, then the resident
through the outbound trunk, a SIPp UAS playing the resident's phone) and ends answered.

One private instance for the module: ring-no-answer after 5 s, call-backs and outgoing
calls sent to a SIPp UAS on `trunk_port`.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from datetime import datetime

import pytest

from kc_instance import KC, ROOT, make_instance, now_iso, remove_instance
from conftest import open_desk, registered_phone
from own_agents import Crew
from schedules.schedule import TZ
from sipp_driver import SipPhone, call, free_udp_port

pytestmark = pytest.mark.telephony

BROMMA = "0850810000"
ALWAYS_OPEN = {"always_open": True, "week": {}, "exceptions": []}
CREW = Crew(__name__)      # Bromma's, each also on the switchboard
ELDER, ELDER_2, SCHOOL, SOCIAL = CREW.of("elder", "elder-2", "school", "social")
crew = CREW.fixture("sb")


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    inst = make_instance()
    inst.trunk_port = free_udp_port()
    inst.env.update(KC_RING_TIMEOUT="5", KC_WRAP_UP_SECONDS="0", KC_CALLBACK_RETRIES="1",
                    KC_CALLBACK_RETRY_SECONDS="2", KC_CALLBACK_RING_SECONDS="6",
                    KC_CALLBACK_TRUNK=f"127.0.0.1:{inst.trunk_port}")
    try:
        subprocess.run([*KC, "init", "--demo"], cwd=ROOT, env=inst.env, check=True,
                       capture_output=True)
        inst.start()
        yield inst
    finally:
        if os.environ.get("KC_KEEP_LOGS"):
            print(inst.logs())
        remove_instance(inst)


def events(kc, contact_id) -> list[tuple[str, dict]]:
    with sqlite3.connect(kc.var / "kc.db") as db:
        rows = db.execute("select kind, data from contact_events where contact_id = ? order by id",
                          [contact_id]).fetchall()
    return [(k, json.loads(d)) for k, d in rows]


def put_schedule(kc, district: str, body: dict) -> None:
    status, answer = kc.request("PUT", f"/api/schedule/{district}", body)
    assert status == 200, answer


def closed_today(**after_hours) -> dict:
    today = datetime.now(TZ).date().isoformat()
    return {"always_open": False, "holidays": "closed", "eves": "closed",
            "week": {d: [["07:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
            "exceptions": [{"date": today, "hours": [], "message": {"sv": "Stängt i dag."}}],
            "after_hours": after_hours}


def login(kc, workdir, agent_id) -> SipPhone:
    p = registered_phone(kc, workdir, agent_id)
    kc.set_state(agent_id, "ready")
    return p


def test_after_hours_callback_is_dialled_at_opening_and_answered(sb, workdir):
    since = now_iso()
    put_schedule(sb, "bromma", closed_today(route_to=[], voice_message=False, callback=True))
    try:
        # "2" during the closed message asks for a call-back on the caller's number
        resident = call(workdir, sb.sip_port, BROMMA, digits=[(4.0, "2")],
                        caller_number="0711000031", hangup_after=None, wait_far_bye=40)
        assert resident.wait_ok(60).hangup == "far"
        asked = sb.wait_for(lambda: next((c for c in sb.contacts(since)
                                          if c["caller"] == "0711000031" and c["outcome"]), None),
                            30, "the after-hours contact")
        assert asked["outcome"] == "after_hours"
        status, body = sb.request("GET", "/api/after-hours")
        mine = [r for r in body["requests"] if r["contact_id"] == asked["id"]]
        assert len(mine) == 1 and mine[0]["kind"] == "callback", mine
        assert mine[0]["callback_contact"] is None           # closed: nothing dialled yet
        home = SipPhone(workdir, sb.sip_port, "resident", "x", local_port=sb.trunk_port)
        answering_home = home.answer_calls(count=1, ring_seconds=0.5, talk_seconds=15,
                                           hangup="far")
        agent = login(sb, workdir, ELDER)
        answering = agent.answer_calls(count=1, ring_seconds=0.3, talk_seconds=3, hangup="agent")
    finally:
        put_schedule(sb, "bromma", {**ALWAYS_OPEN, "after_hours": {"route_to": []}})   # opening
    answering.wait_ok(60)
    assert answering_home.wait_ok(30).hangup == "far"
    status, body = sb.request("GET", "/api/after-hours")
    request = next(r for r in body["requests"] if r["contact_id"] == asked["id"])
    assert request["callback_contact"], request
    made = sb.wait_for(lambda: next((c for c in sb.contacts(since)
                                     if c["id"] == request["callback_contact"] and c["outcome"]),
                                    None), 30, "the call-back contact done")
    assert made["outcome"] == "answered" and made["agent"] == ELDER
    assert made["skill"] == "switchboard" and made["district"] == "bromma"
    assert made["caller"] == "0711000031" and made["talk_seconds"] >= 1
    kinds = [k for k, _ in events(sb, made["id"])]
    assert kinds.index("callback_requested") < kinds.index("enqueued") \
        < kinds.index("callback_agent_answered") < kinds.index("callback_connected") \
        < kinds.index("completed"), kinds
    assert ("callback_queued", {"callback_contact": made["id"]}) in events(sb, asked["id"])
    # no longer something to ring by hand on the desk
    status, body = sb.request("GET", "/api/after-hours")
    request = next(r for r in body["requests"] if r["contact_id"] == asked["id"])
    assert request["callback_outcome"] == "answered"
    sb.set_state(ELDER, "logged_out")


def test_a_callback_the_resident_misses_is_made_again_then_answered(sb, workdir):
    """KC_CALLBACK_RETRIES=1: the resident does not answer the first call-back (the agent gives
    up after 4 s of ringing), the second, 2 s later, is answered."""
    since = now_iso()
    put_schedule(sb, "bromma", closed_today(route_to=[], voice_message=False, callback=True))
    try:
        resident = call(workdir, sb.sip_port, BROMMA, digits=[(4.0, "2")],
                        caller_number="0711000036", hangup_after=None, wait_far_bye=40)
        assert resident.wait_ok(60).hangup == "far"
        sb.wait_for(lambda: any(c["caller"] == "0711000036" and c["outcome"] == "after_hours"
                                for c in sb.contacts(since)), 30, "the after-hours contact")
        agent = login(sb, workdir, ELDER)
        answering = agent.answer_calls(count=2, ring_seconds=0.3, talk_seconds=4, hangup="agent")
        home = SipPhone(workdir, sb.sip_port, "resident", "x", local_port=sb.trunk_port)
        missed = home.ring_no_answer(count=1, timeout=90)
    finally:
        put_schedule(sb, "bromma", {**ALWAYS_OPEN, "after_hours": {"route_to": []}})   # opening
    missed.wait(60)
    answered = home.answer_calls(count=1, ring_seconds=0.5, talk_seconds=15, hangup="far")
    assert answered.wait(60).hangup == "far"
    made = sb.wait_for(lambda: next((c for c in sb.contacts(since) if c["caller"] == "0711000036"
                                     and c["outcome"] == "answered"), None), 30, "answered")
    kinds = [k for k, _ in events(sb, made["id"])]
    assert kinds.count("callback_agent_answered") == 2 and "callback_retry" in kinds, kinds
    assert kinds.index("callback_retry") < kinds.index("callback_connected"), kinds
    answering.wait(30)
    sb.set_state(ELDER, "logged_out")

DIRECTORY = ("name,unit,district,number,available\n"
             "Anna Andersson,Bygglov,bromma,0850899001,ja\n"
             "Bertil Berg,Parkförvaltning,,0850899002,nej\n")


def test_directory_import_refuses_a_bad_file_whole_and_searches(sb):
    status, body = sb.request("POST", "/api/directory/import", {"csv": DIRECTORY})
    assert status == 200 and body["imported"] == 2, body
    bad = DIRECTORY + "Cecilia,Skola,nowhere,12,kanske\n"
    status, body = sb.request("POST", "/api/directory/import", {"csv": bad})
    assert status == 422 and "line 4" in body["error"] and "nowhere" in body["error"], body
    status, body = sb.request("GET", "/api/directory?q=ANDERS%20bygg")
    assert status == 200 and [p["name"] for p in body["people"]] == ["Anna Andersson"], body
    status, body = sb.request("GET", "/api/directory?q=")
    assert [p["available"] for p in body["people"]] == [True, False]      # nothing lost
    status, _ = sb.request("POST", "/api/directory/import", {"csv": DIRECTORY},
                           token="demo-manager-token")
    assert status == 403


def test_caller_transferred_attended_through_the_directory_reaches_the_person(sb, workdir):
    since = now_iso()
    status, body = sb.request("POST", "/api/directory/import", {"csv": DIRECTORY})
    assert status == 200, body
    anna = sb.request("GET", "/api/directory?q=Anna")[1]["people"][0]
    person = SipPhone(workdir, sb.sip_port, "anna", "x", local_port=sb.trunk_port)
    reached = person.answer_calls(count=1, ring_seconds=0.5, talk_seconds=60, hangup="far")
    agent = login(sb, workdir, ELDER_2)
    # the agent talks to the caller, then (after the consultation) hangs up: hands over
    talking = agent.answer_calls(count=1, ring_seconds=0.3, talk_seconds=14, hangup="agent")
    resident = call(workdir, sb.sip_port, BROMMA, digits=[(1.5, "0")], caller_number="0711000032",
                    hangup_after=40, wait_far_bye=60)
    sb.wait_for(lambda: sb.agent(ELDER_2)["state"] == "on_call", 30, "agent on call")
    contact = sb.wait_for(lambda: next((c for c in sb.contacts(since)
                                        if c["caller"] == "0711000032"), None), 10, "contact")
    status, body = sb.request("POST", f"/api/contacts/{contact['id']}/transfer",
                              {"to": f"directory:{anna['id']}", "attended": True})
    assert status == 200 and body["state"] == "consulting", body
    talking.wait(40)
    done = sb.wait_for(lambda: next((c for c in sb.contacts(since) if c["id"] == contact["id"]
                                     and c["outcome"]), None), 30, "contact handed over")
    assert done["outcome"] == "transferred" and done["agent"] == ELDER_2, done
    result = resident.wait(70)
    assert result.answered and result.hangup == "us"          # still on the line at the end
    assert reached.wait(30).hangup == "far"                   # the person talked to the caller
    rows = sb.sql("select kind, target, target_name, outcome from transfers where contact_id = ?",
                  contact["id"])
    assert rows == [("attended", "0850899001", "Anna Andersson", "completed")], rows
    kinds = [k for k, _ in events(sb, contact["id"])]
    assert "transfer_consulting" in kinds and "transferred" in kinds, kinds
    sb.wait_for(lambda: sb.agent(ELDER_2)["state"] == "ready", 15, "agent free again")
    sb.set_state(ELDER_2, "logged_out")


def test_dial_by_name_connects_the_caller_to_the_person_they_keyed(sb, workdir):
    """A menu option `directory`: the caller keys A-N-D (2 6 3) and #, hears "För Anna
    Andersson, Bygglov, tryck 1", presses 1 and is connected through the outbound trunk."""
    since = now_iso()
    assert sb.request("POST", "/api/directory/import", {"csv": DIRECTORY})[0] == 200
    status, original = sb.request("GET", "/api/menus/bromma")
    menu = json.loads(json.dumps(original["menu"]))
    menu["nodes"]["main"]["options"]["8"] = {"action": "directory"}
    status, body = sb.request("PUT", "/api/menus/bromma",
                              {"menu": menu, "base_version": original["version"]})
    assert status == 200, body
    try:
        person = SipPhone(workdir, sb.sip_port, "anna", "x", local_port=sb.trunk_port)
        reached = person.answer_calls(count=1, ring_seconds=0.5, talk_seconds=40, hangup="far")
        resident = call(workdir, sb.sip_port, BROMMA, caller_number="0711000033",
                        digits=[(4.5, "8"), (5.0, "2"), (0.4, "6"), (0.4, "3"), (0.4, "#"),
                                (5.0, "1")], hangup_after=10, wait_far_bye=40)
        assert resident.wait(90).answered
        assert reached.wait(30).hangup == "far"               # the person was reached
    finally:
        sb.request("PUT", "/api/menus/bromma", original["menu"])
    contact = sb.wait_for(lambda: next((c for c in sb.contacts(since)
                                        if c["caller"] == "0711000033" and c["outcome"]), None),
                          20, "the contact")
    assert contact["outcome"] == "transferred", contact
    rows = sb.sql("select kind, target, target_name, outcome from transfers where contact_id = ?",
                  contact["id"])
    assert rows == [("dial_by_name", "0850899001", "Anna Andersson", "transferred")], rows


def outbound_contact(kc, since, number):
    return kc.wait_for(lambda: next((c for c in kc.contacts(since) if c["caller"] == number
                                     and c["outcome"] == "outbound"), None), 30,
                       f"the outbound contact to {number}")


def test_agent_dials_a_resident_from_the_phone_through_the_trunk(sb, workdir):
    since = now_iso()
    home = SipPhone(workdir, sb.sip_port, "resident", "x", local_port=sb.trunk_port)
    answering = home.answer_calls(count=1, ring_seconds=0.5, talk_seconds=20, hangup="far")
    phone = login(sb, workdir, SOCIAL)
    phone.dial("0711000034", hold_seconds=4, hangup=True)
    assert answering.wait(30).hangup == "far"              # the resident's phone rang, answered
    made = outbound_contact(sb, since, "0711000034")
    assert made["agent"] == SOCIAL and made["district"] == "bromma"
    assert made["talk_seconds"] >= 1 and made["channel"] == "phone"
    assert "outbound_end" in [k for k, _ in events(sb, made["id"])]
    sb.wait_for(lambda: sb.agent(SOCIAL)["state"] == "ready", 10, "ready after the call")
    sb.set_state(SOCIAL, "logged_out")


def test_click_to_call_on_the_desk_rings_the_agent_then_the_resident(sb, workdir, browser):
    since = now_iso()
    home = SipPhone(workdir, sb.sip_port, "resident", "x", local_port=sb.trunk_port)
    answering = home.answer_calls(count=1, ring_seconds=0.5, talk_seconds=20, hangup="far")
    phone = login(sb, workdir, SCHOOL)
    sb.set_state(SCHOOL, "paused")
    agent_answers = phone.answer_calls(count=1, ring_seconds=0.5, talk_seconds=5, hangup="agent")
    context, page = open_desk(browser, sb.url, SCHOOL, "#call-form")
    try:
        page.fill("#call-number", "070-000 00 35")
        page.click("#call-btn")
        page.wait_for_function(
            # a function, not an expression: polling an expression evals it in the page, which
            # the page's Content-Security-Policy refuses
            "() => document.getElementById('call-status').textContent.includes('rings upp')",
            timeout=10000)
        agent_answers.wait_ok(40)
        assert answering.wait(30).hangup == "far"
    finally:
        context.close()
    made = outbound_contact(sb, since, "0700000035")
    assert made["agent"] == SCHOOL and made["talk_seconds"] >= 1
    sb.set_state(SCHOOL, "logged_out")


def test_an_email_waits_in_the_queue_with_a_place_and_counts_in_its_service_level(sb, browser):
    """Two e-mails about school wait in school@bromma (places 1 and 2, on the wallboard); the
    queue's call target is 1 s, its written target the default 8 h: the e-mail a school agent
    takes after several seconds is answered within target, in that queue's figures."""
    import smtplib
    from email.message import EmailMessage
    since = now_iso()
    status, queue = sb.request("GET", "/api/queues")
    school = next(q for q in queue["queues"] if q["name"] == "school@bromma")
    status, body = sb.request("PUT", "/api/queues/school/bromma",
                              {**school, "service_level_seconds": 1})
    assert status == 200, body
    try:
        for n in (1, 2):
            mail = EmailMessage()
            mail["From"], mail["To"] = f"foralder{n}@example.se", "bromma@kontakt.example"
            mail["Subject"] = "Skolskjuts"
            mail.set_content(f"Hej! Fråga {n} om skolskjuts för vår dotter.")
            with smtplib.SMTP("127.0.0.1", int(sb.env["KC_SMTP_PORT"]), timeout=10) as smtp:
                smtp.send_message(mail)
        sb.wait_for(lambda: len([c for c in sb.contacts(since) if c["channel"] == "email"]) == 2,
                    20, "both e-mails")
        mails = sorted((c for c in sb.contacts(since) if c["channel"] == "email"), key=lambda c: c["id"])
        placed = [sb.sql("select skill, district, queue_position, enqueued_at is not null "
                         "from contacts where id = ?", c["id"])[0] for c in mails]
        assert placed == [("school", "bromma", 1, 1), ("school", "bromma", 2, 1)], placed
        board = sb.wait_for(lambda: next(q for q in sb.request("GET", "/api/wallboard")[1]["queues"]
                                         if q["name"] == "school@bromma" and q["written_waiting"] == 2),
                            20, "the e-mails on the wallboard")
        assert board["written_longest_wait_since"] is not None
        time.sleep(3)                            # waits longer than the queue's call target
        context, page = open_desk(browser, sb.url, SCHOOL, '#ws-status[data-connected="1"]')
        try:
            page.click("#btn-ready")
            page.wait_for_selector("#pop:not([hidden])", timeout=20000)
            assert page.get_attribute("#pop", "data-contact") == str(mails[0]["id"])   # first come
            page.click("#btn-handback")          # back in the queue for the others
            page.click("#btn-logout")
        finally:
            context.close()
        wait = sb.wait_for(lambda: sb.sql("select wait_seconds from contacts where id = ? "
                                          "and answered_at is not null", mails[0]["id"]),
                           20, "the e-mail taken")[0][0]
        assert wait >= 2
        status, report = sb.request("GET", "/api/reports/summary?queue=school@bromma")
        figures = report["figures"]
        assert figures["offered"] >= 2 and figures["answered"] >= 1, figures
        assert figures["answered_in_target"] >= 1, figures      # the written target, not 1 s
    finally:
        sb.request("PUT", "/api/queues/school/bromma", school)
