"""Record writes the database refuses are kept in order, journaled beside it, and written once
it takes them again, exactly once even across a crash. The fault is real: the writer's
connection made read-only (`PRAGMA query_only`), so SQLite itself refuses every write."""
import asyncio
import sqlite3
from datetime import datetime, timezone

import pytest

from kc import queries
from kc.domain import AgentState
from kc.store import Store
from demo_template import load_demo

AT = "2026-11-27T12:00:00.000Z"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def _refuse_writes(store: Store, refuse: bool) -> None:
    store.run_sync(lambda db: db.execute(f"pragma query_only={'on' if refuse else 'off'}"))


def _rows(path, query, *args):
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute(query, args).fetchall()


async def _a_call(store: Store) -> int:
    cid = await store.insert_record(queries.create_contact, "contacts", channel="phone",
                                    district="bromma", caller="0701234567", started_at=AT)
    await store.record(queries.add_event, cid, AT, "menu", {"events": []})
    await store.record(queries.update_contact, cid, outcome="answered", ended_at=AT)
    await store.record(queries.set_agent_state, "bromma-101", AgentState.READY, None, AT)
    return cid


async def test_refused_writes_wait_in_order_and_land_when_the_database_is_back(tmp_path):
    store = Store(tmp_path / "kc.db")
    try:
        await store.run(load_demo, lambda: NOW)
        first = await _a_call(store)            # a healthy database: written at once
        assert store.delayed == 0
        _refuse_writes(store, True)
        cid = await _a_call(store)              # never raises, never waits for the database
        assert cid == first + 1
        assert store.delayed == 4
        journal = tmp_path / "kc.db.pending"
        assert len(journal.read_text().splitlines()) == 4
        assert _rows(tmp_path / "kc.db", "select count(*) from contacts where id = ?", cid) == [(0,)]
        assert await store.retry_records() is False   # still refused: still waiting
        _refuse_writes(store, False)
        assert await store.retry_records() is True
        assert store.delayed == 0 and not journal.exists()
        contact = await store.run(queries.get_contact, cid)
        assert contact["outcome"] == "answered" and contact["caller"] == "0701234567"
        assert [e["kind"] for e in await store.run(queries.contact_events, cid)] == ["menu"]
    finally:
        store.close()


async def test_a_journal_left_by_a_crash_is_applied_exactly_once(tmp_path):
    path = tmp_path / "kc.db"
    crashed = Store(path)
    await crashed.run(load_demo, lambda: NOW)
    before = _rows(path, "select count(*) from contacts")[0][0]
    _refuse_writes(crashed, True)
    cid = await _a_call(crashed)
    journal = (tmp_path / "kc.db.pending").read_text()
    crashed._executor.shutdown(wait=True)      # the process dies: nothing flushed, nothing closed

    store = Store(path)
    try:
        await store.run(lambda db: None)        # opening applies the journal first
        assert store.delayed == 0
        assert (await store.run(queries.get_contact, cid))["outcome"] == "answered"
        # the same journal again (a crash after the writes, before the file was removed)
        (tmp_path / "kc.db.pending").write_text(journal)
    finally:
        store.close()
    again = Store(path)
    try:
        await again.run(lambda db: None)
        assert _rows(path, "select count(*) from contact_events where contact_id = ?", cid) == [(1,)]
        assert _rows(path, "select count(*) from contacts") == [(before + 1,)]
    finally:
        again.close()


async def test_ids_given_during_a_fault_never_collide(tmp_path):
    store = Store(tmp_path / "kc.db")
    try:
        await store.run(lambda db: None)
        _refuse_writes(store, True)
        ids = [await store.insert_record(queries.create_contact, "contacts", channel="phone",
                                         started_at=AT) for _ in range(3)]
        assert ids == [1, 2, 3]
        _refuse_writes(store, False)
        # a later write of any kind goes after the delayed ones
        later = await store.run(queries.create_contact, channel="email", started_at=AT)
        assert later == 4 and store.delayed == 0
    finally:
        store.close()


def test_a_clean_close_leaves_no_write_ahead_log(tmp_path):
    store = Store(tmp_path / "kc.db")
    reader = asyncio.run(_read_once(store))
    assert reader == 0
    store.run_sync(queries.create_contact, channel="phone", started_at=AT)
    assert (tmp_path / "kc.db-wal").exists()
    store.close()
    wal = tmp_path / "kc.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0


async def _read_once(store: Store) -> int:
    return await store.read(lambda db: db.execute("select count(*) from contacts").fetchone()[0])


def test_only_plain_module_functions_are_journaled(tmp_path):
    store = Store(tmp_path / "kc.db")
    try:
        with pytest.raises(TypeError):
            asyncio.run(store.record(lambda db: None))
        with pytest.raises(TypeError):
            asyncio.run(store.record(queries.add_event, 1, AT, "x", {"bad": object()}))
    finally:
        store.close()
