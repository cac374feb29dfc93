"""The log-in throttle: slows password guessing without handing anyone a way to lock a real
user out, and without telling an attacker which user names exist.

Two counters of failed log-ins over a sliding window (`WINDOW` seconds; a failure older than
that no longer counts, so the count resets by itself):

- per client address: after `PER_CLIENT` failures the address gets `429` for any user name
  (the same for every name, so it tells nothing about accounts) until its oldest failure in
  the window ages out;
- per user name, known or not (an unknown name is counted the same way): after `PER_ACCOUNT`
  failures the name is paused — its log-ins from browsers it has not logged in from before
  get the usual `401 wrong user name or password` without the password even being checked.

A browser that has logged in as the user before carries a device cookie (the user name signed
with the session key, `kc_device`, HttpOnly, only sent to `/login`); it passes both counters,
so the real user logs in while someone else is guessing. Pure bookkeeping: the caller gives the
time (monotonic seconds).
"""
from __future__ import annotations

import hashlib
import hmac
from collections import deque

PER_CLIENT = 20
PER_ACCOUNT = 5
WINDOW = 900.0
MAX_KEYS = 50_000   # memory bound: the oldest keys go first


class LoginThrottle:
    def __init__(self, per_client: int = PER_CLIENT, per_account: int = PER_ACCOUNT,
                 window: float = WINDOW):
        self.per_client, self.per_account, self.window = per_client, per_account, window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def client_wait(self, client: str, now: float) -> float:
        """Seconds until this address may try again (0: now)."""
        times = self._recent(f"c:{client}", now)
        if len(times) < self.per_client:
            return 0.0
        return max(1.0, times[len(times) - self.per_client] + self.window - now)

    def account_paused(self, username: str, now: float) -> bool:
        return len(self._recent(f"a:{username}", now)) >= self.per_account

    def account_failures(self, username: str, now: float) -> int:
        return len(self._recent(f"a:{username}", now))

    def paused_until(self, username: str, now: float) -> float | None:
        """When the name's pause ends (monotonic seconds), None when not paused."""
        times = self._recent(f"a:{username}", now)
        if len(times) < self.per_account:
            return None
        return times[len(times) - self.per_account] + self.window

    def failed(self, client: str, username: str, now: float) -> int:
        """Count a failure; returns the name's failures in the window."""
        for key in (f"c:{client}", f"a:{username}"):
            self._recent(key, now)
            self._failures.setdefault(key, deque(maxlen=max(self.per_client, self.per_account) * 4)
                                      ).append(now)
        while len(self._failures) > MAX_KEYS:
            del self._failures[next(iter(self._failures))]
        return len(self._failures[f"a:{username}"])

    def clear(self, username: str) -> None:
        """An administrator's unlock."""
        self._failures.pop(f"a:{username}", None)


def device_cookie(key: str, username: str) -> str:
    mac = hmac.new(key.encode(), b"kc-device:" + username.encode(), hashlib.sha256).hexdigest()
    return f"{username}:{mac[:32]}"


def trusted_device(key: str, cookie: str | None, username: str) -> bool:
    """Has this browser logged in as `username` before (its device cookie says so)?"""
    if not cookie or not username or len(cookie) > 200:
        return False
    return hmac.compare_digest(cookie, device_cookie(key, username))
