"""Which agent state changes are allowed, and what an agent's own request turns into.

An agent busy with a caller (ringing, on call, wrap-up) cannot be paused or logged out under
the caller's feet: the request is kept and applied when the call ends.
"""
from __future__ import annotations

from kc.domain import AgentState as S
from kc.errors import InvalidInput

ALLOWED: frozenset[tuple[S, S]] = frozenset({
    (S.LOGGED_OUT, S.READY),
    (S.READY, S.LOGGED_OUT), (S.READY, S.PAUSED), (S.READY, S.RINGING),
    (S.PAUSED, S.READY), (S.PAUSED, S.LOGGED_OUT), (S.PAUSED, S.PAUSED),
    (S.RINGING, S.ON_CALL), (S.RINGING, S.READY), (S.RINGING, S.PAUSED),
    (S.RINGING, S.LOGGED_OUT),
    (S.ON_CALL, S.WRAP_UP), (S.ON_CALL, S.READY), (S.ON_CALL, S.PAUSED),
    (S.ON_CALL, S.LOGGED_OUT),
    (S.WRAP_UP, S.READY), (S.WRAP_UP, S.PAUSED), (S.WRAP_UP, S.LOGGED_OUT),
})

REQUESTABLE = (S.READY, S.PAUSED, S.LOGGED_OUT)
BUSY = (S.RINGING, S.ON_CALL, S.WRAP_UP)


def check(current: S, target: S) -> None:
    if (current, target) not in ALLOWED:
        raise InvalidInput(f"agent cannot go from {current.value} to {target.value}")


def request(current: S, target: S) -> tuple[S, S | None]:
    """An agent's or supervisor's request: returns (state now, state pending after the call)."""
    if target not in REQUESTABLE:
        raise InvalidInput(f"state must be one of {', '.join(s.value for s in REQUESTABLE)}")
    if current in BUSY:
        return current, target
    if current is S.LOGGED_OUT and target is S.PAUSED:
        raise InvalidInput("log in before pausing")
    if current is target:
        return current, None
    check(current, target)
    return target, None


def toggle_pause(current: S) -> S:
    """`*23`: pause when ready, resume when paused."""
    if current is S.PAUSED:
        return S.READY
    if current is S.LOGGED_OUT:
        raise InvalidInput("log in before pausing")
    return S.PAUSED
