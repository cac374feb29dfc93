"""The demo centre for the fast suite: loaded once per instant, then copied.

`kommuncentral.demo.load_demo` spends most of its time hashing the demo's eleven passwords
(scrypt, deliberately slow). The fast suite loads the demo some fifty times at a dozen
different instants; `load_demo` here loads it for real the first time for each (instant,
source, always_open) and keeps the database in memory; later calls copy that database into
the caller's with SQLite's backup. The copy is the same database a fresh load writes, but for
the passwords' random salts.
"""
from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlite_utils

from kc.clock import Clock
from kc.store import Store
from kommuncentral import demo

_templates: dict[tuple, sqlite3.Connection] = {}
_lock = threading.Lock()


def load_demo(db: sqlite_utils.Database, clock: Clock, source: Path = demo.DEMO_FILE,
              always_open: bool = False) -> None:
    """What `kommuncentral.demo.load_demo` does, into `db`: copied when `db` holds no
    organisation yet (freshly migrated), else loaded (bringing it up to date)."""
    now = clock()
    if db["districts"].exists() and db["districts"].count:
        demo.load_demo(db, lambda: now, source, always_open)
        return
    key = (now.isoformat(), str(source), always_open)
    with _lock:
        template = _templates.get(key)
        if template is None:
            demo.load_demo(db, lambda: now, source, always_open)
            template = sqlite3.connect(":memory:", check_same_thread=False)
            db.conn.backup(template)
            _templates[key] = template
            return
        template.backup(db.conn)


@contextmanager
def demo_store(directory: Path, clock: Clock) -> Iterator[Store]:
    """A store in `directory` (`kc.db`) holding the demo loaded at `clock()`; closed after."""
    store = Store(directory / "kc.db")
    try:
        store.run_sync(load_demo, clock)
        yield store
    finally:
        store.close()
