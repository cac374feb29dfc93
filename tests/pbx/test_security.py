"""The probe's findings (issue 15), each against the running centre over real HTTP (and a real
browser where a browser is what does the harm)."""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import smtplib
import sqlite3
import stat
import struct
import time
import urllib.parse
import wave
from email.message import EmailMessage

import aiohttp
import pytest

from conftest import logged_in, login
from own_agents import PASSWORD, Crew
from web_client import Peer

ADMIN = {"Authorization": "Bearer demo-admin-token"}

CREW = Crew(__name__)
UNCLEARED, CLEARED, ELDER, SCHOOL_HV, SOCIAL_HV = CREW.of(
    "school", "social", "elder", "school-hv", "social-hv")
crew = CREW.fixture()


def make_user(kc, username, role, agent="", districts=(), password="long-enough-pw"):
    form = [("username", username), ("role", role), ("password", password), ("agent", agent)]
    form += [("districts", d) for d in districts]
    status, _, text = _post_form(kc, "/admin/users", form)
    assert status in (302, 303), (status, text[:300])


def _post_form(kc, path, form):
    conn = http.client.HTTPConnection("127.0.0.1", kc.web_port, timeout=15)
    conn.request("POST", path, body=urllib.parse.urlencode(form),
                 headers={**ADMIN, "Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    return resp.status, resp.headers, text


def write_sql(kc, query, *params):
    with sqlite3.connect(kc.var / "kc.db", timeout=10) as db:
        cur = db.execute(query, params)
        return cur.lastrowid


# 1 ---------------------------------------------------------------------------------------
def test_no_open_redirect_after_log_in(browser, kc):
    for evil in ("/\t/evil.example", "/\r\n/evil.example", "/\\evil.example", "//evil.example",
                 "/ /evil.example"):
        status, headers, _ = Peer(kc, "127.0.0.1").login("manager", "demo-manager", evil)
        assert status == 302 and headers["Location"] == "/", (evil, headers["Location"])
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{kc.url}/login?next=/%09/evil.example")
    page.fill("input[name=username]", "manager")
    page.fill("input[name=password]", "demo-manager")
    page.click("main form[action='/login'] button[type=submit]")
    page.wait_for_load_state()
    time.sleep(0.5)
    assert page.url.startswith(kc.url + "/"), page.url       # never evil.example
    context.close()


# 2 ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def confidential_message(kc):
    """A voice message left after hours on Bromma's social-services line (confidential)."""
    rec_dir = kc.var / "asterisk" / "spool" / "kc-messages"
    rec_dir.mkdir(parents=True, exist_ok=True)
    recording = rec_dir / "probe-secret.wav"
    with wave.open(str(recording), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(struct.pack("<800h", *([0] * 800)))
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    contact = write_sql(kc, "insert into contacts (channel, district, dialed, caller, started_at, "
                        "outcome, skill, confidential) values ('phone', 'bromma', '0850810000', "
                        "'0701111222', ?, 'after_hours', 'social-services', 1)", now)
    rid = write_sql(kc, "insert into after_hours_requests (contact_id, district, kind, recording, "
                    "callback_number, language, created_at, due_at) values (?, 'bromma', "
                    "'voice_message', ?, '0701111222', 'sv', ?, ?)", contact, str(recording), now, now)
    return rid


def test_confidential_after_hours_data_only_for_the_cleared(kc, confidential_message):
    rid = confidential_message
    for token in ("demo-admin-token", "demo-manager-token"):
        status, body = kc.request("GET", "/api/after-hours", token=token)
        row = next(r for r in body["requests"] if r["id"] == rid)
        assert row["redacted"] is True and row["callback_number"] is None
        assert row["recording"] is None and row["caller"] is None
        assert "0701111222" not in json.dumps(body)
    uncleared, cleared = Peer(kc, "127.0.0.1"), Peer(kc, "127.0.0.1")
    assert uncleared.login(UNCLEARED, PASSWORD)[0] == 302
    assert cleared.login(CLEARED, PASSWORD)[0] == 302
    status, _, text = uncleared.request("GET", "/api/after-hours")
    row = next(r for r in json.loads(text)["requests"] if r["id"] == rid)
    assert row["redacted"] is True and "0701111222" not in text
    assert uncleared.request("GET", f"/desk/after-hours/{rid}/recording")[0] == 403
    status, _, text = cleared.request("GET", "/api/after-hours")
    row = next(r for r in json.loads(text)["requests"] if r["id"] == rid)
    assert row["redacted"] is False and row["callback_number"] == "0701111222"
    assert cleared.request("GET", f"/desk/after-hours/{rid}/recording")[0] == 200


# 3 ---------------------------------------------------------------------------------------
def test_guessing_slows_the_attacker_but_never_locks_the_real_user_out(browser, kc):
    make_user(kc, "probe-throttle", "manager", password="the-real-password")
    # the real user has logged in from their browser before
    context = browser.new_context()
    page = context.new_page()
    login(page, kc.url, "probe-throttle", "the-real-password")
    logged_in(page)
    page.get_by_role("button", name="Logga ut").click()
    page.wait_for_url(f"{kc.url}/login")

    attacker = Peer(kc, "127.0.0.3")
    real, unknown = [], []
    for _ in range(8):
        status, _, text = attacker.login("probe-throttle", "guess")
        real.append((status, re.search(r'class="error"[^>]*>([^<]*)<', text).group(1)))
        status, _, text = attacker.login("probe-nobody", "guess")
        unknown.append((status, re.search(r'class="error"[^>]*>([^<]*)<', text).group(1)))
    assert real == unknown                          # nothing tells a real account from none
    assert {s for s, _ in real} == {401}            # no 429 that only real accounts get
    # the attacker, even with the right password, is not let in while the name is paused
    assert attacker.login("probe-throttle", "the-real-password")[0] == 401
    # the real user, from their own browser, is
    login(page, kc.url, "probe-throttle", "the-real-password")
    logged_in(page)
    assert "probe-throttle" in page.content()
    context.close()
    # an administrator can lift the pause for new browsers
    _post_form(kc, "/admin/users/probe-throttle", [("action", "unlock")])
    assert Peer(kc, "127.0.0.5").login("probe-throttle", "the-real-password")[0] == 302


def test_one_client_cannot_try_sixty_passwords(kc):
    peer = Peer(kc, "127.0.0.4")
    statuses = [peer.login(f"probe-spray-{n}", "guess")[0] for n in range(30)]
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    assert statuses.count(401) <= 20
    # the same answer for a real name: the client is throttled, not the account
    status, headers, _ = peer.login("manager", "demo-manager")
    assert status == 429 and int(headers["Retry-After"]) > 0
    assert Peer(kc, "127.0.0.6").login("manager", "demo-manager")[0] == 302  # others unaffected


# 4 ---------------------------------------------------------------------------------------
async def _ws_closes_after(kc, peer, end) -> tuple[bool, list]:
    cookie = "; ".join(f"{k}={v}" for k, v in peer.cookies.items())
    got = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{kc.url}/desk/ws", headers={"Cookie": cookie}) as ws:
            first = await asyncio.wait_for(ws.receive(), 5)
            got.append(first.data)
            await asyncio.get_running_loop().run_in_executor(None, end)
            try:
                while True:
                    msg = await asyncio.wait_for(ws.receive(), 5)
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                    aiohttp.WSMsgType.CLOSING):
                        return True, got
                    got.append(msg.data)
            except asyncio.TimeoutError:
                return False, got


def in_thread(coro):
    """Run a coroutine on its own loop (Playwright holds this thread's loop in this module)."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_log_out_ends_the_desk_socket_and_the_wallboard_stream(kc):
    make_user(kc, "probe-desk", "agent", agent=SOCIAL_HV, password="probe-desk-pass")
    peer = Peer(kc, "127.0.0.1")
    assert peer.login("probe-desk", "probe-desk-pass")[0] == 302
    csrf = peer.csrf()
    closed, _ = in_thread(_ws_closes_after(
        kc, peer, lambda: peer.request("POST", "/logout", {"csrf_token": csrf})))
    assert closed
    # the wallboard's event stream ends too
    viewer = Peer(kc, "127.0.0.1")
    assert viewer.login("manager", "demo-manager")[0] == 302
    csrf = viewer.csrf()
    conn = http.client.HTTPConnection("127.0.0.1", kc.web_port, timeout=10)
    conn.request("GET", "/wallboard/events",
                 headers={"Cookie": "; ".join(f"{k}={v}" for k, v in viewer.cookies.items())})
    resp = conn.getresponse()
    assert resp.status == 200
    resp.readline()
    viewer.request("POST", "/logout", {"csrf_token": csrf})
    started = time.monotonic()
    while resp.readline():      # ends instead of streaming on
        assert time.monotonic() - started < 8, "the stream outlived the log-out"
    conn.close()


def test_a_password_change_ends_the_users_sessions(kc):
    make_user(kc, "probe-pw", "agent", agent=SOCIAL_HV, password="probe-pw-first")
    peer = Peer(kc, "127.0.0.1")
    assert peer.login("probe-pw", "probe-pw-first")[0] == 302
    assert peer.request("GET", "/desk")[0] == 200
    closed, _ = in_thread(_ws_closes_after(kc, peer, lambda: _post_form(
        kc, "/admin/users/probe-pw", [("action", "password"), ("password", "probe-pw-second")])))
    assert closed
    status, headers, _ = peer.request("GET", "/desk")
    assert status == 302 and headers["Location"].startswith("/login")


# 5 ---------------------------------------------------------------------------------------
def test_attachments_need_an_agent_of_the_contact(kc):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "resident@example.org", "bromma@kontakt.example", "Bygglov"
    msg.set_content("Se bifogad ritning om bygglov.")
    msg.add_attachment(b"%PDF-1.4 ritning", maintype="application", subtype="pdf",
                       filename="ritning.pdf")
    with smtplib.SMTP("127.0.0.1", int(kc.env["KC_SMTP_PORT"]), timeout=10) as smtp:
        smtp.send_message(msg)
    rows = kc.wait_for(lambda: kc.sql(
        "select a.id, c.agent from message_attachments a join contacts c on c.id = a.contact_id "
        "where a.filename = 'ritning.pdf'"), 10, "the e-mail registered")
    attachment, agent = rows[-1]
    assert agent is None                            # unassigned: the case of the probe
    make_user(kc, "probe-unlinked", "agent", password="probe-unlinked-pw")   # no agent linked
    peer = Peer(kc, "127.0.0.1")
    assert peer.login("probe-unlinked", "probe-unlinked-pw")[0] == 302
    assert peer.request("GET", f"/desk/attachments/{attachment}")[0] == 403
    admin = Peer(kc, "127.0.0.1")
    assert admin.login("admin", "demo-admin")[0] == 302
    assert admin.request("GET", f"/desk/attachments/{attachment}")[0] == 200


# 6 ---------------------------------------------------------------------------------------
def test_changes_need_the_right_role_and_district_and_are_audited(kc, confidential_message):
    status, body = kc.request("POST", f"/api/after-hours/{confidential_message}/done",
                              token="demo-manager-token")
    assert status == 403, body
    assert kc.sql("select handled_at from after_hours_requests where id = ?",
                  confidential_message) == [(None,)]
    make_user(kc, "probe-bromma-sup", "supervisor", districts=["bromma"], password="probe-sup-pw")
    sup = Peer(kc, "127.0.0.1")
    assert sup.login("probe-bromma-sup", "probe-sup-pw")[0] == 302
    csrf = sup.csrf()
    before = kc.agent(SCHOOL_HV)["state"]
    status, _, _ = sup.request("POST", f"/api/agents/{SCHOOL_HV}/state",
                               headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
                               body=json.dumps({"state": "logged_out" if before != "logged_out" else "ready"}))
    assert status == 403
    assert sup.request("POST", f"/admin/agents/{SCHOOL_HV}/state", {"csrf_token": csrf, "state": "ready"})[0] == 403
    assert sup.request("POST", f"/admin/agents/{SCHOOL_HV}/move",
                       {"csrf_token": csrf, "district": "bromma"})[0] == 403
    assert sup.request("POST", f"/admin/agents/{ELDER}/move",
                       {"csrf_token": csrf, "district": "hasselby-vallingby"})[0] == 403
    assert kc.agent(SCHOOL_HV)["state"] == before
    # an allowed change through the API is audited, and so is "done"
    status, _ = kc.request("POST", f"/api/agents/{SCHOOL_HV}/state", {"state": before})
    assert status == 200
    assert kc.sql("select count(*) from audit_log where action = 'agent.state' and target = ?"
                  " and username = 'admin'", SCHOOL_HV)[0][0] >= 1
    status, _ = kc.request("POST", f"/api/after-hours/{confidential_message}/done")
    assert status == 200
    assert kc.sql("select count(*) from audit_log where action = 'after_hours.done' and target = ?",
                  str(confidential_message))[0][0] == 1


# 7 and 11 (the form's limit) -------------------------------------------------------------
def test_public_form_takes_one_reply_address_and_bogus_posts_do_not_use_the_limit(kc):
    peer = Peer(kc, "127.0.0.7")
    for _ in range(6):      # no CSRF token: refused, and not counted
        assert peer.request("POST", "/kontakt", {"message": "hej hej"})[0] == 403
    for bad in ("a@example.org, b@example.org", "a@example.org\r\nBcc: x@example.org",
                "a@example.org;b@example.org", "Eve <a@example.org>"):
        _, _, page = peer.request("GET", "/kontakt")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        status, _, text = peer.request("POST", "/kontakt", {
            "csrf_token": token, "district": "bromma", "reply_to": bad,
            "message": "Jag undrar över förskola."})
        assert status == 422 and "svarsadress" in text.lower(), (bad, status)
    assert kc.sql("select count(*) from contacts where caller like '%b@example.org%' "
                  "or caller like '%bcc%'") == [(0,)]


# 11 --------------------------------------------------------------------------------------
def test_security_headers_on_every_answer(kc):
    peer = Peer(kc, "127.0.0.1")
    for path in ("/", "/login", "/kontakt", "/api/health", "/api/nothing-here", "/no-such-page",
                 "/static/site.css", "/api/contacts"):
        _, headers, _ = peer.request("GET", path)
        csp = headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert headers["X-Frame-Options"] == "DENY", path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "same-origin", path


def test_files_under_var_are_private(kc):
    kc.request("GET", "/api/contacts?since=2020-01-01T00:00:00Z")
    private = [kc.var / "kc.db", kc.var / "kc.db-wal", kc.var / "kc.db-shm",
               kc.var / "log" / "queue_log", *sorted((kc.var / "secrets").iterdir())]
    for path in private:
        assert path.exists(), path
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, (path, oct(os.stat(path).st_mode))
    assert stat.S_IMODE(os.stat(kc.var / "secrets").st_mode) == 0o700
    recordings = kc.var / "asterisk" / "spool" / "kc-messages"
    assert stat.S_IMODE(os.stat(recordings).st_mode) & 0o007 == 0   # no access for others


# 10 (the SMTP intake) --------------------------------------------------------------------
def test_mime_nested_a_thousand_deep_is_refused_with_554(kc):
    raw = b"From: a@example.org\r\nTo: bromma@kontakt.example\r\nSubject: nest\r\n"
    for i in range(1000):
        raw += b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
    raw += b"Content-Type: text/plain\r\n\r\nhej\r\n"
    with smtplib.SMTP("127.0.0.1", int(kc.env["KC_SMTP_PORT"]), timeout=20) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail("a@example.org", ["bromma@kontakt.example"], raw)
    assert refused.value.smtp_code == 554, refused.value
    assert "nested too deep" in refused.value.smtp_error.decode()


def test_the_api_description_is_served_without_a_token(kc):
    from admin_web.openapi import SPEC
    status, body = kc.request("GET", "/api/openapi.json", token=None)
    assert status == 200 and body == SPEC
