"""Menus on a real Asterisk with SIPp: a menu published over the API is followed by the very
next calls (no Asterisk reload): the English branch, a submenu with an e-service and a queue
priority, an info message, the retry/timeout path to the switchboard, a transfer to an outside
number, and an announcement."""
from __future__ import annotations

import copy
import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from sipp_driver import call
from kc_instance import now_iso

pytestmark = pytest.mark.telephony

BROMMA = "0850810000"


def db_rows(kc, sql, args=()):
    with sqlite3.connect(f"file:{kc.var / 'kc.db'}?mode=ro", uri=True, timeout=10) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(sql, args)]


def events(kc, contact_id):
    return [(r["kind"], json.loads(r["data"])) for r in db_rows(
        kc, "select kind, data from contact_events where contact_id = ? order by id", [contact_id])]


def wait_contact(kc, since, caller, timeout=40):
    def find():
        return next((c for c in kc.contacts(since) if c["caller"] == caller and c["outcome"]), None)
    return kc.wait_for(find, timeout, f"the contact of {caller}")


def extended(menu: dict) -> dict:
    """The demo menu (1/2/3/9/0 unchanged) plus a submenu, an info message and a quick menu."""
    m = copy.deepcopy(menu)
    opts = m["nodes"]["main"]["options"]
    opts["4"] = {"action": "submenu", "node": "services"}
    opts["5"] = {"action": "info", "then": "hangup",
                 "prompt": {"sv": "Vi har öppet åtta till fyra. Hej då.",
                            "en": "We are open eight to four. Goodbye."}}
    opts["7"] = {"action": "submenu", "node": "quick"}
    opts["8"] = {"action": "transfer", "number": "+46850800000"}
    m["nodes"]["services"] = {
        "prompt": {"sv": "Tjänster. Tryck 1 för skola, 2 för bygglov.",
                   "en": "Services. Press 1 for school, 2 for building permits."},
        "timeout": 3, "retries": 2,
        "on_fail": {"action": "transfer", "number": "switchboard"},
        "options": {
            "1": {"action": "queue", "skill": "school", "priority": 5},
            "2": {"action": "eservice", "name": "bygglov", "then": "hangup",
                  "address": {"sv": "Ansök på stockholm punkt se snedstreck bygglov.",
                              "en": "Apply at stockholm dot se slash building permits."}},
            "#": {"action": "back"},
        },
    }
    m["nodes"]["quick"] = {
        "prompt": {"sv": "Snabbval.", "en": "Quick."},
        "timeout": 1, "retries": 2,
        "on_fail": {"action": "transfer", "number": "switchboard"},
        "options": {"1": {"action": "queue", "skill": "elderly-care"}},
    }
    return m


def test_published_menu_is_followed_by_the_next_calls(kc, tmp_path):
    status, original = kc.request("GET", "/api/menus/bromma")
    assert status == 200
    status, body = kc.request("PUT", "/api/menus/bromma",
                              {"menu": extended(original["menu"]), "base_version": original["version"]})
    assert status == 200, body
    version = body["version"]
    try:
        since = now_iso()
        # Four residents at once, each on the menu just published (no reload of Asterisk).
        english = call(tmp_path, kc.sip_port, BROMMA, digits=[(3.5, "9"), (2.5, "2")],
                       caller_number="0709000001", hangup_after=3)
        submenu = call(tmp_path, kc.sip_port, BROMMA, digits=[(3.5, "4"), (2.0, "1")],
                       caller_number="0709000002", hangup_after=3)
        info = call(tmp_path, kc.sip_port, BROMMA, digits=[(3.5, "5")],
                    caller_number="0709000003", hangup_after=None, wait_far_bye=30)
        silent = call(tmp_path, kc.sip_port, BROMMA, digits=[(3.5, "7")],
                      caller_number="0709000004", hangup_after=9)
        eservice = call(tmp_path, kc.sip_port, BROMMA, digits=[(3.5, "4"), (2.0, "2")],
                        caller_number="0709000005", hangup_after=None, wait_far_bye=30)
        transfer = call(tmp_path, kc.sip_port, BROMMA, digits=[(3.5, "8")],
                        caller_number="0709000007", hangup_after=None, wait_far_bye=30)
        for run in (english, submenu, silent):
            assert run.wait_ok(60).hangup == "us"
        for run in (info, eservice, transfer):
            assert run.wait_ok(60).hangup == "far"    # the menu hung up after the message

        c = wait_contact(kc, since, "0709000001")
        assert (c["language"], c["menu_path"], c["skill"]) == ("en", ["9", "2"], "school")
        assert c["outcome"] == "abandoned"

        c = wait_contact(kc, since, "0709000002")
        assert (c["language"], c["menu_path"], c["skill"]) == ("sv", ["4", "1"], "school")
        assert db_rows(kc, "select menu_priority from contacts where id = ?", [c["id"]])[0]["menu_priority"] == 5
        menu_event = next(d for k, d in events(kc, c["id"]) if k == "menu")
        assert menu_event["version"] == version
        assert ["menu", "services"] in menu_event["events"]

        c = wait_contact(kc, since, "0709000003")
        assert c["outcome"] == "info" and c["menu_path"] == ["5"] and c["skill"] is None

        c = wait_contact(kc, since, "0709000004")
        assert c["menu_path"] == ["7"] and c["skill"] == "switchboard"
        trail = next(d for k, d in events(kc, c["id"]) if k == "menu")["events"]
        assert trail.count(["timeout", "quick"]) == 2 and ["fail", "quick"] in trail

        c = wait_contact(kc, since, "0709000005")
        assert c["outcome"] == "info" and c["menu_path"] == ["4", "2"]
        referral = next(d for k, d in events(kc, c["id"]) if k == "eservice_referral")
        assert referral["name"] == "bygglov" and "bygglov" in referral["address"]

        # An outside number: recorded `transferred`, dialled by the dialplan (no route here:
        # the caller hears an apology and the call ends, never dead air).
        c = wait_contact(kc, since, "0709000007")
        assert c["outcome"] == "transferred" and c["menu_path"] == ["8"]
        assert ("transferred", {"to": "+46850800000"}) in events(kc, c["id"])

        # A temporary announcement plays before the menu until its end time.
        ends = (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()
        status, body = kc.request("PUT", "/api/menus/bromma/announcement",
                                  {"texts": {"sv": "Driftstörning.", "en": "Disruption."}, "ends_at": ends})
        assert status == 200, body
        since = now_iso()
        announced = call(tmp_path, kc.sip_port, BROMMA, digits=[(4.5, "5")],
                         caller_number="0709000006", hangup_after=None, wait_far_bye=30)
        assert announced.wait_ok(60).hangup == "far"
        c = wait_contact(kc, since, "0709000006")
        assert c["outcome"] == "info"
        assert next(d for k, d in events(kc, c["id"]) if k == "announcement")["languages"] == ["sv", "en"]
    finally:
        kc.request("DELETE", "/api/menus/bromma/announcement")
        status, body = kc.request("PUT", "/api/menus/bromma", original["menu"])
        assert status == 200, body


HV = "0850820000"


def test_a_district_sharing_brommas_menu_plays_it_with_its_own_name(kc, tmp_path):
    """After Hässelby-Vällingby shares Bromma's menu, a call to its number follows Bromma's
    published menu, says the called district's name for {district}, and stays its contact."""
    from agi.prompts import PromptCache

    status, original = kc.request("GET", "/api/menus/bromma")
    assert status == 200
    menu = copy.deepcopy(original["menu"])
    menu["nodes"]["main"]["options"]["5"] = {
        "action": "info", "then": "hangup",
        "prompt": {"sv": "Du har ringt {district}. Hej då.", "en": "You called {district}. Goodbye."}}
    status, body = kc.request("PUT", "/api/menus/bromma", menu)
    assert status == 200, body
    version = body["version"]
    status, body = kc.request("PUT", "/api/menus/hasselby-vallingby/share", {"menu_of": "bromma"})
    assert status == 200, body
    try:
        since = now_iso()
        run = call(tmp_path, kc.sip_port, HV, digits=[(3.5, "5")], caller_number="0709000031",
                   hangup_after=None, wait_far_bye=30)
        assert run.wait_ok(60).hangup == "far"   # Bromma's option 5: the message, then goodbye
        c = wait_contact(kc, since, "0709000031")
        assert (c["district"], c["outcome"], c["menu_path"]) == ("hasselby-vallingby", "info", ["5"])
        evs = events(kc, c["id"])
        assert ("shared_menu", {"menu_of": "bromma", "version": version}) in evs
        menu_event = next(d for k, d in evs if k == "menu")
        assert menu_event["version"] == version and ["info", "main/5"] in menu_event["events"]
        # Asterisk played the message with the called district's name in it
        said = PromptCache((kc.var / "sounds").resolve()).path_for("Du har ringt Hässelby-Vällingby. Hej då.", "sv")
        messages = (kc.var / "asterisk" / "log" / "messages").read_text(errors="replace")
        assert f"Playing '{said}" in messages
    finally:
        kc.request("PUT", "/api/menus/hasselby-vallingby/share", {"menu_of": None})
        status, body = kc.request("PUT", "/api/menus/bromma", original["menu"])
        assert status == 200, body


def test_a_digit_pressed_during_the_announcement_answers_the_menu(kc, tmp_path):
    """A caller who knows the menu presses its digit during the district's temporary
    announcement: the rest of it (and the menu's prompt) is skipped and the digit is taken."""
    ends = (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()
    long_text = ("Driftstörning. På grund av ett tekniskt fel i verksamhetssystemet kan vi just nu "
                 "inte se dina tidigare ärenden. Vi arbetar med att lösa felet och ber om ursäkt "
                 "för besväret. Felet väntas vara åtgärdat under eftermiddagen.")
    status, body = kc.request("PUT", "/api/menus/bromma/announcement",
                              {"texts": {"sv": long_text, "en": "Disruption. " * 10}, "ends_at": ends})
    assert status == 200, body
    try:
        since = now_iso()
        run = call(tmp_path, kc.sip_port, BROMMA, digits=[(3.0, "2")],
                   caller_number="0709000041", hangup_after=4)
        run.wait(60)
        c = wait_contact(kc, since, "0709000041")
        assert c["menu_path"] == ["2"] and c["skill"] == "school", c
        announced = next(d for k, d in events(kc, c["id"]) if k == "announcement")
        assert announced["interrupted_by"] == "2" and announced["languages"] == ["sv"]
    finally:
        kc.request("DELETE", "/api/menus/bromma/announcement")


def test_a_silent_caller_reaches_the_switchboard_after_two_prompts(kc, tmp_path):
    """KC_MENU_TIMEOUT (4 s) and KC_MENU_SILENT_TRIES (2): on the demo menu, whose first node
    allows three tries of 5 s, a caller who never presses a digit hears the prompt twice and
    is queued for the switchboard (it took three prompts and about 62 s)."""
    since = now_iso()
    silent = call(tmp_path, kc.sip_port, BROMMA, caller_number="0709000099", hangup_after=55)
    assert silent.wait_ok(90).hangup == "us"
    c = wait_contact(kc, since, "0709000099")
    assert c["skill"] == "switchboard" and c["menu_path"] == []
    trail = next(d for k, d in events(kc, c["id"]) if k == "menu")["events"]
    assert trail.count(["timeout", "main"]) == 2 and ["fail", "main"] in trail
    row = db_rows(kc, "select started_at, enqueued_at from contacts where id = ?", [c["id"]])[0]
    waited = (datetime.fromisoformat(row["enqueued_at"].replace("Z", "+00:00"))
              - datetime.fromisoformat(row["started_at"].replace("Z", "+00:00"))).total_seconds()
    print(f"silent caller queued for the switchboard after {waited:.1f} s")
    assert waited < 48, waited
