"""Domain vocabulary shared by the menu, the ACD, the store and the web: plain data, no I/O."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


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
    number: str                      # the residents' number that reaches it


@dataclass(frozen=True)
class Skill:
    id: str
    name: str
    confidential: bool = False


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
