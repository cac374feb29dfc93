"""Every district's opening hours and after-hours policy, parsed once (pure: no clock, no I/O).

A stored schedule body (see `schedules.schedule.Schedule.from_dict`) carries, under the key
`after_hours`, what to do with a call while the district is closed: `AfterHoursPolicy`.
`OpeningHours` is the parsed view of them all, built from the stored bodies when they change
(`schedules.schedule_store.load_hours`) and asked `status(district, at, queue)` per call.

A district without a schedule, or with one that no longer parses (logged once, when parsed),
counts as always open: a call is never failed on its opening hours.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Mapping

from .schedule import Schedule, ScheduleError, Status

log = logging.getLogger(__name__)

AFTER_HOURS_DEFAULT: dict[str, Any] = {
    "route_to": [],            # districts to try, in order, when this one is closed
    "voice_message": True,
    "callback": True,
    "emergency": {},           # language -> text, e.g. "Vid akut fara, ring 112."
}


@dataclass(frozen=True)
class AfterHoursPolicy:
    """What a closed district offers: partners to route to, a voice message, a call-back."""

    route_to: tuple[str, ...] = ()
    voice_message: bool = True
    callback: bool = True
    emergency: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_body(cls, body: Mapping[str, Any] | None) -> "AfterHoursPolicy":
        """The stored body's policy, defaults filled in (bodies were validated when saved)."""
        policy = {**AFTER_HOURS_DEFAULT, **((body or {}).get("after_hours") or {})}
        return cls(route_to=tuple(policy.get("route_to") or ()),
                   voice_message=bool(policy.get("voice_message", True)),
                   callback=bool(policy.get("callback", True)),
                   emergency=MappingProxyType(dict(policy.get("emergency") or {})))


def validate_policy(policy: Any, districts: set[str], own: str) -> list[str]:
    problems = []
    if not isinstance(policy, dict):
        return ["after_hours: must be an object"]
    extra = set(policy) - set(AFTER_HOURS_DEFAULT)
    if extra:
        problems.append(f"after_hours: unknown key(s) {', '.join(sorted(extra))}")
    route = policy.get("route_to", [])
    if not isinstance(route, list) or not all(isinstance(d, str) for d in route):
        problems.append("after_hours.route_to: must be a list of district ids")
    else:
        for d in route:
            if d == own:
                problems.append("after_hours.route_to: a district cannot route to itself")
            elif d not in districts:
                problems.append(f"after_hours.route_to: unknown district {d!r}")
    for key in ("voice_message", "callback"):
        if key in policy and not isinstance(policy[key], bool):
            problems.append(f"after_hours.{key}: must be true or false")
    emergency = policy.get("emergency", {})
    if not isinstance(emergency, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in emergency.items()):
        problems.append("after_hours.emergency: must map a language to a text")
    return problems


def parse_stored(body: Mapping[str, Any] | None) -> Schedule | None:
    """A stored body as a `Schedule`; None when there is none or it no longer parses (logged)."""
    if body is None:
        return None
    try:
        return Schedule.from_dict(body)
    except ScheduleError as exc:   # stored bodies were validated when saved
        log.error("invalid stored schedule ignored: %s", exc)
        return None


def status_of(schedule: Schedule | None, at: datetime, queue: str | None = None) -> Status | None:
    """Open or not at `at` (without the closing time, which routing never needs); None: no
    schedule, always open."""
    return None if schedule is None else schedule.status(at, queue, closes=False)


def is_open(body: Mapping[str, Any] | None, at: datetime, queue: str | None = None) -> Status | None:
    """One stored body's status at `at`, parsed for this question only."""
    return status_of(parse_stored(body), at, queue)


@dataclass(frozen=True)
class DistrictHours:
    name: str
    schedule: Schedule | None                  # None: always open
    policy: AfterHoursPolicy


@dataclass(frozen=True)
class OpeningHours:
    """Every district's parsed hours and policy, keyed by district id."""

    districts: Mapping[str, DistrictHours]

    @classmethod
    def from_stored(cls, names: Mapping[str, str],
                    bodies: Mapping[str, Mapping[str, Any]]) -> "OpeningHours":
        """From the district names and their stored schedule bodies (a body of an unknown
        district is left out, as it could never be called)."""
        return cls(MappingProxyType({
            district: DistrictHours(name, parse_stored(bodies.get(district)),
                                    AfterHoursPolicy.from_body(bodies.get(district)))
            for district, name in names.items()}))

    def __contains__(self, district: object) -> bool:
        return district in self.districts

    def name(self, district: str) -> str:
        found = self.districts.get(district)
        return found.name if found else district

    def policy(self, district: str) -> AfterHoursPolicy:
        found = self.districts.get(district)
        return found.policy if found else AfterHoursPolicy()

    def status(self, district: str, at: datetime, queue: str | None = None) -> Status | None:
        """The district's (or one of its queues') status at `at`; None: always open."""
        found = self.districts.get(district)
        return status_of(found.schedule if found else None, at, queue)

    def is_open(self, district: str, at: datetime, queue: str | None = None) -> bool:
        status = self.status(district, at, queue)
        return status is None or status.open
