"""Queue configuration per (skill × district): service level, wrap-up, overflow steps, priority.

A *queue* is the pair (skill, called district), named ``"<skill>@<district>"`` (as in
`queue_log`). Its configuration lives in the `queues` table (migration ``0002_acd_queues``)
and is read by the ACD (`acd.routing.RoutingPolicy`), the simulator and the web pages.

- ``service_level_seconds``: the target answer time for the service-level figure (default 30).
- ``written_service_level_seconds``: the same for the queue's written contacts (e-mail, the
  web form), which wait in the same queue (default a working day, 8 h).
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
from typing import Any

import sqlite_utils

from .domain import (ANY_DISTRICT, DEFAULT_SERVICE_LEVEL_SECONDS, EscalationStep, OverflowStep,
                     QueueConfig, queue_name)
from .errors import InvalidInput, NotFound

__all__ = ["ANY_DISTRICT", "DEFAULT_SERVICE_LEVEL_SECONDS", "OverflowStep", "QueueConfig", "queue_name"]

TABLE = "queues"


# ---------------------------------------------------------------- schema (see kc.migrations)


def _row(config: QueueConfig) -> dict[str, Any]:
    return {
        "skill": config.skill, "district": config.district,
        "service_level_seconds": config.service_level_seconds,
        "wrap_up_seconds": config.wrap_up_seconds,
        "overflow": json.dumps([s.to_list() for s in config.overflow], ensure_ascii=False),
        "priority": config.priority,
        "written_service_level_seconds": config.written_service_level_seconds,
        "escalation": json.dumps([[s.after_seconds, s.raise_by] for s in config.escalation]),
        "alert_seconds": config.alert_seconds,
    }


def _from_row(row: dict[str, Any]) -> QueueConfig:
    return QueueConfig(
        skill=row["skill"], district=row["district"],
        service_level_seconds=row["service_level_seconds"],
        wrap_up_seconds=row["wrap_up_seconds"],
        overflow=tuple(OverflowStep(float(a), tuple(d)) for a, d in json.loads(row["overflow"] or "[]")),
        priority=row["priority"],
        **({"written_service_level_seconds": row["written_service_level_seconds"]}
           if row.get("written_service_level_seconds") is not None else {}),
        escalation=tuple(EscalationStep(float(a), int(r))
                         for a, r in json.loads(row.get("escalation") or "[]")),
        alert_seconds=row.get("alert_seconds") or 0.0,
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
