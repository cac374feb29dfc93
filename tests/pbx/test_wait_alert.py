"""A caller waiting past the queue's limit alerts the supervisors on the wallboard (real
Asterisk, SIPp and Chromium); the queue's escalation steps are kept with its settings."""
from __future__ import annotations

import pytest

from conftest import logged_in, login
from sipp_driver import call

pytestmark = pytest.mark.telephony

QUEUE = "school@bromma"      # no agent is ready for it (each module logs its own out): the
                             # caller waits


def test_a_caller_waiting_past_the_limit_alerts_the_wallboard(browser, kc, tmp_path):
    status, body = kc.request("GET", "/api/queues")
    before = next((q for q in body["queues"] if q["name"] == QUEUE),
                  {"service_level_seconds": 30, "wrap_up_seconds": 0, "priority": 0, "overflow": []})
    before = {k: v for k, v in before.items() if k not in ("name", "skill", "district")}
    status, body = kc.request("PUT", "/api/queues/school/bromma", {
        **before, "escalation": [{"after_seconds": 60, "raise_by": 5}], "alert_seconds": 6})
    assert status == 200, body
    assert body["escalation"] == [{"after_seconds": 60.0, "raise_by": 5}] and body["alert_seconds"] == 6.0
    context = browser.new_context()
    try:
        page = context.new_page()
        login(page, kc.url, "supervisor", "demo-supervisor")
        logged_in(page)
        page.goto(f"{kc.url}/wallboard")
        page.wait_for_selector(f"tr[data-queue='{QUEUE}']")
        alert = f"#wb-alerts p[data-queue='{QUEUE}']"
        assert page.query_selector(alert) is None
        resident = call(tmp_path, kc.sip_port, "0850810000", digits=[(2.0, "2")],
                        caller_number="0709990011", hangup_after=20)
        page.wait_for_selector(alert, timeout=30000)           # after 6 s of waiting
        assert "Förskola och skola, Bromma" in page.inner_text(alert)     # the queue, by name
        resident.wait(60)
        page.wait_for_selector(alert, state="detached", timeout=15000)   # gone when the caller is
    finally:
        context.close()
        kc.request("PUT", "/api/queues/school/bromma", before)
