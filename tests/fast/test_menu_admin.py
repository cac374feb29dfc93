"""Safe menu editing on a real SQLite store with real espeak-ng/sox: drafts, publish,
conflicts, rollback, diff, announcements, uploads, the audit trail, YAML export/import."""
from __future__ import annotations

import copy
import json
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from agi import call_catalogue
from agi.menu import Menu, with_district
from demo_facts import demo_menu
from agi.prompts import PromptCache
from agi.recordings import MAX_BYTES, check_upload, sniff, store_upload
from kc import queries
from agi import menu_store, menus
from demo_template import demo_store
from kc.errors import InvalidInput, NotFound

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def clock():
    return NOW


@pytest.fixture
def store(tmp_path):
    with demo_store(tmp_path, clock) as s:
        yield s


@pytest.fixture
def prompts(tmp_path):
    return PromptCache(tmp_path / "sounds", audio_root=tmp_path / "sounds")


def live(store, district="bromma"):
    return store.run_sync(menu_store.current_version, district)


def audit_rows(store):
    return store.run_sync(lambda db: list(db.query(
        "select * from audit_log where action != 'config.import' order by id")))   # not the demo's creation


def with_option(body, digit, action):
    body = copy.deepcopy(body)
    body["nodes"]["main"]["options"][digit] = action
    return body


async def test_publish_validates_with_the_agents_skills_and_makes_prompts(store, prompts):
    body = live(store)["body"]
    bad = with_option(body, "4", {"action": "queue", "skill": "parking"})
    with pytest.raises(menus.MenuInvalid) as err:
        await menus.publish(store, clock, prompts, "bromma", bad, "admin")
    assert err.value.problems == ["main: option '4' queues for unknown skill 'parking' (no agent has it)"]
    assert live(store)["version"] == 1

    good = with_option(body, "4", {"action": "info", "prompt": {"sv": "Öppet åtta till fyra",
                                                                "en": "Open eight to four"}})
    version = await menus.publish(store, clock, prompts, "bromma", good, "admin", base_version=1)
    assert version == 2 and live(store)["body"]["nodes"]["main"]["options"]["4"]["action"] == "info"
    # prompts were synthesised at publish, before any call
    assert prompts.path_for("Öppet åtta till fyra", "sv").with_suffix(".wav").is_file()
    # the ACD's published_menu sees the new version at once
    assert (await store.run(queries.published_menu, "bromma"))[0] == 2
    rows = audit_rows(store)
    assert rows[-1]["action"] == "menu.publish" and rows[-1]["username"] == "admin"
    assert rows[-1]["target"] == "menu:bromma"
    assert json.loads(rows[-1]["after"])["version"] == 2


async def test_language_without_voice_and_foreign_audio_paths_are_refused(store, prompts):
    body = live(store)["body"]
    body = copy.deepcopy(body)
    body["languages"].append("xx")
    for node in body["nodes"].values():
        node["prompt"]["xx"] = "text"
    body["nodes"]["main"]["audio"] = {"sv": "/etc/passwd"}
    with pytest.raises(menus.MenuInvalid) as err:
        await menus.publish(store, clock, prompts, "bromma", body, "admin")
    text = " ".join(err.value.problems)
    assert "no speech synthesiser voice for language 'xx'" in text
    assert "main: recording for 'sv' must be an uploaded recording" in text


async def test_second_publish_from_a_stale_version_conflicts_and_nothing_is_lost(store, prompts):
    body = live(store)["body"]
    first = with_option(body, "5", {"action": "info", "prompt": {"sv": "A", "en": "A"}})
    second = with_option(body, "6", {"action": "info", "prompt": {"sv": "B", "en": "B"}})
    await menus.publish(store, clock, prompts, "bromma", first, "alice", base_version=1)
    with pytest.raises(menus.MenuConflict) as err:
        await menus.publish(store, clock, prompts, "bromma", second, "bob", base_version=1)
    assert err.value.current["version"] == 2
    assert "5" in err.value.current["body"]["nodes"]["main"]["options"]
    assert live(store)["version"] == 2


async def test_draft_revisions_conflict_then_publish_and_rollback(store, prompts):
    body = live(store)["body"]
    a = with_option(body, "5", {"action": "info", "prompt": {"sv": "A", "en": "A"}})
    b = with_option(body, "6", {"action": "info", "prompt": {"sv": "B", "en": "B"}})
    rev = await menus.save_draft(store, clock, "bromma", a, "alice", revision=0, base_version=1)
    assert rev == 1
    with pytest.raises(menus.MenuConflict) as err:   # bob opened the page before alice saved
        await menus.save_draft(store, clock, "bromma", b, "bob", revision=0, base_version=1)
    assert "5" in err.value.current["body"]["nodes"]["main"]["options"]
    rev = await menus.save_draft(store, clock, "bromma", b, "bob", revision=1, base_version=1)
    assert rev == 2
    with pytest.raises(menus.MenuConflict):
        await menus.publish_draft(store, clock, prompts, "bromma", "alice", revision=1)
    version = await menus.publish_draft(store, clock, prompts, "bromma", "bob", revision=2)
    assert version == 2 and store.run_sync(menu_store.get_draft, "bromma") is None
    assert "6" in live(store)["body"]["nodes"]["main"]["options"]

    text = menus.diff(store.run_sync(menu_store.get_version, "bromma", 1)["body"], live(store)["body"])
    assert "+    '6':" in text or "+    6:" in text or "'6'" in text

    version = await menus.rollback(store, clock, prompts, "bromma", "alice")
    assert version == 3 and live(store)["body"] == store.run_sync(menu_store.get_version, "bromma", 1)["body"]
    assert live(store)["note"] == "rollback to version 1"
    history = store.run_sync(menu_store.list_versions, "bromma")
    assert [v["version"] for v in history] == [3, 2, 1]
    actions = [r["action"] for r in audit_rows(store)]
    assert actions == ["menu.draft.save", "menu.draft.save", "menu.publish", "menu.rollback"]


async def test_a_draft_opened_before_a_publish_cannot_be_saved_over_it(store, prompts):
    body = live(store)["body"]
    await menus.publish(store, clock, prompts, "bromma",
                        with_option(body, "5", {"action": "repeat"}), "alice", base_version=1)
    with pytest.raises(menus.MenuConflict):
        await menus.save_draft(store, clock, "bromma", body, "bob", revision=0, base_version=1)


async def test_draft_must_have_the_menu_shape_but_may_have_problems(store):
    body = with_option(live(store)["body"], "4", {"action": "submenu", "node": "nowhere"})
    assert await menus.save_draft(store, clock, "bromma", body, "admin", 0, 1) == 1
    with pytest.raises(menus.MenuInvalid):
        await menus.save_draft(store, clock, "bromma", {"languages": "sv"}, "admin", 1, 1)


async def test_unknown_district_is_not_found(store, prompts):
    with pytest.raises(NotFound):
        await menus.publish(store, clock, prompts, "atlantis", demo_menu("X"), "admin")


async def test_announcement_validated_active_until_end_and_audited(store, prompts):
    end = (NOW + timedelta(hours=2)).isoformat()
    with pytest.raises(menus.MenuInvalid) as err:
        await menus.set_announcement(store, clock, prompts, "bromma", {"de": "Hallo"}, {},
                                     (NOW - timedelta(hours=1)).isoformat(), "admin")
    assert any("'de'" in p for p in err.value.problems)
    assert any("past" in p for p in err.value.problems)
    await menus.set_announcement(store, clock, prompts, "bromma",
                                 {"sv": "Vi har driftstörningar.", "en": "We have a disruption."},
                                 {}, end, "admin")
    held = store.run_sync(call_catalogue.load)   # what the next call plays before the menu
    ann = held.announcement("bromma", datetime(2026, 11, 27, 13, 0, tzinfo=timezone.utc))
    assert ann.texts["sv"] == "Vi har driftstörningar."
    assert held.announcement("bromma", datetime(2026, 11, 27, 14, 0, 1, tzinfo=timezone.utc)) is None
    await menus.clear_announcement(store, clock, "bromma", "admin")
    assert store.run_sync(menu_store.get_announcement, "bromma") is None
    assert [r["action"] for r in audit_rows(store)] == ["menu.announcement.set", "menu.announcement.clear"]


def test_yaml_round_trip_is_the_same_menu(store):
    body = live(store)["body"]
    assert Menu.from_dict(menus.from_yaml(menus.to_yaml(body))) == Menu.from_dict(body)
    with pytest.raises(menus.MenuInvalid):
        menus.from_yaml("languages: [sv\n")


def make_wav(path, rate=44100, seconds=0.5):
    subprocess.run(["sox", "-n", "-r", str(rate), "-c", "2", str(path), "synth", str(seconds),
                    "sine", "440"], check=True)
    return path.read_bytes()


async def test_uploads_are_converted_to_8khz_and_wrong_ones_refused(tmp_path):
    data = make_wav(tmp_path / "in.wav")
    assert sniff(data) == "wav"
    ref = await store_upload(data, tmp_path / "sounds", "greeting.wav")
    out = tmp_path / "sounds" / (ref + ".wav")
    info = subprocess.run(["soxi", str(out)], capture_output=True, text=True).stdout
    assert "Sample Rate    : 8000" in info and "Channels       : 1" in info
    mp3 = tmp_path / "in.mp3"
    subprocess.run(["sox", str(tmp_path / "in.wav"), str(mp3)], check=True)
    assert sniff(mp3.read_bytes()) == "mp3"
    assert (await store_upload(mp3.read_bytes(), tmp_path / "sounds", "x.mp3")).startswith("uploads/")
    with pytest.raises(InvalidInput, match="not a WAV or MP3"):
        check_upload(b"%PDF-1.4 hello", "cv.pdf")
    with pytest.raises(InvalidInput, match="at most 10 MB"):
        check_upload(b"RIFF" + b"\0" * MAX_BYTES, "big.wav")
    with pytest.raises(InvalidInput, match="could not be read"):
        await store_upload(b"RIFF\0\0\0\0WAVEjunkjunkjunk", tmp_path / "sounds", "broken.wav")


async def test_an_upload_cannot_grow_into_gigabytes(tmp_path):
    """A 2 KB WAV declared at 1 Hz lasts 1,000 s: converted to 8 kHz it became 32 MB. The rate,
    the declared length and the converted size are bounded before anything is kept."""
    import struct
    import wave
    slow = tmp_path / "slow.wav"
    with wave.open(str(slow), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(1)
        w.writeframes(struct.pack("<1000h", *range(1000)))
    assert len(slow.read_bytes()) < 2100
    with pytest.raises(InvalidInput, match="sampled at 1 Hz"):
        await store_upload(slow.read_bytes(), tmp_path / "sounds", "slow.wav")
    long = tmp_path / "long.wav"      # 11 minutes of 4 kHz 8-bit: 2.6 MB in, too long
    subprocess.run(["sox", "-n", "-r", "4000", "-b", "8", "-c", "1", str(long), "synth", "660",
                    "sine", "440"], check=True)
    with pytest.raises(InvalidInput, match="at most 10 minutes"):
        await store_upload(long.read_bytes(), tmp_path / "sounds", "long.wav")
    assert [p for p in (tmp_path / "sounds" / "uploads").iterdir()] == []   # nothing kept


async def test_recording_wins_over_synthesis_in_a_published_menu(store, prompts, tmp_path):
    ref = await store_upload(make_wav(tmp_path / "in.wav"), tmp_path / "sounds")
    body = copy.deepcopy(live(store)["body"])
    body["nodes"]["main"]["audio"] = {"sv": ref}
    await menus.publish(store, clock, prompts, "bromma", body, "admin")
    path = await prompts.resolve("ignored text", "sv", ref)
    assert path == tmp_path / "sounds" / ref


# ---------------------------------------------------------------- shared menus

HV = "hasselby-vallingby"


def share_sync(store, prompts, district, owner, who="admin"):
    import asyncio
    return asyncio.run(menus.share(store, clock, prompts, district, owner, who))


async def test_a_district_plays_the_owners_menu_with_its_own_name(store, prompts):
    body = copy.deepcopy(live(store)["body"])
    body["nodes"]["main"]["prompt"]["sv"] = "Välkommen till {district}. Tryck 1 för äldreomsorg."
    v = await menus.publish(store, clock, prompts, "bromma", body, "admin")
    assert await menus.share(store, clock, prompts, HV, "bromma", "admin") is None

    found = (await store.run(call_catalogue.load)).menu_for(HV)   # what a call to HV plays
    assert (found.owner, found.version) == ("bromma", v)
    assert found.menu.to_dict() == with_district(live(store, "bromma")["body"], "Hässelby-Vällingby")
    assert (await store.run(call_catalogue.load)).menu_for("bromma").owner == "bromma"
    # the sharer's prompt, with its name, was made before any call
    assert prompts.path_for("Välkommen till Hässelby-Vällingby. Tryck 1 för äldreomsorg.",
                            "sv").with_suffix(".wav").is_file()
    assert await store.run(menu_store.all_shares) == {HV: "bromma"}
    assert await store.run(menu_store.users_of, "bromma") == ["bromma", HV]
    row = audit_rows(store)[-1]
    assert (row["action"], row["target"], row["username"]) == ("menu.share", f"menu:{HV}", "admin")
    assert json.loads(row["before"]) == {"menu_of": None} and json.loads(row["after"]) == {"menu_of": "bromma"}

    # the sharer has no menu of its own to edit while it shares: the message names the owner
    own = live(store, HV)
    for attempt in (menus.publish(store, clock, prompts, HV, own["body"], "admin"),
                    menus.save_draft(store, clock, HV, own["body"], "admin", 0, own["version"]),
                    menus.rollback(store, clock, prompts, HV, "admin", to_version=1)):
        with pytest.raises(menus.MenuShared) as err:
            await attempt
        assert "uses the menu of Bromma (bromma)" in str(err.value)
    assert live(store, HV)["version"] == own["version"]

    # back to its own: its own history is intact and plays again
    assert await menus.share(store, clock, prompts, HV, None, "admin") == "bromma"
    found = (await store.run(call_catalogue.load)).menu_for(HV)
    assert (found.owner, found.version) == (HV, own["version"])
    assert audit_rows(store)[-1]["action"] == "menu.unshare"


def test_sharing_refuses_self_unknown_and_chains(store, prompts):
    def refused(district, owner):
        with pytest.raises(menu_store.ShareRefused) as err:
            share_sync(store, prompts, district, owner)
        return " ".join(err.value.problems)

    assert "cannot share its own menu" in refused("bromma", "bromma")
    assert "no district 'atlantis'" in refused("bromma", "atlantis")
    with pytest.raises(NotFound):
        share_sync(store, prompts, "atlantis", "bromma")
    def new_district(db):
        db["districts"].insert({"id": "spanga-tensta", "name": "Spånga-Tensta", "number": "0850830000"})
        db["agents"].insert({"id": "st-301", "name": "Agent 301", "district": "spanga-tensta",
                             "languages": "[]", "cleared_for": "[]", "sip_ha1": ""})
        db["agent_skills"].insert_all({"agent": "st-301", "skill": s, "proficiency": 3} for s in
                                      ("elderly-care", "school", "social-services", "switchboard"))
    store.run_sync(new_district)
    assert "no published menu" in refused("bromma", "spanga-tensta")

    share_sync(store, prompts, HV, "bromma")
    # a chain either way: sharing a sharer's menu, or an owner sharing someone else's
    assert "no chains" in refused("spanga-tensta", HV)
    assert "no chains" in refused("bromma", "spanga-tensta")
    share_sync(store, prompts, "spanga-tensta", "bromma")   # two sharers of one owner is fine
    assert store.run_sync(menu_store.sharers, "bromma") == [HV, "spanga-tensta"]
    # a district without a menu of its own keeps a copy of the one it played when it stops
    share_sync(store, prompts, "spanga-tensta", None)
    copied = live(store, "spanga-tensta")
    assert copied["body"] == live(store, "bromma")["body"] and "copy of version" in copied["note"]
    assert [r["action"] for r in audit_rows(store)].count("menu.share") == 2


async def test_agents_losing_a_shared_menus_skill_are_reported(store, prompts):
    await menus.share(store, clock, prompts, HV, "bromma", "admin")
    assert await store.run(menus.coverage_problems, HV) == []
    assert await store.run(menus.coverage_problems, "bromma") == []
    # the menu is live and shared; then Hässelby-Vällingby's only school agent loses the skill
    store.run_sync(lambda db: db.execute(
        "delete from agent_skills where agent = 'hv-203' and skill = 'school'"))
    assert await store.run(menus.coverage_problems, HV) == [
        "main: option '2' queues for skill 'school' that no agent of Hässelby-Vällingby has now "
        "(it plays Bromma's menu)"]
    assert await store.run(menus.coverage_problems, "bromma") == []      # Bromma still has one
    await menus.share(store, clock, prompts, HV, None, "admin")
    assert await store.run(menus.coverage_problems, HV) == []            # its own menu again


async def test_a_shared_menu_is_validated_against_every_district_that_plays_it(store, prompts):
    # Hässelby-Vällingby's only school agent loses the skill: Bromma's menu (which queues for
    # school) may not be shared with it, and the problem names the district.
    store.run_sync(lambda db: db.execute(
        "delete from agent_skills where agent = 'hv-203' and skill = 'school'"))
    with pytest.raises(menus.MenuInvalid) as err:
        await menus.share(store, clock, prompts, HV, "bromma", "admin")
    assert err.value.problems == [
        "main: option '2' queues for skill 'school' that no agent of Hässelby-Vällingby has "
        "(it uses this menu)"]
    assert await store.run(menu_store.menu_of, HV) is None

    # with the skill back, sharing works; then Bromma may not publish a queue only it staffs
    store.run_sync(lambda db: db["agent_skills"].insert({"agent": "hv-203", "skill": "school",
                                                          "proficiency": 4}))
    await menus.share(store, clock, prompts, HV, "bromma", "admin")
    store.run_sync(lambda db: db["agent_skills"].insert({"agent": "bromma-101", "skill": "school",
                                                          "proficiency": 1}, replace=True))
    store.run_sync(lambda db: db.execute(
        "delete from agent_skills where agent = 'hv-204' and skill = 'social-services'"))
    body = live(store)["body"]
    with pytest.raises(menus.MenuInvalid) as err:
        await menus.publish(store, clock, prompts, "bromma", body, "admin")
    assert err.value.problems == [
        "main: option '3' queues for skill 'social-services' that no agent of Hässelby-Vällingby "
        "has (it uses this menu)"]
    # the same check shows on the editor (problems_for), and an unshared menu keeps the old rule
    _, problems, users = await menus.problems_for(store, "bromma", body)
    assert users == ["bromma", HV] and len(problems) == 1
    await menus.share(store, clock, prompts, HV, None, "admin")
    assert await menus.publish(store, clock, prompts, "bromma", body, "admin") == 2
