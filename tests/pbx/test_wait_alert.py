"""A caller waiting past the queue's limit alerts the supervisors on the wallboard and in the
header of every page, and the queue's agents on their desk (real Asterisk, SIPp and
Chromium); the queue's escalation steps are kept with its settings."""
from __future__ import annotations

import pytest

from conftest import logged_in, login, password_of
from own_agents import Crew
from sipp_driver import call

pytestmark = pytest.mark.telephony

QUEUE = "school@bromma"      # the crew's school agent stays logged out: the caller waits
CREW = Crew(__name__)
(SCHOOL,) = CREW.of("school")
crew = CREW.fixture()


def test_a_caller_waiting_past_the_limit_alerts_the_wallboard(browser, kc, tmp_path):
    status, body = kc.request("GET", "/api/queues")
    before = next((q for q in body["queues"] if q["name"] == QUEUE),
                  {"service_level_seconds": 30, "wrap_up_seconds": 0, "priority": 0, "overflow": []})
    before = {k: v for k, v in before.items() if k not in ("name", "skill", "district")}
    status, body = kc.request("PUT", "/api/queues/school/bromma", {
        **before, "escalation": [{"after_seconds": 60, "raise_by": 5}], "alert_seconds": 6})
    assert status == 200, body
    assert body["escalation"] == [{"after_seconds": 60.0, "raise_by": 5}] and body["alert_seconds"] == 6.0
    context, other, desk_context = browser.new_context(), browser.new_context(), browser.new_context()
    try:
        page = context.new_page()
        login(page, kc.url, "supervisor", "demo-supervisor")
        logged_in(page)
        page.goto(f"{kc.url}/wallboard")
        page.wait_for_selector(f"tr[data-queue='{QUEUE}']")
        alert = f"#wb-alerts p[data-queue='{QUEUE}']"
        assert page.query_selector(alert) is None
        reports = other.new_page()                             # the supervisor on another page
        login(reports, kc.url, "supervisor", "demo-supervisor")
        logged_in(reports)
        reports.goto(f"{kc.url}/reports")
        desk = desk_context.new_page()                         # an agent of the queue at the desk
        login(desk, kc.url, SCHOOL, password_of(SCHOOL))
        desk.wait_for_url(f"{kc.url}/desk")
        header = f"#wait-alerts p[data-queue='{QUEUE}']"
        assert page.query_selector("#wait-alerts") is None     # the wallboard lists them itself
        assert reports.query_selector(header) is None and desk.query_selector(header) is None
        resident = call(tmp_path, kc.sip_port, "0850810000", digits=[(2.0, "2")],
                        caller_number="0709990011", hangup_after=20)
        page.wait_for_selector(alert, timeout=30000)           # after 6 s of waiting
        assert "Förskola och skola, Bromma" in page.inner_text(alert)     # the queue, by name
        for where in (reports, desk):
            where.wait_for_selector(header, timeout=15000)
            # the same sentence as the wallboard's, but for the ticking wait
            assert where.inner_text(header).rsplit(" ", 4)[0] == page.inner_text(alert).rsplit(" ", 4)[0]
        resident.wait(60)
        page.wait_for_selector(alert, state="detached", timeout=15000)   # gone when the caller is
        for where in (reports, desk):
            where.wait_for_selector(header, state="detached", timeout=15000)
    finally:
        for c in (context, other, desk_context):
            c.close()
        kc.request("PUT", "/api/queues/school/bromma", before)
