"""SQLite behind one seam: a single writer thread owns the connection (WAL mode).

The event loop never blocks on disk: every query runs in that thread via `await store.run(fn)`,
where `fn(db)` is a plain function over a `sqlite_utils.Database` (see `kc.queries`). Having
one thread also serialises writes, so there is exactly one writer.

Records that must never be lost (a call's contact, its events, an agent's state) are written
with `await store.record(fn, ...)` instead: if the database refuses the write (disk full, file
made read-only, I/O error) it is kept, in order, in memory and in an append-only journal beside
the database (`kc.record_journal`), and retried until it succeeds; the caller goes on at once.
`store.delayed` says how many wait. Ids for new rows come from `insert_record`, so a contact
exists (for the calls and the distributor) before the database has it.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, TypeVar

import sqlite_utils

from .errors import KcError
from .migrations import migrate
from .record_journal import RecordJournal, Write
from .telemetry import STORE_WRITE, Telemetry

T = TypeVar("T")
log = logging.getLogger(__name__)


class StoreError(KcError):
    """A database operation failed."""


def private_file(path: Path) -> Path:
    """Create `path` if missing, readable and writable by this user only (0600): the database,
    its -wal and -shm (SQLite gives them the database's mode), the queue_log."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    os.chmod(path, 0o600)
    return path


def connect(path: Path) -> sqlite_utils.Database:
    private_file(path)
    for suffix in ("-wal", "-shm"):      # left by an older install with a looser mode
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            os.chmod(extra, 0o600)
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

    def __init__(self, path: Path, telemetry: Telemetry | None = None):
        self.path = path
        self.telemetry = telemetry or Telemetry()
        self._submitted = self._finished = 0   # writer jobs; each counter has one writing thread
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kc-db")
        self._db: sqlite_utils.Database | None = None
        self._checkpointer: Checkpointer | None = None
        self._lock = threading.Lock()
        self._reader = ThreadPoolExecutor(max_workers=self.READERS, thread_name_prefix="kc-db-read")
        self._local = threading.local()
        self._readers: list[sqlite_utils.Database] = []
        self._readers_lock = threading.Lock()    # not the writer's: a reader never waits for it
        self._journal = RecordJournal(path.with_name(path.name + ".pending"))

    def _ensure(self) -> sqlite_utils.Database:
        if self._db is None:
            self._db = connect(self.path)
            self._db.conn.execute("PRAGMA wal_autocheckpoint=0")   # see Checkpointer
            self._checkpointer = Checkpointer(self.path)
            self._journal.load(self._db)    # what a previous run could not write, first
        return self._db

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._lock:
            db = self._ensure()
            if self._journal.pending:       # delayed records go before any later write
                self._journal.flush(db)
            try:
                return fn(db, *args, **kwargs)
            except sqlite3.Error as exc:
                raise StoreError(f"{getattr(fn, '__name__', fn)}: {exc}") from exc

    def _job(self, fn: Callable[..., T], *args: Any) -> Callable[[], T]:
        """A writer job, counted in `queued` until done and timed (`STORE_WRITE`)."""
        self._submitted += 1

        def job() -> T:
            started = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self._finished += 1
                self.telemetry.timing(STORE_WRITE, time.perf_counter() - started)
        return job

    @property
    def queued(self) -> int:
        """Writer jobs waiting or running: the store's write queue."""
        return max(0, self._submitted - self._finished)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()     # the caller's language (kc.i18n) for messages
        return await loop.run_in_executor(
            self._executor, self._job(lambda: ctx.run(self._call, fn, *args, **kwargs)))

    def _read_call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect_reader(self.path)
            with self._readers_lock:
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
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(self._reader, lambda: ctx.run(self._read_call, fn, *args, **kwargs))

    def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """For the CLI and tests outside an event loop."""
        ctx = contextvars.copy_context()
        return self._executor.submit(lambda: ctx.run(self._call, fn, *args, **kwargs)).result()

    # ------------------------------------------------------------------ records that must land
    @property
    def delayed(self) -> int:
        """How many record writes wait for the database (0: none)."""
        return self._journal.pending

    @property
    def delayed_since(self) -> float | None:
        return self._journal.since

    def _record_call(self, write: Write) -> None:
        with self._lock:
            db = self._ensure()
            self._journal.submit(db, write)

    async def record(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Write a record that must not be lost: `fn` is a module-level function whose
        arguments are plain JSON values. Never raises for a database fault: the write is kept
        and retried in order (`retry_records`)."""
        write = Write.of(fn, args, kwargs)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._job(self._record_call, write))

    def record_soon(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> "asyncio.Future[None]":
        """`record`, queued for the writer now and not waited for: for records that must
        neither hold up a call nor be lost. Jobs run in the order queued."""
        write = Write.of(fn, args, kwargs)
        return asyncio.get_running_loop().run_in_executor(self._executor,
                                                          self._job(self._record_call, write))

    async def insert_record(self, fn: Callable[..., Any], table: str, **fields: Any) -> int:
        """`record` of a new row of `table` (an integer `id` primary key): the id is given
        here, so the row can be referred to before the database has it."""
        loop = asyncio.get_running_loop()

        def _allocate() -> int:
            with self._lock:
                return self._journal.allocate(self._ensure(), table)
        row_id = await loop.run_in_executor(self._executor, _allocate)
        await self.record(fn, id=row_id, **fields)
        return row_id

    async def retry_records(self) -> bool:
        """Try the waiting record writes again, in order; True when none is left."""
        loop = asyncio.get_running_loop()

        def _retry() -> bool:
            with self._lock:
                return self._journal.flush(self._ensure())
        return await loop.run_in_executor(self._executor, _retry)

    async def keep_retrying(self, every: float = 1.0) -> None:
        """Run for the service's lifetime: delayed records are written as soon as they can."""
        while True:
            await asyncio.sleep(every)
            if self.delayed:
                try:
                    await self.retry_records()
                except Exception:   # a bug must not end the retries
                    log.exception("retrying delayed records failed")

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Close the readers first, then write what waits and checkpoint, so no write-ahead
        log is left beside the database after a clean stop."""
        self._reader.shutdown(wait=True)
        with self._readers_lock:
            for db in self._readers:
                db.conn.close()
            self._readers.clear()

        def _close() -> None:
            if self._checkpointer is not None:   # the last checkpoint is ours, below
                self._checkpointer.stop()
                self._checkpointer = None
            with self._lock:
                if self._db is None:
                    return
                try:
                    if self._journal.pending:
                        self._journal.flush(self._db)
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error as exc:
                    log.warning("closing the database: %s (the journal keeps what was not written)", exc)
                self._db.conn.close()
                self._db = None
        self._executor.submit(_close).result()
        self._executor.shutdown(wait=True)
