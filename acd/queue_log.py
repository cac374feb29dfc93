"""Asterisk's `queue_log` format, so existing queue-reporting tools can read our records.

Each line: `epoch|callid|queuename|agent|event|data1|data2|data3...`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def _field(value: object) -> str:
    return str(value).replace("|", "/").replace("\n", " ").replace("\r", " ")


class QueueLog:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, epoch: float, callid: str, queue: str, agent: str, event: str,
              *data: object) -> None:
        line = "|".join(_field(v) for v in (int(epoch), callid, queue, agent, event, *data))
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def pseudonymise(path: Path, before_epoch: float, pseudonym: Callable[[str], str],
                 prefix: str) -> int:
    """Retention: caller numbers in ENTERQUEUE lines older than `before_epoch` replaced by
    their pseudonym (the same one the store uses), the rest of each line kept. Rewrites the
    file atomically; returns the number of lines changed."""
    if not path.exists():
        return 0
    changed = 0
    tmp = path.with_suffix(".purge.tmp")   # streamed: the file is never held in memory
    with path.open(encoding="utf-8", errors="replace") as fh, tmp.open("w", encoding="utf-8") as out:
        for line in fh:
            fields = line.rstrip("\n").split("|")
            try:
                old = float(fields[0]) < before_epoch
            except (ValueError, IndexError):
                old = False
            if old and len(fields) > 6 and fields[4] == "ENTERQUEUE" and fields[6] \
                    and not fields[6].startswith(prefix):
                fields[6] = pseudonym(fields[6])
                changed += 1
            out.write("|".join(fields) + "\n")
    if changed:
        os.replace(tmp, path)
    else:
        tmp.unlink()
    return changed
