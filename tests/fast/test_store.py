"""The SQLite store on real databases: migrations, demo data, contacts round trip."""
import sqlite3
from datetime import datetime, timezone

import pytest

from kc import queries
from kc.clock import iso, parse_iso
from demo_template import demo_store
from kc.migrations import MIGRATIONS
from kc.passwords import hash_password, verify_password, token_hash
from kc.settings import Settings
from kc.errors import ConfigError, NotFound
from kc.store import Store

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path):
    with demo_store(tmp_path, lambda: NOW) as s:
        yield s


def test_wal_and_schema_version(store, tmp_path):
    conn = sqlite3.connect(tmp_path / "kc.db")
    assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    names = [r[0] for r in conn.execute("select name from schema_migrations order by rowid")]
    assert names == [name for name, _ in MIGRATIONS]


def test_demo_data(store):
    assert [d.id for d in store.run_sync(queries.list_districts)] == ["bromma", "hasselby-vallingby"]
    agents = {a.id: a for a in store.run_sync(queries.list_agents)}
    assert agents["bromma-104"].cleared_for == ("bromma",)
    assert agents["hv-201"].skills == {"elderly-care": 4, "switchboard": 3}
    assert store.run_sync(queries.user_for_token, token_hash("demo-manager-token"))["role"] == "manager"
    assert store.run_sync(queries.user_for_token, token_hash("wrong")) is None
    version, body = store.run_sync(queries.published_menu, "bromma")
    assert version == 1 and body["root"]


async def test_contact_round_trip_with_hostile_text(store):
    name = 'Robert"); DROP TABLE contacts;-- \\ ' + "å" * 300
    cid = await store.run(queries.create_contact, channel="phone", district="bromma",
                          dialed="0850810000", caller="070", caller_name=name, started_at=iso(NOW))
    await store.run(queries.update_contact, cid, menu_path=["9", "1"], overflowed=True)
    row = await store.run(queries.get_contact, cid)
    assert row["caller_name"] == name and row["menu_path"] == ["9", "1"] and row["overflowed"] is True
    assert [c["id"] for c in await store.run(queries.list_contacts, iso(NOW))] == [cid]
    assert await store.run(queries.list_contacts, "2026-11-28T00:00:00.000Z") == []
    with pytest.raises(NotFound):
        await store.run(queries.get_contact, cid + 1)


async def test_a_call_step_is_written_in_one_job_and_in_order(store):
    cid = await store.run(queries.create_contact, channel="phone", district="bromma",
                          started_at=iso(NOW))
    record = queries.ContactRecord(cid).set(menu_path=["1"], language="sv", skill="elderly-care")
    record.event(iso(NOW), "menu", {"version": 1}).event(iso(NOW), "eservice_referral", {"name": "x"})
    first = store.record_soon(queries.write_record, *record.plain())   # queued now, not awaited
    later = store.record_soon(queries.add_event, cid, iso(NOW), "enqueued", {})
    await first
    await later
    row = await store.run(queries.get_contact, cid)
    assert (row["menu_path"], row["language"], row["skill"]) == (["1"], "sv", "elderly-care")
    kinds = [r[0] for r in await store.run(
        lambda db: db.conn.execute("select kind from contact_events where contact_id = ? "
                                   "order by id", [cid]).fetchall())]
    assert kinds == ["menu", "eservice_referral", "enqueued"]
    # a record for a contact that does not exist writes nothing at all (one transaction)
    bad = queries.ContactRecord(cid + 99).set(skill="x").event(iso(NOW), "menu", {})
    with pytest.raises(NotFound):
        await store.run(queries.write_record, *bad.plain())
    assert await store.run(lambda db: db.conn.execute(
        "select count(*) from contact_events where contact_id = ?", [cid + 99]).fetchone()[0]) == 0


def test_passwords_and_times():
    stored = hash_password("demo-admin")
    assert stored.startswith("scrypt$") and "demo-admin" not in stored
    assert verify_password("demo-admin", stored) and not verify_password("demo-admin ", stored)
    assert not verify_password("x", "garbage")
    assert iso(parse_iso("2026-03-29T02:30:00+02:00")) == "2026-03-29T00:30:00.000Z"
    with pytest.raises(ValueError):
        parse_iso("yesterday")


def test_settings_from_env(tmp_path):
    s = Settings.from_env({"KC_VAR": str(tmp_path), "KC_SIP_PORT": "15060"})
    assert (s.sip_port, s.web_port, s.bind_host) == (15060, 8080, "127.0.0.1")
    with pytest.raises(ConfigError):
        Settings.from_env({"KC_WEB_PORT": "http"})
    secret = s.secret("ami.secret")
    assert s.secret("ami.secret") == secret
    assert (tmp_path / "secrets" / "ami.secret").stat().st_mode & 0o777 == 0o600


def test_kc_init_demo_never_overwrites(tmp_path):
    import os
    import subprocess
    import sys
    env = {**os.environ, "KC_VAR": str(tmp_path)}
    run = lambda: subprocess.run([sys.executable, "-m", "kommuncentral.cli", "init", "--demo"], env=env,
                                 capture_output=True, text=True, check=True).stdout
    assert "created" in run()
    s = Store(tmp_path / "kc.db")
    s.run_sync(lambda db: db.execute("update districts set name = 'Kept' where id = 'bromma'"))
    s.close()
    assert "left as it is" in run()
    s = Store(tmp_path / "kc.db")
    assert s.run_sync(queries.list_districts)[0].name == "Kept"
    s.close()
    assert (tmp_path / "secrets" / "session.key").stat().st_mode & 0o777 == 0o600
