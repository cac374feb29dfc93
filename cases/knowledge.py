"""The knowledge base: articles (question, answer, category) searched in Swedish — a light
stemmer turns the user's words into FTS5 prefix queries over `kb_fts`."""
from __future__ import annotations

import re
import unicodedata
from typing import Any

import sqlite_utils

from kc.errors import InvalidInput

from .records import get_row

_SUFFIXES = sorted((
    "arnas", "ernas", "ornas", "andes", "endes", "heten", "heter", "arna", "erna", "orna", "ande",
    "ende", "aste", "ast", "het", "ens", "ets", "are", "ast", "en", "et", "ar", "er", "or", "na",
    "as", "es", "a", "e", "s",
), key=len, reverse=True)
_WORD = re.compile(r"\w+", re.UNICODE)


def swedish_stem(word: str) -> str:
    """A light Swedish stemmer (common inflection suffixes), keeping at least 3 letters."""
    word = unicodedata.normalize("NFC", word.lower())
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def fts_query(text: str, any_term: bool = False) -> str | None:
    """User text → an FTS5 MATCH expression of quoted stem prefixes (no FTS syntax injection)."""
    terms = []
    for word in _WORD.findall(unicodedata.normalize("NFC", text or ""))[:12]:
        stem = swedish_stem(word)
        if len(stem) >= 2:
            terms.append('"' + stem.replace('"', "") + '"*')
    if not terms:
        return None
    return (" OR " if any_term else " AND ").join(terms)


def kb_search(db: sqlite_utils.Database, text: str, category_id: int | None = None,
              limit: int = 10) -> list[dict[str, Any]]:
    """Articles matching all words (else any word), best first; optionally within a category."""
    for any_term in (False, True):
        match = fts_query(text, any_term)
        if match is None:
            return []
        sql = ("select a.id, a.category_id, a.question, a.answer, k.name as category, "
               "bm25(kb_fts, 5.0, 1.0) as rank from kb_fts join kb_articles a on a.id = kb_fts.rowid "
               "left join case_categories k on k.id = a.category_id where kb_fts match ?")
        args: list[Any] = [match]
        if category_id:
            sql += " and (a.category_id = ? or k.parent_id = ?)"
            args += [category_id, category_id]
        rows = list(db.query(sql + " order by rank limit ?", [*args, limit]))
        if rows:
            return rows
    return []


def kb_for_category(db: sqlite_utils.Database, category_id: int | None, limit: int = 10) -> list[dict[str, Any]]:
    if not category_id:
        return []
    return list(db.query(
        "select a.id, a.category_id, a.question, a.answer, k.name as category from kb_articles a "
        "left join case_categories k on k.id = a.category_id "
        "where a.category_id = ? or k.parent_id = ? order by a.id limit ?",
        [category_id, category_id, limit]))


def list_kb(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(db.query(
        "select a.*, k.name as category from kb_articles a "
        "left join case_categories k on k.id = a.category_id order by k.name, a.question"))


def save_kb(db: sqlite_utils.Database, question: str, answer: str, category_id: int | None,
            by: str, at: str, article_id: int | None = None) -> int:
    question, answer = (question or "").strip(), (answer or "").strip()
    if not 3 <= len(question) <= 300:
        raise InvalidInput("question: 3–300 characters")
    if not 1 <= len(answer) <= 5000:
        raise InvalidInput("answer: 1–5000 characters")
    if category_id:
        get_row(db, "case_categories", category_id)
    row = {"question": question, "answer": answer, "category_id": category_id or None,
           "updated_at": at, "updated_by": by}
    if article_id is None:
        return db["kb_articles"].insert(row).last_pk
    get_row(db, "kb_articles", article_id)
    db["kb_articles"].update(article_id, row)
    return article_id


def delete_kb(db: sqlite_utils.Database, article_id: int) -> None:
    get_row(db, "kb_articles", article_id)
    db["kb_articles"].delete(article_id)
