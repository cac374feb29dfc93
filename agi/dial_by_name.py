"""Dial by name, a menu action (`agi.menu.DirectoryAction`): the caller keys the first letters
of a surname on the keypad (ending with # or a pause), hears the matching people of the staff
directory who are available ("För Anna Andersson, Bygglov, tryck 1.") and presses a digit to be
connected to that person's number through the outbound trunk. Nobody found twice, or no choice:
None, and the call flow hands the caller to the switchboard.

`choices` is the decision (pure): what the caller hears for what they keyed. The matching is
`kc.staff_directory.keypad_matches`.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

from kc import staff_directory
from kc.store import Store

from .fastagi import AgiChannel
from .prompts import PromptCache

log = logging.getLogger(__name__)

MAX_KEYS = 4            # letters of the surname that are enough to find someone
MAX_MATCHES = 8         # digits 1..8 pick one
KEY_PAUSE = 3.0         # seconds after a key before the search starts
ROUNDS = 2

TEXTS: Mapping[str, Mapping[str, str]] = {
    "sv": {"ask": "Slå de första bokstäverna i efternamnet på den du söker och avsluta med fyrkant.",
           "none": "Ingen tillgänglig med det namnet hittades.",
           "match": "För {name}, {unit}, tryck {digit}.",
           "match_plain": "För {name}, tryck {digit}.",
           "connecting": "Du kopplas nu.",
           "switchboard": "Du kopplas till växeln."},
    "en": {"ask": "Key the first letters of the surname of the person you are looking for, "
                  "then press hash.",
           "none": "No one available by that name was found.",
           "match": "For {name}, {unit}, press {digit}.",
           "match_plain": "For {name}, press {digit}.",
           "connecting": "Connecting you now.",
           "switchboard": "Connecting you to the switchboard."},
}


def text(key: str, language: str) -> str:
    return TEXTS.get(language, TEXTS["sv"])[key]


def choices(people: Iterable[Mapping[str, Any]], keys: str,
            language: str) -> tuple[list[Mapping[str, Any]], list[str]]:
    """The people the caller may pick for `keys`, and the sentences that offer them."""
    found = staff_directory.keypad_matches(people, keys, MAX_MATCHES) if keys else []
    sentences = [text("match" if p.get("unit") else "match_plain", language).format(
        name=p["name"], unit=p.get("unit") or "", digit=i) for i, p in enumerate(found, start=1)]
    return found, sentences


class DialByName:
    def __init__(self, store: Store, prompts: PromptCache):
        self.store, self.prompts = store, prompts

    async def _say(self, chan: AgiChannel, sentence: str, language: str,
                   digits: str = "0123456789*#") -> str | None:
        return await chan.stream(str(await self.prompts.ensure(sentence, language)), digits)

    async def _keys(self, chan: AgiChannel, first: str | None) -> str:
        keys = first or ""
        while len(keys) < MAX_KEYS and not keys.endswith("#"):
            digit = await chan.wait_for_digit(KEY_PAUSE)
            if digit is None:
                break
            keys += digit
        return "".join(k for k in keys if k in "23456789")

    async def pick(self, chan: AgiChannel, districts: list[str] | None,
                   language: str) -> Mapping[str, Any] | None:
        """The person the caller chose, or None."""
        people = await self.store.read(staff_directory.available_in, districts)
        for _ in range(ROUNDS):
            keys = await self._keys(chan, await self._say(chan, text("ask", language), language))
            found, sentences = choices(people, keys, language)
            if not found:
                await self._say(chan, text("none", language), language, "")
                continue
            digit = None
            for sentence in sentences:
                digit = await self._say(chan, sentence, language)
                if digit:
                    break
            if digit is None:
                digit = await chan.wait_for_digit(5.0)
            if digit and digit.isdigit() and 1 <= int(digit) <= len(found):
                await self._say(chan, text("connecting", language), language, "")
                return found[int(digit) - 1]
        await self._say(chan, text("switchboard", language), language, "")
        return None
