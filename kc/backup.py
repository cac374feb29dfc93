"""Backups: the whole centre in one archive, taken while calls run, and brought back on a
fresh machine.

What a centre is, on disk (everything else under `var/` is rendered or regenerated):

- `kc.db`: the database, copied with SQLite's online backup API from its own connection (a
  consistent snapshot; the service's writer is never stopped), and `kc.db.pending`, the
  records a database fault has delayed;
- `secrets/`: the AMI password, the FastAGI secret, the session and pseudonym keys (without
  the pseudonym key, numbers pseudonymised so far no longer match new ones);
- `sounds/`: uploaded recordings and synthesised prompts of the menus;
- `asterisk/spool/kc-messages/`: residents' voice messages;
- `log/queue_log`: the statistics' raw material, as Asterisk's app_queue writes it.

The archive is a gzip'd tar with `manifest.json` first (format, when, the node, the schema
steps, every file with its size and SHA-256), written under a temporary name, mode 0600 (it
holds secrets and personal data), and renamed into place. `restore` refuses a directory that
already holds a centre, any member outside the known parts or not a plain file or directory,
and any file whose checksum differs; it writes into the directory only after all checks.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Iterator

from .errors import KcError

FORMAT = "kommuncentral-backup/1"
DATABASE = "kc.db"
# (path in the archive = path under var/, directory?)
PARTS: tuple[tuple[str, bool], ...] = (
    ("kc.db.pending", False),
    ("secrets", True),
    ("sounds", True),
    ("asterisk/spool/kc-messages", True),
    ("log/queue_log", False),
)
PRIVATE = ("kc.db", "kc.db.pending", "secrets", "log/queue_log")   # 0600 files / 0700 dirs
PREFIX = "kc-backup-"


class BackupError(KcError):
    """A backup could not be taken or restored (the message says why)."""


@dataclass(frozen=True)
class Summary:
    path: Path
    files: int
    bytes: int


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's contents, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(var: Path) -> Iterator[tuple[str, Path]]:
    """(archive name, file) of every part present, directories walked in name order; files
    being written under a temporary name (`.name`) are not the centre's yet."""
    for name, is_dir in PARTS:
        path = var / name
        if is_dir and path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and not file.is_symlink() and not file.name.startswith("."):
                    yield file.relative_to(var).as_posix(), file
        elif not is_dir and path.is_file():
            yield name, path


def _stage(var: Path, into: Path) -> list[tuple[str, Path]]:
    """Copy the parts into `into` first: a file the running centre removes or rewrites
    meanwhile (a prompt replaced, a recording purged) is taken whole or not at all."""
    staged = []
    for name, path in _files(var):
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(path, target)
        except FileNotFoundError:
            continue
        staged.append((name, target))
    return staged


def _snapshot(db: Path, into: Path) -> int:
    """The database copied online into `into`; returns its schema steps applied."""
    if not db.is_file():
        raise BackupError(f"{db} does not exist: nothing to back up")
    source = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(str(into))
    try:
        source.backup(target)        # all pages in one step: one consistent read snapshot
        target.execute("PRAGMA journal_mode=DELETE")   # a single self-contained file
        try:
            steps = target.execute("select count(*) from schema_migrations").fetchone()[0]
        except sqlite3.Error:
            steps = 0
    except sqlite3.Error as exc:
        raise BackupError(f"copying {db}: {exc}") from exc
    finally:
        target.close()
        source.close()
    return int(steps)


def backup(var: Path, archive: Path, node: str) -> Summary:
    """Write the centre under `var` into `archive` (replaced if it exists)."""
    archive = archive.absolute()
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kc-backup-", dir=archive.parent) as work:
        snapshot = Path(work) / DATABASE
        steps = _snapshot(var / DATABASE, snapshot)
        members = [(DATABASE, snapshot), *_stage(var, Path(work) / "parts")]
        manifest = {
            "format": FORMAT, "node": node, "schema_steps": steps,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "files": [{"name": name, "size": path.stat().st_size, "sha256": file_sha256(path)}
                      for name, path in members],
        }
        partial = Path(work) / "archive.tar.gz"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            data = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mode, info.mtime = len(data), 0o600, int(datetime.now().timestamp())
            tar.addfile(info, io.BytesIO(data))
            for name, path in members:
                tar.add(str(path), arcname=name, recursive=False)
        os.replace(partial, archive)
    total = sum(f["size"] for f in manifest["files"])
    return Summary(archive, len(members), total)


def _allowed(name: str) -> bool:
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        return False
    if name in ("manifest.json", DATABASE):
        return True
    return any(name == part if not is_dir else name.startswith(part + "/")
               for part, is_dir in PARTS)


def read_manifest(archive: Path) -> dict:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.next()
            if member is None or member.name != "manifest.json":
                raise BackupError(f"{archive}: not a Kommuncentral backup (no manifest first)")
            manifest = json.loads(tar.extractfile(member).read())   # type: ignore[union-attr]
    except (OSError, tarfile.TarError, ValueError) as exc:
        raise BackupError(f"{archive}: unreadable backup: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive}: not a {FORMAT} archive")
    return manifest


def restore(archive: Path, var: Path) -> Summary:
    """Bring the centre in `archive` back into `var`, which must hold no centre yet."""
    if (var / DATABASE).exists():
        raise BackupError(f"{var / DATABASE} exists: restore into a fresh directory (KC_VAR), "
                          "never over a running centre")
    manifest = read_manifest(archive)
    expected = {f["name"]: f for f in manifest["files"]}
    var.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".kc-restore-", dir=var) as work:
        staged = Path(work)
        seen = set()
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name == "manifest.json":
                    continue
                if not (_allowed(member.name) and member.isfile()) or member.name not in expected:
                    raise BackupError(f"{archive}: unexpected member {member.name!r}; nothing restored")
                target = staged / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, target.open("wb") as dst:   # type: ignore[union-attr]
                    shutil.copyfileobj(src, dst)
                if file_sha256(target) != expected[member.name]["sha256"]:
                    raise BackupError(f"{archive}: {member.name} is damaged (checksum); "
                                      "nothing restored")
                seen.add(member.name)
        missing = set(expected) - seen
        if missing or DATABASE not in seen:
            raise BackupError(f"{archive}: missing {sorted(missing or {DATABASE})}; nothing restored")
        for name in sorted(seen):            # checked whole: now into place
            target = var / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged / name, target)
    for name in PRIVATE:
        path = var / name
        if path.is_dir():
            os.chmod(path, 0o700)
            for file in path.rglob("*"):
                os.chmod(file, 0o600 if file.is_file() else 0o700)
        elif path.is_file():
            os.chmod(path, 0o600)
    return Summary(var, len(seen), sum(expected[n]["size"] for n in seen))


def prune(directory: Path, keep: int) -> list[Path]:
    """Remove all but the newest `keep` backups named by `daily_name` in `directory`."""
    backups = sorted(directory.glob(f"{PREFIX}*.tar.gz"))
    gone = backups[:-keep] if keep > 0 else backups
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


def daily_name(now: datetime) -> str:
    return f"{PREFIX}{now.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}.tar.gz"
