"""Record writes the database refused, kept in order until it takes them (see `kc.store`).

A write is a module-level function and its plain (JSON) arguments. While the database fails
(disk full, file made read-only, I/O error) every record write joins the backlog behind the
first that failed: in memory, and appended to a journal file beside the database, so a crash
meanwhile loses nothing either. Each kept write has a sequence number; applying one moves
`record_journal.applied_seq` in the same transaction, so a journal replayed after a crash
applies each write exactly once. Only the writer thread uses this class.
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import sqlite3
import time
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable

import sqlite_utils

log = logging.getLogger(__name__)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"a record write takes plain values, not {type(value).__name__}")


def is_fault(exc: BaseException) -> bool:
    """The database could not write (full, read-only, I/O, locked), as opposed to a write
    that is wrong in itself (a constraint, a missing row), which no retry mends."""
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


@dataclass
class Write:
    fn: Callable[..., Any]
    name: str                     # "module:function"
    encoded: str                  # JSON [args, kwargs]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    seq: int = 0

    @classmethod
    def of(cls, fn: Callable[..., Any], args: tuple, kwargs: dict) -> "Write":
        name = f"{fn.__module__}:{fn.__qualname__}"
        try:
            plain = _resolve(name) is fn
        except (ValueError, ImportError):
            plain = False
        if not plain:
            raise TypeError(f"{name} is not a module-level function: it cannot be journaled")
        encoded = json.dumps([list(args), kwargs], default=_plain, ensure_ascii=False)
        return cls(fn, name, encoded, args, kwargs)

    @classmethod
    def from_line(cls, line: str) -> "Write":
        entry = json.loads(line)
        args, kwargs = json.loads(entry["call"])
        return cls(_resolve(entry["fn"]), entry["fn"], entry["call"], tuple(args), kwargs,
                   int(entry["seq"]))

    def line(self) -> str:
        return json.dumps({"seq": self.seq, "fn": self.name, "call": self.encoded},
                          ensure_ascii=False) + "\n"

    def __call__(self, db: sqlite_utils.Database) -> Any:
        return self.fn(db, *self.args, **self.kwargs)

    def row_id(self) -> int | None:
        value = self.kwargs.get("id")
        return value if isinstance(value, int) else None

    def describe(self) -> str:
        return f"{self.name}({self.encoded[:200]})"


def _resolve(name: str) -> Callable[..., Any]:
    module, _, qualname = name.partition(":")
    if not module or not qualname or "." in qualname or "<" in qualname:
        raise ValueError(f"not a journaled function: {name!r}")
    fn = getattr(importlib.import_module(module), qualname, None)
    if not callable(fn):
        raise ValueError(f"not a journaled function: {name!r}")
    return fn


class RecordJournal:
    def __init__(self, path: Path):
        self.path = path
        self.rejected_path = path.with_name(path.name + ".rejected")
        self._backlog: deque[Write] = deque()
        self._seq = 0
        self._next_ids: dict[str, int] = {}
        self._file_ok = True
        self.since: float | None = None     # monotonic time of the first delayed write

    @property
    def pending(self) -> int:
        return len(self._backlog)

    # ------------------------------------------------------------------ start-up
    def load(self, db: sqlite_utils.Database) -> None:
        """A journal a previous run left: its writes not yet applied go first."""
        applied = db.execute("select applied_seq from record_journal where id = 1").fetchone()[0]
        self._seq = applied
        if not self.path.exists():
            return
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                write = Write.from_line(line)
            except (ValueError, KeyError, TypeError, ImportError) as exc:
                log.error("record journal %s line %d unreadable (%s); kept in %s", self.path,
                          number, exc, self.rejected_path)
                self._reject_line(line)
                continue
            self._seq = max(self._seq, write.seq)
            if write.seq > applied:
                self._backlog.append(write)
        if self._backlog:
            self.since = time.monotonic()
            log.warning("record journal: %d writes from a previous run to apply", self.pending)
            self.flush(db)
        else:
            self.path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ writing
    def allocate(self, db: sqlite_utils.Database, table: str) -> int:
        """The id of a new row of `table`: past every id the database and the backlog hold."""
        try:
            top = db.execute(f"select max(id) from [{table}]").fetchone()[0] or 0
        except sqlite3.Error:
            top = 0
        held = max((w.row_id() or 0 for w in self._backlog), default=0)
        row_id = max(self._next_ids.get(table, 0), top + 1, held + 1)
        self._next_ids[table] = row_id + 1
        return row_id

    def submit(self, db: sqlite_utils.Database, write: Write) -> None:
        """Write now, or keep it behind the writes already waiting."""
        if self._backlog:
            self._keep(write)
            return
        try:
            write(db)
        except Exception as exc:
            _rollback(db)
            if not is_fault(exc):
                raise
            log.warning("records delayed: the database refused %s: %s", write.name, exc)
            self.since = time.monotonic()
            self._keep(write)

    def flush(self, db: sqlite_utils.Database) -> bool:
        """Apply the waiting writes in order; stops at the first the database still refuses."""
        done = 0
        while self._backlog:
            write = self._backlog[0]
            try:
                db.execute("begin immediate")
                db.execute("update record_journal set applied_seq = ? where id = 1", [write.seq])
                write(db)
                if db.conn.in_transaction:
                    db.execute("commit")
            except Exception as exc:
                _rollback(db)
                if is_fault(exc):
                    if done:
                        log.info("records delayed: %d written, %d still wait (%s)", done,
                                 self.pending, exc)
                    return False
                log.error("record write %s dropped: %s (kept in %s)", write.describe(), exc,
                          self.rejected_path)
                self._reject_line(write.line())
            self._backlog.popleft()
            done += 1
        if done:
            waited = time.monotonic() - self.since if self.since is not None else 0.0
            log.info("records delayed: all %d written after %.1f s", done, waited)
        self.since = None
        self.path.unlink(missing_ok=True)
        self._file_ok = True
        return True

    def _keep(self, write: Write) -> None:
        self._seq += 1
        write.seq = self._seq
        self._backlog.append(write)
        try:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(write.line())
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            if self._file_ok:
                log.error("record journal %s cannot be written (%s): delayed records are "
                          "held in memory only", self.path, exc)
            self._file_ok = False

    def _reject_line(self, line: str) -> None:
        try:
            with self.rejected_path.open("a", encoding="utf-8") as f:
                f.write(line if line.endswith("\n") else line + "\n")
        except OSError as exc:
            log.error("cannot keep a rejected record write in %s: %s", self.rejected_path, exc)


def _rollback(db: sqlite_utils.Database) -> None:
    if db.conn.in_transaction:
        try:
            db.execute("rollback")
        except sqlite3.Error:
            pass
