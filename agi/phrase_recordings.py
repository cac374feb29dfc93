"""Recordings of the system's own phrases, for a language espeak-ng has no voice for (Somali,
Tigrinya) or a better voice than the synthesiser's.

A phrase said whole (`phrasebook.RECORDED_ALONE`: the call-back confirmation, the survey's
introduction and thanks) may be recorded per language: the upload goes through the same
conversion and checks as a menu's recordings (`agi.recordings`) and is kept at
`<sounds>/phrases/<language>/<key>.wav`, where `phrase` finds it before it would synthesise.
The files are the only record: a phrase is recorded when its file is there. The menu publish
check counts a recorded phrase as sayable (`phrasebook.missing`).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Container, Iterable

from kc.errors import NotFound

from . import phrasebook
from .prompts import PromptCache
from .recordings import UPLOAD_DIR, store_upload

DIRECTORY = "phrases"
# spoken: synthesised in the language; recorded: an uploaded recording; swedish: composed, so
# a language without a voice hears it in Swedish; missing: neither voice nor recording
STATUSES = ("spoken", "recorded", "swedish", "missing")


def ref(key: str, language: str) -> str:
    """The phrase's recording as a sound reference (no extension), under the sounds directory."""
    return f"{DIRECTORY}/{language}/{key}"


def recordable(key: str, language: str) -> bool:
    return (key in phrasebook.RECORDED_ALONE and language in phrasebook.COMMON_LANGUAGES
            and bool(phrasebook.PHRASES[key].get(language)))


def check(key: str, language: str) -> None:
    if not recordable(key, language):
        raise NotFound(f"no phrase {key!r} in language {language!r} to record (recordable: "
                       f"{', '.join(phrasebook.RECORDED_ALONE)} in "
                       f"{', '.join(phrasebook.COMMON_LANGUAGES)})")


def recorded(sounds_dir: Path) -> frozenset[tuple[str, str]]:
    """The (key, language) pairs with a recording on disk."""
    root = Path(sounds_dir)
    return frozenset((key, lang) for key in phrasebook.RECORDED_ALONE
                     for lang in phrasebook.COMMON_LANGUAGES
                     if (root / f"{ref(key, lang)}.wav").is_file())


def status(key: str, language: str, voices: Container[str],
           have: Container[tuple[str, str]]) -> str:
    if (key, language) in have:
        return "recorded"
    if language in voices:
        return "spoken"
    return "missing" if key in phrasebook.RECORDED_ALONE else "swedish"


def table(voices: Container[str], have: Container[tuple[str, str]],
          languages: Iterable[str] = phrasebook.COMMON_LANGUAGES) -> list[dict[str, Any]]:
    """Every phrase x language: its text (the recording's script) and status."""
    return [{"key": key, "language": lang, "text": texts.get(lang, ""),
             "status": status(key, lang, voices, have), "recordable": recordable(key, lang)}
            for key, texts in phrasebook.PHRASES.items() for lang in languages
            if texts.get(lang)]


async def store(data: bytes, sounds_dir: Path, key: str, language: str,
                filename: str = "", sox: str = "sox") -> dict[str, str]:
    """Convert and keep a recording of `key` in `language` (replacing any earlier one)."""
    check(key, language)
    upload = await store_upload(data, sounds_dir, filename, sox)
    root = Path(sounds_dir).absolute()
    target = root / f"{ref(key, language)}.wav"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".phrase-", suffix=".wav", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(root / f"{upload}.wav", tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)          # players see the old recording or the whole new one
    finally:
        Path(tmp).unlink(missing_ok=True)
    return {"key": key, "language": language, "recording": ref(key, language),
            "sha256": upload.removeprefix(f"{UPLOAD_DIR}/")}


async def phrase(prompts: PromptCache, key: str, language: str) -> Path:
    """What to play for `key` to a caller speaking `language`: its recording when there is
    one, else synthesised in the language (Swedish when it has no voice or no text)."""
    found = prompts.recorded(ref(key, language))
    if found is not None:
        return found
    text, lang = phrasebook.say(key, language if language in prompts.voices
                                else phrasebook.DEFAULT_LANGUAGE)
    return await prompts.ensure(text, lang)
