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
    assert announcement("fi", 3, 60)[1] == "sv"              # no phrase in Finnish: Swedish
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
    for lang in phrases.languages():
        for text in random.sample(phrases.all_parts(lang), 6):
            path = prompts.path_for(text, lang)
            path.with_name(path.name + ".wav").unlink(missing_ok=True)
    return directory


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                    reason="needs espeak-ng and sox")
async def test_rendered_once_then_ready(parts_dir):
    cache = PromptCache(parts_dir)
    count = await PhraseParts(cache).render()
    assert count == sum(len(phrases.all_parts(lang)) for lang in phrases.languages())
    for lang in phrases.languages():       # every part of every language is on disk
        assert PhraseParts(cache).ready(phrases.all_parts(lang), lang) is not None, lang
    parts, lang = announcement("en", 357, 600)
    paths = PhraseParts(cache).ready(parts, lang)
    assert paths is not None and len(paths) == len(parts)
    assert all(p.with_name(p.name + ".wav").stat().st_size > 500 for p in paths)
