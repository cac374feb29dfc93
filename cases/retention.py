"""Retention and a person's data: personal data older than the retention time is removed or
pseudonymised, and everything stored about one number or address can be exported."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from kc.clock import iso
from kc.errors import InvalidInput

from .messages import contact_messages
from .records import case_for_contact

PSEUDONYM_PREFIX = "pseud:"


def pseudonym(key: str, value: str) -> str:
    digest = hmac.new(key.encode(), value.strip().lower().encode(), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:16]


# Every column that holds a resident's personal data, and what retention does to it once the
# row is older than the retention time. `tests/fast/test_retention.py` lists every column of
# the schema: each one is either here or declared not personal there, so a new column cannot
# be forgotten.
PSEUDONYMISE = "pseudonymise"   # the same value gets the same pseudonym (statistics still work)
REMOVE = "remove"               # set to null
SCRUB = "scrub"                 # text/JSON: numbers and addresses inside it pseudonymised
DELETE_ROW = "delete row"       # the whole row goes (files sent with an e-mail)
DELETE_FILE = "delete file"     # a path to a recording: the file is deleted, the column nulled

PERSONAL_DATA: dict[str, dict[str, str]] = {
    "contacts": {"caller": PSEUDONYMISE, "caller_name": REMOVE, "callback_number": PSEUDONYMISE},
    "contact_events": {"data": SCRUB},
    "cases": {"caller": PSEUDONYMISE, "note": REMOVE, "forward_reason": REMOVE},
    "contact_messages": {"from_addr": PSEUDONYMISE, "to_addr": PSEUDONYMISE, "subject": REMOVE,
                         "body": REMOVE, "message_id": REMOVE},
    "message_attachments": {"filename": DELETE_ROW, "content_type": DELETE_ROW,
                            "size": DELETE_ROW, "data": DELETE_ROW},
    "after_hours_requests": {"callback_number": PSEUDONYMISE, "recording": DELETE_FILE},
    "audit_log": {"target": SCRUB, "before": SCRUB, "after": SCRUB},
}
# How old a row is: its own time column, or its parent's.
AGE = {
    "contacts": "started_at", "contact_events": "at", "cases": "created_at",
    "contact_messages": "at", "after_hours_requests": "created_at", "audit_log": "at",
    "message_attachments": "(select m.at from contact_messages m where m.id = message_attachments.message)",
}
# A phone number (5+ digits, with + - or spaces) or an e-mail address, inside any text.
_PERSONAL_IN_TEXT = re.compile(r"[^\s\"'<>(),;:@]{1,64}@[A-Za-z0-9.-]+\.[A-Za-z]{2,24}"
                               r"|\+?\d[\d -]{3,20}\d")


def scrub(key: str, text: str) -> str:
    """Numbers and addresses inside a text (or JSON) replaced by their pseudonyms."""
    def swap(m: re.Match[str]) -> str:
        value = m.group(0)
        digits = re.sub(r"\D", "", value)
        if "@" not in value and (len(digits) < 6 or re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", value)):
            return value       # a short number, a date: not a phone number
        return pseudonym(key, value if "@" in value else digits)
    return _PERSONAL_IN_TEXT.sub(swap, text)


# Rowids per window: starts at BATCH, doubled while a window takes under a quarter of
# STEP_SECONDS, halved when one takes longer, within [MIN_BATCH, MAX_BATCH], so the single
# writer is never held for more than one window's rows, whatever the table's size, and no more
# than one window of rows is ever in the service's memory (benchmarks/bench_purge.py).
BATCH, MIN_BATCH, MAX_BATCH = 25, 5, 100
STEP_SECONDS = 0.003
# The names the counts have always had.
_COUNT_NAMES = {"contact_messages": "messages", "message_attachments": "attachments"}


def _sql_pseudonym(key: str, value: Any) -> Any:
    if value is None or str(value).startswith(PSEUDONYM_PREFIX):
        return value
    return pseudonym(key, str(value))


@dataclass
class Purge:
    """Personal data older than `cutoff`, every column of PERSONAL_DATA: removed, pseudonymised
    (the same number gets the same pseudonym, so statistics still work) or scrubbed;
    attachments and voice-message recordings deleted. `step(db)` does one window of rowids of
    one table and says whether all is done: run each step as its own store job so calls are
    written in between. Pseudonyms and removals happen in SQL; only text to scrub and
    recordings to delete are read, one window at a time."""
    cutoff: str
    key: str
    recordings_dir: Path | None = None
    batch: int = BATCH
    counts: dict[str, int] = field(default_factory=dict)
    longest: float = 0.0           # seconds: the longest one step held the writer
    longest_cpu: float = 0.0       # seconds of the writer thread's own CPU in that step
    over_50ms: int = 0             # steps that held it longer than 50 ms
    steps: list[float] = field(default_factory=list)   # each step's hold, seconds
    _stage: int = -1               # -1: the cases' note flags; then the tables in order
    _lo: int = 1
    _last: int | None = None       # the walked table's highest rowid when its stage began

    def step(self, db: sqlite_utils.Database) -> bool:
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            with db.conn:
                return self._step(db)
        finally:
            took = time.perf_counter() - started
            self.steps.append(took)
            if took > self.longest:    # wall time; its CPU part tells work from waiting for a core
                self.longest, self.longest_cpu = took, time.thread_time() - cpu
            self.over_50ms += took > 0.050
            if took < STEP_SECONDS / 4:
                self.batch = min(MAX_BATCH, self.batch * 2)
            elif took > STEP_SECONDS:
                self.batch = max(MIN_BATCH, self.batch // 2)

    def _step(self, db: sqlite_utils.Database) -> bool:
        tables = list(PERSONAL_DATA)
        if self._stage >= len(tables):
            return True
        table = "cases" if self._stage < 0 else tables[self._stage]
        if self._last is None:
            self._last = db.conn.execute(f"select coalesce(max(rowid), 0) from {table}").fetchone()[0]
        db.conn.create_function("kc_pseudonym", 2, _sql_pseudonym, deterministic=True)
        hi = self._lo + self.batch - 1
        if self._stage < 0:
            cur = db.conn.execute("update cases set note_purged = 1 where rowid between ? and ? "
                                  "and created_at < ? and note_purged = 0", [self._lo, hi, self.cutoff])
            self.counts["notes"] = self.counts.get("notes", 0) + max(0, cur.rowcount)
        else:
            name = _COUNT_NAMES.get(table, table)
            self.counts[name] = self.counts.get(name, 0) + self._window(db, table, self._lo, hi)
        self._lo = hi + 1
        if self._lo > self._last:
            self._stage, self._lo, self._last = self._stage + 1, 1, None
        return self._stage >= len(tables)

    def _window(self, db: sqlite_utils.Database, table: str, lo: int, hi: int) -> int:
        columns, age = PERSONAL_DATA[table], AGE[table]
        where = f"rowid between :lo and :hi and {age} < :cutoff"
        args = {"lo": lo, "hi": hi, "cutoff": self.cutoff, "key": self.key}
        if DELETE_ROW in columns.values():
            return max(0, db.conn.execute(f"delete from {table} where {where}", args).rowcount)
        in_sql = {c: a for c, a in columns.items() if a in (PSEUDONYMISE, REMOVE)}
        changed: set[int] = set()
        if in_sql:
            sets = ", ".join(f"{c} = kc_pseudonym(:key, {c})" if a == PSEUDONYMISE else f"{c} = null"
                             for c, a in in_sql.items())
            todo = " or ".join(f"({c} is not null and {c} not like '{PSEUDONYM_PREFIX}%')"
                               if a == PSEUDONYMISE else f"{c} is not null" for c, a in in_sql.items())
            changed.update(r[0] for r in db.conn.execute(
                f"select rowid from {table} where {where} and ({todo})", args))
            if changed:
                db.conn.execute(f"update {table} set {sets} where {where} and ({todo})", args)
        by_row = {c: a for c, a in columns.items() if a in (SCRUB, DELETE_FILE)}
        if by_row:
            cols = ", ".join(by_row)
            nonnull = " or ".join(f"{c} is not null" for c in by_row)
            for row in db.conn.execute(f"select rowid, {cols} from {table} where {where} "
                                       f"and ({nonnull})", args).fetchall():
                update: dict[str, Any] = {}
                for (column, action), value in zip(by_row.items(), row[1:]):
                    if value is None:
                        continue
                    if action == SCRUB and scrub(self.key, str(value)) != value:
                        update[column] = scrub(self.key, str(value))
                    elif action == DELETE_FILE:
                        _delete_recording(Path(str(value)), self.recordings_dir)
                        update[column] = None
                if update:
                    db.conn.execute(f"update {table} set {', '.join(f'{c} = ?' for c in update)} "
                                    "where rowid = ?", [*update.values(), row[0]])
                    changed.add(row[0])
        return len(changed)

    def hold_percentile(self, pct: float) -> float:
        """Seconds: the `pct` percentile of the steps' writer holds."""
        if not self.steps:
            return 0.0
        ordered = sorted(self.steps)
        return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]

    def result(self) -> dict[str, int]:
        counts = dict(self.counts)
        for name in ("notes", "contacts", "messages", "attachments", "cases"):
            counts.setdefault(name, 0)
        return counts


def purge(db: sqlite_utils.Database, cutoff: str, key: str,
          recordings_dir: Path | None = None) -> dict[str, int]:
    """The whole purge in one call (for tools and tests; the service runs `Purge.step` as
    separate store jobs)."""
    job = Purge(cutoff, key, recordings_dir)
    while not job.step(db):
        pass
    return job.result()


def _delete_recording(path: Path, recordings_dir: Path | None) -> None:
    """A voice message's file, only from inside the recordings directory."""
    if recordings_dir is None:
        return
    try:
        resolved = path.resolve()
        if resolved.is_relative_to(recordings_dir.resolve()):
            resolved.unlink(missing_ok=True)
    except OSError:
        pass


def export_person(db: sqlite_utils.Database, who: str) -> dict[str, Any]:
    """Everything stored about one number or e-mail address (a data subject's request)."""
    who = (who or "").strip()
    if not 3 <= len(who) <= 200:
        raise InvalidInput("give the phone number or e-mail address")
    contacts = []
    for row in db.query("select * from contacts where caller = ? or lower(caller) = lower(?) "
                        "order by started_at", [who, who]):
        row = dict(row)
        row["menu_path"] = json.loads(row["menu_path"] or "[]")
        row["messages"] = contact_messages(db, row["id"])
        row["case"] = case_for_contact(db, row["id"])
        row["events"] = [dict(e) for e in db.query(
            "select at, kind, data from contact_events where contact_id = ? order by id", [row["id"]])]
        contacts.append(row)
    seen = {c["id"] for c in contacts}
    after_hours = [dict(r) for r in db.query(
        "select * from after_hours_requests where callback_number = ? or contact_id in "
        "(select id from contacts where caller = ? or callback_number = ?) order by id",
        [who, who, who])]
    for extra in db.query("select * from contacts where callback_number = ? order by started_at", [who]):
        if extra["id"] not in seen:       # asked to be called back on this number
            contacts.append(dict(extra))
    return {"person": who, "contacts": contacts, "after_hours": after_hours}


def cutoff_for(now: datetime, days: int) -> str:
    return iso(now - timedelta(days=days))
