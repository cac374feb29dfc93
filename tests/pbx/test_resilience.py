"""Restarts and outages on a private instance: callers are never dropped and nothing is lost."""
from __future__ import annotations

import time

import pytest

from own_agents import PASSWORD, Crew
from sipp_driver import SipPhone, call
from kc_instance import now_iso

pytestmark = pytest.mark.telephony

CREW = Crew(__name__)      # hired into the test's own centre
[ELDER] = CREW.of("elder")


@pytest.mark.smoke16
def test_service_restart_keeps_waiting_caller_and_fallback_registers_calls(own_kc, tmp_path):
    kc = own_kc
    CREW.hire(kc)
    since = now_iso()
    resident = call(tmp_path, kc.sip_port, "0850810000", digits=[(2.0, "1")],
                    caller_number="0706667788", hangup_after=None, wait_far_bye=90)
    kc.wait_for(lambda: any(c["skill"] == "elderly-care" for c in kc.contacts(since)), 20,
                "caller in the queue")
    time.sleep(1)
    kc.stop_service()                       # the caller keeps hearing music in Asterisk
    time.sleep(3)
    assert resident.running
    kc.start_service()
    agent = SipPhone(tmp_path, kc.sip_port, ELDER, PASSWORD)
    agent.register()
    agent.dial("*21")
    answering = agent.answer_calls(count=1, ring_seconds=0.5, talk_seconds=2, hangup="agent")
    answering.wait_ok(60)
    result = resident.wait_ok(60)
    assert result.answered and result.hangup == "far"
    contact = kc.wait_for(lambda: next((c for c in kc.contacts(since)
                                        if c["caller"] == "0706667788" and c["outcome"]), None),
                          20, "the answered contact")
    assert contact["outcome"] == "answered" and contact["agent"] == ELDER
    assert contact["wait_seconds"] >= 4, "the original enqueue time counts after the restart"

    # With the service down, Asterisk's own fallback answers and spools the call ...
    kc.stop_service()
    fallback = call(tmp_path, kc.sip_port, "0850820000", caller_number="0707778899",
                    hangup_after=None, wait_far_bye=30).wait_ok(45)
    assert fallback.answered and fallback.hangup == "far"
    # ... and the service registers it when it is back.
    since2 = now_iso()
    kc.start_service()
    failed = kc.wait_for(lambda: next((c for c in kc.contacts(since[:10])
                                       if c["caller"] == "0707778899"), None), 20, "spooled call")
    assert failed["outcome"] == "failed" and failed["district"] == "hasselby-vallingby"
    assert failed["dialed"] == "0850820000"


@pytest.mark.smoke16
def test_ami_link_reconnects_after_asterisk_restart(own_kc):
    kc = own_kc
    kc._stop("asterisk")
    # (while Asterisk shuts down its AMI port may still take a connection for a moment)
    kc.wait_for(lambda: {k: (kc.health() or {}).get(k) for k in ("status", "asterisk", "ami")}
                == {"status": "ok", "asterisk": "down", "ami": "down"}, 30,
                "Asterisk and AMI down reported")
    kc._start("asterisk", "asterisk")
    kc.wait_for(kc.pbx_up, 60, "AMI reconnected")
