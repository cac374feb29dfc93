"""Domain vocabulary shared by the menu, the ACD, the store and the web: plain data, no I/O."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from enum import Enum

from .errors import InvalidInput


class AgentState(str, Enum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class Outcome(str, Enum):
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    AFTER_HOURS = "after_hours"
    TRANSFERRED = "transferred"
    INFO = "info"
    FAILED = "failed"


class Channel(str, Enum):
    PHONE = "phone"
    EMAIL = "email"
    WEB = "web"
    FAX = "fax"
    POST = "post"


class Role(str, Enum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    MANAGER = "manager"
    AGENT = "agent"


@dataclass(frozen=True)
class District:
    id: str
    name: str
    number: str                      # the first of the residents' numbers that reach it
    numbers: tuple[str, ...] = ()    # every number residents dial for it
    addresses: tuple[str, ...] = ()  # its e-mail addresses
    region: str | None = None        # the regional centre it belongs to
    switchboard: str | None = None   # the district whose switchboard answers for it (None: itself)
    retired_at: str | None = None    # retired: no longer called or written to; history kept


@dataclass(frozen=True)
class Skill:
    id: str
    name: str
    confidential: bool = False
    retired_at: str | None = None


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    district: str
    skills: dict[str, int]           # skill id -> proficiency 1..5
    languages: tuple[str, ...] = ("sv",)
    cleared_for: tuple[str, ...] = ()  # districts whose confidential matters this agent may take

    def may_take(self, skill: str, district: str, confidential: bool) -> bool:
        if skill not in self.skills:
            return False
        return not confidential or district in self.cleared_for


@dataclass
class Contact:
    """One contact as recorded; mirrors the `contacts` table."""

    id: int
    channel: str
    district: str | None
    dialed: str | None
    caller: str | None
    caller_name: str | None
    started_at: str
    ended_at: str | None = None
    menu_path: list[str] = field(default_factory=list)
    language: str | None = None
    skill: str | None = None
    outcome: str | None = None
    agent: str | None = None
    agent_district: str | None = None
    overflowed: bool = False
    wait_seconds: float | None = None
    talk_seconds: float | None = None
    confidential: bool = False


# ---------------------------------------------------------------- queues (skill × district)

ANY_DISTRICT = "*"
DEFAULT_SERVICE_LEVEL_SECONDS = 30.0
# The answer-time target of a queue's written contacts (e-mail, the web form): a working day.
DEFAULT_WRITTEN_SERVICE_LEVEL_SECONDS = 8 * 3600.0


@dataclass(frozen=True)
class OverflowStep:
    after_seconds: float
    districts: tuple[str, ...]

    def to_list(self) -> list:
        return [self.after_seconds, list(self.districts)]


@dataclass(frozen=True)
class EscalationStep:
    """Once a caller has waited `after_seconds`, their priority is the queue's plus `raise_by`."""
    after_seconds: float
    raise_by: int


@dataclass(frozen=True)
class QueueConfig:
    skill: str
    district: str
    service_level_seconds: float = DEFAULT_SERVICE_LEVEL_SECONDS
    wrap_up_seconds: float = 0.0
    overflow: tuple[OverflowStep, ...] = field(default=())
    priority: int = 0
    written_service_level_seconds: float = DEFAULT_WRITTEN_SERVICE_LEVEL_SECONDS
    escalation: tuple[EscalationStep, ...] = field(default=())   # priority rising with the wait
    alert_seconds: float = 0.0        # a caller waiting longer alerts the supervisors (0: never)

    def __post_init__(self) -> None:
        # Accept lists / (after, [districts]) pairs from callers; store tuples of OverflowStep.
        steps = tuple(
            s if isinstance(s, OverflowStep) else OverflowStep(float(s[0]), tuple(s[1]))
            for s in self.overflow
        )
        steps = tuple(OverflowStep(float(s.after_seconds), tuple(s.districts)) for s in steps)
        object.__setattr__(self, "overflow", steps)
        object.__setattr__(self, "service_level_seconds", float(self.service_level_seconds))
        object.__setattr__(self, "wrap_up_seconds", float(self.wrap_up_seconds))
        object.__setattr__(self, "written_service_level_seconds",
                           float(self.written_service_level_seconds))
        object.__setattr__(self, "escalation", tuple(
            s if isinstance(s, EscalationStep) else EscalationStep(float(s[0]), s[1])
            for s in self.escalation))
        object.__setattr__(self, "alert_seconds", float(self.alert_seconds))
        self.validate()

    @property
    def name(self) -> str:
        return queue_name(self.skill, self.district)

    def validate(self) -> None:
        """Raise `InvalidInput` with a message fit to show when the configuration cannot work."""
        if not self.skill or not self.district:
            raise InvalidInput("a queue needs a skill and a district")
        if not (math.isfinite(self.service_level_seconds) and self.service_level_seconds > 0):
            raise InvalidInput("service level target must be a positive number of seconds")
        if not (math.isfinite(self.written_service_level_seconds)
                and self.written_service_level_seconds > 0):
            raise InvalidInput("the written contacts' target must be a positive number of seconds")
        if not (math.isfinite(self.wrap_up_seconds) and self.wrap_up_seconds >= 0):
            raise InvalidInput("wrap-up must be zero or more seconds")
        if isinstance(self.priority, bool) or not isinstance(self.priority, int):
            raise InvalidInput("priority must be a whole number")
        if not -1000 <= self.priority <= 1000:
            raise InvalidInput("priority must be between -1000 and 1000")
        previous = 0.0
        for i, step in enumerate(self.overflow, 1):
            if not (math.isfinite(step.after_seconds) and step.after_seconds >= 0):
                raise InvalidInput(f"overflow step {i}: seconds must be zero or more")
            if step.after_seconds < previous:
                raise InvalidInput(f"overflow step {i}: steps must be in order of waiting time")
            previous = step.after_seconds
            if not step.districts or not all(isinstance(d, str) and d for d in step.districts):
                raise InvalidInput(f"overflow step {i}: name at least one district")
        previous = 0.0
        for i, esc in enumerate(self.escalation, 1):
            if not (math.isfinite(esc.after_seconds) and esc.after_seconds > previous):
                raise InvalidInput(f"escalation step {i}: seconds must be more than the step before")
            previous = esc.after_seconds
            if isinstance(esc.raise_by, bool) or not isinstance(esc.raise_by, int) \
                    or not 1 <= esc.raise_by <= 1000:
                raise InvalidInput(f"escalation step {i}: raise the priority by 1 to 1000")
        if not (math.isfinite(self.alert_seconds) and 0 <= self.alert_seconds <= 86400):
            raise InvalidInput("the alert limit must be 0 (none) to 86400 seconds")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "skill": self.skill, "district": self.district,
            "service_level_seconds": self.service_level_seconds,
            "wrap_up_seconds": self.wrap_up_seconds,
            "overflow": [{"after_seconds": s.after_seconds, "districts": list(s.districts)}
                         for s in self.overflow],
            "priority": self.priority,
            "written_service_level_seconds": self.written_service_level_seconds,
            "escalation": [{"after_seconds": s.after_seconds, "raise_by": s.raise_by}
                           for s in self.escalation],
            "alert_seconds": self.alert_seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "QueueConfig":
        """From JSON input (`to_dict`'s shape; `name` is ignored). Raises `InvalidInput`."""
        try:
            steps = []
            for s in data.get("overflow") or []:
                if isinstance(s, dict):
                    steps.append(OverflowStep(float(s["after_seconds"]), tuple(s["districts"])))
                else:
                    steps.append(OverflowStep(float(s[0]), tuple(s[1])))
            return cls(
                skill=str(data["skill"]), district=str(data["district"]),
                service_level_seconds=float(data.get("service_level_seconds",
                                                     DEFAULT_SERVICE_LEVEL_SECONDS)),
                wrap_up_seconds=float(data.get("wrap_up_seconds", 0.0)),
                overflow=tuple(steps),
                priority=int(data.get("priority", 0)),
                written_service_level_seconds=float(data.get(
                    "written_service_level_seconds", DEFAULT_WRITTEN_SERVICE_LEVEL_SECONDS)),
                escalation=tuple(EscalationStep(float(s["after_seconds"]), s["raise_by"])
                                 for s in data.get("escalation") or []),
                alert_seconds=float(data.get("alert_seconds") or 0.0),
            )
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise InvalidInput(f"bad queue configuration: {exc}") from None


def queue_name(skill: str, district: str) -> str:
    return f"{skill}@{district}"
