"""Every menu language all the way, on a real Asterisk with SIPp: a caller who chose Finnish in
the menu hears the wait announcement in Finnish (the parts Asterisk played, from its log), and a
menu offering a language the system's phrases are not in is refused at publish, naming them."""
from __future__ import annotations

import copy

import pytest

from agi import phrases
from agi.prompts import PromptCache
from kc_instance import make_instance, now_iso, remove_instance
from sipp_driver import call

pytestmark = pytest.mark.telephony

BROMMA = "0850810000"
FINNISH_MAIN = ("Tervetuloa Bromman kaupunginosahallintoon. Paina 1 vanhustenhuolto. "
                "Paina 2 esikoulu ja koulu. Paina 3 toimeentulotuki ja sosiaalipalvelut. Paina 0 vaihde.")


@pytest.fixture
def announcing_kc():
    inst = make_instance()
    inst.env.update(KC_ANNOUNCE_SECONDS="6", KC_RING_TIMEOUT="5")
    try:
        inst.start()
        yield inst
    finally:
        remove_instance(inst)


def with_finnish(menu: dict) -> dict:
    """The demo menu plus Finnish: 8 switches to it, every prompt has its Finnish text."""
    m = copy.deepcopy(menu)
    m["languages"] = [*m["languages"], "fi"]
    for node in m["nodes"].values():
        node["prompt"]["fi"] = FINNISH_MAIN
    m["nodes"]["main"]["options"]["8"] = {"action": "language", "language": "fi"}
    return m


def test_a_caller_who_chose_finnish_hears_the_wait_announcement_in_finnish(announcing_kc, tmp_path):
    kc = announcing_kc
    status, original = kc.request("GET", "/api/menus/bromma")
    assert status == 200, original
    german = with_finnish(original["menu"])
    german["languages"].append("de")
    for node in german["nodes"].values():
        node["prompt"]["de"] = "Willkommen."
    status, body = kc.request("PUT", "/api/menus/bromma", german)
    assert status == 422 and any("'de'" in p and "wait_you_are" in p for p in body["problems"]), body
    status, body = kc.request("PUT", "/api/menus/bromma", with_finnish(original["menu"]))
    assert status == 200, body

    # the Finnish parts are rendered at start-up, in the background: wait for them
    cache = PromptCache((kc.var / "sounds").resolve())
    wanted = [cache.path_for(t, "fi") for t in phrases.all_parts("fi")[:20]]
    kc.wait_for(lambda: all(p.with_name(p.name + ".wav").is_file() for p in wanted), 300,
                "the Finnish announcement parts")
    since = now_iso()
    # 8: Finnish, then 2: school (no agent logged in: the caller waits and is announced)
    run = call(tmp_path, kc.sip_port, BROMMA, digits=[(3.0, "8"), (2.5, "2")],
               caller_number="0709100001", hangup_after=16)
    run.wait(60)
    said = cache.path_for("Olet jonossa numero", "fi")
    messages = kc.var / "asterisk" / "log" / "messages"
    kc.wait_for(lambda: f"Playing '{said}" in messages.read_text(errors="replace"), 20,
                "the Finnish announcement played")
    swedish = cache.path_for("Du är nummer", "sv")
    assert f"Playing '{swedish}" not in messages.read_text(errors="replace")
    contact = kc.wait_for(lambda: next((c for c in kc.contacts(since)
                                        if c["caller"] == "0709100001" and c["outcome"]), None),
                          30, "the contact")
    assert contact["language"] == "fi" and contact["skill"] == "school"
