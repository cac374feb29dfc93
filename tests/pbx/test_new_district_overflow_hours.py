"""A district added while the centre runs (through the API, no restart) takes part in overflow
both ways by its queue settings, and its own opening hours apply to calls to its number.

Overflow: a caller of the new district with no ready agent there is answered, after the
overflow time, by an agent of an existing district; a caller of the existing district is
answered by the new district's agent once that queue overflows to it. Both contacts are counted
as overflowed (the contact and the reports). Hours: closed now, its number gets the after-hours
treatment; open again, the next call walks its menu.
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from own_agents import PASSWORD, Crew
from sipp_driver import SipPhone, call
from kc_instance import now_iso

pytestmark = pytest.mark.telephony

DISTRICT, NUMBER = "skarpnack", "0850850000"
HV = "0850820000"
OVERFLOW_SECONDS = 3
SKILLS = ("elderly-care", "school", "social-services", "switchboard")
ALWAYS_OPEN = {"always_open": True, "week": {}, "exceptions": []}
CREW = Crew(__name__)
# no switchboard skill: a call-back another module left waiting for the switchboard is not
# offered to it
ELDER = CREW.agent("elder", "bromma", {"elderly-care": 4})
OWN = CREW.agent("skarpnack", DISTRICT, {"elderly-care": 4})    # the new district's agent
DEMO_HV_QUEUE = {"service_level_seconds": 30, "wrap_up_seconds": 0, "priority": 0,
                 "overflow": [{"after_seconds": 30, "districts": ["bromma"]}]}


def finished(kc, since: str, caller: str, timeout: float = 40):
    return kc.wait_for(lambda: next((c for c in kc.contacts(since)
                                     if c["caller"] == caller and c["outcome"]), None),
                       timeout, f"the contact of {caller}")


@pytest.fixture(scope="module")
def district(kc):
    """Skarpnäck, added live: Bromma's menu copied, always open, its elderly-care callers
    overflowing to Bromma after a few seconds; the module's agents (one of Skarpnäck, one of
    Bromma) hired once it exists."""
    status, body = kc.request("PUT", f"/api/districts/{DISTRICT}", {
        "name": "Skarpnäck", "numbers": [NUMBER], "region": "Söderort", "menu_copy_of": "bromma",
        "hours": ALWAYS_OPEN,
        "queues": [{"skill": s, "service_level_seconds": 20, "wrap_up_seconds": 0, "priority": 0,
                    "overflow": [[OVERFLOW_SECONDS, ["bromma"]]]} for s in SKILLS]})
    assert status == 200 and [ "districts", DISTRICT, "add"] in body["changes"], body
    CREW.hire(kc)
    yield kc
    CREW.log_out(kc)
    kc.request("PUT", "/api/queues/elderly-care/hasselby-vallingby", DEMO_HV_QUEUE)


def ready(kc, workdir, agent_id: str) -> SipPhone:
    phone = SipPhone(workdir, kc.sip_port, agent_id, PASSWORD)
    phone.register()
    kc.wait_for(lambda: kc.agent(agent_id)["registered"], 15, f"{agent_id} registered")
    kc.set_state(agent_id, "ready")
    return phone


def test_overflow_to_and_from_the_new_district(district, tmp_path):
    kc = district
    since = now_iso()

    # Skarpnäck -> Bromma: nobody of Skarpnäck is ready, Bromma's agent answers after 3 s.
    bromma = ready(kc, tmp_path, ELDER)
    answering = bromma.answer_calls(count=1, ring_seconds=0.5, talk_seconds=1.5, hangup="agent")
    resident = call(tmp_path, kc.sip_port, NUMBER, digits=[(2.0, "1")], caller_number="0705010001",
                    hangup_after=None, wait_far_bye=60)
    answering.wait_ok(60)
    assert resident.wait_ok(60).answered
    out = finished(kc, since, "0705010001")
    assert out["district"] == DISTRICT and out["dialed"] == NUMBER and out["skill"] == "elderly-care"
    assert out["outcome"] == "answered" and out["agent"] == ELDER
    assert out["agent_district"] == "bromma" and out["overflowed"] is True
    assert out["wait_seconds"] >= OVERFLOW_SECONDS, out       # not before its queue's step
    kc.set_state(ELDER, "logged_out")

    # Hässelby-Vällingby -> Skarpnäck, once H-V's queue overflows to the new district.
    status, body = kc.request("PUT", "/api/queues/elderly-care/hasselby-vallingby", {
        **DEMO_HV_QUEUE, "overflow": [{"after_seconds": OVERFLOW_SECONDS, "districts": [DISTRICT]}]})
    assert status == 200, body
    own = ready(kc, tmp_path, OWN)
    answering = own.answer_calls(count=1, ring_seconds=0.5, talk_seconds=1.5, hangup="agent")
    resident = call(tmp_path, kc.sip_port, HV, digits=[(2.0, "1")], caller_number="0705010002",
                    hangup_after=None, wait_far_bye=60)
    answering.wait_ok(60)
    assert resident.wait_ok(60).answered
    came = finished(kc, since, "0705010002")
    assert came["district"] == "hasselby-vallingby" and came["agent"] == OWN
    assert came["agent_district"] == DISTRICT and came["overflowed"] is True
    assert came["wait_seconds"] >= OVERFLOW_SECONDS, came
    kc.set_state(OWN, "logged_out")

    # The reports count both: one overflowed out of Skarpnäck, one into it.
    today = datetime.now(ZoneInfo("Europe/Stockholm")).date().isoformat()
    status, summary = kc.request("GET", f"/api/reports/summary?from={today}&to={today}"
                                        f"&district={DISTRICT}")
    assert status == 200, summary
    figures = summary["figures"]
    assert (figures["overflowed_out"], figures["overflowed_in"]) == (1, 1), figures


def test_the_new_districts_hours_apply_to_its_number(district, tmp_path):
    kc = district
    since = now_iso()
    today = datetime.now(ZoneInfo("Europe/Stockholm")).date().isoformat()
    closed = {"always_open": False, "week": {d: [["07:00", "22:00"]] for d in
                                             ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
              "exceptions": [{"date": today, "hours": [], "message": {"sv": "Stängt i dag."}}],
              "after_hours": {"route_to": [], "voice_message": False, "callback": False}}
    status, body = kc.request("PUT", f"/api/schedule/{DISTRICT}", closed)
    assert status == 200, body
    status, now = kc.request("GET", f"/api/schedule/{DISTRICT}/status")
    assert status == 200 and now["open"] is False, now
    result = call(tmp_path, kc.sip_port, NUMBER, digits=[(2.0, "1")], caller_number="0705010003",
                  hangup_after=None, wait_far_bye=40).wait_ok(60)
    assert result.answered and result.hangup == "far"         # told it is closed, goodbye
    contact = finished(kc, since, "0705010003")
    assert contact["district"] == DISTRICT and contact["outcome"] == "after_hours"
    assert contact["menu_path"] == []                          # the menu was not walked

    status, body = kc.request("PUT", f"/api/schedule/{DISTRICT}", ALWAYS_OPEN)   # no restart
    assert status == 200, body
    result = call(tmp_path, kc.sip_port, NUMBER, digits=[(2.0, "2")], caller_number="0705010004",
                  hangup_after=3).wait_ok(60)
    assert result.answered
    contact = finished(kc, since, "0705010004")
    assert contact["district"] == DISTRICT and contact["menu_path"] == ["2"]
    assert contact["skill"] == "school" and contact["outcome"] == "abandoned"
