"""Every fixed sentence the system speaks outside the menus, in every language it has it in:
one table, data only (the menus' own prompts are the menus' data).

`say(key, language)` -> (text, language used): the caller's language when the phrase exists in
it, else Swedish. `missing(languages)` lists the phrase x language pairs without a text, for the
check at menu publish.
"""
from __future__ import annotations

DEFAULT_LANGUAGE = "sv"

PHRASES: dict[str, dict[str, str]] = {
    "survey_intro": {
        "sv": "Vi vill gärna veta vad du tyckte om samtalet. Svara med en siffra från 1 till 5, "
              "där 5 är bäst.",
        "en": "We would like to know what you thought of the call. Answer with a digit from 1 "
              "to 5, where 5 is best.",
    },
    "survey_thanks": {
        "sv": "Tack för dina svar. Hej då.",
        "en": "Thank you for your answers. Goodbye.",
    },
}


def say(key: str, language: str) -> tuple[str, str]:
    texts = PHRASES[key]
    lang = language if texts.get(language) else DEFAULT_LANGUAGE
    return texts[lang], lang


def missing(languages: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """(phrase, language) for every phrase without a text in one of `languages`."""
    return [(key, lang) for key, texts in PHRASES.items() for lang in languages if not texts.get(lang)]
