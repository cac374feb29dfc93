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


def connect_reader(path: Path) -> sqlite_utils.Database:
    """A connection for reads only: in WAL mode it never waits for the writer."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False,
                           isolation_level=None, timeout=10)
    conn.execute("PRAGMA query_only=ON")
    return sqlite_utils.Database(conn)


class Checkpointer:
    """WAL checkpoints beside the writer, not in it: by default SQLite checkpoints in the
    committing connection once the WAL passes 1,000 pages, so now and then one of the writer's
    commits also copies the WAL into the database and syncs it (tens to hundreds of ms on a busy
    disk) while calls wait. The writer turns that off; this thread runs a PASSIVE checkpoint
    (which never blocks the writer) every `every` seconds on its own connection."""

    def __init__(self, path: Path, every: float = 1.0):
        self.path, self.every = path, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kc-db-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None,
                               timeout=10)
        try:
            while not self._stop.wait(self.every):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    pass          # busy or locked: the next turn tries again
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class Store:
    READERS = 2

    def __init__(self, path: Path):
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kc-db")
        self._db: sqlite_utils.Database | None = None
        self._checkpointer: Checkpointer | None = None
        self._lock = threading.Lock()
        self._reader = ThreadPoolExecutor(max_workers=self.READERS, thread_name_prefix="kc-db-read")
        self._local = threading.local()
        self._readers: list[sqlite_utils.Database] = []

    def _ensure(self) -> sqlite_utils.Database:
        if self._db is None:
            self._db = connect(self.path)
            self._db.conn.execute("PRAGMA wal_autocheckpoint=0")   # see Checkpointer
            self._checkpointer = Checkpointer(self.path)
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

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> "asyncio.Future[T]":
        """Queue `fn(db)` for the writer now and return at once: for records that must not hold
        up a call. Jobs run in the order they were queued (`run` queues when awaited), so a
        later read or write of the same row sees this one. The future carries the outcome."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, lambda: self._call(fn, *args, **kwargs))

    def _read_call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect_reader(self.path)
            with self._lock:
                self._readers.append(db)
        try:
            return fn(db, *args, **kwargs)
        except sqlite3.Error as exc:
            raise StoreError(f"{getattr(fn, '__name__', fn)}: {exc}") from exc

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a read-only `fn(db)` beside the writer, so hot reads (a caller's contact, a
        session) never queue behind writes. It sees everything `run` has committed."""
        if self._db is None:
            await self.run(lambda db: None)       # the writer creates and migrates first
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, lambda: self._read_call(fn, *args, **kwargs))

    def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """For the CLI and tests outside an event loop."""
        return self._executor.submit(lambda: self._call(fn, *args, **kwargs)).result()

    def close(self) -> None:
        def _close() -> None:
            if self._checkpointer is not None:
                self._checkpointer.stop()
                self._checkpointer = None
            if self._db is not None:
                self._db.conn.close()
                self._db = None
        self._executor.submit(_close).result()
        self._executor.shutdown(wait=True)
        self._reader.shutdown(wait=True)
        with self._lock:
            for db in self._readers:
                db.conn.close()
            self._readers.clear()
