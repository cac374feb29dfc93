"""The admin pages for districts and skills, in Chromium and over plain HTTP: an administrator
adds a district through the form (bad input shows every problem and keeps what was typed), a
call to its number then walks its menu, it is on the wallboard; edits and retiring are audited,
retiring keeps its history; skills are added and edited; only admins get in, before any lookup."""
from __future__ import annotations

import json
import re
import smtplib
from email.message import EmailMessage

import pytest

from sipp_driver import call
from test_web_access import Client
from kc_instance import now_iso

pytestmark = pytest.mark.telephony

DISTRICT, NUMBER, ADDRESS = "alvsjo", "0850870000", "alvsjo@kontakt.example"


def test_an_admin_adds_a_district_through_the_pages_and_its_number_walks_its_menu(
        admin_page, kc, tmp_path):
    page = admin_page
    since = now_iso()
    page.goto(f"{kc.url}/admin/districts")
    page.click("a.new-district")
    page.fill("input[name=id]", DISTRICT)
    page.fill("input[name=name]", "Älvsjö")
    page.fill("textarea[name=numbers]", "0850810000")          # Bromma's: refused
    page.fill("textarea[name=addresses]", ADDRESS)
    page.fill("input[name=region]", "Söderort")
    page.select_option("select[name=menu]", "copy:bromma")
    page.select_option("select[name=overflow_to]", "bromma")
    page.click("button.save-district")
    problems = page.locator("ul.problems").inner_text()
    assert "0850810000" in problems, problems
    assert page.input_value("input[name=name]") == "Älvsjö"     # nothing typed is lost
    assert page.input_value("textarea[name=addresses]") == ADDRESS
    assert page.input_value("select[name=menu]") == "copy:bromma"
    assert page.input_value("select[name=overflow_to]") == "bromma"
    assert kc.sql("select count(*) from districts where id = ?", DISTRICT) == [(0,)]

    page.fill("textarea[name=numbers]", NUMBER)
    page.click("button.save-district")
    page.wait_for_url(f"{kc.url}/admin/districts/{DISTRICT}?saved=1")
    assert page.locator("p.ok").count() == 1
    queue = page.locator(f"tr[data-queue='elderly-care@{DISTRICT}']")
    assert queue.locator(".overflow").inner_text() == "efter 30 s till Bromma"
    assert queue.locator("a").get_attribute("href") == f"/admin/queues/elderly-care/{DISTRICT}"
    assert kc.sql("select number from district_numbers where district = ?", DISTRICT) == [(NUMBER,)]

    # Live: the wallboard shows it by its name as written, and its number walks its menu.
    status, board = kc.request("GET", "/api/wallboard")
    assert status == 200 and "Älvsjö" in json.dumps(board, ensure_ascii=False)
    result = call(tmp_path, kc.sip_port, NUMBER, digits=[(2.0, "1")], caller_number="0708700001",
                  hangup_after=3).wait_ok(60)
    assert result.answered
    contact = kc.wait_for(lambda: next((c for c in kc.contacts(since) if c["caller"] == "0708700001"
                                        and c["outcome"]), None), 40, "the call's contact")
    assert contact["district"] == DISTRICT and contact["dialed"] == NUMBER
    assert contact["menu_path"] == ["1"] and contact["skill"] == "elderly-care"

    # Its address reaches the e-mail intake at once.
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "nils@example.se", ADDRESS, "Hemtjänst"
    msg.set_content("Hej! Jag har en fråga om hemtjänsten.")
    with smtplib.SMTP("127.0.0.1", int(kc.env["KC_SMTP_PORT"]), timeout=10) as smtp:
        smtp.send_message(msg)
    kc.wait_for(lambda: next((x for x in kc.contacts(since) if x["channel"] == "email"
                              and x["district"] == DISTRICT), None), 20, "the e-mail's contact")

    # Edited through the form: saved, audited.
    page.fill("input[name=region]", "Söderort syd")
    page.click("button.save-district")
    page.wait_for_url(f"{kc.url}/admin/districts/{DISTRICT}?saved=1")
    assert page.input_value("input[name=region]") == "Söderort syd"
    assert kc.sql("select region from districts where id = ?", DISTRICT) == [("Söderort syd",)]
    notes = [n for (n,) in kc.sql("select target from audit_log where action = 'config.import' "
                                  "and username = 'admin'")]
    assert notes.count(f"district {DISTRICT}") >= 2, notes

    # Retired: the number is refused, the list says so, its contact stays in the reports.
    page.click("button.retire")
    page.wait_for_url(re.compile(r".*/admin/districts\?notice=.*"))
    assert page.locator(f"tr[data-district={DISTRICT}] .status").inner_text() == "avvecklad"
    refused = call(tmp_path, kc.sip_port, NUMBER, digits=[], caller_number="0708700002",
                   hangup_after=2, wait_far_bye=10)
    assert not refused.wait(30).answered
    status, table = kc.request("GET", "/api/reports/table?by=district")
    assert any(r.get("district") == DISTRICT for r in table["rows"]), table


def _token(client: Client, path: str) -> str:
    _, _, body = client.request("GET", path)
    return re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)


def test_skills_pages_and_who_may_change_the_organisation(kc):
    supervisor = Client(kc.url)
    supervisor.login("supervisor", "demo-supervisor")
    for path in ("/admin/districts", "/admin/districts/bromma", "/admin/districts/nowhere",
                 "/admin/skills", "/admin/skills/nothing"):
        assert supervisor.request("GET", path)[0] == 403, path       # the role before the lookup
    token = _token(supervisor, "/admin/org")
    for path in ("/admin/districts/new", "/admin/districts/bromma/retire", "/admin/skills"):
        assert supervisor.request("POST", path, {"csrf_token": token, "id": "x", "name": "X"})[0] == 403

    admin = Client(kc.url)
    admin.login("admin", "demo-admin")
    assert admin.request("GET", "/admin/districts/nowhere")[0] == 404
    assert admin.request("POST", "/admin/skills", {"id": "x", "name": "X"})[0] == 403   # no CSRF
    token = _token(admin, "/admin/skills")
    status, _, body = admin.request("POST", "/admin/skills", {"csrf_token": token, "id": "Parkering!",
                                                              "name": "Parkering"})
    assert status == 422 and "Parkering!" in body and 'value="Parkering"' in body   # kept
    status, headers, _ = admin.request("POST", "/admin/skills", {
        "csrf_token": token, "id": "parking", "name": "Parkering", "confidential": ""})
    assert status == 302, headers
    status, _, body = admin.request("POST", "/admin/skills", {"csrf_token": token, "id": "parking",
                                                              "name": "Parkering igen"})
    assert status == 422 and "finns redan" in body
    status, _, _ = admin.request("POST", "/admin/skills/parking", {
        "csrf_token": token, "name": "Parkering och gator"})
    assert status == 302
    assert kc.sql("select name, confidential from skills where id = 'parking'") == \
        [("Parkering och gator", 0)]
    status, _, body = admin.request("GET", "/admin/skills")
    assert "Parkering och gator" in body
    assert kc.sql("select count(*) from audit_log where action = 'config.import' "
                  "and target = 'skill parking'") == [(2,)]
    # A district in use is not retired while agents work there: the form says why.
    status, _, body = admin.request("POST", "/admin/districts/bromma/retire", {"csrf_token": token})
    assert status == 422 and "avvecklades inte" in body
    assert kc.sql("select retired_at from districts where id = 'bromma'") == [(None,)]
