"""Put the process-AGI fallback where the Asterisk that runs it can reach it.

Asterisk runs the fallback itself, as its own user and, for Asterisk 22 from a private root,
inside that root: neither our virtualenv nor the checkout may be visible to it. So the script
is copied, with the only two packages it imports (pyst2's `asterisk` and `six`, both pure
Python), into one directory of Asterisk's tree; any python3 there runs it, since a script's
own directory comes first on its import path.
"""
from __future__ import annotations

import filecmp
import os
import shutil
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "fallback.py"


def _sources() -> list[Path]:
    import asterisk.agi  # pyst2
    import six

    return [SCRIPT, Path(asterisk.agi.__file__).resolve().parent, Path(six.__file__).resolve()]


def _copy(src: Path, dst: Path) -> None:
    if src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
        for child in src.iterdir():
            if child.name != "__pycache__" and not child.name.endswith(".pyc"):
                _copy(child, dst / child.name)
        return
    if dst.exists() and filecmp.cmp(src, dst, shallow=False):
        return
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")   # the nodes of a cluster stage at once
    shutil.copyfile(src, tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, dst)   # a fallback starting right now sees the old file or the new one


def stage(dest: Path) -> Path:
    """Copy the fallback and what it imports into `dest`; returns the script's path there."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o755)
    for src in _sources():
        _copy(src, dest / src.name)
    return dest / SCRIPT.name
