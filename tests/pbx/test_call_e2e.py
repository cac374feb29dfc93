"""End to end on a real Asterisk with SIPp: residents call, agents log in from their phones
and answer; the contacts read back over the API."""
from __future__ import annotations

import time

import pytest

from conftest import registered_phone
from own_agents import Crew
from sipp_driver import SipPhone, call, sip_quote
from kc_instance import now_iso

pytestmark = pytest.mark.telephony

BROMMA = "0850810000"

CREW = Crew(__name__)
# No switchboard skill: a call-back another module left waiting for the switchboard (made at
# opening, its resident unreachable) is not offered to these agents when they turn ready.
ELDER = CREW.agent("elder", "bromma", {"elderly-care": 4})
ELDER_2 = CREW.agent("elder-2", "bromma", {"elderly-care": 3})
SOCIAL = CREW.agent("social", "bromma", {"social-services": 4}, ("bromma",))
ELDER_HV = CREW.agent("elder-hv", "hasselby-vallingby", {"elderly-care": 4})
crew = CREW.fixture()


phone = registered_phone


def logged_in_phone(kc, workdir, agent_id) -> SipPhone:
    """The agent's phone registered and logged in to the ACD with `*21`."""
    p = phone(kc, workdir, agent_id)
    p.dial("*21")
    kc.wait_for(lambda: kc.agent(agent_id)["state"] == "ready", 10, f"{agent_id} ready")
    return p


def wait_contact(kc, since, predicate, what, timeout=30):
    def find():
        return next((c for c in kc.contacts(since) if predicate(c)), None)
    return kc.wait_for(find, timeout, what)


@pytest.mark.smoke16
def test_call_pressing_1_is_answered_by_a_logged_in_bromma_agent(kc, workdir):
    since = now_iso()
    agent = logged_in_phone(kc, workdir, ELDER)

    answering = agent.answer_calls(count=1, ring_seconds=1, talk_seconds=3, hangup="agent")
    resident = call(workdir, kc.sip_port, BROMMA, digits=[(2.0, "1")], caller_number="0701112233",
                    hangup_after=None, wait_far_bye=60)
    kc.wait_for(lambda: kc.agent(ELDER)["state"] == "on_call", 40, "agent on call")
    answering.wait_ok(60)
    result = resident.wait_ok(60)
    assert result.answered and result.hangup == "far"

    contact = wait_contact(kc, since, lambda c: c["caller"] == "0701112233" and c["outcome"],
                           "the answered contact")
    assert contact["outcome"] == "answered"
    assert contact["channel"] == "phone"
    assert contact["district"] == "bromma" and contact["dialed"] == BROMMA
    assert contact["menu_path"] == ["1"] and contact["skill"] == "elderly-care"
    assert contact["language"] == "sv"
    assert contact["agent"] == ELDER and contact["agent_district"] == "bromma"
    assert contact["overflowed"] is False
    assert 0 <= contact["wait_seconds"] < 15
    assert 2 <= contact["talk_seconds"] < 10
    assert contact["started_at"] <= contact["ended_at"]

    kc.wait_for(lambda: kc.agent(ELDER)["state"] == "ready", 10, "agent ready again")
    agent.dial("*23")   # pause from the phone
    assert kc.agent(ELDER)["state"] == "paused"
    agent.dial("*22")
    kc.wait_for(lambda: kc.agent(ELDER)["state"] == "logged_out", 10, "logged out")

    log_lines = (kc.var / "log" / "queue_log").read_text().splitlines()
    events = [line.split("|")[4] for line in log_lines if f"|{ELDER}|" in line]
    for expected in ("AGENTLOGIN", "ADDMEMBER", "CONNECT", "COMPLETEAGENT", "PAUSE",
                     "REMOVEMEMBER", "AGENTLOGOFF"):
        assert expected in events, (expected, log_lines)
    from acd.queue_log import check_line     # every line in app_queue's format, on the real PBX
    assert [(line, check_line(line)) for line in log_lines if check_line(line)] == []


def test_caller_hanging_up_in_the_menu_is_recorded_abandoned(kc, workdir):
    since = now_iso()
    resident = call(workdir, kc.sip_port, BROMMA, caller_number="0702223344", hangup_after=2)
    resident.wait_ok(30)
    contact = wait_contact(kc, since, lambda c: c["caller"] == "0702223344" and c["outcome"],
                           "the menu abandon")
    assert contact["outcome"] == "abandoned"
    assert contact["menu_path"] == [] and contact["skill"] is None and contact["agent"] is None
    assert contact["ended_at"]


def test_caller_hanging_up_while_waiting_is_abandoned_with_wait_time(kc, workdir):
    since = now_iso()
    # nobody takes `school` (no agent with the skill is logged in): the caller waits with music
    resident = call(workdir, kc.sip_port, BROMMA, digits=[(2.0, "2")], caller_number="0703334455",
                    hangup_after=6)
    result = resident.wait_ok(40)
    assert result.answered and result.hangup == "us"
    contact = wait_contact(kc, since, lambda c: c["caller"] == "0703334455" and c["outcome"],
                           "the queue abandon")
    assert contact["outcome"] == "abandoned"
    assert contact["menu_path"] == ["2"] and contact["skill"] == "school"
    assert 2 <= contact["wait_seconds"] <= 7
    assert contact["agent"] is None


def test_hostile_caller_name_is_stored_verbatim_and_injects_nothing(kc, workdir):
    since = now_iso()
    evil = 'Eve" \\ ; EXEC System "touch /tmp/kc-pwned" \\" ;;\tSET VARIABLE KC_NEXT hangup'
    name = (evil + " x" * 200)[:300]
    resident = call(workdir, kc.sip_port, BROMMA, digits=[(1.5, "2")], caller_number="0704445566",
                    caller_name=name, hangup_after=3)
    resident.wait_ok(40)
    contact = wait_contact(kc, since, lambda c: c["caller"] == "0704445566" and c["outcome"],
                           "the hostile caller's contact")
    # Asterisk passes the display name as it stood in the SIP header (quoted-pairs kept), cut
    # by PJSIP to 79 characters; exactly that is stored, tab turned into a space.
    on_the_wire = sip_quote(name).replace("\t", " ")
    assert len(contact["caller_name"]) >= 79
    assert on_the_wire.startswith(contact["caller_name"])
    # the menu went on normally: the digit was read and the caller queued, not hung up
    assert contact["menu_path"] == ["2"] and contact["skill"] == "school"
    assert contact["outcome"] == "abandoned" and contact["wait_seconds"] is not None


# The probe's payload: Asterisk decodes %0A in the From user part and used to write the lines
# into the FastAGI header block, which logged the named agent out.
HOSTILE_FROM_USER = ("07012%0Aagi_network_script%3A%20agent-feature%0Aagi_arg_1%3A%2022"
                     f"%0Aagi_arg_2%3A%20{SOCIAL}%0A%0A")


def test_caller_id_cannot_inject_agi_headers_or_log_agents_out(kc, workdir):
    since = now_iso()
    kc.set_state(SOCIAL, "ready")
    try:
        for user in (HOSTILE_FROM_USER, "07012%0D%0A%0D%0A200%20result%3D1"):
            call(workdir, kc.sip_port, BROMMA, digits=[(1.5, "2")], caller_number=user,
                 caller_name="Injektion Test", hangup_after=3).wait_ok(40)
        contacts = kc.wait_for(
            lambda: [c for c in kc.contacts(since) if c["caller_name"] == "Injektion Test"
                     and c["outcome"]] or None, 30, "the hostile callers' contacts")
        time.sleep(1)
        contacts = [c for c in kc.contacts(since) if c["caller_name"] == "Injektion Test"]
        # each call registered once, as an ordinary call without a number, menu walked
        assert len(contacts) == 2, contacts
        for contact in contacts:
            assert contact["caller"] is None and contact["menu_path"] == ["2"], contact
            assert contact["outcome"] == "abandoned"
        assert kc.agent(SOCIAL)["state"] == "ready"
    finally:
        kc.set_state(SOCIAL, "logged_out")
    raw = kc.sql("SELECT data FROM contact_events WHERE kind = 'caller_id_refused' "
                 "AND contact_id IN (%s)" % ",".join(str(c["id"]) for c in contacts))
    assert any("agi_network_script: agent-feature" in r[0] and "\\\\n" in r[0] for r in raw), raw


def test_unknown_number_is_rejected(kc, workdir):
    result = call(workdir, kc.sip_port, "0850899999", hangup_after=1).wait(30)
    assert result.status == 404 and not result.answered


def test_ring_no_answer_pauses_agent_and_caller_keeps_place(kc, workdir):
    since = now_iso()
    agent = logged_in_phone(kc, workdir, ELDER_HV)
    ringing = agent.ring_no_answer(count=1)
    resident = call(workdir, kc.sip_port, "0850820000", digits=[(2.0, "1")],
                    caller_number="0705556677", hangup_after=25)
    kc.wait_for(lambda: kc.agent(ELDER_HV)["state"] == "ringing", 20, "agent ringing")
    started = time.monotonic()
    kc.wait_for(lambda: kc.agent(ELDER_HV)["state"] == "paused", 25, "agent paused after RONA")
    assert 12 <= time.monotonic() - started <= 20
    assert kc.agent(ELDER_HV)["reason"] == "rona"
    ringing.wait(30)
    # the caller is still waiting (not dropped) until they hang up themselves
    result = resident.wait_ok(40)
    assert result.hangup == "us"
    contact = wait_contact(kc, since, lambda c: c["caller"] == "0705556677" and c["outcome"],
                           "the RONA caller's contact")
    assert contact["outcome"] == "abandoned" and contact["skill"] == "elderly-care"
    kc.set_state(ELDER_HV, "logged_out")


def test_caller_hanging_up_first_is_completecaller(kc, workdir):
    since = now_iso()
    agent = logged_in_phone(kc, workdir, ELDER_2)
    answering = agent.answer_calls(count=1, ring_seconds=0.5, talk_seconds=30, hangup="far")
    resident = call(workdir, kc.sip_port, BROMMA, digits=[(2.0, "1")], caller_number="0708889900",
                    hangup_after=6)
    assert resident.wait_ok(40).answered
    answering.wait_ok(40)
    contact = wait_contact(kc, since, lambda c: c["caller"] == "0708889900" and c["outcome"],
                           "the caller-ended contact")
    assert contact["outcome"] == "answered" and contact["agent"] == ELDER_2
    kc.wait_for(lambda: kc.agent(ELDER_2)["state"] == "ready", 15, "agent free again")
    kc.set_state(ELDER_2, "logged_out")
    lines = [l.split("|") for l in (kc.var / "log" / "queue_log").read_text().splitlines()]
    ends = [l[4] for l in lines if len(l) > 4 and l[3] == ELDER_2 and l[4].startswith("COMPLETE")]
    assert ends[-1] == "COMPLETECALLER", ends
