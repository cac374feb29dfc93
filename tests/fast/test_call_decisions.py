"""Calls decide on data held in memory: the after-hours decision, a pure function of (opening
hours, now), over a table of cases; and the snapshot a call decides on, on a real SQLite store,
sees each change made through the write paths (and by another process) on the next call."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

from agi import menus
from agi.after_hours_decision import Offer, Open, Routed, decide
from agi.call_catalogue import LiveCatalogue
from demo_facts import demo_menu
from agi.prompts import PromptCache
from kc.store import Store
from demo_template import load_demo
from schedules import schedule_store
from schedules.hours import OpeningHours
from schedules.schedule import TZ

UTC = timezone.utc
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
OFFICE = {d: [["08:00", "16:30"]] for d in WEEKDAYS}
EVERY_DAY = {d: [["07:00", "22:00"]] for d in (*WEEKDAYS, "sat", "sun")}
EMERGENCY = {"sv": "Vid akut fara, ring 112.", "en": "In an emergency, call 112."}
NAMES = {"bromma": "Bromma", "hv": "Hässelby-Vällingby", "kista": "Kista"}


def local(y, m, d, hh=0, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


def body(week=None, route_to=(), exceptions=(), **extra):
    return {"week": week or {}, "exceptions": list(exceptions), "holidays": "closed",
            "eves": "closed",
            "after_hours": {"route_to": list(route_to), "emergency": EMERGENCY}, **extra}


def hours(**bodies) -> OpeningHours:
    return OpeningHours.from_stored(NAMES, bodies)


TUESDAY_10 = local(2026, 11, 24, 10)       # an ordinary Tuesday morning
TUESDAY_20 = local(2026, 11, 24, 20)       # the same evening
SATURDAY_23 = local(2026, 11, 28, 23)      # late on a Saturday
CHRISTMAS_EVE_10 = local(2026, 12, 24, 10)


@pytest.mark.parametrize("case, stored, playable, now, skill, expected", [
    ("open within its hours",
     {"bromma": body(OFFICE, ["hv"])}, {"bromma", "hv"}, TUESDAY_10, None, Open("bromma")),
    ("no schedule: always open",
     {}, {"bromma"}, SATURDAY_23, None, Open("bromma")),
    ("a stored schedule that no longer parses: always open",
     {"bromma": {"week": {"someday": []}}}, {"bromma"}, SATURDAY_23, None, Open("bromma")),
    ("closed, the partner open and with a menu: routed",
     {"bromma": body(OFFICE, ["hv"]), "hv": body(EVERY_DAY)}, {"bromma", "hv"}, TUESDAY_20, None,
     Routed("bromma", "hv", "outside_hours", "Bromma", "Hässelby-Vällingby")),
    ("closed, the first partner closed too, the second open",
     {"bromma": body(OFFICE, ["kista", "hv"]), "kista": body(OFFICE), "hv": body(EVERY_DAY)},
     {"bromma", "hv", "kista"}, TUESDAY_20, None,
     Routed("bromma", "hv", "outside_hours", "Bromma", "Hässelby-Vällingby")),
    ("closed on a holiday eve, the partner open",
     {"bromma": body(OFFICE, ["hv"]), "hv": body(EVERY_DAY, eves="open")}, {"bromma", "hv"},
     CHRISTMAS_EVE_10, None, Routed("bromma", "hv", "eve", "Bromma", "Hässelby-Vällingby")),
    ("closed, the partner open but without a menu to play: the offer",
     {"bromma": body(OFFICE, ["hv"]), "hv": body(EVERY_DAY)}, {"bromma"}, TUESDAY_20, None, Offer),
    ("closed, the partner closed as well: the offer",
     {"bromma": body(OFFICE, ["hv"]), "hv": body(EVERY_DAY)}, {"bromma", "hv"}, SATURDAY_23, None,
     Offer),
    ("closed, a partner that is no district: skipped",
     {"bromma": body(OFFICE, ["atlantis"])}, {"bromma", "atlantis"}, TUESDAY_20, None, Offer),
    ("a waiting caller's queue closed: the partner's queue needs no menu",
     {"bromma": body(OFFICE, ["hv"]), "hv": body(EVERY_DAY)}, set(), TUESDAY_20, "school",
     Routed("bromma", "hv", "outside_hours", "Bromma", "Hässelby-Vällingby")),
    ("a queue with shorter hours closes while its district is open",
     {"bromma": body(OFFICE, queues={"school": {"tue": [["08:00", "09:00"]]}})}, {"bromma"},
     TUESDAY_10, "school", Offer),
    ("the district open, another queue's hours do not matter",
     {"bromma": body(OFFICE, queues={"school": {"tue": [["08:00", "09:00"]]}})}, {"bromma"},
     TUESDAY_10, "elderly-care", Open("bromma")),
])
def test_after_hours_decision(case, stored, playable, now, skill, expected):
    decision = decide(hours(**stored), playable, "bromma", now, skill, caller="0701234567")
    if isinstance(expected, type):
        assert isinstance(decision, expected), case
    else:
        assert decision == expected, case


def test_the_offer_says_why_until_when_and_what_may_be_left():
    stored = {"bromma": body(OFFICE, exceptions=[{"date": "2026-11-24", "hours": [],
                                                  "message": {"sv": "Personaldag.", "en": "Staff day."}}])}
    offer = decide(hours(**stored), {"bromma"}, "bromma", TUESDAY_10, caller="0701234567")
    assert isinstance(offer, Offer) and offer.voice and offer.callback
    assert offer.due == local(2026, 11, 25, 8).astimezone(UTC)
    assert offer.info("sv") == ["Personaldag.", "Bromma har stängt just nu.",
                                "Vi öppnar igen i morgon klockan 8.", "Vid akut fara, ring 112."]
    assert offer.info("en")[:3] == ["Staff day.", "Bromma is closed right now.",
                                    "We open again tomorrow at 8 a.m."]
    assert offer.choices("sv") == ("Tryck 1 för att lämna ett röstmeddelande. Tryck 2 så ringer "
                                   "vi upp dig när vi öppnar.")


def test_no_call_back_without_a_caller_id_and_nothing_offered_when_the_policy_says_so():
    closed = {"bromma": body(OFFICE)}
    anonymous = decide(hours(**closed), {"bromma"}, "bromma", TUESDAY_20, caller="")
    assert isinstance(anonymous, Offer) and anonymous.voice and not anonymous.callback
    assert anonymous.choices("en") == "Press 1 to leave a voice message."
    closed["bromma"]["after_hours"].update(voice_message=False, callback=False)
    nothing = decide(hours(**closed), {"bromma"}, "bromma", TUESDAY_20, caller="0701234567")
    assert isinstance(nothing, Offer) and nothing.choices("sv") is None
    assert nothing.info("sv")[-2:] == ["Vi öppnar igen i morgon klockan 8.", "Vid akut fara, ring 112."]


# ---------------------------------------------------------------------- the snapshot on a store

NOW = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)      # a Tuesday, 20:00 in Stockholm


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "kc.db")
    s.run_sync(load_demo, lambda: NOW)
    s.run_sync(schedule_store.put_body, "bromma", body(OFFICE, ["hasselby-vallingby"]), "test", "t")
    s.run_sync(schedule_store.put_body, "hasselby-vallingby", body(EVERY_DAY), "test", "t")
    yield s
    s.close()


async def test_a_schedule_saved_is_decided_on_by_the_next_call(store):
    live = LiveCatalogue(store)
    first = await live.current()
    assert await live.current() is first                       # nothing changed: nothing reloaded
    assert decide(first.hours, first.menus, "bromma", NOW) == Routed(
        "bromma", "hasselby-vallingby", "outside_hours", "Bromma", "Hässelby-Vällingby")
    # what `PUT /api/schedule/hasselby-vallingby` stores: the partner closes too
    await store.run(schedule_store.put_body, "hasselby-vallingby", body(OFFICE), "admin", "t")
    second = await live.current()
    assert second is not first
    assert isinstance(decide(second.hours, second.menus, "bromma", NOW), Offer)


async def test_a_published_menu_is_played_by_the_next_call_and_a_call_keeps_its_own(store, tmp_path):
    prompts = PromptCache(tmp_path / "sounds", audio_root=tmp_path / "sounds")
    live = LiveCatalogue(store)
    before = (await live.current()).menu_for("bromma")
    assert before is not None and before.version == 1 and before.owner == "bromma"
    changed = demo_menu("Bromma")
    changed["nodes"]["main"]["prompt"]["sv"] = "Välkommen till {district}, nu med nytt val."
    await menus.publish(store, lambda: NOW, prompts, "bromma", changed, "admin")
    after = (await live.current()).menu_for("bromma")
    assert after.version == 2
    assert after.menu.nodes["main"].prompt["sv"] == "Välkommen till Bromma, nu med nytt val."
    assert before.menu.nodes["main"].prompt["sv"] != after.menu.nodes["main"].prompt["sv"]

    await menus.rollback(store, lambda: NOW, prompts, "bromma", "admin")
    assert (await live.current()).menu_for("bromma").version == 3


async def test_a_shared_menu_is_played_with_the_called_districts_name(store, tmp_path):
    prompts = PromptCache(tmp_path / "sounds", audio_root=tmp_path / "sounds")
    live = LiveCatalogue(store)
    await live.current()
    await menus.publish(store, lambda: NOW, prompts, "bromma", demo_menu("{district}"), "admin")
    await menus.share(store, lambda: NOW, prompts, "hasselby-vallingby", "bromma", "admin")
    shared = (await live.current()).menu_for("hasselby-vallingby")
    assert shared.owner == "bromma" and shared.district == "hasselby-vallingby"
    assert "Hässelby-Vällingby" in shared.menu.nodes["main"].prompt["sv"]
    assert "Bromma" not in shared.menu.nodes["main"].prompt["sv"]
    assert "Bromma" in (await live.current()).menu_for("bromma").menu.nodes["main"].prompt["sv"]


async def test_a_change_by_another_process_is_seen_by_the_next_call(store):
    """`kc menu import` and every other writer outside the service: the database's own stamp."""
    live = LiveCatalogue(store)
    assert isinstance(decide((await live.current()).hours, {"bromma", "hasselby-vallingby"},
                             "bromma", NOW), Routed)
    with sqlite3.connect(store.path) as other:
        other.execute("update schedules set body = ? where district = 'bromma'",
                      ['{"always_open": true, "week": {}, "exceptions": []}'])
    assert decide((await live.current()).hours, set(), "bromma", NOW) == Open("bromma")


async def test_an_announcement_is_held_until_it_ends(store, tmp_path):
    prompts = PromptCache(tmp_path / "sounds", audio_root=tmp_path / "sounds")
    live = LiveCatalogue(store)
    assert (await live.current()).announcement("bromma", NOW) is None
    await menus.set_announcement(store, lambda: NOW, prompts, "bromma", {"sv": "Vi har en störning."},
                                 {}, "2026-11-24T20:00:00.000Z", "admin")
    held = await live.current()
    assert held.announcement("bromma", NOW).texts == {"sv": "Vi har en störning."}
    assert held.announcement("bromma", datetime(2026, 11, 24, 20, 0, 1, tzinfo=UTC)) is None


def test_nine_cycles_through_the_menus_languages_each_offered_in_itself():
    from agi.after_hours_decision import next_language, text
    assert next_language(["sv", "en"], "sv") == "en" and next_language(["sv", "en"], "en") == "sv"
    menu = ["sv", "en", "fi", "ar"]
    said, lang = [], "sv"
    for _ in range(5):
        lang = next_language(menu, lang)
        said.append(lang)
    assert said == ["en", "fi", "ar", "sv", "en"]
    assert next_language(menu, "pl") == "sv"            # not among them: the first
    assert next_language(["sv"], "sv") is None and next_language([], "sv") is None
    assert text("this_language", "fi") == "Suomeksi, paina 9."
    assert text("this_language", "sv") == "På svenska, tryck 9."
