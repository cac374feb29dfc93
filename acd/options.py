"""Run-time options of the ACD, built once by the composition root from the settings
(`kc.settings.Settings`, the one settings source: `KC_WRAP_UP_SECONDS`, `KC_ANNOUNCE_SECONDS`,
`KC_CALLBACK_TRUNK`, `KC_CALLBACK_RING_SECONDS`, `KC_OVERFLOW_SECONDS`).

- `wrap_up_seconds`       wrap-up after a call when the queue has no configured value (10 s)
- `announce_seconds`      how often waiting callers hear their place and estimated wait (45 s)
- `callback_trunk`        host:port where call-backs and transfers to numbers are sent
                          (the residents' trunk towards the public network; a SIPp UAS in tests)
- `callback_ring_seconds` how long the resident's phone rings on a call-back (30 s)
- `callback_retries`      how many more times a call-back the resident did not answer is
                          made (`KC_CALLBACK_RETRIES`, 2)
- `callback_retry_seconds` how long it waits before the next try (`KC_CALLBACK_RETRY_SECONDS`)
- `wrap_up_needs_category` wrap-up does not end until the contact's case (its category) is
                          registered (`KC_WRAP_UP_NEEDS_CATEGORY`; saving the case ends it)
- `overflow_seconds`      fallback overflow wake-up threshold when no queue configuration says
                          otherwise (the routing core decides; this only re-evaluates in time)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# A back-office number an agent may transfer to (three or more digits); shorter codes are the
# organisation's transfer codes (data: `transfer_codes`, held by the call catalogue).
NUMBER_RE = re.compile(r"^\+?[0-9]{3,20}$")
# A resident's number an agent may call out to (from the phone or the desk): a national number
# (leading 0) or an international one, never a short code (those are feature codes).
OUTBOUND_RE = re.compile(r"^0[0-9]{5,19}$|^\+[1-9][0-9]{5,18}$")


@dataclass(frozen=True)
class AcdOptions:
    wrap_up_seconds: float = 10.0
    announce_seconds: int = 45
    callback_trunk: str = "127.0.0.1:5070"
    callback_ring_seconds: int = 30
    overflow_seconds: float = 30.0
    wrap_up_needs_category: bool = False
    callback_retries: int = 2
    callback_retry_seconds: float = 300.0

    @classmethod
    def from_settings(cls, settings: Any) -> "AcdOptions":
        """The ACD's part of the settings (`kc.settings.Settings`)."""
        return cls(wrap_up_seconds=settings.wrap_up_seconds,
                   announce_seconds=settings.announce_seconds,
                   callback_trunk=settings.callback_trunk,
                   callback_ring_seconds=settings.callback_ring_seconds,
                   overflow_seconds=settings.overflow_seconds,
                   wrap_up_needs_category=settings.wrap_up_needs_category,
                   callback_retries=settings.callback_retries,
                   callback_retry_seconds=settings.callback_retry_seconds)
