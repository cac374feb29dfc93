"""Wait announcements from pre-rendered parts: numbers said the way each language says them,
every part rendered ahead, nothing synthesised at call time."""
from __future__ import annotations

import random
import shutil

import pytest

from agi import phrases
from agi.phrases import PhraseParts, announcement, number_parts
from agi.prompts import PromptCache


def test_numbers_are_composed_like_saynumber():
    assert number_parts(0, "sv") == ["0"]
    assert number_parts(12, "sv") == ["12"]
    assert number_parts(300, "sv") == ["300"]
    assert number_parts(357, "sv") == ["300", "57"]          # trehundra femtiosju
    assert number_parts(357, "en") == ["300", "and", "57"]   # three hundred and fifty-seven
    assert number_parts(1005, "en") == ["1000", "and", "5"]
    assert number_parts(2040, "sv") == ["2000", "40"]
    assert number_parts(123456, "sv") == number_parts(phrases.LARGEST, "sv")


def test_announcement_parts_in_the_callers_language():
    parts, lang = announcement("sv", 12, 130)
    assert (parts, lang) == (["Du är nummer", "12", "i kön.", "Beräknad väntetid är", "3",
                              "minuter."], "sv")
    parts, lang = announcement("sv", 1, 20)
    assert parts[-2:] == ["en", "minut."]                     # "en minut", not "ett minut"
    parts, lang = announcement("en", 101, 60)
    assert parts[:4] == ["You are number", "100", "and", "1"] and parts[-2:] == ["1", "minute."]
    assert announcement("fi", 3, 120) == (["Olet jonossa numero", "3", "Arvioitu odotusaika on",
                                           "2", "minuuttia."], "fi")
    assert announcement("pl", 2, 60 * 3)[0][-2:] == ["3", "minuty."]     # 2-4: minuty
    assert announcement("pl", 2, 60 * 12)[0][-2:] == ["12", "minut."]    # 12-14: minut
    assert announcement("ar", 2, 60)[0][-1] == "دقيقة واحدة."             # the one in the word
    assert announcement("de", 3, 60)[1] == "sv"              # no phrase in German: Swedish
    for lang in ("fi", "ar", "so", "fa", "es", "ti", "pl"):   # the city's common languages
        assert lang in phrases.languages()
    for lang in phrases.languages():   # every part any announcement uses is one rendered ahead
        known = set(phrases.all_parts(lang))
        for pos in (1, 9, 10, 19, 20, 99, 100, 101, 999, 1000, 1001, 4321, 9999):
            assert set(announcement(lang, pos, pos * 37)[0]) <= known


def test_parts_not_rendered_are_never_synthesised_at_call_time(tmp_path):
    cache = PromptCache(tmp_path, espeak="/nonexistent/espeak", sox="/nonexistent/sox")
    parts, lang = announcement("sv", 5, 100)
    assert PhraseParts(cache).ready(parts, lang) is None
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def parts_dir(request, tmp_path):
    """Where the parts are rendered: kept between runs in pytest's cache when it is on (file
    names are content-addressed: a changed text, voice or format is a new file), with a few
    parts of each language removed first so that every run synthesises some; else empty."""
    cache = getattr(request.config, "cache", None)
    if cache is None:
        return tmp_path
    directory = cache.mkdir("phrase-parts")
    prompts = PromptCache(directory)
    for lang in (lang for lang in phrases.languages() if lang in prompts.voices):
        for text in random.sample(phrases.all_parts(lang), 6):
            path = prompts.path_for(text, lang)
            path.with_name(path.name + ".wav").unlink(missing_ok=True)
    return directory


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                    reason="needs espeak-ng and sox")
async def test_rendered_once_then_ready(parts_dir):
    cache = PromptCache(parts_dir)
    count = await PhraseParts(cache).render()
    assert count == sum(len(phrases.all_parts(lang)) for lang in phrases.languages()
                        if lang in cache.voices)          # Somali, Tigrinya: no voice
    for lang in phrases.languages():       # every part of every spoken language is on disk
        if lang in cache.voices:
            assert PhraseParts(cache).ready(phrases.all_parts(lang), lang) is not None, lang
    parts, lang = announcement("en", 357, 600)
    paths = PhraseParts(cache).ready(parts, lang)
    assert paths is not None and len(paths) == len(parts)
    assert all(p.with_name(p.name + ".wav").stat().st_size > 500 for p in paths)


def test_every_phrase_in_every_common_language_or_flagged_at_publish():
    """Each phrase the system speaks outside the menus has a text in each of the city's
    common languages; a menu language without a text, or without a voice, is a problem
    naming the phrases."""
    from agi import phrasebook
    from agi.prompts import VOICES
    for key, texts in phrasebook.PHRASES.items():
        if key in phrasebook.OPTIONAL:
            continue
        assert set(phrasebook.COMMON_LANGUAGES) <= set(texts), key
    assert phrasebook.missing(["sv", "en", "fi", "ar", "fa", "es", "pl"], VOICES) == []
    [somali] = phrasebook.missing(["so"], VOICES)             # no espeak-ng voice for Somali
    assert "'so'" in somali and "callback_confirmed" in somali and "no speech voice" in somali
    [german] = phrasebook.missing(["de"], VOICES)             # a voice, but no texts
    assert "'de'" in german and "wait_you_are" in german and "survey_intro" in german


def test_after_hours_said_in_the_callers_language_with_when_we_open():
    from datetime import datetime, timezone
    from agi.after_hours_decision import opening_phrase, text
    now = datetime(2026, 3, 6, 20, 0, tzinfo=timezone.utc)    # Friday evening in Stockholm
    monday = datetime(2026, 3, 9, 7, 0, tzinfo=timezone.utc)  # 08:00 local
    assert opening_phrase(monday, now, "fi") == "Avaamme taas maanantaina kello 8."
    assert opening_phrase(monday, now, "es") == "Volvemos a abrir el lunes a las 8."
    assert opening_phrase(monday, now, "sv") == "Vi öppnar igen måndag klockan 8."
    assert opening_phrase(datetime(2026, 3, 7, 6, 30, tzinfo=timezone.utc), now, "pl") == \
        "Otwieramy ponownie jutro o godzinie 7:30."
    assert text("closed", "fi", name="Bromma") == "Bromma on nyt suljettu."
    assert text("closed", "de", name="Bromma") == "Bromma har stängt just nu."   # no German: Swedish
