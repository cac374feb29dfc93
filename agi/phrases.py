"""Variable phrases composed from pre-rendered parts, as Asterisk's `SayNumber` does.

A waiting caller's announcement ("Du är nummer" + "tolv" + "i kön.") is a sequence of parts, each
a prompt synthesised once, at start-up, for every language we have the phrase in: the fixed
texts, the numbers 0..99, the hundreds and the thousands. At call time nothing is synthesised:
`PhraseParts.ready` only looks the parts up; a part that is not there yet (the service is still
rendering them) makes the announcement wait for the next turn.

Numbers are handed to espeak-ng as numerals in the phrase's language, so each part is read the
way that language reads it ("57" -> "femtiosju" / "fifty-seven"); a larger number is the parts
in the order the language says them ("300" "57" -> "trehundra femtiosju"; English adds "and").
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from acd.estimate import minutes

from . import phrasebook
from .prompts import PromptCache, PromptError

log = logging.getLogger(__name__)

LARGEST = 9999   # a place in the queue or minutes beyond this are said as this

DEFAULT_LANGUAGE = phrasebook.DEFAULT_LANGUAGE
_FIXED = ("wait_you_are", "wait_in_queue", "wait_is", "wait_minute", "wait_minutes",
          "wait_minutes_few", "wait_one")


def languages() -> tuple[str, ...]:
    """The languages the announcement can be said in (its texts: `agi.phrasebook`)."""
    return phrasebook.languages()


def number_parts(n: int, language: str) -> list[str]:
    """The parts that say `n` (0..LARGEST) in `language`."""
    n = max(0, min(LARGEST, int(n)))
    joiner = phrasebook.PHRASES["wait_and"].get(language)
    parts: list[str] = []
    thousands, rest = divmod(n, 1000)
    hundreds, rest = divmod(rest, 100)
    if thousands:
        parts.append(f"{thousands}000")
    if hundreds:
        parts.append(f"{hundreds}00")
    if rest or not parts:
        if parts and joiner:
            parts.append(joiner)
        parts.append(str(rest))
    return parts


def announcement(language: str, position: int, wait_seconds: float) -> tuple[list[str], str]:
    """(parts, language used) of "you are number N in the queue; the wait is M minutes":
    in the caller's language when we have the phrase in it, else Swedish."""
    lang = language if language in languages() else DEFAULT_LANGUAGE
    word = phrasebook.PHRASES
    mins = minutes(wait_seconds)
    if mins == 1:
        one = word["wait_one"].get(lang)
        said_mins = ([] if one == "" else [one or "1"]) + [word["wait_minute"][lang]]
    else:
        said_mins = [*number_parts(mins, lang), phrasebook.minute_word(lang, mins)]
    parts = [word["wait_you_are"][lang], *number_parts(position, lang),
             word["wait_in_queue"][lang], word["wait_is"][lang], *said_mins]
    return [p for p in parts if p], lang


def all_parts(language: str) -> list[str]:
    """Every part any announcement in `language` can use."""
    texts = [phrasebook.PHRASES[key].get(language) for key in _FIXED]
    texts = [t for t in texts if t]
    joiner = phrasebook.PHRASES["wait_and"].get(language)
    texts += [joiner] if joiner else []
    texts += [str(n) for n in range(100)]
    texts += [f"{h}00" for h in range(1, 10)] + [f"{t}000" for t in range(1, 10)]
    return list(dict.fromkeys(texts))


class PhraseParts:
    """The rendered parts, over the prompt cache."""

    def __init__(self, prompts: PromptCache):
        self.prompts = prompts

    async def render(self, extra: dict[str, list[str]] | None = None) -> int:
        """Synthesise every part of every language (and `extra` fixed texts by language) not
        yet on disk; returns how many there are. Run at start-up, in the background."""
        jobs = [(text, lang) for lang in languages() if lang in self.prompts.voices
                for text in all_parts(lang)]
        jobs += [(text, lang) for lang, texts in (extra or {}).items() for text in texts]
        limit = asyncio.Semaphore(self.prompts.concurrency)

        async def one(text: str, lang: str) -> None:
            async with limit:
                await self.prompts.ensure(text, lang)

        await asyncio.gather(*(one(text, lang) for text, lang in jobs))
        return len(jobs)

    def ready(self, parts: list[str], language: str) -> list[Path] | None:
        """The files of `parts`, or None if any is not rendered yet (nothing is synthesised)."""
        paths = []
        for text in parts:
            try:
                path = self.prompts.path_for(text, language)
            except PromptError:
                return None
            if not path.with_name(path.name + ".wav").is_file():
                log.warning("phrase part %r (%s) not rendered yet", text, language)
                return None
            paths.append(path)
        return paths
