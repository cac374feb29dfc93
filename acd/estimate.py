"""What a waiting caller hears every few tens of seconds: place in the queue and estimated wait
(said from pre-rendered parts: `agi.phrases`).

Pure: the distributor passes recent handle times and the number of staffed agents.
Estimated wait = (callers ahead + 1) x average handle time / staffed agents, rounded up to
whole minutes (at least one), so a caller is never promised less than a minute.
"""
from __future__ import annotations

import math
from typing import Iterable

DEFAULT_HANDLE_SECONDS = 180.0


def average_handle(handle_times: Iterable[float], default: float = DEFAULT_HANDLE_SECONDS) -> float:
    values = [t for t in handle_times if t and t > 0]
    return sum(values) / len(values) if values else default


def estimated_wait(position: int, handle_seconds: float, staffed: int) -> float:
    """Seconds until this caller (1 = next) should reach an agent."""
    return position * handle_seconds / max(1, staffed)


def minutes(seconds: float) -> int:
    return max(1, math.ceil(seconds / 60))
