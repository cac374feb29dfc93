"""Recordings of the system's own phrases where no voice exists (real SQLite, real sox): kept
where the prompt cache finds them before synthesising, counted as sayable at menu publish."""
from __future__ import annotations

import subprocess

import pytest

from agi import menu_store, menus, phrase_recordings, phrasebook
from agi.prompts import VOICES, PromptCache, PromptError
from agi.recordings import store_upload
from demo_facts import with_language
from kc.errors import InvalidInput, NotFound
from test_menu_admin import clock, store  # noqa: F401  (the demo's store, the fixed clock)


def tone(path, seconds=0.3) -> bytes:
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(path), "synth", str(seconds),
                    "sine", "440"], check=True)
    return path.read_bytes()


async def test_a_recording_is_kept_and_played_instead_of_synthesis(tmp_path):
    sounds = tmp_path / "sounds"
    assert phrase_recordings.recorded(sounds) == frozenset()
    stored = await phrase_recordings.store(tone(tmp_path / "a.wav"), sounds, "survey_intro", "so",
                                           "intro.wav")
    assert stored["recording"] == "phrases/so/survey_intro" and len(stored["sha256"]) == 64
    assert phrase_recordings.recorded(sounds) == {("survey_intro", "so")}
    info = subprocess.run(["soxi", str(sounds / "phrases/so/survey_intro.wav")],
                          capture_output=True, text=True).stdout
    assert "Sample Rate    : 8000" in info and "Channels       : 1" in info
    # the prompt cache plays it, never asking espeak-ng (there is none here)
    prompts = PromptCache(sounds, espeak="/nonexistent/espeak", sox="/nonexistent/sox",
                          audio_root=sounds)
    assert await phrase_recordings.phrase(prompts, "survey_intro", "so") == \
        sounds / "phrases/so/survey_intro"
    # not recorded, no voice: said in Swedish (here: made by the synthesiser, which is absent)
    with pytest.raises(PromptError, match="espeak"):
        await phrase_recordings.phrase(prompts, "survey_thanks", "so")
    assert not prompts.path_for(phrasebook.text("survey_thanks", "sv"), "sv").with_suffix(".wav").exists()


async def test_unknown_phrases_languages_and_bad_files_are_refused_and_nothing_kept(tmp_path):
    sounds = tmp_path / "sounds"
    for key, lang in (("no_such_phrase", "so"), ("survey_intro", "xx"),
                      ("wait_you_are", "so"), ("../../etc", "so")):
        with pytest.raises(NotFound):
            await phrase_recordings.store(tone(tmp_path / "a.wav"), sounds, key, lang)
    with pytest.raises(InvalidInput, match="not a WAV or MP3"):
        await phrase_recordings.store(b"%PDF-1.4", sounds, "survey_intro", "so", "cv.pdf")
    assert phrase_recordings.recorded(sounds) == frozenset()
    assert not (sounds / "phrases").exists()


def test_the_status_of_every_phrase_in_every_language():
    have = {("callback_confirmed", "so"), ("survey_intro", "sv")}
    rows = {(r["key"], r["language"]): r for r in phrase_recordings.table(VOICES, have)}
    assert rows[("callback_confirmed", "so")]["status"] == "recorded"
    assert rows[("survey_intro", "sv")]["status"] == "recorded"        # a recording beats the voice
    assert rows[("survey_thanks", "sv")]["status"] == "spoken"
    assert rows[("survey_thanks", "ti")]["status"] == "missing"
    assert rows[("wait_you_are", "so")]["status"] == "swedish"         # composed with numbers
    assert rows[("survey_thanks", "ti")]["text"] == phrasebook.text("survey_thanks", "ti")
    assert not rows[("wait_you_are", "so")]["recordable"] and rows[("survey_thanks", "ti")]["recordable"]


def test_a_recorded_phrase_is_sayable_at_publish():
    [problem] = phrasebook.missing(["sv", "so"], VOICES, {("survey_intro", "so")})
    assert "'so'" in problem and "callback_confirmed" in problem and "survey_intro" not in problem
    every = {(key, "so") for key in phrasebook.RECORDED_ALONE}
    assert phrasebook.missing(["sv", "so"], VOICES, every) == []


async def test_a_somali_menu_is_published_once_its_prompts_and_phrases_are_recorded(store, tmp_path):
    sounds = tmp_path / "sounds"
    prompts = PromptCache(sounds, audio_root=sounds)
    original = store.run_sync(menu_store.current_version, "bromma")["body"]
    body = with_language(original, "so", "qoraal")
    with pytest.raises(menus.MenuInvalid) as err:
        await menus.publish(store, clock, prompts, "bromma", body, "admin")
    text = " ".join(err.value.problems)
    assert "no speech synthesiser voice for language 'so'" in text and "main" in text
    assert "no recording for the system's phrases callback_confirmed" in text
    ref = await store_upload(tone(tmp_path / "p.wav"), sounds)
    body = with_language(original, "so", "qoraal", ref)   # every prompt recorded in Somali
    with pytest.raises(menus.MenuInvalid) as err:      # the system's phrases still missing
        await menus.publish(store, clock, prompts, "bromma", body, "admin")
    assert [p for p in err.value.problems if "no speech synthesiser" in p] == []
    for key in phrasebook.RECORDED_ALONE:
        await phrase_recordings.store(tone(tmp_path / "k.wav"), sounds, key, "so")
    version = await menus.publish(store, clock, prompts, "bromma", body, "admin")
    assert "so" in store.run_sync(menu_store.current_version, "bromma")["body"]["languages"]
    assert version
