"""What every part of the distributor shares: the clock, the router and its policy, the agents,
callers and calls held in memory, the change listeners and the background tasks.

The distributor's parts (agents, waiting room, calls, call-backs, transfers, recovery) each
hold this one `Floor`; none keeps a copy of what is here. It runs on the event loop; all
changes happen in one task at a time, so no locks are needed.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from kc.clock import Clock
from kc.domain import Skill
from kc.queue_config import queue_name
from kc.store import Store
from kc.telemetry import Telemetry

from .options import AcdOptions
from .records import Records
from .routing import Router, RoutingPolicy
from .telephony import Telephony

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .agents import AgentRuntime
    from .calls import Connected
    from .waiting import Waiting


class WaitingCallers(dict):
    """contact id -> `Waiting`: a dict that counts its changes (`version`), so what is derived
    from who waits in what order (the places announced to callers) is computed once per change,
    not once per question. A change to an entry's order (its priority) calls `touch`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.version = 0

    def touch(self) -> None:
        self.version += 1

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.version += 1

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self.version += 1

    def pop(self, *args: Any) -> Any:
        self.version += 1
        return super().pop(*args)

    def popitem(self) -> Any:
        self.version += 1
        return super().popitem()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self.version += 1
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self.version += 1

    def clear(self) -> None:
        super().clear()
        self.version += 1


@dataclass
class Floor:
    store: Store
    telephony: Telephony
    clock: Clock
    records: Records
    ring_timeout: float = 15.0
    wrap_up_seconds: float = 0.0      # for queues without a configuration
    options: AcdOptions = field(default_factory=AcdOptions)
    telemetry: Telemetry = field(default_factory=Telemetry)   # call steps and timings (kc.telemetry)
    policy: RoutingPolicy = field(default_factory=RoutingPolicy)
    router: Router = field(default_factory=Router)   # free agents and unoffered callers, indexed
    agents: dict[str, "AgentRuntime"] = field(default_factory=dict)
    skills: dict[str, Skill] = field(default_factory=dict)
    waiting: WaitingCallers = field(default_factory=WaitingCallers)
    connected: dict[int, "Connected"] = field(default_factory=dict)
    leg_channels: dict[str, str] = field(default_factory=dict)   # agent leg uniqueid -> channel name
    # a cluster of Asterisk nodes: agent -> the node their phone registers on (empty: one PBX)
    agent_nodes: dict[str, str] = field(default_factory=dict)
    handle_times: dict[str, deque] = field(default_factory=dict)   # skill -> recent handle seconds
    on_change: list[Callable[[], None]] = field(default_factory=list)
    tasks: set[asyncio.Task] = field(default_factory=set)
    # offer waiting callers to free agents: the waiting room sets it, every part may call it
    dispatch: Callable[[], None] = lambda: None

    def now(self) -> float:
        return self.clock().timestamp()

    def spawn(self, coro: Any) -> None:
        """Run `coro` as a task of the floor; its failure is logged with what it was about
        (the contact, the channel) and the floor's listeners are told, never left unread."""
        about = _about(coro)
        task = asyncio.create_task(coro)
        self.tasks.add(task)

        def done(task: asyncio.Task) -> None:
            self.tasks.discard(task)
            if task.cancelled() or task.exception() is None:
                return
            exc = task.exception()
            log.error("%s failed: %s: %s", about, type(exc).__name__, exc, exc_info=exc)
            self.changed()
        task.add_done_callback(done)

    def changed(self) -> None:
        """Every listener told (one that fails is logged and does not keep the news from the
        others: a desk's failure must not leave the wallboard stale)."""
        for callback in list(self.on_change):
            try:
                callback()
            except Exception:
                log.exception("a listener of the floor's changes failed")

    def wrap_up_for(self, skill: str, district: str) -> float:
        """The queue's configured wrap-up; `wrap_up_seconds` for queues without one."""
        for q in self.policy.queues:
            if q.skill == skill and q.district == district:
                return q.wrap_up_seconds
        return self.wrap_up_seconds

    def served_queues(self, agent: Any) -> list[str]:
        """The queues an agent is a member of, for queue_log (app_queue writes member lines
        per queue): each configured queue of the agent's district for a skill they have; a
        skill without a configured queue there counts as its queue `skill@district`."""
        configured = {(q.skill, q.district) for q in self.policy.queues}
        return sorted(queue_name(skill, agent.district) for skill in agent.skills
                      if (skill, agent.district) in configured or not configured)

    def remember_handle_time(self, skill: str, seconds: float) -> None:
        self.handle_times.setdefault(skill, deque(maxlen=50)).append(seconds)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def _about(coro: Any) -> str:
    """What a task is about, for its log line: its name and the contact or channel it got."""
    name = getattr(coro, "__qualname__", repr(coro))
    frame = getattr(coro, "cr_frame", None)
    args = frame.f_locals if frame is not None else {}
    found = [f"{key} {args[key]}" for key in ("contact_id", "uniqueid", "agent_id", "new_id")
             if args.get(key) not in (None, "")]
    conn = args.get("conn") or args.get("entry")
    if not found and conn is not None:
        cid = getattr(conn, "contact_id", None) or getattr(getattr(conn, "call", None), "contact_id", None)
        if cid is not None:
            found.append(f"contact_id {cid}")
    return f"task {name}" + (f" ({', '.join(found)})" if found else "")
