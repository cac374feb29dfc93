"""The survey after the call on a real Asterisk with SIPp: a caller who agreed in the menu
stays on the line when the agent hangs up, answers two questions on the keypad, and the scores
show in the reports (API, CSV, page); the agent is free again while the caller answers."""
from __future__ import annotations

import copy
import urllib.request

import pytest

from conftest import registered_phone
from own_agents import Crew
from sipp_driver import call
from kc_instance import now_iso

pytestmark = pytest.mark.telephony

HV = "0850820000"
CREW = Crew(__name__)
SCHOOL_HV, = CREW.of("school-hv")
QUESTIONS = [{"sv": "Hur nöjd är du med bemötandet?", "en": "How satisfied are you with how you were treated?"},
             {"sv": "Fick du svar på din fråga?", "en": "Did you get an answer to your question?"}]


def test_a_caller_who_agreed_answers_the_survey_and_the_scores_are_in_the_reports(own_kc, workdir):
    kc = own_kc
    CREW.hire(kc)
    status, body = kc.request("PUT", "/api/surveys/school/hasselby-vallingby",
                              {"enabled": True, "every_nth": 0, "questions": QUESTIONS})
    assert status == 200, body
    assert body["missing"] == []            # every language of the district's menu has both
    status, original = kc.request("GET", "/api/menus/hasselby-vallingby")
    menu = copy.deepcopy(original["menu"])
    menu["nodes"]["main"]["options"]["2"]["survey"] = True   # "2" is school: the caller agreed
    status, body = kc.request("PUT", "/api/menus/hasselby-vallingby", menu)
    assert status == 200, body

    agent = registered_phone(kc, workdir, SCHOOL_HV)
    agent.dial("*21")
    kc.wait_for(lambda: kc.agent(SCHOOL_HV)["state"] == "ready", 10, "the agent ready")
    answering = agent.answer_calls(count=1, ring_seconds=1, talk_seconds=3, hangup="agent")
    since = now_iso()
    # "2" in the menu; after the agent hangs up: "4" (question 1, or during the introduction),
    # then "5" (question 2)
    resident = call(workdir, kc.sip_port, HV, digits=[(2.0, "2"), (16.0, "4"), (4.0, "5")],
                    caller_number="0705550001", hangup_after=None, wait_far_bye=60)
    answering.wait_ok(60)
    kc.wait_for(lambda: kc.agent(SCHOOL_HV)["state"] != "on_call", 20, "the agent off the call")
    assert resident.wait_ok(90).hangup == "far"      # the survey said thank you and hung up

    contact = kc.wait_for(lambda: next((c for c in kc.contacts(since)
                                        if c["caller"] == "0705550001" and c["outcome"]), None),
                          30, "the contact")
    assert contact["outcome"] == "answered" and contact["skill"] == "school"
    assert contact["talk_seconds"] < 10               # the survey is not talk time

    def row():
        status, body = kc.request("GET", "/api/reports/survey?by=queue")
        assert status == 200, body
        return next((r for r in body["rows"] if r["queue"] == "school@hasselby-vallingby"
                     and r["responded"]), None)
    r = kc.wait_for(row, 20, "the survey's scores in the report")
    assert (r["asked"], r["responded"], r["response_rate"]) == (1, 1, 100.0)
    assert (r["q1_mean"], r["q2_mean"], r["mean_score"]) == (4.0, 5.0, 4.5)

    status, body = kc.request("GET", "/api/reports/survey?by=agent")
    assert next(x for x in body["rows"] if x["agent"] == SCHOOL_HV)["mean_score"] == 4.5
    req = urllib.request.Request(f"{kc.url}/api/reports/survey.csv?by=district",
                                 headers={"Authorization": "Bearer demo-manager-token"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read().decode()
    assert "hasselby-vallingby,1,1,1,100.0,4.5,4.0,5.0" in text, text
