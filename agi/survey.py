"""FastAGI route `survey,<contact>,<yes|no>`: the customer survey after the call.

When the agent hangs up, the caller's channel goes on in the dialplan (`kc-survey`; the agent
leg's `Bridge()` has `F`) and comes here. The caller is asked when the queue's survey is on
and they agreed in the menu (`KC_SURVEY=yes`) or are its n-th caller (`kc.surveys.who_is_asked`,
pure). Each question (in the caller's menu language) is answered with 1-5 on the keypad,
also during the question (the first also during the introduction); a caller who presses nothing or another digit leaves that question
unanswered. Records: `contact_surveys` (asked), `survey_answers` (one row per score), written
through the journal (never lost, never holding the caller up).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

from kc import surveys
from kc.clock import Clock, iso
from kc.errors import CallerGone
from kc.store import Store

from . import phrasebook
from .fastagi import AgiChannel
from .phrase_recordings import phrase
from .prompts import PromptCache, PromptError

log = logging.getLogger(__name__)

SCORE_DIGITS = "12345"
ANSWER_SECONDS = 8.0


def question_text(texts: dict[str, str], language: str) -> tuple[str, str]:
    """(text, language) of a question: the caller's language, else Swedish, else the first."""
    for lang in (language, phrasebook.DEFAULT_LANGUAGE):
        if (texts.get(lang) or "").strip():
            return texts[lang], lang
    lang = next(iter(texts))
    return texts[lang], lang


@dataclass
class SurveyRoute:
    store: Store
    prompts: PromptCache
    clock: Clock
    on_agent_left: Callable[[int], Awaitable[object]] | None = None   # the ACD: the call is over

    async def survey(self, chan: AgiChannel) -> None:
        args = chan.args + ["", ""]
        try:
            contact_id = int(args[0])
        except ValueError:
            return
        if self.on_agent_left is not None:
            await self.on_agent_left(contact_id)
        found = await self.store.read(surveys.survey_for_contact, contact_id)
        if found is None:
            return
        config, language, served = found
        reason = surveys.who_is_asked(config, args[1] == "yes", served)
        if reason is None:
            return
        await self.store.record(surveys.record_asked, contact_id, iso(self.clock()), reason,
                                language, len(config.questions))
        try:
            # a score pressed during the introduction answers the first question
            early = await self._say(chan, phrase(self.prompts, "survey_intro", language), SCORE_DIGITS)
            for n, texts in enumerate(config.questions, 1):
                text, lang = question_text(dict(texts), language if language in self.prompts.voices
                                           else phrasebook.DEFAULT_LANGUAGE)
                digit, early = early or await self._say(chan, self.prompts.ensure(text, lang),
                                                        SCORE_DIGITS), None
                if digit is None:
                    digit = await chan.wait_for_digit(ANSWER_SECONDS)
                score = surveys.valid_score(digit)
                if score is not None:
                    await self.store.record(surveys.record_answer, contact_id, n, score)
            await self._say(chan, phrase(self.prompts, "survey_thanks", language), "")
        except CallerGone:
            return

    async def _say(self, chan: AgiChannel, making: Awaitable[Path], escape: str) -> str | None:
        try:
            path = await making
        except PromptError as exc:
            log.error("survey prompt not made: %s", exc)
            return None
        return await chan.stream(str(path), escape)
