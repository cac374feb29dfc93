"""Queue configuration per (skill × district): service level, wrap-up, overflow steps, priority.

A *queue* is the pair (skill, called district), named ``"<skill>@<district>"`` (as in
`queue_log`). Its configuration lives in the `queues` table (migration ``0002_acd_queues``)
and is read by the ACD (`acd.routing.RoutingPolicy`), the simulator and the web pages.

- ``service_level_seconds``: the target answer time for the service-level figure (default 30).
- ``wrap_up_seconds``: after-call work before the agent is offered the next caller (default 0).
- ``overflow``: ordered steps ``OverflowStep(after_seconds, districts)``. A caller of this queue
  is first offered only to agents of the called district; once they have waited
  ``after_seconds`` of a step, the agents (with the skill) of that step's districts become
  eligible too, earlier steps preferred over later ones. ``"*"`` in ``districts`` means every
  district not named in an earlier step. No steps: the queue never overflows. Confidential
  matters still only reach agents cleared for the called district.
- ``priority``: the priority callers of this queue get (higher is served first; FIFO within a
  priority).

Functions here take a `sqlite_utils.Database` (run them with ``await store.run(fn, ...)``):
`list_queue_configs`, `get_queue_config`, `save_queue_config`, `delete_queue_config`.
`QueueConfig.to_dict` / `QueueConfig.from_dict` give the JSON shape for an API.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import sqlite_utils

from .errors import InvalidInput, NotFound

ANY_DISTRICT = "*"
DEFAULT_SERVICE_LEVEL_SECONDS = 30.0
DEMO_OVERFLOW_AFTER_SECONDS = 30.0
TABLE = "queues"


@dataclass(frozen=True)
class OverflowStep:
    after_seconds: float
    districts: tuple[str, ...]

    def to_list(self) -> list:
        return [self.after_seconds, list(self.districts)]


@dataclass(frozen=True)
class QueueConfig:
    skill: str
    district: str
    service_level_seconds: float = DEFAULT_SERVICE_LEVEL_SECONDS
    wrap_up_seconds: float = 0.0
    overflow: tuple[OverflowStep, ...] = field(default=())
    priority: int = 0

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "skill": self.skill, "district": self.district,
            "service_level_seconds": self.service_level_seconds,
            "wrap_up_seconds": self.wrap_up_seconds,
            "overflow": [{"after_seconds": s.after_seconds, "districts": list(s.districts)}
                         for s in self.overflow],
            "priority": self.priority,
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
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InvalidInput(f"bad queue configuration: {exc}") from None


def queue_name(skill: str, district: str) -> str:
    return f"{skill}@{district}"


# ---------------------------------------------------------------- schema (see kc.migrations)


def _row(config: QueueConfig) -> dict[str, Any]:
    return {
        "skill": config.skill, "district": config.district,
        "service_level_seconds": config.service_level_seconds,
        "wrap_up_seconds": config.wrap_up_seconds,
        "overflow": json.dumps([s.to_list() for s in config.overflow], ensure_ascii=False),
        "priority": config.priority,
    }


def _from_row(row: dict[str, Any]) -> QueueConfig:
    return QueueConfig(
        skill=row["skill"], district=row["district"],
        service_level_seconds=row["service_level_seconds"],
        wrap_up_seconds=row["wrap_up_seconds"],
        overflow=tuple(OverflowStep(float(a), tuple(d)) for a, d in json.loads(row["overflow"] or "[]")),
        priority=row["priority"],
    )


# ---------------------------------------------------------------- store functions


def list_queue_configs(db: sqlite_utils.Database) -> list[QueueConfig]:
    """Every configured queue, ordered by district then skill."""
    if TABLE not in db.table_names():
        return []
    return [_from_row(r) for r in db[TABLE].rows_where(order_by="district, skill")]


def get_queue_config(db: sqlite_utils.Database, skill: str, district: str) -> QueueConfig:
    """The stored configuration of one queue; `NotFound` when it has none."""
    rows = list(db[TABLE].rows_where("skill = ? and district = ?", [skill, district]))
    if not rows:
        raise NotFound(f"no queue {queue_name(skill, district)!r}")
    return _from_row(rows[0])


def save_queue_config(db: sqlite_utils.Database, config: QueueConfig) -> None:
    """Create or replace one queue's configuration. `InvalidInput` for unknown skill/district."""
    config.validate()
    districts = {r["id"] for r in db["districts"].rows}
    if not db["skills"].count_where("id = ?", [config.skill]):
        raise InvalidInput(f"unknown skill {config.skill!r}")
    if config.district not in districts:
        raise InvalidInput(f"unknown district {config.district!r}")
    for step in config.overflow:
        for d in step.districts:
            if d != ANY_DISTRICT and d not in districts:
                raise InvalidInput(f"unknown district {d!r} in overflow")
    db[TABLE].upsert(_row(config), pk=("skill", "district"))


def delete_queue_config(db: sqlite_utils.Database, skill: str, district: str) -> None:
    """Forget a queue's configuration (the routing default applies again); `NotFound` if none."""
    get_queue_config(db, skill, district)
    db[TABLE].delete((skill, district))


def demo_queue_configs(districts: Iterable[str], skills: Iterable[str],
                       overflow_after: float = DEMO_OVERFLOW_AFTER_SECONDS) -> list[QueueConfig]:
    """Every skill × district: 30 s service level, no wrap-up, after `overflow_after` seconds
    overflow to the other districts' agents with the skill."""
    districts = list(districts)
    out = []
    for district in districts:
        others = tuple(d for d in districts if d != district)
        for skill in skills:
            steps = (OverflowStep(overflow_after, others),) if others else ()
            out.append(QueueConfig(skill, district, overflow=steps))
    return out
