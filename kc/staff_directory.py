"""The staff directory the switchboard transfers to (migration ``0024_switchboard_callbacks``):
name, unit, district, number, available or not.

Imported whole from CSV (`kc directory import FILE`, `POST /api/directory`): a file with a
single bad line is refused with every problem named, and nothing is changed; a good one
replaces the directory in one transaction. Searched as the agent types (`search`), and by the
keypad for dial-by-name (`keypad_matches`: the first letters of the surname as digits).
"""
from __future__ import annotations

import csv
import io
import re
from typing import Any, Iterable

import sqlite_utils

from . import web_store
from .errors import InvalidInput, NotFound

COLUMNS = ("name", "unit", "district", "number", "available")
_NUMBER_RE = re.compile(r"^\+?[0-9]{3,20}$")
_YES = {"1", "ja", "yes", "true", "j", "y", ""}
_NO = {"0", "nej", "no", "false", "n"}
# The telephone keypad (ITU E.161), with the Swedish letters on the key of their base letter.
_KEYPAD = {ch: str(key) for key, letters in
           ((2, "abcåä"), (3, "defé"), (4, "ghi"), (5, "jkl"), (6, "mnoö"), (7, "pqrs"), (8, "tuvü"),
            (9, "wxyz")) for ch in letters}
MAX_ROWS = 20000


def parse_csv(text: str, districts: Iterable[str]) -> list[dict[str, Any]]:
    """The rows of a directory file (header `name,unit,district,number,available`; `unit`,
    `district` and `available` may be left out or empty; lines may end in CR, LF or CRLF).
    Raises InvalidInput naming every bad line, or what makes the file unreadable as CSV."""
    try:
        return _parse_rows(text, set(districts))
    except csv.Error as exc:
        raise InvalidInput(f"not a CSV file: {exc}") from None


def _parse_rows(text: str, known: set[str]) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in ("name", "number") if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    if missing or unknown:
        raise InvalidInput("the header must name the columns name and number (and may name "
                           f"unit, district, available): missing {missing}, unknown {unknown}")
    reader.fieldnames = header
    rows, problems = [], []
    for line, raw in enumerate(reader, start=2):
        if len(rows) >= MAX_ROWS:
            raise InvalidInput(f"more than {MAX_ROWS} people in one file")
        if None in raw:
            problems.append(f"line {line}: more fields than the header names")
            continue
        value = {k: (raw.get(k) or "").strip() for k in COLUMNS}
        number = re.sub(r"[\s-]", "", value["number"])
        row_problems = []
        if not value["name"] or len(value["name"]) > 120:
            row_problems.append("a name (at most 120 characters) is needed")
        if not _NUMBER_RE.match(number):
            row_problems.append(f"number {value['number']!r} is not 3-20 digits")
        if value["district"] and value["district"] not in known:
            row_problems.append(f"no district {value['district']!r}")
        available = value["available"].lower()
        if available not in _YES | _NO:
            row_problems.append(f"available {value['available']!r} is not ja/nej")
        if row_problems:
            problems.append(f"line {line}: " + "; ".join(row_problems))
            continue
        rows.append({"name": value["name"], "unit": value["unit"][:120],
                     "district": value["district"] or None, "number": number,
                     "available": int(available not in _NO)})
    if problems:
        raise InvalidInput("the directory was not imported: " + " | ".join(problems[:50]))
    if not rows:
        raise InvalidInput("the file names nobody")
    return rows


def replace_all(db: sqlite_utils.Database, rows: list[dict[str, Any]], at: str) -> dict[str, int]:
    """The directory becomes `rows` (one transaction); how many were there before and now."""
    with db.conn:
        before = db.execute("select count(*) from staff_directory").fetchone()[0]
        db.execute("delete from staff_directory")
        db.conn.executemany(
            "insert into staff_directory (name, unit, district, number, available, folded, "
            "updated_at) values (?, ?, ?, ?, ?, ?, ?)",
            [(r["name"], r["unit"], r["district"], r["number"], r["available"],
              f"{r['name']} {r['unit']}".casefold(), at) for r in rows])
    return {"before": before, "imported": len(rows)}


def import_csv(db: sqlite_utils.Database, text: str, by: str, at: str) -> dict[str, int]:
    """`kc directory import` and `POST /api/directory`: checked whole, then the directory is
    replaced and the change audited, in one transaction."""
    districts = [r[0] for r in db.execute("select id from districts")]
    rows = parse_csv(text, districts)
    with db.conn:
        counts = replace_all(db, rows, at)
        web_store.add_audit(db, at, by, "directory.import", "staff_directory",
                            {"people": counts["before"]}, {"people": counts["imported"]})
    return counts


def _view(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["available"] = bool(out["available"])
    return out


def search(db: sqlite_utils.Database, query: str, limit: int = 20) -> list[dict[str, Any]]:
    """People whose name or unit holds every word typed (any case, Å Ä Ö too: SQLite's
    lower() knows only ASCII, so the folded text is stored), the available first."""
    words = [w for w in query.casefold().split() if w][:5]
    where = " and ".join("folded like ? escape '\\'" for _ in words) or "1"
    args: list[Any] = [
        "%" + w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        for w in words]
    rows = db.execute(f"select id, name, unit, district, number, available from staff_directory "
                      f"where {where} order by available desc, name, id limit ?", [*args, limit])
    cols = [d[0] for d in rows.description]
    return [_view(dict(zip(cols, r))) for r in rows.fetchall()]


def get(db: sqlite_utils.Database, entry_id: int) -> dict[str, Any]:
    rows = list(db["staff_directory"].rows_where("id = ?", [entry_id]))
    if not rows:
        raise NotFound(f"no one with id {entry_id} in the directory")
    return {k: v for k, v in _view(rows[0]).items() if k not in ("updated_at", "folded")}


def surname(name: str) -> str:
    """The surname: the last word of the name."""
    parts = name.split()
    return parts[-1] if parts else ""


def keypad_digits(text: str) -> str:
    """`text`'s letters as keypad digits (other characters dropped)."""
    return "".join(_KEYPAD.get(ch, "") for ch in text.lower())


def keypad_matches(entries: Iterable[dict[str, Any]], digits: str,
                   limit: int = 8) -> list[dict[str, Any]]:
    """Available people whose surname starts with the letters behind `digits` (pure)."""
    return sorted((e for e in entries if e["available"]
                   and keypad_digits(surname(e["name"])).startswith(digits)),
                  key=lambda e: (surname(e["name"]).lower(), e["name"].lower(), e["id"]))[:limit]


def available_in(db: sqlite_utils.Database, districts: Iterable[str] | None) -> list[dict[str, Any]]:
    """Everyone available (of these districts and those of none; None: of all)."""
    rows = [_view(r) for r in db["staff_directory"].rows_where(
        "available = 1", order_by="name", select="id, name, unit, district, number, available")]
    if districts is None:
        return rows
    wanted = set(districts)
    return [r for r in rows if r["district"] is None or r["district"] in wanted]
