"""Every matter registered, end to end on a private instance (own Asterisk, own SMTP ports):
a real call pops the desktop, the agent saves the case and the report counts it; an e-mail
becomes a task, is answered and the reply reaches a sink; confidential cases stay closed to
uncleared users on every route; bad mail and a form flood are refused cleanly."""
from __future__ import annotations

import json
import re
import smtplib
from email.message import EmailMessage
import socket
import sqlite3
import threading
import urllib.parse
import urllib.request
from datetime import datetime
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from conftest import logged_in, login, open_desk, registered_phone
from kc_instance import now_iso, running_instance
from own_agents import PASSWORD, Crew, is_own
from sipp_driver import call
from web_client import Client

pytestmark = pytest.mark.telephony

BROMMA = "0850810000"

CREW = Crew(__name__)      # hired into the module's own centre
ELDER, ELDER_2, SOCIAL, ELDER_HV, SOCIAL_HV = CREW.of(
    "elder", "elder-2", "social", "elder-hv", "social-hv")


def login_password(user: str) -> str:
    """An own agent's password (this module's or another's), or the demo user's."""
    return PASSWORD if is_own(user) else f"demo-{user}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """The test's SMTP relay: keeps what the service sends."""

    def __init__(self):
        self.messages: list[bytes] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(envelope.original_content or envelope.content)
        return "250 OK"


@pytest.fixture(scope="module")
def sink():
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()


@pytest.fixture(scope="module")
def kcw(sink):
    with running_instance({"KC_SMTP_RELAY": f"127.0.0.1:{sink[1]}", "KC_SMTP_MAX_BYTES": "65536",
                           "KC_FORM_LIMIT": "5"}) as inst:
        CREW.hire(inst)
        yield inst


def smtp_port(kcw) -> int:
    return int(kcw.env["KC_SMTP_PORT"])


def desk(browser, kcw, agent):
    return open_desk(browser, kcw.url, agent, '#ws-status[data-connected="1"]')


def wait_contact(kcw, since, predicate, what, timeout=30):
    return kcw.wait_for(lambda: next((c for c in kcw.contacts(since) if predicate(c)), None),
                        timeout, what)


def ms(iso_text: str) -> float:
    return datetime.fromisoformat(iso_text.replace("Z", "+00:00")).timestamp() * 1000


def test_call_pops_the_desktop_case_is_saved_and_counted(kcw, browser, tmp_path):
    since = now_iso()
    status, before = kcw.request("GET", "/api/cases/fcr")
    assert status == 200
    # an earlier call from the same number, hung up in the menu: the pop must show it
    call(tmp_path, kcw.sip_port, BROMMA, caller_number="0709990001", hangup_after=2).wait_ok(30)
    wait_contact(kcw, since, lambda c: c["caller"] == "0709990001" and c["outcome"], "first call")

    phone = registered_phone(kcw, tmp_path, ELDER)
    context, page = desk(browser, kcw, ELDER)
    page.click("#btn-ready")
    page.wait_for_selector('#state[data-state="ready"]', timeout=5000)

    answering = phone.answer_calls(count=1, ring_seconds=1, talk_seconds=4, hangup="agent")
    resident = call(tmp_path, kcw.sip_port, BROMMA, digits=[(2.0, "1")], caller_number="0709990001",
                    hangup_after=None, wait_far_bye=60)
    page.wait_for_selector("#pop:not([hidden])", timeout=45000)
    popped_at = float(page.get_attribute("#pop", "data-at"))
    contact_id = int(page.get_attribute("#pop", "data-contact"))
    assert page.inner_text("#pop-caller").startswith("0709990001")
    assert page.inner_text("#pop-district") == "Bromma"
    assert page.inner_text("#pop-menu") == "1"
    assert page.inner_text("#pop-matter") == "Äldreomsorg"
    assert page.inner_text("#pop-language") == "sv"
    assert re.fullmatch(r"\d+ s", page.inner_text("#pop-wait"))
    assert "avbrutet" in page.inner_text("#pop-history")      # the outcome by its name
    # pre-filled case form: the category of the matter chosen in the menu
    assert page.input_value("#case-category") != ""
    assert page.inner_text("#kb-results").count("?") >= 1          # articles suggested
    contact = wait_contact(kcw, since, lambda c: c["id"] == contact_id and c["agent"], "answered")
    status, body = kcw.request("GET", f"/api/export?person=0709990001")
    answered_at = next(c for c in body["contacts"] if c["id"] == contact_id)["answered_at"]
    assert abs(popped_at - ms(answered_at)) < 1000, (popped_at, answered_at)   # pop within 1 s

    page.select_option("#case-subcategory", label="Hemtjänst")
    note = 'Ringde om <b>hemtjänst</b><script>window.pwned=1</script> & "avgift"'
    page.fill("#case-note", note)
    page.check('input[value="resolved_first_contact"]')
    page.click("#case-save")
    page.wait_for_selector("#case-status:has-text('sparat')", timeout=5000)
    case_id = int(page.get_attribute("#case-status", "data-case-id"))
    answering.wait_ok(60)
    resident.wait_ok(60)

    status, got = kcw.request("GET", f"/api/cases?since={since}")
    case = next(c for c in got["cases"] if c["id"] == case_id)
    assert case["contact_id"] == contact_id and case["channel"] == "phone"
    assert case["district"] == "bromma" and case["category"] == "Äldreomsorg"
    assert case["outcome"] == "resolved_first_contact" and case["agent"] == ELDER
    assert case["note"] == note and case["confidential"] is False
    # HTML in the note is shown as text
    page.goto(f"{kcw.url}/cases/{case_id}")
    assert page.inner_text(".note") == note
    assert page.locator(".note script, .note b").count() == 0
    assert page.evaluate("window.pwned") is None
    assert "&lt;script&gt;" in page.content()
    # the report counts it
    status, after = kcw.request("GET", "/api/cases/fcr")
    assert after["total"]["cases"] == before["total"]["cases"] + 1
    assert after["total"]["resolved"] == (before["total"]["resolved"] or 0) + 1
    sup = browser.new_context()
    sp = sup.new_page()
    login(sp, kcw.url, "supervisor", "demo-supervisor")
    logged_in(sp)
    sp.goto(f"{kcw.url}/reports/fcr")
    assert f"{after['total']['resolved']} av {after['total']['cases']}" in sp.inner_text("#fcr-total")
    assert sp.locator("svg.fcr-chart line.goal").count() == 3       # the 70 % goal on each chart
    sup.close()

    page.goto(f"{kcw.url}/desk")
    page.wait_for_selector('#ws-status[data-connected="1"]', timeout=10000)
    page.click("#btn-logout")
    kcw.wait_for(lambda: kcw.agent(ELDER)["state"] == "logged_out", 10, "logged out")
    context.close()


def test_email_becomes_a_task_is_answered_and_the_reply_is_relayed(kcw, browser, sink):
    since = now_iso()
    handler, _ = sink
    context, page = desk(browser, kcw, ELDER_HV)
    page.click("#btn-ready")
    page.wait_for_selector('#state[data-state="ready"]', timeout=5000)
    mail = EmailMessage()
    mail["From"], mail["To"] = "Karin <karin@example.se>", "hasselby-vallingby@kontakt.example"
    mail["Subject"], mail["Message-ID"] = "Hemtjänst till pappa", "<abc-1@example.se>"
    mail.set_content("Hej! Min pappa behöver hemtjänst. Hur ansöker vi?")
    scan = b"%PDF-1.4 l\xe4karintyg \x00\xff" * 100
    mail.add_attachment(scan, maintype="application", subtype="pdf", filename="läkarintyg.pdf")
    with smtplib.SMTP("127.0.0.1", smtp_port(kcw), timeout=10) as smtp:
        smtp.sendmail("Resident <karin@example.se>", ["hasselby-vallingby@kontakt.example"],
                      mail.as_bytes(policy=policy.SMTP))
    contact = wait_contact(kcw, since, lambda c: c["channel"] == "email", "the e-mail contact")
    assert contact["district"] == "hasselby-vallingby" and contact["skill"] == "elderly-care"
    assert contact["caller"] == "karin@example.se"
    page.wait_for_selector("#pop:not([hidden])", timeout=15000)
    assert page.get_attribute("#pop", "data-contact") == str(contact["id"])
    assert "Min pappa behöver hemtjänst" in page.inner_text("#pop-messages")
    # the attachment is offered as a download, byte for byte, to this agent only
    link = page.locator("#pop-messages ul.attachments a")
    assert link.inner_text().startswith("läkarintyg.pdf")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "läkarintyg.pdf"
    assert open(download.value.path(), "rb").read() == scan
    other, _ = session(kcw, ELDER)          # an agent of another district
    href = link.get_attribute("href")
    with pytest.raises(urllib.error.HTTPError) as refused:
        other.opener.open(other.base + href, timeout=10)
    assert refused.value.code == 403
    assert kcw.agent(ELDER_HV)["state"] == "on_call"                 # busy with the task
    page.fill("#reply", "Hej Karin! Ansök via e-tjänsten Ansök om äldreomsorg.")
    page.check('input[value="referred_eservice"]')
    page.fill("#case-eservice", "Ansök om äldreomsorg")
    page.click("#case-save")
    page.wait_for_selector("#case-status:has-text('sparat')", timeout=10000)
    kcw.wait_for(lambda: handler.messages, 10, "the reply at the sink")
    reply = message_from_bytes(handler.messages[-1], policy=policy.default)
    assert reply["To"] == "karin@example.se"
    assert reply["From"].addresses[0].addr_spec == "hasselby-vallingby@kontakt.example"
    assert reply["Subject"] == "Re: Hemtjänst till pappa"
    assert reply["In-Reply-To"] == "<abc-1@example.se>"
    assert "e-tjänsten" in reply.get_content()
    done = wait_contact(kcw, since, lambda c: c["id"] == contact["id"] and c["outcome"], "answered")
    assert done["outcome"] == "answered" and done["agent"] == ELDER_HV
    kcw.wait_for(lambda: kcw.agent(ELDER_HV)["state"] == "ready", 5, "agent ready again")
    page.click("#btn-logout")
    kcw.wait_for(lambda: kcw.agent(ELDER_HV)["state"] == "logged_out", 10, "logged out")
    context.close()


def session(kcw, user):
    client = Client(kcw.url)
    status, _, _ = client.login(user, login_password(user))
    assert status == 302
    return client, client.csrf("/cases")


def post_json(client, token, path, body):
    req = urllib.request.Request(client.base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "X-CSRF-Token": token})
    try:
        with client.opener.open(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def test_confidential_case_is_closed_to_uncleared_users_on_every_route(kcw):
    cleared, token = session(kcw, SOCIAL)
    _, _, page = cleared.request("GET", "/desk")
    category = re.search(r'<option value="(\d+)">Ekonomiskt bistånd och socialtjänst \(sekretess\)', page).group(1)
    secret_note = "Skuld hos hyresvärden, hotad vräkning"
    status, body = post_json(cleared, token, "/desk/manual", {
        "channel": "post", "district": "bromma", "sender": "Per Persson, Brommavägen 1",
        "subject": "Ansökan", "category_id": category, "note": secret_note,
        "outcome": "visit_booked"})
    assert status == 200, body
    case_id, contact_id = body["case_id"], body["contact_id"]

    def leaks(text: str) -> bool:
        text = text.replace('"person": "Per Persson, Brommavägen 1"', "")   # the query's echo
        return secret_note in text or "Per Persson" in text

    for user in (ELDER_2, SOCIAL_HV, "manager", "admin"):   # SOCIAL_HV is cleared for H-V only
        client, _ = session(kcw, user)
        for path in ("/api/cases", f"/api/cases/{case_id}", "/cases", f"/cases/{case_id}",
                     "/api/contacts", "/api/export?person=Per%20Persson,%20Brommav%C3%A4gen%201",
                     f"/desk/kb?q=skuld"):
            status, _, text = client.request("GET", path)
            assert not leaks(text), (user, path)
        status, _, text = client.request("GET", f"/api/cases/{case_id}")
        assert status == 403 and json.loads(text)["case"]["redacted"] is True
        listed = json.loads(client.request("GET", "/api/cases")[2])["cases"]
        mine = next(c for c in listed if c["id"] == case_id)      # it exists ...
        assert mine["redacted"] and mine["note"] is None and mine["category"] is None   # ... no content
    # the cleared agent and the supervisor read it; every view is audited
    status, _, text = cleared.request("GET", f"/api/cases/{case_id}")
    assert status == 200 and json.loads(text)["note"] == secret_note
    sup = Client(kcw.url)
    sup.login("supervisor", "demo-supervisor")
    status, _, text = sup.request("GET", f"/cases/{case_id}")
    assert status == 200 and secret_note in text
    admin = Client(kcw.url)
    admin.login("admin", "demo-admin")
    _, _, audit_page = admin.request("GET", "/admin/audit")
    views = re.findall(r"case\.view", audit_page)
    assert len(views) >= 2 and "supervisor" in audit_page and SOCIAL in audit_page
    assert contact_id


def test_confidential_attachment_only_for_those_cleared(kcw):
    since = now_iso()
    mail = EmailMessage()
    mail["From"], mail["To"] = "Per <per@example.se>", "bromma@kontakt.example"
    mail["Subject"] = "Ansökan om ekonomiskt bistånd"
    mail.set_content("Jag bifogar mina kontoutdrag.")
    statement = b"kontoutdrag 2026-10 \x00\x01" * 10
    mail.add_attachment(statement, maintype="application", subtype="pdf", filename="kontoutdrag.pdf")
    with smtplib.SMTP("127.0.0.1", smtp_port(kcw), timeout=10) as smtp:
        smtp.sendmail("per@example.se", ["bromma@kontakt.example"], mail.as_bytes(policy=policy.SMTP))
    def stored():   # the API withholds a confidential contact's sender: read the store
        with sqlite3.connect(kcw.var / "kc.db") as db:
            return db.execute("select a.id, c.confidential from message_attachments a join contacts c "
                              "on c.id = a.contact_id where c.caller = ? and c.started_at >= ?",
                              ["per@example.se", since]).fetchone()
    attachment_id, confidential = kcw.wait_for(stored, 30, "the e-mail and its attachment")
    assert confidential == 1
    path = f"/desk/attachments/{attachment_id}"
    for user in (ELDER_2, SOCIAL_HV, "admin"):     # same district uncleared; other; admin
        client = Client(kcw.url)
        client.login(user, login_password(user))
        status, _, text = client.request("GET", path)
        assert status == 403 and "kontoutdrag" not in text, user
    for user, password in ((SOCIAL, PASSWORD), ("supervisor", "demo-supervisor")):
        client = Client(kcw.url)
        client.login(user, password)
        with client.opener.open(client.base + path, timeout=10) as resp:
            assert resp.status == 200 and resp.read() == statement
            assert resp.headers["Content-Type"] == "application/octet-stream"
            assert resp.headers["Content-Disposition"].startswith("attachment;")
    admin = Client(kcw.url)
    admin.login("admin", "demo-admin")
    _, _, audit_page = admin.request("GET", "/admin/audit")
    assert audit_page.count("attachment.download") >= 2


def test_bad_mail_is_refused_cleanly(kcw):
    port = smtp_port(kcw)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("a@example.se", ["nobody@kontakt.example"], b"From: a@example.se\r\n\r\nhej")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        big = b"From: a@example.se\r\nSubject: stor\r\n\r\n" + (b"x" * 998 + b"\r\n") * 80
        with pytest.raises((smtplib.SMTPDataError, smtplib.SMTPSenderRefused,
                            smtplib.SMTPServerDisconnected)) as err:
            smtp.sendmail("a@example.se", ["bromma@kontakt.example"], big)
        if isinstance(err.value, smtplib.SMTPDataError):
            assert err.value.smtp_code == 552
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as err:
            smtp.sendmail("a@example.se", ["bromma@kontakt.example"], b"no headers at all, just bytes \xff\xfe")
        assert err.value.smtp_code == 554
        # the same connection (and the intake) keeps working
        smtp.sendmail("b@example.se", ["bromma@kontakt.example"],
                      b"From: b@example.se\r\nSubject: Skolval\r\n\r\nNar ar skolvalet?\r\n")


def test_contact_form_needs_its_token_and_a_flood_is_limited(kcw):
    client = Client(kcw.url)
    status, headers, page = client.request("GET", "/kontakt")
    assert status == 200 and "kc_form=" in headers["Set-Cookie"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"csrf_token": token, "name": "<img src=x onerror=alert(1)>", "reply_to": "olle@example.se",
            "district": "bromma", "category_id": "", "message": "Förskolan: när får vi plats? <script>x</script>"}
    status, _, _ = Client(kcw.url).request("POST", "/kontakt", form)   # no cookie: forged
    assert status == 403
    status, _, page = client.request("POST", "/kontakt", form)
    assert status == 200 and "registrerat" in page
    contact_id = int(re.search(r"nummer (\d+)", page).group(1))
    status, body = kcw.request("GET", "/api/contacts?since=2000-01-01T00:00:00Z")
    web = next(c for c in body["contacts"] if c["id"] == contact_id)
    assert web["channel"] == "web" and web["skill"] == "school" and web["caller"] == "olle@example.se"
    codes = []
    for _ in range(8):              # each post with a fresh token: only valid posts are counted
        _, _, page = client.request("GET", "/kontakt")
        fresh = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        codes.append(client.request("POST", "/kontakt", {**form, "csrf_token": fresh})[0])
    assert 429 in codes and codes.count(200) <= 4                    # 5 per window per address
    # the limit is per address: the centre's other pages still answer
    assert kcw.health()["status"] == "ok"


def test_supervisor_reads_confidential_cases_only_of_the_districts_they_supervise(kcw):
    """Users carry the districts they supervise (editable on /admin/users): a supervisor of
    Bromma only reads Bromma's confidential cases, never Hässelby-Vällingby's, on any route."""
    admin = Client(kcw.url)
    admin.login("admin", "demo-admin")
    token = admin.csrf("/admin/users")
    status, _, _ = admin.request("POST", "/admin/users", {
        "csrf_token": token, "username": "sup.bromma", "role": "supervisor", "agent": "",
        "districts": "bromma", "password": "demo-sup-bromma"})
    assert status == 302
    _, _, users_page = admin.request("GET", "/admin/users")
    row = re.search(r"<td>sup\.bromma</td>.*?</tr>", users_page, re.S).group(0)
    assert re.search(r'class="user-districts">Bromma<', row)

    secrets = {}
    for agent, district, note, sender in (
            (SOCIAL_HV, "hasselby-vallingby", "Orosanmälan grannens barn HV", "Hanna HV, Vällingbyvägen 9"),
            (SOCIAL, "bromma", "Ekonomiskt bistånd hyra Bromma", "Bo Bromma, Alviksvägen 3")):
        client, csrf = session(kcw, agent)
        _, _, page = client.request("GET", "/desk")
        category = re.search(r'<option value="(\d+)">Ekonomiskt bistånd och socialtjänst \(sekretess\)',
                             page).group(1)
        status, body = post_json(client, csrf, "/desk/manual", {
            "channel": "post", "district": district, "sender": sender, "subject": "Ärende",
            "category_id": category, "note": note, "outcome": "visit_booked"})
        assert status == 200, body
        secrets[district] = (body["case_id"], note, sender)

    sup = Client(kcw.url)
    assert sup.login("sup.bromma", "demo-sup-bromma")[0] == 302
    hv_case, hv_note, hv_sender = secrets["hasselby-vallingby"]
    b_case, b_note, b_sender = secrets["bromma"]
    hv_person = urllib.parse.quote(hv_sender)
    for path in ("/api/cases", f"/api/cases/{hv_case}", "/cases", f"/cases/{hv_case}",
                 "/api/contacts", f"/api/export?person={hv_person}"):
        status, _, text = sup.request("GET", path)
        text = text.replace(json.dumps(hv_sender, ensure_ascii=False)[1:-1], "", 1) \
            if path.startswith("/api/export") else text
        assert hv_note not in text and hv_sender not in text, path
    assert sup.request("GET", f"/api/cases/{hv_case}")[0] == 403
    assert sup.request("GET", f"/cases/{hv_case}")[0] == 403
    listed = json.loads(sup.request("GET", "/api/cases")[2])["cases"]
    assert next(c for c in listed if c["id"] == hv_case)["redacted"] is True   # exists, no content
    exported = json.loads(sup.request("GET", f"/api/export?person={hv_person}")[2])
    assert exported["contacts"] and all(c.get("withheld") == "confidential" for c in exported["contacts"])
    # ... and reads Bromma's, audited
    status, _, text = sup.request("GET", f"/api/cases/{b_case}")
    assert status == 200 and json.loads(text)["note"] == b_note
    status, _, text = sup.request("GET", f"/cases/{b_case}")
    assert status == 200 and b_note in text
    contacts = json.loads(sup.request("GET", "/api/contacts")[2])["contacts"]
    assert any(c["caller"] == b_sender for c in contacts)
    assert not any(c["caller"] == hv_sender for c in contacts)
    exported = json.loads(sup.request("GET", f"/api/export?person={urllib.parse.quote(b_sender)}")[2])
    assert exported["contacts"][0]["case"]["note"] == b_note
    # the demo supervisor supervises both districts
    demo_sup = Client(kcw.url)
    demo_sup.login("supervisor", "demo-supervisor")
    status, _, text = demo_sup.request("GET", f"/api/cases/{hv_case}")
    assert status == 200 and json.loads(text)["note"] == hv_note
    # an administrator adds Hässelby-Vällingby on /admin/users: now readable
    admin.request("POST", "/admin/users/sup.bromma", {"csrf_token": token, "action": "districts",
                                                      "districts": "hasselby-vallingby"})
    status, _, text = sup.request("GET", f"/api/cases/{hv_case}")
    assert status == 200 and json.loads(text)["note"] == hv_note
    assert sup.request("GET", f"/api/cases/{b_case}")[0] == 403   # Bromma was unticked
    _, _, audit_page = admin.request("GET", "/admin/audit")
    assert "sup.bromma" in audit_page and "user.districts" in audit_page
