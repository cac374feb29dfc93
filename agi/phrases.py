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

from .prompts import PromptCache, PromptError

log = logging.getLogger(__name__)

LARGEST = 9999   # a place in the queue or minutes beyond this are said as this

# language -> the fixed texts of the announcement, the word for one minute / several minutes,
# how "one" is said before "minut" (Swedish: "en minut", not "ett"), and the word between the
# hundreds and the rest (English: "three hundred and five").
_ANNOUNCE = {
    "sv": {"you_are": "Du är nummer", "in_queue": "i kön.", "wait_is": "Beräknad väntetid är",
           "minute": "minut.", "minutes": "minuter.", "one_minute": "en", "and": None},
    "en": {"you_are": "You are number", "in_queue": "in the queue.",
           "wait_is": "The estimated waiting time is", "minute": "minute.", "minutes": "minutes.",
           "one_minute": None, "and": "and"},
}
DEFAULT_LANGUAGE = "sv"


def languages() -> tuple[str, ...]:
    return tuple(_ANNOUNCE)


def number_parts(n: int, language: str) -> list[str]:
    """The parts that say `n` (0..LARGEST) in `language`."""
    n = max(0, min(LARGEST, int(n)))
    joiner = _ANNOUNCE.get(language, {}).get("and")
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
    lang = language if language in _ANNOUNCE else DEFAULT_LANGUAGE
    words = _ANNOUNCE[lang]
    mins = minutes(wait_seconds)
    said_mins = [words["one_minute"]] if mins == 1 and words["one_minute"] else number_parts(mins, lang)
    return ([words["you_are"], *number_parts(position, lang), words["in_queue"],
             words["wait_is"], *said_mins, words["minute" if mins == 1 else "minutes"]], lang)


def all_parts(language: str) -> list[str]:
    """Every part any announcement in `language` can use."""
    words = _ANNOUNCE[language]
    texts = [w for w in words.values() if w]
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
        jobs = [(text, lang) for lang in _ANNOUNCE for text in all_parts(lang)]
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
