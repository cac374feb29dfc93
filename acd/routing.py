"""Who takes which caller: pure functions over snapshots, the clock passed in as numbers.

Policy (walking skeleton): a waiting caller goes to a ready, registered agent who has the skill
and, for a confidential matter, is cleared for the called district; agents of the called
district first, then by proficiency, then longest idle. Callers are served by priority, then
first come first served.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from kc.domain import AgentState


@dataclass(frozen=True)
class WaitingCall:
    contact_id: int
    skill: str
    district: str
    language: str
    priority: int
    confidential: bool
    enqueued_at: float        # seconds on the distributor's clock


@dataclass(frozen=True)
class AgentSnapshot:
    id: str
    district: str
    skills: dict[str, int]
    cleared_for: tuple[str, ...]
    state: AgentState
    registered: bool
    idle_since: float

    def eligible_for(self, call: WaitingCall) -> bool:
        if self.state is not AgentState.READY or not self.registered:
            return False
        if call.skill not in self.skills:
            return False
        return not call.confidential or call.district in self.cleared_for


def call_order(call: WaitingCall) -> tuple:
    return (-call.priority, call.enqueued_at, call.contact_id)


def agent_order(call: WaitingCall, agent: AgentSnapshot) -> tuple:
    return (agent.district != call.district, -agent.skills[call.skill], agent.idle_since, agent.id)


def pick_agent(call: WaitingCall, agents: Iterable[AgentSnapshot]) -> AgentSnapshot | None:
    eligible = [a for a in agents if a.eligible_for(call)]
    return min(eligible, key=lambda a: agent_order(call, a)) if eligible else None


def assignments(calls: Iterable[WaitingCall],
                agents: Iterable[AgentSnapshot]) -> list[tuple[WaitingCall, AgentSnapshot]]:
    """Match waiting callers to free agents, oldest caller first; no agent gets two calls."""
    free = {a.id: a for a in agents if a.state is AgentState.READY and a.registered}
    out: list[tuple[WaitingCall, AgentSnapshot]] = []
    for call in sorted(calls, key=call_order):
        if not free:
            break
        agent = pick_agent(call, free.values())
        if agent is not None:
            out.append((call, agent))
            del free[agent.id]
    return out
