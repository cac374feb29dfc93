"""Prompt synthesis with the real espeak-ng and sox, into tmp_path."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from agi.menu import Menu
from demo_facts import demo_menu
from agi.prompts import VOICES, PromptCache, PromptError

pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox") and shutil.which("soxi")),
    reason="needs espeak-ng and sox",
)


def soxi(path: Path, flag: str) -> str:
    return subprocess.run(["soxi", flag, str(path)], check=True, capture_output=True, text=True).stdout.strip()


def wav(base: Path) -> Path:
    return base.with_name(base.name + ".wav")


def assert_telephone_format(base: Path) -> None:
    f = wav(base)
    assert f.is_file() and f.stat().st_size > 1000
    assert soxi(f, "-t") == "wav"
    assert soxi(f, "-r") == "8000"
    assert soxi(f, "-c") == "1"
    assert soxi(f, "-b") == "16"
    assert soxi(f, "-e") == "Signed Integer PCM"


@pytest.mark.asyncio
async def test_ensure_returns_path_without_extension_in_8khz_mono(tmp_path):
    cache = PromptCache(tmp_path / "prompts")
    base = await cache.ensure("Välkommen till Bromma stadsdelsförvaltning.", "sv")
    assert base.suffix == "" and base.parent == tmp_path / "prompts"
    assert len(base.name) == 64  # sha256 hex
    assert_telephone_format(base)
    assert [p.name for p in base.parent.iterdir()] == [base.name + ".wav"]  # no temp leftovers


@pytest.mark.asyncio
async def test_cache_hit_does_not_regenerate(tmp_path):
    cache = PromptCache(tmp_path)
    first = await cache.ensure("Tryck 1 för äldreomsorg.", "sv")
    os.utime(wav(first), ns=(1_000_000_000, 1_000_000_000))
    again = await PromptCache(tmp_path).ensure("Tryck 1 för äldreomsorg.", "sv")
    assert again == first
    assert wav(first).stat().st_mtime_ns == 1_000_000_000


@pytest.mark.asyncio
async def test_key_depends_on_text_and_voice(tmp_path):
    cache = PromptCache(tmp_path)
    assert cache.path_for("Hej", "sv") != cache.path_for("Hej", "en")
    assert cache.path_for("Hej", "sv") != cache.path_for("Hej!", "sv")
    assert cache.path_for("Hej", "sv") == PromptCache(tmp_path).path_for("Hej", "sv")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "text",
    [
        'Säg "hej" och \'tryck\' 1 - eller två',
        "--help",
        "-v en -w /tmp/owned.wav",
        "rad ett\nrad två\n\nrad fyra",
        "; rm -rf / ; $(touch pwned) `touch pwned` | cat > pwned",
        "<speak>inte SSML</speak> & %s %n \\x00",
    ],
)
async def test_hostile_text_is_just_spoken(tmp_path, monkeypatch, text):
    monkeypatch.chdir(tmp_path)
    cache = PromptCache(tmp_path / "p")
    base = await cache.ensure(text, "sv")
    assert_telephone_format(base)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # nothing was created by the text
    assert not Path("/tmp/owned.wav").exists()


@pytest.mark.asyncio
async def test_concurrent_calls_for_same_text_share_one_file(tmp_path):
    cache = PromptCache(tmp_path)
    text = "Du har kommit till växeln. Vänligen vänta."
    paths = await asyncio.gather(*(cache.ensure(text, "sv") for _ in range(6)))
    other = await asyncio.gather(*(PromptCache(tmp_path).ensure(text + " Tack.", "sv") for _ in range(3)))
    assert len(set(paths)) == 1 and len(set(other)) == 1
    assert_telephone_format(paths[0])
    assert_telephone_format(other[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({wav(paths[0]).name, wav(other[0]).name})


@pytest.mark.asyncio
async def test_unknown_language_and_empty_text_are_prompt_errors(tmp_path):
    cache = PromptCache(tmp_path)
    with pytest.raises(PromptError, match="'xx'"):
        await cache.ensure("hej", "xx")
    with pytest.raises(PromptError, match="empty"):
        await cache.ensure("  \n", "sv")


@pytest.mark.asyncio
async def test_tool_failures_carry_stderr(tmp_path):
    cache = PromptCache(tmp_path, voices={"sv": "zz-nonexistent"})
    with pytest.raises(PromptError, match="espeak-ng failed.*voice"):
        await cache.ensure("hej", "sv")
    missing = PromptCache(tmp_path, sox=str(tmp_path / "no-sox"))
    with pytest.raises(PromptError, match="cannot run"):
        await missing.ensure("hej", "sv")
    assert list(tmp_path.iterdir()) == []  # temp files cleaned up


@pytest.mark.asyncio
async def test_ensure_menu_generates_every_text_and_prefers_recordings(tmp_path):
    recordings = tmp_path / "rec"
    recordings.mkdir()
    (recordings / "main-en.wav").write_bytes(b"RIFF")  # existence is all that matters here
    d = demo_menu("Bromma")
    d["nodes"]["main"]["audio"] = {"en": "main-en", "sv": "missing-sv"}
    d["nodes"]["main"]["options"]["4"] = {
        "action": "info", "prompt": {"sv": "Vi har öppet 8–16.", "en": "We are open 8 to 16."},
    }
    d["nodes"]["main"]["options"]["5"] = {
        "action": "eservice", "name": "bygglov",
        "address": {"sv": "stockholm.se/bygglov", "en": "stockholm.se/building-permits"}, "then": "hangup",
    }
    cache = PromptCache(tmp_path / "cache", audio_root=recordings)
    paths = await cache.ensure_menu(Menu.from_dict(d))
    assert set(paths) == {(k, lang) for k in ("main", "main/4", "main/5") for lang in ("sv", "en")}
    assert paths[("main", "en")] == recordings / "main-en"
    assert paths[("main", "sv")] == cache.path_for(d["nodes"]["main"]["prompt"]["sv"], "sv")
    for key, base in paths.items():
        if key != ("main", "en"):
            assert_telephone_format(base)
    assert await cache.resolve("x", "sv", str(recordings / "main-en.wav")) == recordings / "main-en"


def test_every_mapped_voice_exists_here():
    listed = subprocess.run(["espeak-ng", "--voices"], check=True, capture_output=True, text=True).stdout
    names = {line.split()[1] for line in listed.splitlines()[1:] if line.strip()}
    assert set(VOICES.values()) <= names
    assert {"sv", "en", "fi", "ar"} <= set(VOICES)


@pytest.mark.asyncio
async def test_cancelled_caller_does_not_break_shared_generation(tmp_path):
    cache = PromptCache(tmp_path)
    text = "Tack för att du väntar."
    first = asyncio.ensure_future(cache.ensure(text, "sv"))
    second = asyncio.ensure_future(cache.ensure(text, "sv"))
    await asyncio.sleep(0)
    first.cancel()
    assert_telephone_format(await second)
    with pytest.raises(asyncio.CancelledError):
        await first
