"""Erlang C (M/M/N queue): how many agents meet a service level for given arrivals and handle time.

Pure functions, no I/O. Conventions:
- `rate_per_hour`: calls arriving per hour; `aht_seconds`: average handle time;
- traffic intensity A = rate_per_hour * aht_seconds / 3600 (Erlangs);
- service level = share of callers answered within `target_seconds`:
  SL = 1 - C(N, A) * exp(-(N - A) * target / AHT), where C is the Erlang C waiting probability.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


def traffic(rate_per_hour: float, aht_seconds: float) -> float:
    """Offered traffic in Erlangs."""
    if rate_per_hour < 0 or aht_seconds < 0:
        raise ValueError("rate and handle time must not be negative")
    return rate_per_hour * aht_seconds / 3600.0


def erlang_b(agents: int, erlangs: float) -> float:
    """Blocking probability, by the numerically stable recursion B(n) = A·B(n-1) / (n + A·B(n-1))."""
    if agents < 0:
        raise ValueError("agents must not be negative")
    b = 1.0
    for n in range(1, agents + 1):
        b = erlangs * b / (n + erlangs * b)
    return b


def erlang_c(agents: int, erlangs: float) -> float:
    """Probability that a caller has to wait (1.0 when the queue is unstable, N <= A)."""
    if erlangs <= 0:
        return 0.0
    if agents <= erlangs:
        return 1.0
    b = erlang_b(agents, erlangs)
    return agents * b / (agents - erlangs * (1.0 - b))


def service_level(agents: int, rate_per_hour: float, aht_seconds: float, target_seconds: float) -> float:
    """Share (0..1) of callers answered within `target_seconds` with `agents` agents."""
    a = traffic(rate_per_hour, aht_seconds)
    if a == 0:
        return 1.0
    if agents <= a:
        return 0.0
    pw = erlang_c(agents, a)
    return max(0.0, 1.0 - pw * math.exp(-(agents - a) * target_seconds / aht_seconds))


def average_speed_of_answer(agents: int, rate_per_hour: float, aht_seconds: float) -> float:
    """Expected wait in seconds over all callers (infinite when N <= A)."""
    a = traffic(rate_per_hour, aht_seconds)
    if a == 0:
        return 0.0
    if agents <= a:
        return math.inf
    return erlang_c(agents, a) * aht_seconds / (agents - a)


def agents_needed(rate_per_hour: float, aht_seconds: float, target_seconds: float = 30.0,
                  goal: float = 0.8, max_agents: int = 10_000) -> int:
    """The fewest agents whose Erlang C service level reaches `goal` (0 when nobody calls)."""
    if not 0 < goal < 1:
        raise ValueError("goal must be between 0 and 1 (exclusive)")
    a = traffic(rate_per_hour, aht_seconds)
    if a == 0:
        return 0
    n = max(1, math.floor(a) + 1)
    while n <= max_agents:
        if service_level(n, rate_per_hour, aht_seconds, target_seconds) >= goal:
            return n
        n += 1
    raise ValueError(f"more than {max_agents} agents needed")


@dataclass(frozen=True)
class Staffing:
    rate_per_hour: float
    aht_seconds: float
    erlangs: float
    agents: int
    service_level: float      # predicted with `agents`
    asa_seconds: float        # predicted with `agents`
    occupancy: float          # A / N


def staffing(rate_per_hour: float, aht_seconds: float, target_seconds: float = 30.0,
             goal: float = 0.8) -> Staffing:
    n = agents_needed(rate_per_hour, aht_seconds, target_seconds, goal)
    a = traffic(rate_per_hour, aht_seconds)
    if n == 0:
        return Staffing(rate_per_hour, aht_seconds, 0.0, 0, 1.0, 0.0, 0.0)
    return Staffing(rate_per_hour, aht_seconds, a, n,
                    service_level(n, rate_per_hour, aht_seconds, target_seconds),
                    average_speed_of_answer(n, rate_per_hour, aht_seconds), a / n)
