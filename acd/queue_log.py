"""Asterisk's `queue_log` format, so existing queue-reporting tools can read our records.

Each line: `epoch|callid|queuename|agent|event|data1|data2|data3...`.
"""
from __future__ import annotations

from pathlib import Path


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
