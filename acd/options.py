"""Run-time options of the ACD (from `KC_*` environment variables), kept apart from
`kc/settings.py` so the ACD's knobs live with the ACD.

- `KC_WRAP_UP_SECONDS`   wrap-up after a call when the queue has no configured value (demo 10 s)
- `KC_ANNOUNCE_SECONDS`  how often waiting callers hear their place and estimated wait (45 s)
- `KC_CALLBACK_TRUNK`    host:port where call-backs and transfers to numbers are sent
                         (the residents' trunk towards the public network; a SIPp UAS in tests)
- `KC_CALLBACK_RING_SECONDS` how long the resident's phone rings on a call-back (30 s)
- `KC_OVERFLOW_SECONDS`  fallback overflow wake-up threshold when no queue configuration says
                         otherwise (the routing core decides; this only re-evaluates in time)
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

_HOSTPORT = re.compile(r"^[A-Za-z0-9.-]{1,253}:[0-9]{1,5}$")

# Transfer codes an agent can dial from the phone (blind transfer, `#1` or the phone's own
# transfer key): a short code is a skill queue, three or more digits a back-office number.
TRANSFER_SKILL_CODES = {"1": "elderly-care", "2": "school", "3": "social-services", "0": "switchboard"}
NUMBER_RE = re.compile(r"^\+?[0-9]{3,20}$")


@dataclass(frozen=True)
class AcdOptions:
    wrap_up_seconds: float = 10.0
    announce_seconds: int = 45
    callback_trunk: str = "127.0.0.1:5070"
    callback_ring_seconds: int = 30
    overflow_seconds: float = 30.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "AcdOptions":
        env = dict(os.environ if env is None else env)
        trunk = env.get("KC_CALLBACK_TRUNK", cls.callback_trunk)
        if not _HOSTPORT.match(trunk):
            raise ValueError(f"KC_CALLBACK_TRUNK={trunk!r} must be host:port")
        return cls(
            wrap_up_seconds=float(env.get("KC_WRAP_UP_SECONDS", cls.wrap_up_seconds)),
            announce_seconds=max(5, int(env.get("KC_ANNOUNCE_SECONDS", cls.announce_seconds))),
            callback_trunk=trunk,
            callback_ring_seconds=int(env.get("KC_CALLBACK_RING_SECONDS", cls.callback_ring_seconds)),
            overflow_seconds=float(env.get("KC_OVERFLOW_SECONDS", cls.overflow_seconds)),
        )
