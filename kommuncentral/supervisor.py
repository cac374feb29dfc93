"""What `kc up` does beyond starting things: one instance per runtime directory, and Asterisk
restarted within seconds when it dies, a limited number of times, before giving up (so a
service manager above sees the exit and can act)."""
from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

from kc.errors import KcError

log = logging.getLogger("kc.supervisor")

RESTARTS = 5            # at most this many restarts of Asterisk ...
WINDOW = 600.0          # ... within this many seconds, then `kc up` stops
CHECK_EVERY = 0.2


def single_instance(lock_path: Path) -> IO[str]:
    """Hold `lock_path` for this process's lifetime; a second `kc up` on the same runtime
    directory is refused (the lock goes with the process, however it ends)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a+", encoding="ascii")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise KcError(f"another `kc up` (pid {holder}) is running on {lock_path.parent}; "
                      "stop it first") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


class PbxSupervisor:
    """Watches an `AsteriskProcess`; restarts it when it exits unasked."""

    def __init__(self, pbx: Any, restarts: int = RESTARTS, window: float = WINDOW,
                 check_every: float = CHECK_EVERY):
        self.pbx, self.restarts, self.window, self.check_every = pbx, restarts, window, check_every
        self._recent: deque[float] = deque()
        self.gave_up: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set; sets it itself when Asterisk cannot be kept running."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.check_every)
                return
            except asyncio.TimeoutError:
                pass
            if self.pbx.running:
                continue
            now = time.monotonic()
            while self._recent and now - self._recent[0] > self.window:
                self._recent.popleft()
            code = self.pbx.returncode
            if len(self._recent) >= self.restarts:
                self.gave_up = (f"Asterisk exited with {code} and was restarted {len(self._recent)} "
                                f"times in {self.window:.0f} s already: giving up")
                log.critical("%s; stopping the service", self.gave_up)
                stop.set()
                return
            self._recent.append(now)
            log.error("Asterisk exited with %s; restarting it (%d of at most %d in %.0f s)",
                      code, len(self._recent), self.restarts, self.window)
            try:
                await self.pbx.start()
                log.warning("Asterisk restarted in %.1f s (pid %s)", time.monotonic() - now,
                            self.pbx.pid)
            except Exception as exc:   # a failed start counts as a restart; tried again next turn
                log.error("Asterisk did not start again: %s", exc)


async def keep_front_door(front: Any, stop: asyncio.Event, every: float = 1.0) -> None:
    """The cluster's front door (`pbx.kamailio.FrontDoorProcess`) until `stop`: restarted on
    its new files when the service rendered them anew (numbers or nodes changed), and when it
    died."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every)
            return
        except asyncio.TimeoutError:
            pass
        if front.running and not front.stale:
            continue
        log.warning("front door %s: restarting it", "died" if not front.running else
                    "has a new configuration")
        try:
            await front.restart()
        except Exception:
            log.exception("the front door did not restart; tried again in %.0f s", every)
