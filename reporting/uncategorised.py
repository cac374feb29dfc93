"""Uncategorised contacts per agent: the answered contacts whose matter was never written down
(no registered case, so no category), counted per agent who answered them and the agent's
district, beside all that agent answered. The same definition as the figure `uncategorised`
(`reporting.definitions`), which counts them per called district, queue and category.

Pure SQL over a `sqlite_utils.Database` (run it through `Store.run` or `Store.read`)."""
from __future__ import annotations

from typing import Any

import sqlite_utils

from reporting.definitions import Period, Scope

COLUMNS = ("agent", "agent_district", "answered", "uncategorised")


def by_agent(db: sqlite_utils.Database, period: Period, scope: Scope = Scope()) -> list[dict[str, Any]]:
    """One row per agent who answered a contact of the period in scope (most uncategorised
    first): `agent`, `agent_district`, `answered`, `uncategorised`."""
    where, args = scope.where("c.district", "c.skill")
    cursor = db.execute(f"""
        select c.agent, coalesce(c.agent_district, '') as agent_district, count(*) as answered,
               sum(not exists (select 1 from cases k where k.contact_id = c.id)) as uncategorised
        from contacts c
        where c.started_at >= ? and c.started_at < ? and c.answered_at is not null
          and c.agent is not null and {where}
        group by c.agent, coalesce(c.agent_district, '')
        order by uncategorised desc, c.agent""", [period.start_iso, period.end_iso, *args])
    return [dict(zip(COLUMNS, row)) for row in cursor.fetchall()]
