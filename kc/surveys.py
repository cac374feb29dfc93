"""The customer survey after a call: per queue (skill x district) whether it is on, every how
many callers it is asked anyway, and up to three questions (text per menu language), answered
with a digit 1-5 on the keypad after the agent hung up.

Who is asked is a pure decision (`who_is_asked`): a caller who agreed in the menu (a queue
option with `survey: true`), or every n-th caller of the queue. The answers are stored with the
contact (`contact_surveys`: asked when, why, in which language; `survey_answers`: one row per
question answered), migration ``0023_survey``.

Functions taking a `sqlite_utils.Database` run in the store (``await store.run(fn, ...)``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import sqlite_utils

from .errors import InvalidInput

MAX_QUESTIONS = 3
MAX_TEXT = 300
LOWEST, HIGHEST = 1, 5
REASONS = ("consent", "sample")


@dataclass(frozen=True)
class SurveyConfig:
    skill: str
    district: str
    enabled: bool = False
    every_nth: int = 0                                  # 0: only those who agreed in the menu
    questions: tuple[Mapping[str, str], ...] = field(default_factory=tuple)   # language -> text

    def validate(self) -> None:
        if not 0 <= self.every_nth <= 10000:
            raise InvalidInput("every_nth must be 0 (only callers who agreed) up to 10000")
        if len(self.questions) > MAX_QUESTIONS:
            raise InvalidInput(f"at most {MAX_QUESTIONS} questions")
        for n, texts in enumerate(self.questions, 1):
            if not texts:
                raise InvalidInput(f"question {n} has no text")
            for lang, text in texts.items():
                if not (isinstance(lang, str) and 2 <= len(lang) <= 8 and lang.isalpha()):
                    raise InvalidInput(f"question {n}: {lang!r} is not a language code")
                if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
                    raise InvalidInput(f"question {n} ({lang}): a text of 1 to {MAX_TEXT} characters")
        if self.enabled and not self.questions:
            raise InvalidInput("a survey that is on needs at least one question")

    def missing(self, languages: tuple[str, ...] | list[str]) -> list[tuple[int, str]]:
        """(N, lang) for each question N without a text in a language the menu offers."""
        return [(n, lang) for n, texts in enumerate(self.questions, 1)
                for lang in languages if not (texts.get(lang) or "").strip()]

    def missing_languages(self, languages: tuple[str, ...] | list[str]) -> list[str]:
        """`question N: lang` for each question without a text in a language the menu offers."""
        return [f"question {n}: {lang}" for n, lang in self.missing(languages)]

    def to_dict(self) -> dict[str, Any]:
        return {"skill": self.skill, "district": self.district, "enabled": self.enabled,
                "every_nth": self.every_nth, "questions": [dict(q) for q in self.questions]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SurveyConfig":
        unknown = set(data) - {"skill", "district", "enabled", "every_nth", "questions"}
        if unknown:
            raise InvalidInput(f"unknown field(s): {', '.join(sorted(unknown))}")
        enabled, nth, questions = data.get("enabled", False), data.get("every_nth", 0), data.get("questions", [])
        if not isinstance(enabled, bool):
            raise InvalidInput("enabled must be true or false")
        if not isinstance(nth, int) or isinstance(nth, bool):
            raise InvalidInput("every_nth must be a whole number")
        if not isinstance(questions, list) or not all(isinstance(q, dict) for q in questions):
            raise InvalidInput("questions must be a list of {language: text}")
        config = cls(str(data["skill"]), str(data["district"]), enabled, nth,
                     tuple({str(k): v for k, v in q.items()} for q in questions))
        config.validate()
        return config


def who_is_asked(config: SurveyConfig | None, consented: bool, served: int) -> str | None:
    """Why this caller hears the survey ("consent" | "sample"), or None. `served`: the
    callers of the queue who reached an agent so far, this one included (1 = the first)."""
    if config is None or not config.enabled or not config.questions:
        return None
    if consented:
        return "consent"
    if config.every_nth and served % config.every_nth == 0:
        return "sample"
    return None


def valid_score(digit: str | None) -> int | None:
    return int(digit) if digit is not None and digit.isdigit() and LOWEST <= int(digit) <= HIGHEST else None


# ---------------------------------------------------------------- schema (kc.schema 0023_survey)

def create_tables(db: sqlite_utils.Database) -> None:
    db.execute("create table if not exists queue_surveys (skill text not null, district text not null, "
               "enabled integer not null default 0, every_nth integer not null default 0, "
               "questions text not null default '[]', primary key (skill, district))")
    db.execute("create table if not exists contact_surveys (contact_id integer primary key "
               "references contacts(id), asked_at text not null, reason text not null, "
               "language text not null, questions integer not null)")
    db.execute("create table if not exists survey_answers (contact_id integer not null "
               "references contacts(id), question integer not null, score integer not null "
               "check (score between 1 and 5), primary key (contact_id, question))")


# ---------------------------------------------------------------- store functions

def _from_row(row: Mapping[str, Any]) -> SurveyConfig:
    return SurveyConfig(row["skill"], row["district"], bool(row["enabled"]), row["every_nth"],
                        tuple(json.loads(row["questions"] or "[]")))


def list_surveys(db: sqlite_utils.Database) -> list[SurveyConfig]:
    return [_from_row(r) for r in db["queue_surveys"].rows_where(order_by="district, skill")]


def get_survey(db: sqlite_utils.Database, skill: str, district: str) -> SurveyConfig:
    rows = list(db["queue_surveys"].rows_where("skill = ? and district = ?", [skill, district]))
    return _from_row(rows[0]) if rows else SurveyConfig(skill, district)


def save_survey(db: sqlite_utils.Database, config: SurveyConfig) -> None:
    config.validate()
    if not db["skills"].count_where("id = ?", [config.skill]):
        raise InvalidInput(f"unknown skill {config.skill!r}")
    if not db["districts"].count_where("id = ?", [config.district]):
        raise InvalidInput(f"unknown district {config.district!r}")
    db["queue_surveys"].upsert({
        "skill": config.skill, "district": config.district, "enabled": int(config.enabled),
        "every_nth": config.every_nth,
        "questions": json.dumps([dict(q) for q in config.questions], ensure_ascii=False)},
        pk=("skill", "district"))


def survey_for_contact(db: sqlite_utils.Database, contact_id: int) -> tuple[SurveyConfig, str, int] | None:
    """(the survey of the contact's queue, the contact's language, the callers of that queue
    answered so far) for a contact that reached an agent and was not asked yet; else None."""
    row = db.execute("select skill, district, coalesce(language, 'sv'), answered_at from contacts "
                     "where id = ?", [contact_id]).fetchone()
    if row is None or row[0] is None or row[3] is None:
        return None
    if db.execute("select 1 from contact_surveys where contact_id = ?", [contact_id]).fetchone():
        return None
    config = get_survey(db, row[0], row[1])
    if not (config.enabled and config.every_nth):   # the count is only needed for sampling
        return config, row[2], 0
    served = db.execute("select count(*) from contacts where skill = ? and district = ? and "
                        "answered_at is not null and id <= ?", [row[0], row[1], contact_id]).fetchone()[0]
    return config, row[2], served


def record_asked(db: sqlite_utils.Database, contact_id: int, at: str, reason: str,
                 language: str, questions: int) -> None:
    db["contact_surveys"].insert({"contact_id": contact_id, "asked_at": at, "reason": reason,
                                  "language": language, "questions": questions}, replace=True)


def record_answer(db: sqlite_utils.Database, contact_id: int, question: int, score: int) -> None:
    if valid_score(str(score)) is None:
        raise InvalidInput(f"a score is {LOWEST} to {HIGHEST}")
    db["survey_answers"].insert({"contact_id": contact_id, "question": question, "score": score},
                                replace=True)


def answers_of(db: sqlite_utils.Database, contact_id: int) -> dict[int, int]:
    return {r[0]: r[1] for r in db.execute(
        "select question, score from survey_answers where contact_id = ? order by question", [contact_id])}
