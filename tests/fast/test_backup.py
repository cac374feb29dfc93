"""`kc backup` / `kc restore` on a real SQLite database and real files (no PBX): the archive
brings the same centre back, is private, and a bad archive or a used directory loses nothing."""
from __future__ import annotations

import io
import os
import sqlite3
import stat
import tarfile
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kc import backup
from kc.store import Store
from kommuncentral import cli


def dump(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [line for line in conn.iterdump() if "sqlite_sequence" not in line]


@pytest.fixture
def centre(tmp_path, monkeypatch) -> Path:
    var = tmp_path / "var"
    monkeypatch.setenv("KC_VAR", str(var))
    assert cli.main(["init", "--demo"]) == 0
    (var / "sounds").mkdir(exist_ok=True)
    (var / "sounds" / "upload-abc.wav").write_bytes(b"RIFF....WAVE")
    messages = var / "asterisk" / "spool" / "kc-messages"
    messages.mkdir(parents=True)
    (messages / "contact-7-1.wav").write_bytes(b"voice")
    (var / "log").mkdir(exist_ok=True)
    (var / "log" / "queue_log").write_text("1|NONE|NONE|bromma-101|AGENTLOGIN|PJSIP/bromma-101\n")
    (var / "asterisk" / "etc").mkdir(parents=True)
    (var / "asterisk" / "etc" / "pjsip.conf").write_text("rendered: not backed up\n")
    return var


def test_a_backup_taken_while_writes_go_on_restores_the_same_centre(centre, tmp_path, monkeypatch):
    store = Store(centre / "kc.db")
    store.run_sync(lambda db: db.execute("create table if not exists t_extra (n integer)"))
    stop = threading.Event()

    def write() -> None:       # a writer busy the whole time, as calls are
        n = 0
        while not stop.is_set():
            store.run_sync(lambda db, n=n: db.execute("insert into t_extra values (?)", [n]))
            n += 1
    writer = threading.Thread(target=write)
    writer.start()
    try:
        archive = tmp_path / "out" / "centre.tar.gz"
        assert cli.main(["backup", str(archive)]) == 0
    finally:
        stop.set()
        writer.join()
        store.close()
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600           # secrets and personal data
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert names[0] == "manifest.json" and "kc.db" in names
    assert "secrets/session.key" in names and "sounds/upload-abc.wav" in names
    assert "asterisk/spool/kc-messages/contact-7-1.wav" in names and "log/queue_log" in names
    assert not any(n.startswith("asterisk/etc") for n in names)     # rendered again on start

    fresh = tmp_path / "fresh"
    monkeypatch.setenv("KC_VAR", str(fresh))
    assert cli.main(["restore", str(archive)]) == 0
    restored = dump(fresh / "kc.db")
    rows = [line for line in restored if line.startswith('INSERT INTO "t_extra"')]
    assert rows == [f'INSERT INTO "t_extra" VALUES({n});' for n in range(len(rows))]   # a prefix: consistent
    original = [line for line in dump(centre / "kc.db") if not line.startswith('INSERT INTO "t_extra"')]
    assert [line for line in restored if not line.startswith('INSERT INTO "t_extra"')] == original
    for name in ("secrets/session.key", "secrets/pseudonym.key", "sounds/upload-abc.wav",
                 "asterisk/spool/kc-messages/contact-7-1.wav", "log/queue_log"):
        if (centre / name).exists():
            assert (fresh / name).read_bytes() == (centre / name).read_bytes(), name
    assert stat.S_IMODE((fresh / "secrets").stat().st_mode) == 0o700
    assert stat.S_IMODE((fresh / "kc.db").stat().st_mode) == 0o600


def test_restore_refuses_a_centre_in_place_and_a_bad_archive_and_writes_nothing(centre, tmp_path,
                                                                               monkeypatch, capsys):
    archive = tmp_path / "centre.tar.gz"
    backup.backup(centre, archive, "n")
    monkeypatch.setenv("KC_VAR", str(centre))
    before = dump(centre / "kc.db")
    assert cli.main(["restore", str(archive)]) == 2
    assert "restore into a fresh directory" in capsys.readouterr().err
    assert dump(centre / "kc.db") == before

    # a damaged file, and a member pointing outside: refused whole
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    for bad_name, payload in (("sounds/upload-abc.wav", b"tampered"), ("../../evil", b"x")):
        bad = tmp_path / f"bad-{len(bad_name)}.tar.gz"
        with tarfile.open(bad, "w:gz") as tar:
            for member, data in members:
                if member.name == bad_name:
                    data = payload
                info = tarfile.TarInfo(member.name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            if bad_name.startswith(".."):
                info = tarfile.TarInfo(bad_name)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
        target = tmp_path / f"target-{len(bad_name)}"
        with pytest.raises(backup.BackupError, match="nothing restored"):
            backup.restore(bad, target)
        assert not (target / "kc.db").exists() and not (tmp_path / "evil").exists()
    with pytest.raises(backup.BackupError, match="not a Kommuncentral backup|unreadable"):
        backup.restore(centre / "log" / "queue_log", tmp_path / "t3")


def test_daily_backups_keep_the_newest(tmp_path):
    for day in range(1, 6):
        name = backup.daily_name(datetime(2026, 11, day, 3, tzinfo=timezone.utc))
        (tmp_path / name).write_bytes(b"x")
    gone = backup.prune(tmp_path, 2)
    assert [p.name for p in gone] == [backup.daily_name(datetime(2026, 11, d, 3, tzinfo=timezone.utc))
                                      for d in (1, 2, 3)]
    assert sorted(os.listdir(tmp_path)) == [backup.daily_name(datetime(2026, 11, d, 3, tzinfo=timezone.utc))
                                            for d in (4, 5)]


def test_the_daily_backup_writes_one_and_keeps_the_newest(centre, monkeypatch):
    import asyncio

    from kc.settings import Settings
    from kommuncentral.service import take_daily_backup
    settings = Settings.from_env({"KC_VAR": str(centre), "KC_BACKUP_KEEP": "2"})
    days = [datetime(2026, 11, d, 3, tzinfo=timezone.utc) for d in (1, 2, 3)]
    made = [asyncio.run(take_daily_backup(settings, lambda d=d: d)) for d in days]
    assert [p.parent for p in made] == [centre / "backups"] * 3
    assert sorted(p.name for p in (centre / "backups").iterdir()) == [p.name for p in made[1:]]
    assert backup.read_manifest(made[-1])["files"][0]["name"] == "kc.db"
