"""What the running centre tells operations: each step of a call, and how long things took.

The parts that do the work (the FastAGI call flow, the distributor's records, the store, the
web desk) say it once, here, in plain Python: `telemetry.step("acd", "connected", contact_id,
district=..., queue=...)`, `telemetry.timing("acd_decision", seconds)`. Whoever listens hears
it: the composition root attaches the structured call log (`StepLog`: one JSON line per step,
`kc logs --contact N`) and the metrics (`kommuncentral/metrics.py`, the only module that knows
Prometheus). A part built without a root (a test, a benchmark) gets `Telemetry()`, which
nobody listens to.

Listeners run on the caller's thread and must not block; one that fails is logged, never
stops the call.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)

StepListener = Callable[[dict[str, Any]], None]
TimingListener = Callable[[str, float, dict[str, str]], None]

# Timings the parts report (the metrics module names a histogram for each).
ACD_DECISION = "acd_decision"          # one routing decision (the router's dispatch)
ENQUEUE_TO_RING = "enqueue_to_ring"    # a caller reaching the queue -> the agent's phone rung
STORE_WRITE = "store_write"            # one job of the store's writer


class Telemetry:
    def __init__(self) -> None:
        self._steps: list[StepListener] = []
        self._timings: list[TimingListener] = []

    def on_step(self, listener: StepListener) -> None:
        self._steps.append(listener)

    def on_timing(self, listener: TimingListener) -> None:
        self._timings.append(listener)

    def step(self, layer: str, step: str, contact_id: int | None, **fields: Any) -> None:
        """One step of a contact: `layer` is who took it (`agi`, `acd`, `web`), `step` what
        happened; `fields` plain JSON values (district, queue, agent, ...)."""
        if not self._steps:
            return
        record = {"contact": contact_id, "layer": layer, "step": step,
                  **{k: v for k, v in fields.items() if v is not None}}
        for listener in self._steps:
            try:
                listener(record)
            except Exception:
                log.exception("telemetry listener failed on %s/%s", layer, step)

    def timing(self, name: str, seconds: float, **labels: str) -> None:
        for listener in self._timings:
            try:
                listener(name, seconds, labels)
            except Exception:
                log.exception("telemetry listener failed on %s", name)


class StepLog:
    """The structured call log: one JSON object a line (`at`, `node`, `contact`, `layer`,
    `step`, fields) appended to one file, so one call can be followed across the menu, the
    distributor and the desk. A step only adds its line to a buffer; a thread of its own
    appends what has gathered every `every` seconds in one write (so no call step waits for
    the disk; a crash loses at most that much of the log, never a record, which the database
    holds). The file is opened O_APPEND: logrotate's `copytruncate` may rotate it under the
    running service."""

    def __init__(self, path: Path, node: str, every: float = 0.2):
        self.path, self.node, self.every = path, node, every
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kc-call-log", daemon=True)
        self._thread.start()

    def __call__(self, record: dict[str, Any]) -> None:
        line = json.dumps({"at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                           "node": self.node, **record}, ensure_ascii=False,
                          separators=(",", ":"), default=str)
        with self._lock:
            self._lines.append(line)

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if not lines:
            return
        try:
            os.write(self._fd, ("\n".join(lines) + "\n").encode("utf-8"))
        except OSError:
            with self._lock:               # kept, in order, for the next turn
                self._lines[:0] = lines
            raise

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.flush()
            except OSError as exc:      # a full disk: the lines wait for the next turn
                log.warning("call log %s: %s", self.path, exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()
        os.close(self._fd)


def read_steps(path: Path, contact_id: int | None = None) -> Iterator[dict[str, Any]]:
    """The call log's records, oldest first (rotated files `path.1`, ... before it); only
    `contact_id`'s when given. A line that is not a record (cut by a crash) is skipped."""
    rotated = sorted(path.parent.glob(path.name + ".[0-9]*"),
                     key=lambda p: -int(p.name.rsplit(".", 1)[1]) if p.name.rsplit(".", 1)[1].isdigit() else 0)
    for file in [*rotated, path]:
        if not file.is_file() or file.suffix == ".gz":
            continue
        with file.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and (contact_id is None
                                                 or record.get("contact") == contact_id):
                    yield record
