"""The survey after a call: who is asked (pure), what a supervisor may save, the menu's consent
flag, and the report computed over a real store against a plain count of the seeded rows."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from agi.menu import Menu, MenuError, MenuSession, Queue
from kc import surveys
from kc.errors import InvalidInput
from kc.store import Store
from kommuncentral.demo import load_demo
from reporting.definitions import Period, Scope
from reporting.survey_report import survey_table

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
Q = ({"sv": "Hur nöjd är du?", "en": "How satisfied are you?"},)


def on(nth: int = 0, questions=Q) -> surveys.SurveyConfig:
    return surveys.SurveyConfig("school", "bromma", True, nth, questions)


@pytest.mark.parametrize("config, consented, served, expected", [
    (None, True, 1, None),                                    # no survey for the queue
    (surveys.SurveyConfig("school", "bromma", False, 1, Q), True, 1, None),   # switched off
    (on(), True, 7, "consent"),                               # agreed in the menu
    (on(), False, 7, None),                                   # only those who agreed
    (on(3), False, 6, "sample"),                              # every third caller
    (on(3), False, 7, None),
    (on(3), True, 7, "consent"),
    (on(1), False, 1, "sample"),                              # everyone
    (surveys.SurveyConfig("school", "bromma", True, 1, ()), True, 1, None),   # no question
])
def test_who_is_asked(config, consented, served, expected):
    assert surveys.who_is_asked(config, consented, served) == expected


def test_only_1_to_5_is_a_score():
    assert [surveys.valid_score(d) for d in ("1", "5", "0", "6", "#", None)] == [1, 5, None, None, None, None]


@pytest.mark.parametrize("body, message", [
    ({"enabled": True, "questions": []}, "needs at least one question"),
    ({"questions": [{"sv": "a"}] * 4}, "at most 3"),
    ({"questions": [{"sv": ""}]}, "1 to 300"),
    ({"questions": [{"s1": "x"}]}, "not a language code"),
    ({"every_nth": -1}, "every_nth"),
    ({"every_nth": "3"}, "whole number"),
    ({"enabled": "yes"}, "true or false"),
    ({"colour": "red"}, "unknown field"),
])
def test_a_bad_survey_is_refused_with_a_clear_error(body, message):
    with pytest.raises(InvalidInput, match=message):
        surveys.SurveyConfig.from_dict({"skill": "school", "district": "bromma", **body})


def test_missing_languages_name_the_question_and_the_language():
    config = on(questions=({"sv": "a", "en": "b"}, {"sv": "c"}))
    assert config.missing_languages(["sv", "en", "fi"]) == [
        "question 1: fi", "question 2: en", "question 2: fi"]


def test_a_menu_queue_option_carries_the_callers_consent():
    body = {"languages": ["sv"], "root": "main", "nodes": {"main": {
        "prompt": {"sv": "Tryck 1."}, "options": {"1": {"action": "queue", "skill": "school", "survey": True},
                                                  "2": {"action": "queue", "skill": "school"}},
        "on_fail": {"action": "transfer", "number": "switchboard"}}}}
    menu = Menu.from_dict(body)
    assert menu.to_dict()["nodes"]["main"]["options"]["1"]["survey"] is True
    assert "survey" not in menu.to_dict()["nodes"]["main"]["options"]["2"]   # unchanged when off
    session = MenuSession(menu)
    session.start()
    assert session.press("1").then == Queue("school", 0, True)
    bad = {**body, "nodes": {"main": {**body["nodes"]["main"],
                                      "options": {"1": {"action": "queue", "skill": "school", "survey": "yes"}}}}}
    with pytest.raises(MenuError, match="survey must be true or false"):
        Menu.from_dict(bad)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "kc.db")
    s.run_sync(load_demo, lambda: NOW)
    yield s
    s.close()


def _seed(db):
    """Six answered calls of school@bromma by two agents, one unanswered; three asked."""
    rows = [(1, "a1", True), (2, "a1", True), (3, "a2", True), (4, "a2", True), (5, "a2", True),
            (6, "a1", True), (7, None, False)]
    for cid, agent, answered in rows:
        db["contacts"].insert({"id": cid, "channel": "phone", "district": "bromma", "skill": "school",
                               "started_at": f"2026-03-02T08:0{cid}:00.000Z", "agent": agent,
                               "answered_at": f"2026-03-02T08:0{cid}:30.000Z" if answered else None,
                               "outcome": "answered" if answered else "abandoned"})
    for cid in (2, 4, 6):
        surveys.record_asked(db, cid, "2026-03-02T09:00:00.000Z", "sample", "sv", 2)
    for cid, q, score in ((2, 1, 4), (2, 2, 2), (4, 1, 5)):    # 6 was asked and pressed nothing
        surveys.record_answer(db, cid, q, score)
    return db


def test_the_report_counts_asked_responded_and_the_means(store):
    store.run_sync(_seed)
    period = Period(datetime(2026, 3, 2, tzinfo=timezone.utc), datetime(2026, 3, 3, tzinfo=timezone.utc))
    [total] = store.run_sync(survey_table, period, Scope())
    assert (total["answered_calls"], total["asked"], total["responded"]) == (6, 3, 2)
    assert total["response_rate"] == pytest.approx(66.7)
    assert (total["q1_mean"], total["q2_mean"], total["q1_answers"]) == (4.5, 2.0, 2)
    assert total["mean_score"] == pytest.approx(round(11 / 3, 2))
    by_agent = {r["agent"]: r for r in store.run_sync(survey_table, period, Scope(), "agent")}
    assert (by_agent["a1"]["asked"], by_agent["a1"]["responded"], by_agent["a1"]["q1_mean"]) == (2, 1, 4.0)
    assert (by_agent["a2"]["asked"], by_agent["a2"]["responded"], by_agent["a2"]["q1_mean"]) == (1, 1, 5.0)
    [by_queue] = store.run_sync(survey_table, period, Scope(), "queue")
    assert by_queue["queue"] == "school@bromma" and by_queue["asked"] == 3
    assert store.run_sync(survey_table, period, Scope(district="hasselby-vallingby"), "district") == []
    with pytest.raises(InvalidInput):
        store.run_sync(survey_table, period, Scope(), "hour")


def test_a_contact_is_asked_once_and_the_nth_count_is_per_queue(store):
    store.run_sync(_seed)
    store.run_sync(surveys.save_survey, on(2))
    config, language, served = store.run_sync(surveys.survey_for_contact, 5)
    assert (config.every_nth, language, served) == (2, "sv", 5)
    assert store.run_sync(surveys.survey_for_contact, 2) is None     # asked already
    assert store.run_sync(surveys.survey_for_contact, 7) is None     # never reached an agent
    with pytest.raises(InvalidInput):
        store.run_sync(surveys.save_survey, surveys.SurveyConfig("nope", "bromma", True, 1, Q))
    with pytest.raises(InvalidInput):
        store.run_sync(surveys.record_answer, 5, 1, 9)
