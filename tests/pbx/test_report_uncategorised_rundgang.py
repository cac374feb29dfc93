"""Uncategorised contacts per agent and district, and rundgång, where managers look: the
reports page (with the definitions written on it), its JSON and CSV (definitions in the header
comment), and the live wallboard. Contacts seeded straight into the database; every expected
number is counted here from the seed."""
from __future__ import annotations

import csv
import io
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import logged_in, login
from own_agents import Crew
from web_client import client_of

DAY = "2021-03-04"     # a quiet past day no other test writes to
Q = f"from={DAY}&to={DAY}"
AGENT = "uncat-test-agent"
CREW = Crew(__name__)
SCHOOL, ELDER, ELDER_2 = CREW.of("school", "elder", "elder-2")
crew = CREW.fixture()
# caller, district, skill, outcome, agent, has a case
SEED = [
    ("0719550001", "bromma", "school", "answered", AGENT, True),
    ("0719550002", "bromma", "school", "answered", AGENT, False),
    ("0719550003", "bromma", "school", "answered", AGENT, False),
    ("0719550001", "bromma", "school", "answered", SCHOOL, False),   # again, same matter
    ("0719550004", "bromma", "elderly-care", "transferred", ELDER, False),  # passed on
    ("0719550005", "hasselby-vallingby", "school", "abandoned", None, False),
]


def _seed(kc, day_start: datetime, rows=SEED) -> list[int]:
    db = sqlite3.connect(kc.var / "kc.db", timeout=10)
    ids = []
    with db:
        db.execute("delete from contacts where started_at >= ? and started_at < ? and caller like '071955%'",
                   [day_start.isoformat()[:19], (day_start + timedelta(days=1)).isoformat()[:19]])
        for i, (caller, district, skill, outcome, agent, has_case) in enumerate(rows):
            at = (day_start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            answered = outcome in ("answered", "transferred")
            cur = db.execute(
                "insert into contacts (channel, district, caller, started_at, skill, outcome, "
                "enqueued_at, answered_at, wait_seconds, talk_seconds, agent, agent_district, "
                "wrap_up_seconds) values ('phone', ?, ?, ?, ?, ?, ?, ?, 5, ?, ?, ?, ?)",
                [district, caller, at, skill, outcome, at, at if answered else None,
                 60 if answered else None, agent, district if agent else None, 5 if answered else None])
            ids.append(cur.lastrowid)
            if has_case:
                db.execute("insert into cases (contact_id, outcome, created_at, agent) values (?, ?, ?, ?)",
                           [cur.lastrowid, "resolved_first_contact", at, agent])
    db.close()
    return ids


def _expected_agents(rows=SEED):
    out = {}
    for _, district, _, outcome, agent, has_case in rows:
        if agent and outcome in ("answered", "transferred"):
            r = out.setdefault(agent, {"agent": agent, "agent_district": district, "answered": 0,
                                       "uncategorised": 0})
            r["answered"] += 1
            r["uncategorised"] += not has_case
    return out


@pytest.fixture(scope="module")
def seeded(kc):
    return _seed(kc, datetime.fromisoformat(DAY + "T09:00:00+00:00"))


def test_uncategorised_per_agent_and_district_in_reports(kc, seeded):
    status, body = kc.request("GET", f"/api/reports/agents?{Q}", token="demo-manager-token")
    assert status == 200, body
    assert {r["agent"]: r for r in body["rows"]} == _expected_agents()
    assert "no registered case" in body["definition"]
    status, body = kc.request("GET", f"/api/reports/table?by=district&{Q}", token="demo-manager-token")
    by_district = {r["district"]: r["uncategorised"] for r in body["rows"]}
    assert by_district["bromma"] == sum(1 for r in SEED if r[1] == "bromma" and r[3] != "abandoned"
                                        and not r[5])
    assert kc.request("GET", f"/api/reports/agents?{Q}", token=None)[0] == 401


def test_rundgang_and_uncategorised_on_the_page_and_in_csv(browser, kc, seeded):
    status, found = kc.request("GET", f"/api/reports/rundgang?{Q}", token="demo-manager-token")
    assert status == 200
    assert (found["rundgang"]["total"], found["rundgang"]["again"], found["rundgang"]["passed"]) == (2, 1, 1)
    context = browser.new_context()
    page = context.new_page()
    login(page, kc.url, "manager", "demo-manager")
    logged_in(page)
    page.goto(f"{kc.url}/reports?{Q}")
    assert page.locator("#rundgang-totals tr[data-key=total] td").inner_text() == "2"
    assert page.locator("#rundgang-totals tr[data-key=passed] td").inner_text() == "1"
    assert page.locator("#rundgang-by-district tbody tr").count() == 1
    assert "vilket utfall den kontakten än fick" in page.locator("#rundgang-heading + p").inner_text()
    assert page.locator(f"#by-agent tr[data-agent='{AGENT}'] td[data-key=uncategorised]").inner_text() == "2"
    context.close()
    for role, user, password, sees_resident in (("manager", "manager", "demo-manager", False),
                                                ("admin", "admin", "demo-admin", True)):
        status, headers, text = client_of(kc.url, user, password).get(f"/api/reports/rundgang.csv?{Q}")
        assert status == 200 and headers["Content-Type"].startswith("text/csv"), (role, status)
        comments = [ln for ln in text.splitlines() if ln.startswith("#")]
        assert any(ln.startswith("# rundgang: Rundgång. ") for ln in comments), comments
        assert any("rundgång by district: bromma 2" in ln for ln in comments), comments
        rows = list(csv.DictReader(io.StringIO("\n".join(ln for ln in text.splitlines()
                                                         if not ln.startswith("#")))))
        assert sorted(r["why"] for r in rows) == ["again", "passed"]
        assert all(bool(r["resident"]) == sees_resident for r in rows), (role, rows)
    status, _, text = client_of(kc.url, "manager", "demo-manager").get(f"/api/reports/agents.csv?{Q}")
    rows = {r["agent"]: r for r in csv.DictReader(io.StringIO(
        "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))))}
    assert rows[AGENT]["uncategorised"] == "2" and rows[AGENT]["answered"] == "3"
    assert "# uncategorised per agent" in text


def test_wallboard_shows_todays_uncategorised_per_agent_and_district(browser, kc):
    now = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=len(SEED) + 1)
    _seed(kc, now)
    context = browser.new_context()
    page = context.new_page()
    login(page, kc.url, "supervisor", "demo-supervisor")
    logged_in(page)
    page.goto(f"{kc.url}/wallboard")
    deadline, states = time.monotonic() + 30, ["ready", "logged_out"]
    while time.monotonic() < deadline:     # an ACD change rebuilds the board from the records
        kc.request("POST", f"/api/agents/{ELDER_2}/state", {"state": states[0]})
        states.reverse()
        status, snap = kc.request("GET", "/api/wallboard")
        mine = [a for a in snap.get("agents_uncategorised", []) if a["agent"] == AGENT]
        if mine:
            break
        time.sleep(0.5)
    assert mine == [{**_expected_agents()[AGENT], "name": AGENT}]
    bromma = next(d for d in snap["districts"] if d["id"] == "bromma")
    assert bromma["uncategorised"] >= 2
    page.wait_for_selector(f"#wb-uncategorised tr[data-agent='{AGENT}']")
    assert page.locator(f"#wb-uncategorised tr[data-agent='{AGENT}'] td[data-key=uncategorised]").inner_text() == "2"
    assert page.locator("#district-bromma b[data-key=uncategorised]").inner_text() == str(bromma["uncategorised"])
    kc.request("POST", f"/api/agents/{ELDER_2}/state", {"state": "logged_out"})
    context.close()
