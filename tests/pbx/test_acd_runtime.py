"""The ACD at run time on a real Asterisk with SIPp: overflow wake-up, confidentiality, wrap-up,
pause, transfer, call-back with announcements, and kill -9 of the service with 10 callers.

One private instance for the module, with short timings through configuration: ring-no-answer
after 5 s, announcements every 6 s, queue configurations written before start (overflow after
4 s, wrap-up 3 s), call-backs sent to a SIPp UAS playing the resident's phone.
"""
from __future__ import annotations

import json
import sqlite3
import time

import pytest

from kc.queue_config import OverflowStep, QueueConfig
from kc_instance import init_with_queues, now_iso, running_instance
from conftest import registered_phone
from own_agents import Crew
from sipp_driver import SipPhone, call, free_udp_port

pytestmark = pytest.mark.telephony

BROMMA, HV = "0850810000", "0850820000"

CREW = Crew(__name__)      # hired into the module's own centre
ELDER, ELDER_2, SCHOOL, SOCIAL, SCHOOL_HV, SOCIAL_HV = CREW.of(
    "elder", "elder-2", "school", "social", "school-hv", "social-hv")


def _prepare(inst) -> None:
    """Short timings, the call-back trunk (a SIPp UAS on a free port: `inst.callback_port`)
    and the queue configurations, written before start (the service reads them at start)."""
    inst.callback_port = free_udp_port()
    inst.env.update(KC_RING_TIMEOUT="5", KC_ANNOUNCE_SECONDS="6", KC_WRAP_UP_SECONDS="0",
                    KC_CALLBACK_TRUNK=f"127.0.0.1:{inst.callback_port}")
    init_with_queues(inst, [
        QueueConfig("elderly-care", "hasselby-vallingby", overflow=(OverflowStep(4, ("bromma",)),)),
        QueueConfig("elderly-care", "bromma", overflow=()),
        QueueConfig("social-services", "bromma", overflow=(OverflowStep(0, ("*",)),)),
        QueueConfig("school", "bromma", wrap_up_seconds=3, overflow=()),
        QueueConfig("school", "hasselby-vallingby", overflow=()),
    ])


@pytest.fixture(scope="module")
def acd():
    with running_instance(before_start=_prepare) as inst:
        CREW.hire(inst)
        yield inst


def login(kc, workdir, agent_id) -> SipPhone:
    p = registered_phone(kc, workdir, agent_id)
    kc.set_state(agent_id, "ready")
    return p


def contact_by_caller(kc, since, caller, timeout=30, done=True):
    def find():
        return next((c for c in kc.contacts(since) if c["caller"] == caller
                     and (c["outcome"] or not done)), None)
    return kc.wait_for(find, timeout, f"contact of {caller}")


def events(kc, contact_id) -> list[tuple[str, dict]]:
    with sqlite3.connect(kc.var / "kc.db") as db:
        rows = db.execute("select kind, data from contact_events where contact_id = ? order by id",
                          [contact_id]).fetchall()
    return [(k, json.loads(d)) for k, d in rows]


def queue_log(kc) -> list[list[str]]:
    return [line.split("|") for line in (kc.var / "log" / "queue_log").read_text().splitlines()]


def test_overflow_to_the_other_district_after_the_threshold(acd, workdir):
    since = now_iso()
    agent = login(acd, workdir, ELDER)        # only a Bromma agent with the skill is ready
    answering = agent.answer_calls(count=1, ring_seconds=0.5, talk_seconds=2, hangup="agent")
    resident = call(workdir, acd.sip_port, HV, digits=[(1.5, "1")], caller_number="0711000001",
                    hangup_after=None, wait_far_bye=40)
    waiting = contact_by_caller(acd, since, "0711000001", done=False)
    acd.wait_for(lambda: acd.agent(ELDER)["state"] == "ringing", 20, "overflow offer")
    answering.wait_ok(40)
    resident.wait_ok(40)
    contact = contact_by_caller(acd, since, "0711000001")
    assert contact["outcome"] == "answered" and contact["agent"] == ELDER
    assert contact["district"] == "hasselby-vallingby" and contact["overflowed"] is True
    assert 4.0 <= contact["wait_seconds"] < 7.0, contact      # not before the step, and on time
    assert waiting["id"] == contact["id"]
    acd.set_state(ELDER, "logged_out")


def test_confidential_call_is_not_given_to_uncleared_agents(acd, workdir):
    since = now_iso()
    uncleared = login(acd, workdir, SOCIAL_HV)         # has the skill, cleared only for H-V
    resident = call(workdir, acd.sip_port, BROMMA, digits=[(1.5, "3")], caller_number="0711000002",
                    hangup_after=None, wait_far_bye=40)
    first = contact_by_caller(acd, since, "0711000002", done=False)
    time.sleep(5)                                     # overflow to "*" is reached at once
    assert acd.agent(SOCIAL_HV)["state"] == "ready"
    cleared = login(acd, workdir, SOCIAL)
    answering = cleared.answer_calls(count=1, ring_seconds=0.5, talk_seconds=1, hangup="agent")
    answering.wait_ok(30)
    resident.wait_ok(30)
    contact = acd.wait_for(lambda: next((c for c in acd.contacts(since) if c["id"] == first["id"]
                                         and c["outcome"]), None), 20, "confidential contact done")
    assert contact["agent"] == SOCIAL and contact["confidential"] is True
    assert contact["caller"] is None                 # redacted for those not cleared
    assert all(e[1].get("agent") != SOCIAL_HV for e in events(acd, contact["id"]))
    acd.set_state(SOCIAL_HV, "logged_out")
    acd.set_state(SOCIAL, "logged_out")
    del uncleared


def test_wrap_up_then_pause_with_reason_holds_calls(acd, workdir):
    since = now_iso()
    agent = login(acd, workdir, SCHOOL)
    answering = agent.answer_calls(count=2, ring_seconds=0.3, talk_seconds=1.5, hangup="agent")
    first = call(workdir, acd.sip_port, BROMMA, digits=[(1.5, "2")], caller_number="0711000003",
                 hangup_after=None, wait_far_bye=40)
    acd.wait_for(lambda: acd.agent(SCHOOL)["state"] == "wrap_up", 30, "wrap-up")
    started = time.monotonic()
    body = acd.request("POST", f"/api/agents/{SCHOOL}/state", {"state": "paused", "reason": "lunch"})[1]
    assert body["state"] == "wrap_up" and body["pending"] == "paused"
    acd.wait_for(lambda: acd.agent(SCHOOL)["state"] == "paused", 10, "paused after wrap-up")
    assert 2.0 <= time.monotonic() - started <= 5.0
    first.wait_ok(30)
    second = call(workdir, acd.sip_port, BROMMA, digits=[(1.5, "2")], caller_number="0711000004",
                  hangup_after=None, wait_far_bye=40)
    contact_by_caller(acd, since, "0711000004", done=False)
    time.sleep(3)
    assert acd.agent(SCHOOL)["state"] == "paused"   # a paused agent gets no calls
    acd.set_state(SCHOOL, "ready")
    answering.wait_ok(40)
    second.wait_ok(40)
    c2 = contact_by_caller(acd, since, "0711000004")
    assert c2["agent"] == SCHOOL and c2["wait_seconds"] >= 1.5
    acd.wait_for(lambda: acd.agent(SCHOOL)["state"] == "wrap_up", 10, "wrap-up again")
    mine = [r for r in queue_log(acd) if len(r) > 4 and r[3] == SCHOOL]
    kinds = [r[4] for r in mine]
    assert {"ADDMEMBER", "CONNECT", "COMPLETEAGENT", "PAUSE", "UNPAUSE"} <= set(kinds), kinds
    assert any(r[4] == "PAUSE" and r[5] == "lunch" for r in mine)
    acd.wait_for(lambda: acd.agent(SCHOOL)["state"] == "ready", 10, "ready after wrap-up")


def test_agent_blind_transfers_caller_to_another_skill_queue(acd, workdir):
    since = now_iso()
    first = login(acd, workdir, ELDER_2)
    talking = first.answer_calls(count=1, ring_seconds=0.3, talk_seconds=30, hangup="far")
    resident = call(workdir, acd.sip_port, BROMMA, digits=[(1.5, "1")], caller_number="0711000005",
                    hangup_after=None, wait_far_bye=60)
    acd.wait_for(lambda: acd.agent(ELDER_2)["state"] == "on_call", 30, "first agent on call")
    old = contact_by_caller(acd, since, "0711000005", done=False)
    time.sleep(1)
    second = login(acd, workdir, SCHOOL)
    answering = second.answer_calls(count=1, ring_seconds=0.3, talk_seconds=1.5, hangup="agent")
    status, body = acd.request("POST", f"/api/contacts/{old['id']}/transfer", {"to": "queue:school"})
    assert status == 200, body
    assert talking.wait(20).hangup == "far"          # the first agent's leg is released
    answering.wait_ok(30)
    assert resident.wait_ok(30).hangup == "far"
    contacts = [c for c in acd.contacts(since) if c["caller"] == "0711000005"]
    before = next(c for c in contacts if c["id"] == old["id"])
    after = acd.wait_for(lambda: next((c for c in acd.contacts(since) if c["id"] == body["new_contact"]
                                       and c["outcome"]), None), 20, "transferred contact done")
    assert before["outcome"] == "transferred" and before["agent"] == ELDER_2
    assert after["outcome"] == "answered" and after["agent"] == SCHOOL
    assert after["skill"] == "school"
    assert ("transferred", {"to": "queue:school", "agent": ELDER_2,
                            "new_contact": after["id"]}) in events(acd, before["id"])
    lines = [r for r in queue_log(acd) if r[4] == "TRANSFER"]
    assert lines and lines[-1][2] == "elderly-care@bromma" and lines[-1][5] == "school@bromma"
    acd.wait_for(lambda: acd.agent(ELDER_2)["state"] == "ready", 10, "first agent free")
    acd.set_state(ELDER_2, "logged_out")
    acd.set_state(SCHOOL, "logged_out")


def test_agent_phone_blind_transfers_caller_by_refer(acd, workdir):
    """The agent's own phone transfers (SIP REFER to `2`, the school queue's short code): the
    PBX runs the caller through `kc-agent-transfer`, the contact records it and the caller
    waits again until a school agent answers."""
    since = now_iso()
    first = login(acd, workdir, ELDER_2)
    referring = first.answer_calls(count=1, ring_seconds=0.3, talk_seconds=2, hangup="refer",
                                   refer_to="2")
    resident = call(workdir, acd.sip_port, BROMMA, digits=[(1.5, "1")], caller_number="0711000015",
                    hangup_after=None, wait_far_bye=60)
    acd.wait_for(lambda: acd.agent(ELDER_2)["state"] == "on_call", 30, "first agent on call")
    old = contact_by_caller(acd, since, "0711000015", done=False)
    second = login(acd, workdir, SCHOOL)
    answering = second.answer_calls(count=1, ring_seconds=0.3, talk_seconds=1.5, hangup="agent")
    result = referring.wait(30)
    assert "referred" in result.events and result.hangup == "us", result.log   # then hung up
    answering.wait_ok(30)
    assert resident.wait_ok(30).hangup == "far"
    before = acd.wait_for(lambda: next((c for c in acd.contacts(since) if c["id"] == old["id"]
                                        and c["outcome"]), None), 20, "first contact done")
    new_id = next(d["new_contact"] for k, d in events(acd, old["id"]) if k == "transferred")
    after = acd.wait_for(lambda: next((c for c in acd.contacts(since) if c["id"] == new_id
                                       and c["outcome"]), None), 20, "transferred contact done")
    assert before["outcome"] == "transferred" and before["agent"] == ELDER_2
    assert after["outcome"] == "answered" and after["agent"] == SCHOOL
    assert after["skill"] == "school" and after["caller"] == "0711000015"
    assert ("transferred", {"to": "queue:school", "agent": ELDER_2,
                            "new_contact": new_id}) in events(acd, before["id"])
    lines = [r for r in queue_log(acd) if r[4] == "TRANSFER"]
    assert lines and lines[-1][2] == "elderly-care@bromma" and lines[-1][5] == "school@bromma"
    acd.wait_for(lambda: acd.agent(ELDER_2)["state"] == "ready", 10, "first agent free")
    acd.set_state(ELDER_2, "logged_out")
    acd.set_state(SCHOOL, "logged_out")


def test_callback_keeps_place_and_rings_agent_then_resident(acd, workdir):
    since = now_iso()
    resident = call(workdir, acd.sip_port, BROMMA, digits=[(1.5, "1"), (8.0, "1")],
                    caller_number="0711000006", hangup_after=None, wait_far_bye=30)
    result = resident.wait_ok(40)
    assert result.hangup == "far"                    # we hang up after the confirmation
    waiting = contact_by_caller(acd, since, "0711000006", done=False)
    kinds = [k for k, _ in events(acd, waiting["id"])]
    assert "announced" in kinds and "callback_requested" in kinds, kinds
    announced = next(d for k, d in events(acd, waiting["id"]) if k == "announced")
    assert announced["position"] == 1
    assert waiting["outcome"] is None                # not abandoned: the place is kept
    home = SipPhone(workdir, acd.sip_port, "resident", "x", local_port=acd.callback_port)
    answering_home = home.answer_calls(count=1, ring_seconds=0.5, talk_seconds=10, hangup="far")
    agent = login(acd, workdir, ELDER)
    answering = agent.answer_calls(count=1, ring_seconds=0.3, talk_seconds=3, hangup="agent")
    answering.wait_ok(40)
    assert answering_home.wait_ok(30).hangup == "far"
    contact = contact_by_caller(acd, since, "0711000006")
    assert contact["outcome"] == "answered" and contact["callback"] is True
    assert contact["agent"] == ELDER and contact["talk_seconds"] >= 1
    kinds = [k for k, _ in events(acd, contact["id"])]
    assert kinds.index("callback_requested") < kinds.index("callback_agent_answered") \
        < kinds.index("callback_connected") < kinds.index("completed")
    acd.set_state(ELDER, "logged_out")


def test_kill_9_with_ten_waiting_callers_all_answered_with_original_wait(acd, workdir):
    since = now_iso()
    numbers = [f"07120000{i:02d}" for i in range(10)]
    residents = []
    for n in numbers:   # a second "2" in case the first came before the prompt (busy machine);
        # once waiting, a digit other than 1 is ignored (kc-wait's `i` goes back to the music)
        residents.append(call(workdir, acd.sip_port, HV, digits=[(2.0, "2"), (5.0, "2")],
                              caller_number=n, hangup_after=None, wait_far_bye=150))
        time.sleep(0.2)
    try:
        acd.wait_for(lambda: sum(1 for c in acd.contacts(since) if c["caller"] in numbers
                                 and c["skill"] == "school") == 10, 45, "ten callers queued")
    except AssertionError:
        raise AssertionError([(c["caller"], c["skill"], c["outcome"]) for c in acd.contacts(since)]
                             + [r.diagnostics() for r in residents if not r.running])
    time.sleep(1.5)
    acd.procs["service"].kill()                      # SIGKILL: no clean-up at all
    acd.procs["service"].wait(10)
    killed_at = time.monotonic()
    time.sleep(3)
    assert all(r.running for r in residents)         # still hearing music in Asterisk
    acd.start_service()
    agent = login(acd, workdir, SCHOOL_HV)
    answering = agent.answer_calls(count=10, ring_seconds=0.2, talk_seconds=0.5, hangup="agent",
                                   timeout=180)
    answering.wait_ok(180)
    for r in residents:
        assert r.wait_ok(60).hangup == "far"
    contacts = acd.wait_for(lambda: (lambda cs: cs if len(cs) == 10 and all(c["outcome"] for c in cs) else None)(
        [c for c in acd.contacts(since) if c["caller"] in numbers]), 30, "ten contacts finished")
    assert all(c["outcome"] == "answered" and c["agent"] == SCHOOL_HV for c in contacts)
    assert all(c["wait_seconds"] >= 4.5 for c in contacts), [c["wait_seconds"] for c in contacts]
    del killed_at
    enter = [r for r in queue_log(acd) if r[4] == "ENTERQUEUE" and r[2] == "school@hasselby-vallingby"]
    assert len(enter) == 10                          # nobody re-entered as a new caller
    acd.set_state(SCHOOL_HV, "logged_out")
