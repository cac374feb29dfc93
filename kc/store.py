"""SQLite behind one seam: a single writer thread owns the connection (WAL mode).

The event loop never blocks on disk: every query runs in that thread via `await store.run(fn)`,
where `fn(db)` is a plain function over a `sqlite_utils.Database` (see `kc.queries`). Having
one thread also serialises writes, so there is exactly one writer.
"""
from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, TypeVar

import sqlite_utils

from .errors import KcError
from .migrations import migrate

T = TypeVar("T")


class StoreError(KcError):
    """A database operation failed."""


def connect(path: Path) -> sqlite_utils.Database:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=NORMAL")
    db = sqlite_utils.Database(conn)
    migrate(db)
    return db


class Store:
    def __init__(self, path: Path):
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kc-db")
        self._db: sqlite_utils.Database | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> sqlite_utils.Database:
        if self._db is None:
            self._db = connect(self.path)
        return self._db

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._lock:
            db = self._ensure()
            try:
                return fn(db, *args, **kwargs)
            except sqlite3.Error as exc:
                raise StoreError(f"{getattr(fn, '__name__', fn)}: {exc}") from exc

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: self._call(fn, *args, **kwargs))

    def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """For the CLI and tests outside an event loop."""
        return self._executor.submit(lambda: self._call(fn, *args, **kwargs)).result()

    def close(self) -> None:
        def _close() -> None:
            if self._db is not None:
                self._db.conn.close()
                self._db = None
        self._executor.submit(_close).result()
        self._executor.shutdown(wait=True)
