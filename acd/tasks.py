"""Written matters (e-mail) as tasks in the ACD: offered to a ready agent with the skill when no
call is waiting for that agent (calls first), oldest task first.

A written contact waits in the same queue as calls (`skill@district`): who may take it is the
routing core's decision (`acd.routing.agent_rank`: the queue's overflow steps by waiting time,
clearance for confidential matters, own district first), without the phone (an e-mail needs
none); calls go first.

`task_assignments` is the pure decision; `TaskRunner` applies it at run time. It watches agent
states through `Distributor.on_change` and reads `agents` / `waiting`; it changes them only
through the distributor's public methods: `held` while the assignment is written, `occupy` to
mark the agent busy with the task, `release` when the task is done or handed back.

While an agent works on a task their state is `on_call` (busy, so the distributor offers them no
call) and `AgentRuntime.contact_id` is the task's contact. A request to pause or log out during
the task is kept as `pending` by the distributor, as for calls, and applied on `release`.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Iterable

from cases import tasks as task_store
from kc.clock import Clock, iso, parse_iso
from kc.domain import AgentState
from kc.store import Store

from .routing import AgentSnapshot, WaitingCall, agent_rank

if TYPE_CHECKING:
    from .distributor import Distributor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    contact_id: int
    skill: str
    district: str | None
    confidential: bool
    created_at: str           # ISO text sorts in time order

    def as_waiting(self) -> WaitingCall:
        """The task as the routing core sees a waiting contact (written ones after calls)."""
        return WaitingCall(self.contact_id, self.skill, self.district or "", "", WRITTEN_PRIORITY,
                           self.confidential, parse_iso(self.created_at).timestamp())


WRITTEN_PRIORITY = -1      # below every call's priority


def task_rank(agent: AgentSnapshot, task: Task, policy: Any = None,
              now: float | None = None) -> tuple | None:
    """The agent's rank for the task (lower is better), or None if they may not take it now."""
    if agent.state is not AgentState.READY:
        return None
    return agent_rank(task.as_waiting(), replace(agent, registered=True), policy, now)


def task_eligible(agent: AgentSnapshot, task: Task, policy: Any = None,
                  now: float | None = None) -> bool:
    return task_rank(agent, task, policy, now) is not None


def task_assignments(tasks: Iterable[Task], agents: Iterable[AgentSnapshot],
                     waiting_calls: Iterable[WaitingCall],
                     available: Callable[[str], bool] = lambda agent_id: True,
                     policy: Any = None, now: float | None = None) -> list[tuple[Task, AgentSnapshot]]:
    """Oldest task first to a free agent the routing core lets take it (own district first,
    other districts as the queue's overflow steps allow, best proficiency, longest idle). An
    agent for whom a call is waiting gets no task: calls come first."""
    calls = list(waiting_calls)
    free = {}
    for a in agents:
        if a.state is not AgentState.READY or not available(a.id):
            continue
        if any(a.eligible_for(call, policy, now) for call in calls):
            continue
        free[a.id] = a
    out: list[tuple[Task, AgentSnapshot]] = []
    for task in sorted(tasks, key=lambda t: (t.created_at, t.contact_id)):
        if not free:
            break
        ranked = [(rank, a) for a in free.values()
                  if (rank := task_rank(a, task, policy, now)) is not None]
        if not ranked:
            continue
        agent = min(ranked, key=lambda pair: pair[0])[1]
        out.append((task, agent))
        del free[agent.id]
    return out


# ------------------------------------------------------------------------ runner

class TaskRunner:
    """Offers queued tasks whenever agent states change, and periodically as a safety net."""

    def __init__(self, dist: "Distributor", store: Store, clock: Clock,
                 available: Callable[[str], bool] = lambda agent_id: True,
                 on_assigned: Callable[[str, int], None] | None = None, interval: float = 5.0):
        self.dist, self.store, self.clock = dist, store, clock
        self.available = available        # e.g. "has the desktop open"
        self.on_assigned = on_assigned
        self.interval = interval
        self._kick = asyncio.Event()
        self.waiting = 0        # e-mail and web tasks no agent has taken, at the last look
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        # Assigned tasks cannot survive a restart of the service (agents come back ready).
        for row in await self.store.run(task_store.assigned_tasks):
            rt = self.dist.agents.get(row["assigned_to"] or "")
            if rt is None or rt.contact_id != row["contact_id"]:
                await self.store.run(task_store.requeue_task, row["contact_id"])
        self.dist.on_change.append(self.kick)
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self.kick in self.dist.on_change:
            self.dist.on_change.remove(self.kick)
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def kick(self) -> None:
        self._kick.set()

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._kick.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
            self._kick.clear()
            try:
                await self.offer()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("offering tasks failed")

    async def offer(self) -> list[tuple[int, str]]:
        rows = await self.store.run(task_store.queued_tasks)
        self.waiting = len(rows)
        if not rows:
            return []
        tasks = [Task(r["contact_id"], r["skill"], r["district"], bool(r["confidential"]),
                      r["created_at"]) for r in rows]
        # From here to the agent's state change there is no await: the snapshot stays true.
        snaps = [rt.snapshot() for rt in self.dist.agents.values()]
        calls = [w.call for w in self.dist.waiting.values() if w.offered_to is None]
        done = []
        policy, now = self.dist.policy, self.clock().timestamp()
        for task, agent in task_assignments(tasks, snaps, calls, self.available, policy, now):
            rt = self.dist.agents[agent.id]
            if rt.state is not AgentState.READY:
                continue
            with self.dist.held(agent.id, task.contact_id):
                ok = await self.store.run(task_store.assign_task, task.contact_id, agent.id,
                                          rt.agent.district, iso(self.clock()))
            call_came = any(rt.snapshot().eligible_for(w.call, policy, now)
                            for w in self.dist.waiting.values()
                            if w.offered_to is None)
            if call_came or not ok or not await self.dist.occupy(agent.id, task.contact_id):
                if call_came:
                    self.dist.dispatch()
                if ok:
                    await self.store.run(task_store.requeue_task, task.contact_id)
                continue
            log.info("task %s (e-mail) offered to %s", task.contact_id, agent.id)
            done.append((task.contact_id, agent.id))
            if self.on_assigned:
                self.on_assigned(agent.id, task.contact_id)
        return done

    async def complete(self, agent_id: str, contact_id: int) -> None:
        await self.store.run(task_store.finish_task, contact_id, iso(self.clock()))
        await self.dist.release(agent_id, contact_id)
        self.kick()

    async def hand_back(self, agent_id: str, contact_id: int) -> None:
        await self.store.run(task_store.requeue_task, contact_id)
        await self.dist.release(agent_id, contact_id)
        self.kick()
