"""Opening hours on a real Asterisk with SIPp: a closed district routes to an open partner; with
nobody open the caller hears why and when we open and leaves a voice message; a schedule
changed over the API applies to the very next call. The shared instance starts with every
district always open; each test closes what it needs and restores it."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from own_agents import PASSWORD, Crew
from schedules.schedule import TZ
from sipp_driver import call
from kc_instance import now_iso

pytestmark = pytest.mark.telephony

BROMMA = "0850810000"

CREW = Crew(__name__)
SOCIAL, SOCIAL_HV, SCHOOL, SCHOOL_HV = CREW.of("social", "social-hv", "school", "school-hv")
crew = CREW.fixture()
ALWAYS_OPEN = {"always_open": True, "week": {}, "exceptions": []}


def closed_today(message: str, **extra) -> dict:
    today = datetime.now(TZ).date().isoformat()
    return {"always_open": False, "holidays": "closed", "eves": "closed",
            "week": {d: [["07:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
            "exceptions": [{"date": today, "hours": [], "message": {"sv": message}}], **extra}


def put(kc, district: str, body: dict) -> dict:
    status, answer = kc.request("PUT", f"/api/schedule/{district}", body)
    assert status == 200, answer
    return answer


@pytest.fixture
def schedules(kc):
    yield kc
    # call-backs asked for here would be dialled at opening, to residents nobody answers for,
    # offered meanwhile to other modules' switchboard agents: taken by hand before reopening
    status, body = kc.request("GET", "/api/after-hours?open=1")
    assert status == 200, body
    for request in body["requests"]:
        if request["kind"] == "callback" and not request.get("callback_contact"):
            status, done = kc.request("POST", f"/api/after-hours/{request['id']}/done", {})
            assert status == 200, done
    put(kc, "bromma", {**ALWAYS_OPEN, "after_hours": {"route_to": ["hasselby-vallingby"]}})
    put(kc, "hasselby-vallingby", {**ALWAYS_OPEN, "after_hours": {"route_to": []}})


def events(kc, contact_id: int) -> list[tuple[str, dict]]:
    with sqlite3.connect(kc.var / "kc.db") as db:
        return [(k, json.loads(d)) for k, d in db.execute(
            "select kind, data from contact_events where contact_id = ? order by id", [contact_id])]


def wait_contact(kc, since, caller, timeout=40):
    return kc.wait_for(lambda: next((c for c in kc.contacts(since)
                                     if c["caller"] == caller and c["outcome"]), None),
                       timeout, f"the contact of {caller}")


def test_put_validates_and_status_reports_next_opening(schedules):
    kc = schedules
    status, body = kc.request("PUT", "/api/schedule/bromma", {
        "week": {"mon": [["08:00", "12:00"], ["11:00", "13:00"]], "fun": [], "tue": [["16:00", "08:00"]]},
        "exceptions": []})
    assert status == 422
    assert len(body["problems"]) == 3, body
    status, _ = kc.request("PUT", "/api/schedule/bromma", ALWAYS_OPEN, token="demo-manager-token")
    assert status == 403
    put(kc, "bromma", {"always_open": False, "week": {d: [["08:00", "16:30"]] for d in
                                                      ("mon", "tue", "wed", "thu", "fri")},
                       "exceptions": []})
    status, body = kc.request("GET", "/api/schedule/bromma/status?at=2026-06-19T10:00:00%2B02:00")
    assert status == 200 and body["open"] is False and body["reason"] == "eve"
    assert body["next_open"] == "2026-06-22T06:00:00.000Z"
    status, body = kc.request("GET", "/api/schedule/bromma/status?at=2026-06-22T08:00:00%2B02:00")
    assert body["open"] is True
    assert kc.request("GET", "/api/schedule/nowhere/status")[0] == 404


def test_closed_district_routes_to_open_partner(schedules, tmp_path):
    kc = schedules
    since = now_iso()
    put(kc, "bromma", closed_today("Vi har personaldag.",
                                   after_hours={"route_to": ["hasselby-vallingby"]}))
    resident = call(tmp_path, kc.sip_port, BROMMA, digits=[(7.0, "1")], caller_number="0709990001",
                    hangup_after=3)
    result = resident.wait_ok(60)
    assert result.answered
    contact = wait_contact(kc, since, "0709990001")
    assert contact["dialed"] == BROMMA
    assert contact["district"] == "hasselby-vallingby"      # served by the partner's queues
    assert contact["menu_path"] == ["1"] and contact["skill"] == "elderly-care"
    routed = [d for k, d in events(kc, contact["id"]) if k == "after_hours"]
    assert routed and routed[0]["kind"] == "routed"
    assert routed[0]["from"] == "bromma" and routed[0]["to"] == "hasselby-vallingby"


def test_nobody_open_caller_leaves_a_voice_message(schedules, tmp_path):
    kc = schedules
    since = now_iso()
    put(kc, "bromma", closed_today("Vi har personaldag.",
                                   after_hours={"route_to": ["hasselby-vallingby"],
                                                "emergency": {"sv": "Vid akut fara, ring 112."}}))
    put(kc, "hasselby-vallingby", closed_today("Stängt i dag."))
    # "1" during the closed message, "#" ends the recording a few seconds after the beep
    resident = call(tmp_path, kc.sip_port, BROMMA, digits=[(4.0, "1"), (9.0, "#")],
                    caller_number="0709990002", hangup_after=None, wait_far_bye=40)
    result = resident.wait_ok(90)
    assert result.answered and result.hangup == "far"      # we thanked them and hung up
    contact = wait_contact(kc, since, "0709990002")
    assert contact["outcome"] == "after_hours" and contact["district"] == "bromma"
    status, body = kc.request("GET", "/api/after-hours")
    assert status == 200
    mine = [r for r in body["requests"] if r["contact_id"] == contact["id"]]
    assert len(mine) == 1 and mine[0]["kind"] == "voice_message"
    recording = Path(mine[0]["recording"])
    assert recording.is_file() and str(recording).startswith(str(kc.var / "asterisk"))
    assert mine[0]["due_at"] > now_iso()                    # shown to agents at the next opening
    from kc.telemetry import read_steps                     # the call log has the step too
    assert ("agi", "after_hours", "voice_message") in [
        (r["layer"], r["step"], r.get("kind")) for r in read_steps(kc.var / "log" / "calls.jsonl",
                                                                   contact["id"])]
    # callers' numbers and messages only for that district's staff
    from web_client import Client
    import json as _json
    for agent, sees in ((SOCIAL, True), (SOCIAL_HV, False)):
        client = Client(kc.url)
        client.login(agent, PASSWORD)
        status, _, text = client.request("GET", "/api/after-hours")
        ids = [r["contact_id"] for r in _json.loads(text)["requests"]]
        assert status == 200 and (contact["id"] in ids) == sees, (agent, ids)
    status, due_now = kc.request("GET", "/api/after-hours?due=now&open=1")
    assert all(r["contact_id"] != contact["id"] for r in due_now["requests"])


def test_schedule_change_applies_to_the_next_call(schedules, tmp_path):
    kc = schedules
    since = now_iso()
    put(kc, "bromma", closed_today("Stängt.", after_hours={
        "route_to": [], "voice_message": False, "callback": False}))
    closed = call(tmp_path, kc.sip_port, BROMMA, caller_number="0709990003", hangup_after=None,
                  wait_far_bye=40).wait_ok(60)
    assert closed.answered and closed.hangup == "far"        # informed, then goodbye
    contact = wait_contact(kc, since, "0709990003")
    assert contact["outcome"] == "after_hours" and contact["menu_path"] == []

    put(kc, "bromma", ALWAYS_OPEN)                           # no restart
    opened = call(tmp_path, kc.sip_port, BROMMA, digits=[(2.0, "1")], caller_number="0709990004",
                  hangup_after=2).wait_ok(60)
    assert opened.answered
    contact = wait_contact(kc, since, "0709990004")
    assert contact["district"] == "bromma" and contact["menu_path"] == ["1"]
    assert contact["outcome"] == "abandoned"                 # waited in Bromma's queue, hung up


def test_admin_pages_show_open_now_and_save_the_week(admin_page, schedules):
    kc, page = schedules, admin_page
    page.goto(f"{kc.url}/admin/schedule")
    assert page.locator("tr.district[data-district=bromma] .open-now").inner_text() == "öppet"
    assert page.locator("tr.queue[data-queue='school@bromma']").count() == 1
    page.goto(f"{kc.url}/admin/schedule/bromma")
    page.uncheck("input[name=always_open]")
    page.fill("input[name=day_mon]", "08:00-12:00, 11:00-13:00")      # overlap: refused
    page.click("button.save-schedule")
    assert "overlaps" in page.locator("ul.problems").inner_text()
    page.fill("input[name=day_mon]", "08:00-16:30")
    page.fill("textarea[name=exceptions]", "2026-12-23 | 08:00-12:00 | Kort dag")
    page.click("button.save-schedule")
    assert page.locator("p.saved").count() == 1
    body = kc.request("GET", "/api/schedule/bromma")[1]["schedule"]
    assert body["week"]["mon"] == [["08:00", "16:30"]] and body["always_open"] is False
    assert body["exceptions"][0]["message"] == {"sv": "Kort dag"}
    page.goto(f"{kc.url}/admin/schedule/bromma?year=2026")
    assert "Julafton" in page.locator("table.special-days").inner_text()
    assert "Kort dag" in page.locator("table.special-days").inner_text()


def test_queue_closing_while_caller_waits_gives_the_after_hours_choices(schedules, tmp_path):
    kc = schedules
    since = now_iso()
    # nobody takes `school` in the shared instance: the caller waits with music
    resident = call(tmp_path, kc.sip_port, BROMMA, digits=[(2.0, "2")], caller_number="0709990005",
                    hangup_after=None, wait_far_bye=90)
    kc.wait_for(lambda: next((c for c in kc.contacts(since) if c["caller"] == "0709990005"
                              and c["skill"] == "school"), None), 30, "the caller waiting")
    put(kc, "bromma", closed_today("Stängt.", after_hours={"route_to": [], "callback": False}))
    result = resident.wait_ok(120)
    assert result.answered and result.hangup == "far"        # told, offered, goodbye: no dead air
    contact = wait_contact(kc, since, "0709990005")
    assert contact["outcome"] == "after_hours" and contact["skill"] == "school"
    kinds = [k for k, _ in events(kc, contact["id"])]
    assert "queue_closing" in kinds and "after_hours" in kinds


def _agent_desk(browser, kc, agent):
    from conftest import open_desk
    return open_desk(browser, kc.url, agent, '#after-hours[data-loaded="1"]')


def test_due_voice_message_is_on_its_districts_desk_played_and_done(schedules, browser, tmp_path):
    """A voice message left through the real after-hours flow shows up, once Bromma is open, on
    the desk of a Bromma agent (not on Hässelby-Vällingby's), plays there (audio/wav, refused
    to others), is marked done and gets its case registered from the same form."""
    kc = schedules
    since = now_iso()
    put(kc, "bromma", closed_today("Stängt.", after_hours={"route_to": ["hasselby-vallingby"]}))
    put(kc, "hasselby-vallingby", closed_today("Stängt i dag."))
    resident = call(tmp_path, kc.sip_port, BROMMA, digits=[(4.0, "1"), (9.0, "#")],
                    caller_number="0709990031", hangup_after=None, wait_far_bye=40)
    assert resident.wait_ok(90).answered
    contact = wait_contact(kc, since, "0709990031")
    _, body = kc.request("GET", "/api/after-hours?open=1")
    req = next(r for r in body["requests"] if r["contact_id"] == contact["id"])
    assert req["kind"] == "voice_message" and req["district"] == "bromma"
    # the next opening has come (due), but Bromma is still closed: not shown yet
    with sqlite3.connect(kc.var / "kc.db", timeout=10) as db:
        db.execute("update after_hours_requests set due_at = ? where id = ?",
                   ["2020-01-01T00:00:00.000Z", req["id"]])
    bromma_ctx, bromma = _agent_desk(browser, kc, SCHOOL)
    item = f'.after-hours-item[data-request="{req["id"]}"]'
    assert bromma.locator(item).count() == 0
    put(kc, "bromma", {**ALWAYS_OPEN, "after_hours": {"route_to": ["hasselby-vallingby"]}})
    put(kc, "hasselby-vallingby", {**ALWAYS_OPEN, "after_hours": {"route_to": []}})
    bromma.reload()
    bromma.wait_for_selector(item, timeout=10000)
    assert "0709990031" in bromma.locator(item).inner_text()
    hv_ctx, hv = _agent_desk(browser, kc, SCHOOL_HV)
    assert hv.locator(item).count() == 0                      # another district's desk

    # played in the browser: the right agent gets the WAV, others 403/404
    url = f"{kc.url}/desk/after-hours/{req['id']}/recording"
    bromma.wait_for_function(
        f"() => document.querySelector('{item} audio').readyState >= 1", timeout=10000)
    assert bromma.evaluate(f"document.querySelector('{item} audio').duration") > 0
    resp = bromma.request.get(url)
    assert resp.status == 200 and resp.headers["content-type"] == "audio/wav"
    assert resp.body()[:4] == b"RIFF"
    assert hv.request.get(url).status == 403
    assert bromma.request.get(f"{kc.url}/desk/after-hours/99999999/recording").status == 404
    anonymous = browser.new_context()
    assert anonymous.request.get(url, max_redirects=0).status in (401, 403)
    anonymous.close()
    csrf = hv.get_attribute('meta[name="csrf-token"]', "content")
    assert hv.request.post(f"{kc.url}/desk/after-hours/{req['id']}/done",
                           headers={"X-CSRF-Token": csrf}, data="{}").status == 403
    # a stored path outside the recordings directory is never served
    with sqlite3.connect(kc.var / "kc.db", timeout=10) as db:
        stray = db.execute(
            "insert into after_hours_requests (contact_id, district, kind, recording, language, "
            "created_at, due_at, handled_at, handled_by) values (?, 'bromma', 'voice_message', ?, "
            "'sv', ?, ?, ?, 'test')",
            [contact["id"], str(kc.var / "kc.db"), since, since, since]).lastrowid
    assert bromma.request.get(f"{kc.url}/desk/after-hours/{stray}/recording").status == 404

    # marked done, and its case registered through the desk's case form (channel phone)
    bromma.click(f"{item} .ah-done")
    bromma.wait_for_selector(item, state="detached", timeout=10000)
    assert bromma.input_value("#case-contact") == str(contact["id"])
    bromma.select_option("#case-category", label="Äldreomsorg")
    bromma.fill("#case-note", "Ringde upp, bokade hembesök.")
    bromma.check('input[name="outcome"][value="visit_booked"]')
    bromma.click("#case-save")
    bromma.wait_for_function("() => document.getElementById('case-status').dataset.caseId", timeout=10000)
    _, body = kc.request("GET", "/api/after-hours?open=1")
    assert all(r["id"] != req["id"] for r in body["requests"])
    _, body = kc.request("GET", "/api/after-hours")
    done = next(r for r in body["requests"] if r["id"] == req["id"])
    assert done["handled_by"] == SCHOOL
    _, body = kc.request("GET", f"/api/cases?since={since}")
    case = next(c for c in body["cases"] if c["contact_id"] == contact["id"])
    assert case["channel"] == "phone" and case["agent"] == SCHOOL
    assert case["outcome"] == "visit_booked"
    bromma.reload()
    bromma.wait_for_selector('#after-hours[data-loaded="1"]')
    assert bromma.locator(item).count() == 0                  # gone from the desk
    bromma_ctx.close()
    hv_ctx.close()


def test_nine_offers_each_of_the_menus_languages_in_turn(schedules, tmp_path):
    """A menu in Swedish, English and Finnish: after hours, 9 switches to the next of them
    (each offered in itself), so 9 twice is Finnish, and the call-back is asked for in it."""
    kc = schedules
    status, original = kc.request("GET", "/api/menus/bromma")
    assert status == 200, original
    menu = json.loads(json.dumps(original["menu"]))
    menu["languages"] = [*menu["languages"], "fi"]
    for node in menu["nodes"].values():
        node["prompt"]["fi"] = "Tervetuloa."
    try:
        status, body = kc.request("PUT", "/api/menus/bromma", menu)
        assert status == 200, body
        since = now_iso()
        put(kc, "bromma", closed_today("Vi har personaldag.", after_hours={"route_to": []}))
        resident = call(tmp_path, kc.sip_port, BROMMA, digits=[(4.0, "9"), (4.0, "9"), (5.0, "2")],
                        caller_number="0709990031", hangup_after=None, wait_far_bye=40)
        assert resident.wait_ok(90).answered
        contact = wait_contact(kc, since, "0709990031")
        status, body = kc.request("GET", "/api/after-hours")
        mine = [r for r in body["requests"] if r["contact_id"] == contact["id"]]
        assert len(mine) == 1 and mine[0]["kind"] == "callback", mine
        assert mine[0]["language"] == "fi", mine
    finally:
        kc.request("PUT", "/api/menus/bromma", original["menu"])
