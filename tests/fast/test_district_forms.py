"""The district form's fields become the same body the JSON API takes, and the edits of
`city.districts` the pages add (a new id must be free; hours copied from another district)."""
from __future__ import annotations

import pytest
import yaml

from admin_web.district_pages import district_body, first_queues, skill_body
from city import districts, document
from kc.errors import InvalidInput
from kommuncentral.demo import DEMO_FILE

DOC = document.validated(yaml.safe_load(DEMO_FILE.read_text(encoding="utf-8")))
FORM = {"id": "farsta", "name": "Farsta", "numbers": "08-508 60 000\n0850860001, ",
        "addresses": "farsta@kontakt.example", "region": " Söderort ", "switchboard": "",
        "menu": "copy:bromma", "hours": "copy:bromma"}


def test_the_form_becomes_the_apis_body():
    body = district_body(FORM, new=True)
    assert body == {"name": "Farsta", "numbers": ["0850860000", "0850860001"],
                    "addresses": ["farsta@kontakt.example"], "region": "Söderort",
                    "switchboard": None, "menu_copy_of": "bromma", "hours_copy_of": "bromma"}
    shared = district_body({**FORM, "menu": "shared:bromma", "hours": ""}, new=True)
    assert shared["menu_of"] == "bromma" and shared["hours"]["always_open"] is True
    assert "menu_copy_of" not in district_body({**FORM, "menu": ""}, new=False)   # kept as is
    with pytest.raises(InvalidInput, match="meny"):
        district_body({**FORM, "menu": ""}, new=True)
    assert skill_body({"name": " Parkering ", "confidential": "1"}) == \
        {"name": "Parkering", "confidential": True, "retired": False}


def test_a_new_districts_first_queues_overflow_as_the_form_says():
    assert first_queues({"overflow_to": ""}, ["school"]) is None
    assert first_queues({"overflow_to": "*", "overflow_seconds": "12,5"}, ["school", "switchboard"]) == [
        {"skill": "school", "overflow": [[12.5, ["*"]]]},
        {"skill": "switchboard", "overflow": [[12.5, ["*"]]]}]
    with pytest.raises(InvalidInput, match="sekunder"):
        first_queues({"overflow_to": "bromma", "overflow_seconds": "trettio"}, ["school"])


def test_a_new_district_gets_a_free_id_and_may_copy_anothers_hours():
    body = {**district_body(FORM, new=True),
            "queues": first_queues({"overflow_to": "bromma", "overflow_seconds": "30"}, ["school"])}
    doc = document.validated(document.public(districts.add_district(DOC, "farsta", body)))
    farsta = next(d for d in doc["districts"] if d["id"] == "farsta")
    bromma = next(d for d in doc["districts"] if d["id"] == "bromma")
    assert farsta["hours"] == bromma["hours"] and farsta["menu"] == bromma["menu"]
    assert [q for q in doc["queues"] if q["district"] == "farsta"] == [
        {"skill": "school", "district": "farsta", "service_level_seconds": 30.0,
         "wrap_up_seconds": 0.0, "overflow": [{"after_seconds": 30.0, "districts": ["bromma"]}],
         "priority": 0, "written_service_level_seconds": 28800.0,
         "escalation": [], "alert_seconds": 0.0}]
    with pytest.raises(InvalidInput, match="taken by Bromma"):
        districts.add_district(DOC, "bromma", body)
    retired = districts.retire_district(doc, "farsta")
    with pytest.raises(InvalidInput, match=r"\(retired\)"):
        districts.add_district(retired, "farsta", body)
    with pytest.raises(InvalidInput, match="hours_copy_of"):
        districts.put_district(DOC, "farsta", {**body, "hours_copy_of": "atlantis"})
