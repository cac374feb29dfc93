"""A third district added while the centre runs, through the API, with no code change and no
restart: its number walks its menu and reaches its agent, its address makes its contacts, it
is on the wallboard and in the reports; retired, it stops answering and keeps its history."""
from __future__ import annotations

import json
import smtplib
import urllib.request
from email.message import EmailMessage

import pytest

from sipp_driver import SipPhone, call
from kc_instance import now_iso

pytestmark = pytest.mark.telephony

NUMBER = "0850830000"
ADDRESS = "spanga-tensta@kontakt.example"


def test_a_third_district_added_through_the_api_answers_calls_and_mail(kc, tmp_path):
    since = now_iso()
    status, body = kc.request("PUT", "/api/districts/spanga-tensta", {
        "name": "Spånga-Tensta", "numbers": [NUMBER], "addresses": [ADDRESS], "region": "Västerort",
        "menu_copy_of": "bromma", "hours": {"always_open": True, "week": {}, "exceptions": []},
        "queues": [{"skill": s, "service_level_seconds": 20, "wrap_up_seconds": 0,
                    "overflow": [[5, ["bromma"]]], "priority": 0}
                   for s in ("elderly-care", "school", "social-services", "switchboard")]})
    assert status == 200 and ["districts", "spanga-tensta", "add"] in body["changes"], body
    assert "Asterisk reloaded" in body["reload"], body      # its number is in the dialplan now
    assert kc.sql("select number from district_numbers where district = 'spanga-tensta'") == [(NUMBER,)]
    status, bad = kc.request("PUT", "/api/districts/rinkeby-kista", {"name": "Rinkeby-Kista",
                                                                    "numbers": [NUMBER]})
    assert status == 422 and any(NUMBER in p for p in bad["problems"]), bad   # a number twice

    # Its agent, through the whole organisation document (PUT /api/config).
    status, config = kc.request("GET", "/api/config")
    assert status == 200
    config["agents"].append({"id": "st-301", "name": "Agent 301 Spånga-Tensta",
                             "district": "spanga-tensta", "password": "st-secret",
                             "skills": {"elderly-care": 4, "school": 3, "social-services": 3,
                                        "switchboard": 3}, "cleared_for": ["spanga-tensta"]})
    status, dry = kc.request("PUT", "/api/config?dry_run=1", config)
    assert status == 200 and dry["changes"] == [["agents", "st-301", "add"]], dry
    assert kc.sql("select count(*) from agents where id = 'st-301'") == [(0,)]
    status, done = kc.request("PUT", "/api/config", config)
    assert status == 200, done
    assert "Asterisk reloaded" in done["reload"], done
    assert kc.sql("select action from audit_log where action = 'config.import' order by id desc limit 1") \
        == [("config.import",)]

    # Its agent registers (PJSIP reloaded), logs in, and answers a call to its number.
    agent = SipPhone(tmp_path, kc.sip_port, "st-301", "st-secret")
    agent.register()
    kc.wait_for(lambda: kc.agent("st-301")["registered"], 15, "st-301 registered")
    agent.dial("*21")
    kc.wait_for(lambda: kc.agent("st-301")["state"] == "ready", 10, "st-301 ready")
    answering = agent.answer_calls(count=1, ring_seconds=1, talk_seconds=2, hangup="agent")
    resident = call(tmp_path, kc.sip_port, NUMBER, digits=[(2.0, "1")], caller_number="0703330000",
                    hangup_after=None, wait_far_bye=60)
    answering.wait_ok(60)
    assert resident.wait_ok(60).answered

    def contact():
        return next((c for c in kc.contacts(since)
                     if c["caller"] == "0703330000" and c["outcome"]), None)
    c = kc.wait_for(contact, 30, "the contact of the new district")
    assert c["district"] == "spanga-tensta" and c["dialed"] == NUMBER
    assert c["agent"] == "st-301" and c["skill"] == "elderly-care" and c["outcome"] == "answered"

    # An e-mail to its address becomes its contact.
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "eva@example.se", ADDRESS, "Skolskjuts"
    msg.set_content("Hej! Min son behöver skolskjuts till skolan.")
    with smtplib.SMTP("127.0.0.1", int(kc.env["KC_SMTP_PORT"]), timeout=10) as smtp:
        smtp.send_message(msg)
    mail = kc.wait_for(lambda: next((x for x in kc.contacts(since) if x["channel"] == "email"
                                     and x["district"] == "spanga-tensta"), None), 20, "the e-mail")
    assert mail["skill"] == "school"

    # The wallboard and the reports know it, by its name as written.
    status, board = kc.request("GET", "/api/wallboard")
    assert status == 200 and "Spånga-Tensta" in json.dumps(board, ensure_ascii=False)
    status, table = kc.request("GET", "/api/reports/table?by=district")
    assert status == 200 and any(r.get("district") == "spanga-tensta" for r in table["rows"]), table
    with urllib.request.urlopen(kc.url + "/") as resp:
        assert "Spånga-Tensta" in resp.read().decode()

    # Retired: its number is refused, its history stays in the reports.
    agent.dial("*22")
    status, config = kc.request("GET", "/api/config")
    config["agents"] = [a for a in config["agents"] if a["id"] != "st-301"]
    config["districts"] = [d for d in config["districts"] if d["id"] != "spanga-tensta"]
    config["queues"] = [q for q in config["queues"] if q["district"] != "spanga-tensta"]
    status, done = kc.request("PUT", "/api/config", config)
    assert status == 200 and ["districts", "spanga-tensta", "retire"] in done["changes"], done
    refused = call(tmp_path, kc.sip_port, NUMBER, digits=[], caller_number="0703330001",
                   hangup_after=2, wait_far_bye=10)
    assert not refused.wait(30).answered
    status, table = kc.request("GET", "/api/reports/table?by=district")
    assert any(r.get("district") == "spanga-tensta" for r in table["rows"]), table
