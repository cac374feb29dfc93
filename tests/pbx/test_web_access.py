"""Log-in, lock-out, sessions, CSRF and roles on the site, in a real browser and over HTTP."""
from __future__ import annotations

import re
import urllib.request

from conftest import logged_in, login
from own_agents import PASSWORD, Crew
from playwright.sync_api import expect
from web_client import Client

CREW = Crew(__name__)
[AGENT] = CREW.of("school-hv")
crew = CREW.fixture()


def test_login_and_lockout_in_the_browser(browser, kc):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{kc.url}/admin/users")
    assert page.url.startswith(f"{kc.url}/login")          # pages need a log-in
    for _ in range(5):
        login(page, kc.url, "supervisor", "not-the-password")
        assert "Fel användarnamn eller lösenord" in page.content()
    login(page, kc.url, "supervisor", "demo-supervisor")     # right password, but paused now
    assert "Fel användarnamn eller lösenord" in page.content()  # for this browser, said as for any name
    context.close()
    status, body = kc.request("GET", "/api/agents")          # other users are unaffected
    assert status == 200

    context = browser.new_context()
    page = context.new_page()
    login(page, kc.url, "admin", "demo-admin")
    logged_in(page)
    page.goto(f"{kc.url}/admin/users")
    row = page.locator("tr").filter(
        has=page.locator("td:first-child", has_text=re.compile(r"^supervisor$")))
    row.get_by_role("button", name="Lås upp").click()
    page.wait_for_url(f"{kc.url}/admin/users")
    page.get_by_role("button", name="Logga ut").click()
    page.wait_for_url(f"{kc.url}/login")
    login(page, kc.url, "supervisor", "demo-supervisor")
    logged_in(page)
    assert page.url == f"{kc.url}/wallboard"                   # a supervisor starts there
    assert "supervisor (arbetsledare)" in page.content()
    page.goto(f"{kc.url}/admin/audit")                         # admins only: said in the layout
    expect(page.locator("h1")).to_have_text("Du får inte öppna den här sidan")
    assert "Den här sidan är inte för din roll (arbetsledare)." in page.content()
    expect(page.locator("a[href='/wallboard']", has_text="Till din startsida")).to_be_visible()
    context.close()


def test_session_cookie_is_httponly_and_forged_form_is_refused(kc):
    client = Client(kc.url)
    status, headers, _ = client.login("admin", "demo-admin")
    assert status == 302 and headers["Location"] == "/admin/users"
    cookie = headers["Set-Cookie"]
    assert "kc_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # A forged cross-site form carries the cookie but not the session's CSRF token.
    form = {"username": "mallory", "role": "admin", "password": "0123456789abc"}
    status, _, _ = client.request("POST", "/admin/users", form)
    assert status == 403
    status, _, _ = client.request("POST", "/admin/users", {**form, "csrf_token": "guess"})
    assert status == 403
    users = kc.request("GET", "/api/agents")  # still works; and mallory does not exist:
    status, _, body = client.request("GET", "/admin/users")
    assert status == 200 and "mallory" not in body
    # With the token the same form works (and is audited).
    token = client.csrf("/admin/users")
    status, _, _ = client.request("POST", "/admin/users", {**form, "username": "eve-admin",
                                                           "csrf_token": token})
    assert status == 302
    _, _, audit = client.request("GET", "/admin/audit")
    assert "user.create" in audit and "eve-admin" in audit
    # Log-in form itself needs its own token; an open redirect is not followed.
    status, _, _ = Client(kc.url).request("POST", "/login", {"username": "admin", "password": "demo-admin"})
    assert status == 403
    other = Client(kc.url)
    token = other.csrf("/login?next=//evil.example/")
    status, headers, _ = other.request("POST", "/login?next=//evil.example/", {
        "csrf_token": token, "username": "admin", "password": "demo-admin", "next": "//evil.example/"})
    assert status == 302 and headers["Location"] == "/"


def test_roles_on_access_pages(kc):
    routes = [("GET", "/admin/users"), ("GET", "/admin/audit")]
    for username, password, allowed in [("manager", "demo-manager", False),
                                        (AGENT, PASSWORD, False),
                                        ("admin", "demo-admin", True)]:
        client = Client(kc.url)
        assert client.login(username, password)[0] == 302
        for method, path in routes:
            status, _, _ = client.request(method, path)
            assert (status == 200) == allowed, (username, path, status)
    anonymous = Client(kc.url)
    for method, path in routes:
        status, headers, _ = anonymous.request(method, path)
        assert status == 302 and headers["Location"].startswith("/login?next=")


def test_api_accepts_session_with_csrf_header(kc):
    client = Client(kc.url)
    client.login("admin", "demo-admin")
    status, _, _ = client.request("POST", f"/api/agents/{AGENT}/state", None,
                                  {"Content-Type": "application/json"})
    assert status == 403                                    # no CSRF header
    token = client.csrf("/admin/users")
    req_headers = {"Content-Type": "application/json", "X-CSRF-Token": token}
    data = b'{"state": "ready"}'
    req = urllib.request.Request(kc.url + f"/api/agents/{AGENT}/state", data=data, method="POST",
                                 headers=req_headers)
    with client.opener.open(req, timeout=10) as resp:
        assert resp.status == 200
    kc.set_state(AGENT, "logged_out")
