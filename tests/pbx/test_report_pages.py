"""Reports and wallboard on the running service: roles on every route, the summary API and the
page against seeded contacts (expected values computed here), CSV download, SVG charts, and the
wallboard changing when a real SIPp call arrives."""
from __future__ import annotations

import csv
import io
import re
import sqlite3
import time
import urllib.parse

import pytest

from conftest import logged_in, login
from own_agents import PASSWORD, Crew
from admin_web.words import number
from playwright.sync_api import expect
from sipp_driver import call
from web_client import Client, client_of

# A quiet period of the past no other test writes to; contacts seeded straight into the database.
DAY = "2021-02-03"
SEED = [  # district, skill, wait, outcome(answered|abandoned|after_hours|menu), talk, overflowed
    ("bromma", "school", 10.0, "answered", 100.0, 0),
    ("bromma", "school", 40.0, "answered", 200.0, 0),
    ("bromma", "school", 2.0, "abandoned", None, 0),
    ("bromma", "school", 20.0, "abandoned", None, 0),
    ("bromma", "elderly-care", 5.0, "answered", 60.0, 1),
    ("bromma", None, None, "menu", None, 0),
    ("hasselby-vallingby", "school", 31.0, "answered", 300.0, 0),
    ("hasselby-vallingby", "elderly-care", None, "after_hours", None, 0),
]


# The module's own agents, one of them in a district of its own (no demo agent there).
DISTRICT, DISTRICT_NAME, DISTRICT_NUMBER = "report-pages", "Rapportdelen", "0850877701"
CREW = Crew(__name__)
[SOCIAL] = CREW.of("social")
ALL_SKILLS = CREW.agent("all-skills", DISTRICT, {"elderly-care": 4, "school": 4,
                                                 "social-services": 4, "switchboard": 3},
                        cleared_for=(DISTRICT,))


@pytest.fixture(scope="module", autouse=True)
def crew(kc):
    status, body = kc.request("PUT", f"/api/districts/{DISTRICT}", {
        "name": DISTRICT_NAME, "numbers": [DISTRICT_NUMBER], "menu_copy_of": "bromma",
        "hours": {"always_open": True, "week": {}, "exceptions": []}})
    assert status == 200, body
    CREW.hire(kc)
    yield
    CREW.log_out(kc)


def expected_bromma_school():
    rows = [r for r in SEED if r[0] == "bromma" and r[1] == "school"]
    offered = len(rows)
    answered = [r for r in rows if r[3] == "answered"]
    short = [r for r in rows if r[3] == "abandoned" and r[2] < 5]
    in_target = [r for r in answered if r[2] <= 30]
    return {
        "offered": offered, "answered": len(answered),
        "abandoned": len([r for r in rows if r[3] == "abandoned"]) - len(short),
        "abandoned_short": len(short), "answered_in_target": len(in_target),
        "service_level": round(100 * len(in_target) / (offered - len(short)), 1),
        "availability": round(100 * len(answered) / offered, 1),
        "asa": round(sum(r[2] for r in answered) / len(answered), 1),
        "aht": round(sum(r[4] + SEED_WRAP_UP for r in answered) / len(answered), 1),
        "longest_wait": max(r[2] for r in rows),
    }


SEED_WRAP_UP = 10.0   # each answered contact's recorded wrap-up: AHT = talk + wrap-up


@pytest.fixture(scope="module")
def seeded(kc):
    db = sqlite3.connect(kc.var / "kc.db", timeout=10)
    with db:
        db.execute("delete from contacts where started_at like ?", [DAY + "%"])
        for i, (district, skill, wait, outcome, talk, overflowed) in enumerate(SEED):
            at = f"{DAY}T10:{i:02d}:00.000Z"
            queued = outcome in ("answered", "abandoned")
            db.execute(
                "insert into contacts (channel, district, caller, started_at, skill, outcome, "
                "enqueued_at, answered_at, wait_seconds, talk_seconds, overflowed, agent_district, "
                "wrap_up_seconds) values ('phone', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [district, f"0719{i:06d}", at, skill,
                 "abandoned" if outcome == "menu" else outcome, at if queued else None,
                 at if outcome == "answered" else None, wait, talk, overflowed,
                 ("hasselby-vallingby" if overflowed else district) if outcome == "answered" else None,
                 SEED_WRAP_UP if outcome == "answered" else None])
    db.close()
    return expected_bromma_school()


Q = f"from={DAY}&to={DAY}"
API_ROUTES = [f"/api/reports/summary?{Q}", f"/api/reports/table?by=queue&{Q}",
              f"/api/reports/staffing?{Q}", f"/api/reports/queue.csv?{Q}",
              f"/api/reports/summary.csv?{Q}", f"/api/reports/staffing.csv?{Q}",
              f"/api/reports/charts/volume-by-day.svg?{Q}", f"/api/reports/agents?{Q}",
              f"/api/reports/agents.csv?{Q}", f"/api/reports/rundgang.csv?{Q}"]
PAGE_ROUTES = [f"/reports?{Q}"]
REPORT_READERS = {"admin", "supervisor", "manager"}
RUNNERS_ROLES = {"admin", "supervisor"}


@pytest.fixture(scope="module")
def clients(kc):
    return {
        "anonymous": Client(kc.url),
        "agent": client_of(kc.url, SOCIAL, PASSWORD),
        "manager": client_of(kc.url, "manager", "demo-manager"),
        "supervisor": client_of(kc.url, "supervisor", "demo-supervisor"),
        "admin": client_of(kc.url, "admin", "demo-admin"),
    }


@pytest.mark.parametrize("role", ["anonymous", "agent", "manager", "supervisor", "admin"])
def test_roles_on_every_report_and_wallboard_route(clients, seeded, role):
    c = clients[role]
    for path in API_ROUTES:
        status, _, _ = c.get(path)
        want = 401 if role == "anonymous" else 200 if role in REPORT_READERS else 403
        assert status == want, (role, path, status)
    for path in PAGE_ROUTES:
        status, headers, _ = c.get(path)
        if role == "anonymous":
            assert status == 302 and headers["Location"].startswith("/login"), (path, status)
        else:
            assert status == (200 if role in REPORT_READERS else 403), (role, path, status)
    status, _, _ = c.get("/api/wallboard")
    assert status == (401 if role == "anonymous" else 200), (role, status)
    status, headers, _ = c.get("/wallboard")
    assert status == (302 if role == "anonymous" else 200), (role, status)
    if role != "anonymous":
        status, headers, first = c.get("/wallboard/events", read=False)
        assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
        assert first.startswith("event: snapshot")


def test_bearer_tokens_on_report_api(kc, seeded):
    assert kc.request("GET", f"/api/reports/summary?{Q}", token=None)[0] == 401
    assert kc.request("GET", f"/api/reports/summary?{Q}", token="demo-manager-token")[0] == 200
    status, body = kc.request("GET", f"/api/reports/summary?from=nonsense", token="demo-manager-token")
    assert status == 422 and "nonsense" in body["error"]
    status, body = kc.request("GET", f"/api/reports/table?by=colour&{Q}", token="demo-manager-token")
    assert status == 422


def test_summary_api_returns_the_seeded_figures(kc, seeded):
    status, body = kc.request("GET", f"/api/reports/summary?{Q}&queue=school@bromma", token="demo-manager-token")
    assert status == 200, body
    got = body["figures"]
    assert {k: got[k] for k in seeded} == seeded
    assert body["scope"]["queue"] == "school@bromma"
    assert {d["key"] for d in body["definitions"]} >= set(got)
    status, body = kc.request("GET", f"/api/reports/summary?{Q}&district=bromma", token="demo-manager-token")
    f = body["figures"]
    assert (f["contacts"], f["offered"], f["menu_abandoned"], f["overflowed_out"], f["overflowed_in"]) == (6, 5, 1, 1, 0)
    status, body = kc.request("GET", f"/api/reports/summary?{Q}&district=hasselby-vallingby", token="demo-manager-token")
    f = body["figures"]
    assert (f["after_hours"], f["overflowed_in"], f["offered"]) == (1, 1, 1)


def test_report_page_shows_the_seeded_figures_and_csv_downloads(browser, kc, seeded):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    login(page, kc.url, "manager", "demo-manager")
    logged_in(page)
    page.goto(f"{kc.url}/reports")
    page.fill("input[name=from]", DAY)
    page.fill("input[name=to]", DAY)
    page.select_option("select[name=queue]", "school@bromma")
    page.click("form.filter button[type=submit]")
    page.wait_for_url(re.compile(r".*queue=school%40bromma.*"))
    row = lambda key: page.locator(f"#summary tr[data-key={key}] td.num").inner_text()  # noqa: E731
    assert row("offered") == str(seeded["offered"])
    assert row("answered") == str(seeded["answered"])
    assert row("abandoned_short") == str(seeded["abandoned_short"])
    assert row("service_level") == number(seeded["service_level"]) + " %"     # rounded for people
    assert row("asa") == number(seeded["asa"]) + " s"
    assert "Besvarade inom målet ÷ (erbjudna" in page.content()      # definitions on the page
    # the charts: a part of their own, drawn in the page, axes named, every value on hover
    expect(page.locator("#part-charts")).to_be_hidden()
    page.click("nav.tabs-nav a[href='#part-charts']")
    chart = page.locator("#chart-volume-by-queue")
    expect(chart).to_be_visible()
    expect(chart.locator("text.x-label")).to_have_text(["Förskola och skola, Bromma"])
    assert f"Förskola och skola, Bromma – Erbjudna: {seeded['offered']}" in chart.locator("rect.bar title").all_text_contents()
    expect(chart.locator("ul.legend")).to_contain_text("Besvarade")
    expect(page.locator("#chart-service-level-by-queue line.target")).to_have_count(1)
    expect(page.locator("#summary")).to_be_hidden()
    page.click("nav.tabs-nav a[href='#part-tables']")
    expect(page.locator("#by-queue th[scope=row]")).to_have_text(["Förskola och skola, Bromma"])
    with page.expect_download() as info:
        page.locator("a[href^='/api/reports/queue.csv']").click()
    download = info.value
    text = open(download.path(), encoding="utf-8").read()
    assert "# aht: Average handle time" in text          # definitions in the header comment
    body = "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
    rows = {r["queue"]: r for r in csv.DictReader(io.StringIO(body))}
    assert rows["school@bromma"]["offered"] == str(seeded["offered"])
    assert rows["school@bromma"]["service_level"] == str(seeded["service_level"])
    assert download.suggested_filename.startswith("kommuncentral-queue-")
    context.close()


def _queue_cell(page, queue, key):
    return page.locator(f"tr[data-queue='{queue}'] td[data-key={key}]").inner_text()


@pytest.mark.telephony
def test_wallboard_changes_when_a_call_arrives(browser, kc, tmp_path):
    queue = "school@hasselby-vallingby"      # no school agent of H-V logged in: the caller waits
    context = browser.new_context()
    page = context.new_page()
    login(page, kc.url, "supervisor", "demo-supervisor")
    logged_in(page)
    page.goto(f"{kc.url}/wallboard")
    page.wait_for_selector(f"tr[data-queue='{queue}']")
    assert _queue_cell(page, queue, "waiting") == "0"
    abandoned_before = int(_queue_cell(page, queue, "abandoned"))
    resident = call(tmp_path, kc.sip_port, "0850820000", digits=[(2.0, "2")],
                    caller_number="0709990001", hangup_after=8)
    # the caller reaches the queue: the row shows a waiting caller within 2 s of the ACD's change
    status, snap = kc.request("GET", "/api/wallboard")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, snap = kc.request("GET", "/api/wallboard")
        if next(q for q in snap["queues"] if q["name"] == queue)["waiting"] == 1:
            break
        time.sleep(0.1)
    seen_api = time.monotonic()
    page.wait_for_function(
        f"() => document.querySelector(\"tr[data-queue='{queue}'] td[data-key=waiting]\").textContent === '1'",
        timeout=2500)
    assert time.monotonic() - seen_api < 2.5
    assert _queue_cell(page, queue, "longest") != "–"
    resident.wait(40)
    page.wait_for_function(
        f"() => document.querySelector(\"tr[data-queue='{queue}'] td[data-key=waiting]\").textContent === '0'",
        timeout=5000)
    page.wait_for_function(
        f"() => document.querySelector(\"tr[data-queue='{queue}'] td[data-key=abandoned]\").textContent === '{abandoned_before + 1}'",
        timeout=5000)
    context.close()


@pytest.mark.telephony
def test_admin_creates_agent_edits_skills_and_next_call_honours_them(browser, kc, tmp_path):
    from sipp_driver import SipPhone
    context = browser.new_context()
    page = context.new_page()
    login(page, kc.url, "admin", "demo-admin")
    logged_in(page)
    # a new agent: SIP credentials generated and applied to the running Asterisk
    page.goto(f"{kc.url}/admin/agents/new")
    page.fill("input[name=id]", "t-501")
    page.fill("input[name=name]", "Test agent 501")
    page.select_option("select[name=district]", "bromma")
    page.fill("input[name='skill.switchboard']", "2")
    page.click("#agent-form button[type=submit]")
    page.wait_for_selector("#sip-applied")
    password = page.locator("#sip-password").inner_text()
    phone = SipPhone(tmp_path, kc.sip_port, "t-501", password)
    phone.register()                                   # accepted: PJSIP reloaded, no restart
    kc.wait_for(lambda: kc.agent("t-501")["registered"], 10, "t-501 registered")
    # log in from the agents page (supervisor control), then give the agent `school`
    page.goto(f"{kc.url}/admin/agents")
    page.locator("tr[data-agent='t-501'] form[action$='/state'] button[data-state=ready]").click()
    page.wait_for_selector("#notice")
    assert kc.agent("t-501")["state"] == "ready"
    page.goto(f"{kc.url}/admin/agents/t-501/edit")
    page.fill("input[name='skill.school']", "5")
    page.click("#agent-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/agents\?notice=.*"))
    assert "Förskola och skola" in page.locator("tr[data-agent='t-501'] td.skills").inner_text()
    assert kc.agent("t-501")["skills"] == {"switchboard": 2, "school": 5}
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1)) + "Z"
    answering = phone.answer_calls(count=1, ring_seconds=1, talk_seconds=2, hangup="agent")
    resident = call(tmp_path, kc.sip_port, "0850810000", digits=[(2.0, "2")],
                    caller_number="0709990002", hangup_after=None, wait_far_bye=60)
    answering.wait_ok(60)
    resident.wait_ok(60)
    contact = kc.wait_for(lambda: next((c for c in kc.contacts(since)
                                        if c["caller"] == "0709990002" and c["outcome"]), None),
                          20, "the school call")
    assert contact["skill"] == "school" and contact["agent"] == "t-501"
    kc.set_state("t-501", "logged_out")
    context.close()


ORG_PAGES = {"/admin/org": RUNNERS_ROLES, "/admin/agents": RUNNERS_ROLES,
             "/admin/agents/new": {"admin"}, f"/admin/agents/{SOCIAL}/edit": {"admin"}}


@pytest.mark.parametrize("role", ["anonymous", "agent", "manager", "supervisor", "admin"])
def test_roles_on_agent_and_org_pages(clients, kc, role):
    c = clients[role]
    for path, allowed in ORG_PAGES.items():
        status, headers, _ = c.get(path)
        if role == "anonymous":
            assert status == 302 and headers["Location"].startswith("/login"), (path, status)
        else:
            assert status == (200 if role in allowed else 403), (role, path, status)
    # supervisor controls: state and move (admin, supervisor); edit and SIP (admin)
    posts = [(f"/admin/agents/{SOCIAL}/state", {"state": "logged_out"}, RUNNERS_ROLES, 302),
             (f"/admin/agents/{SOCIAL}/move", {"district": ""}, RUNNERS_ROLES, 302),
             (f"/admin/agents/{SOCIAL}/edit", {"name": ""}, {"admin"}, 422),
             ("/admin/agents/nobody/sip", {}, {"admin"}, 404)]
    for path, form, allowed, ok in posts:
        status, headers, _ = c.post(path, form, csrf=role != "anonymous")
        if role == "anonymous":
            assert status == 302 and headers["Location"].startswith("/login"), (path, status)
        else:
            assert status == (ok if role in allowed else 403), (role, path, status)


def test_forged_form_without_csrf_is_refused(clients, kc):
    status, _, body = clients["supervisor"].post(f"/admin/agents/{SOCIAL}/state", {"state": "ready"}, csrf=False)
    assert status == 403 and "säkerhetsnyckel" in body
    assert kc.agent(SOCIAL)["state"] == "logged_out"


def test_supervisor_moves_an_agent_for_the_day(clients, kc):
    sup = clients["supervisor"]
    status, headers, _ = sup.post(f"/admin/agents/{SOCIAL}/move", {"district": "hasselby-vallingby"})
    assert status == 302 and "resten%20av%20dagen" in headers["Location"]
    assert kc.agent(SOCIAL)["district"] == "hasselby-vallingby"
    _, _, page = sup.get("/admin/agents")
    assert "flyttad i dag (hemma: Bromma)" in page
    status, _, _ = sup.post(f"/admin/agents/{SOCIAL}/move", {"district": "bromma"})
    assert kc.agent(SOCIAL)["district"] == "bromma"
    _, _, audit = clients["admin"].get("/admin/audit")
    assert "agent.move" in audit and "handläggaren flyttad för dagen" in audit


def test_saving_an_agent_warns_when_a_shared_menu_loses_its_last_agent_for_a_queue(clients, kc):
    status, body = kc.request("PUT", f"/api/menus/{DISTRICT}/share", {"menu_of": "bromma"})
    assert status == 200, body
    agent = kc.agent(ALL_SKILLS)               # the module's district's only school agent
    form = {"name": agent["name"], "district": agent["district"],
            "languages": ",".join(agent["languages"]),
            **{f"skill.{s}": str(level) for s, level in agent["skills"].items()}}
    try:
        status, headers, _ = clients["admin"].post(f"/admin/agents/{ALL_SKILLS}/edit",
                                                   {**form, "skill.school": "0"})
        notice = urllib.parse.unquote(headers["Location"])
        assert status == 302 and f"{ALL_SKILLS} sparad. Varning:" in notice
        assert f"'school' that no agent of {DISTRICT_NAME} has now" in notice
        assert kc.agent(ALL_SKILLS)["skills"].get("school") is None      # saved all the same
    finally:
        status, headers, _ = clients["admin"].post(f"/admin/agents/{ALL_SKILLS}/edit", form)
        assert status == 302 and "Warning" not in urllib.parse.unquote(headers["Location"])
        assert kc.request("PUT", f"/api/menus/{DISTRICT}/share", {"menu_of": None})[0] == 200
