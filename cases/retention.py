"""Retention and a person's data: personal data older than the retention time is removed or
pseudonymised, and everything stored about one number or address can be exported."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
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


# What the purge does, statement by statement (what it counts, the table it walks, the
# statement). Each runs over one window of BATCH rowids of its table at a time (`{window}`), so
# the single writer is never held for more than one window's rows, whatever the table's size,
# and no row is ever loaded into the service: it all happens in SQL. The pseudonym is the SQL
# function `kc_pseudonym(key, value)` (NULL and pseudonyms stay as they are).
_NOT_PSEUDONYM = "({col} is not null and {col} not like '" + PSEUDONYM_PREFIX + "%')"
STATEMENTS: tuple[tuple[str, str, str], ...] = (
    ("notes", "cases",
     "update cases set note = null, forward_reason = null, note_purged = 1 "
     "where {window} and created_at < :cutoff and note_purged = 0"),
    ("contacts", "contacts",
     "update contacts set caller = kc_pseudonym(:key, caller) "
     "where {window} and started_at < :cutoff and " + _NOT_PSEUDONYM.format(col="caller")),
    ("cases", "cases",
     "update cases set caller = kc_pseudonym(:key, caller) "
     "where {window} and created_at < :cutoff and " + _NOT_PSEUDONYM.format(col="caller")),
    ("messages", "contact_messages",
     "update contact_messages set from_addr = kc_pseudonym(:key, from_addr), "
     "to_addr = kc_pseudonym(:key, to_addr) where {window} and at < :cutoff and ("
     + _NOT_PSEUDONYM.format(col="from_addr") + " or " + _NOT_PSEUDONYM.format(col="to_addr") + ")"),
    ("caller_names", "contacts",
     "update contacts set caller_name = null "
     "where {window} and started_at < :cutoff and caller_name is not null"),
    ("message_texts", "contact_messages",
     "update contact_messages set subject = null, body = null "
     "where {window} and at < :cutoff and (body is not null or subject is not null)"),
    ("attachments", "message_attachments",
     "delete from message_attachments where {window} and exists (select 1 from contact_messages m "
     "where m.id = message_attachments.message and m.at < :cutoff)"),
)
# Rowids per window: starts at BATCH, doubled while a window takes under a quarter of
# STEP_SECONDS, halved when one takes longer, within [MIN_BATCH, MAX_BATCH]. A window of
# contacts whose numbers are pseudonymised costs ~50-100 us a row (the report cache's triggers),
# so even MAX_BATCH such rows stay well under 50 ms (benchmarks/bench_purge.py).
BATCH, MIN_BATCH, MAX_BATCH = 50, 10, 200
STEP_SECONDS = 0.005
_WINDOW = "rowid between :lo and :hi"


def _sql_pseudonym(key: str, value: Any) -> Any:
    if value is None or str(value).startswith(PSEUDONYM_PREFIX):
        return value
    return pseudonym(key, str(value))


@dataclass
class Purge:
    """Personal data older than `cutoff`: notes, message texts and attachments removed, numbers
    and addresses pseudonymised (the same number gets the same pseudonym, so statistics still
    work). `step(db)` does one window of one statement and says whether all is done: run each
    step as its own store job so calls are written in between."""
    cutoff: str
    key: str
    batch: int = BATCH
    counts: dict[str, int] = field(default_factory=dict)
    longest: float = 0.0           # seconds: the longest one step held the writer
    over_50ms: int = 0             # steps that held it longer than 50 ms
    _stage: int = 0
    _lo: int = 1
    _last: int | None = None       # the walked table's highest rowid when its stage began

    def step(self, db: sqlite_utils.Database) -> bool:
        started = time.perf_counter()
        try:
            return self._step(db)
        finally:
            took = time.perf_counter() - started
            self.longest = max(self.longest, took)
            self.over_50ms += took > 0.050
            if took < STEP_SECONDS / 4:
                self.batch = min(MAX_BATCH, self.batch * 2)
            elif took > STEP_SECONDS:
                self.batch = max(MIN_BATCH, self.batch // 2)

    def _step(self, db: sqlite_utils.Database) -> bool:
        if self._stage >= len(STATEMENTS):
            return True
        what, table, statement = STATEMENTS[self._stage]
        if self._last is None:
            self._last = db.conn.execute(f"select coalesce(max(rowid), 0) from {table}").fetchone()[0]
        db.conn.create_function("kc_pseudonym", 2, _sql_pseudonym, deterministic=True)
        hi = self._lo + self.batch - 1
        cur = db.conn.execute(statement.format(window=_WINDOW),
                              {"lo": self._lo, "hi": hi, "cutoff": self.cutoff, "key": self.key})
        self.counts[what] = self.counts.get(what, 0) + max(0, cur.rowcount)
        self._lo = hi + 1
        if self._lo > self._last:
            self._stage, self._lo, self._last = self._stage + 1, 1, None
        return self._stage >= len(STATEMENTS)

    def result(self) -> dict[str, int]:
        counts = {k: self.counts.get(k, 0) for k in ("notes", "contacts", "messages", "cases")}
        counts["messages"] = max(counts["messages"], self.counts.get("message_texts", 0))
        counts["attachments"] = self.counts.get("attachments", 0)
        return counts


def purge(db: sqlite_utils.Database, cutoff: str, key: str) -> dict[str, int]:
    """The whole purge in one call (for tools and tests; the service runs `Purge.step` as
    separate store jobs)."""
    job = Purge(cutoff, key)
    while not job.step(db):
        pass
    return job.result()


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
        contacts.append(row)
    return {"person": who, "contacts": contacts}


def cutoff_for(now: datetime, days: int) -> str:
    return iso(now - timedelta(days=days))
