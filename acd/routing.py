"""Who takes which caller: the pure routing core. No I/O; the clock is passed in as numbers.

Vocabulary
----------
- `WaitingCall`: a caller waiting for an agent of a skill, with the called district, language,
  priority (higher first), confidentiality and enqueue time (seconds on the caller's clock).
- `AgentSnapshot`: an agent's skills (proficiency 1–5), home district, the districts whose
  confidential matters they are cleared for, state, whether their phone is registered, since
  when they are idle, and the languages they speak. Only READY and registered agents are free.
- `RoutingPolicy`: the queue configurations (`kc.domain.QueueConfig`, one per
  skill × district) the core needs: overflow steps. Queues without a configuration get the
  policy's default steps, which by default let every district's agents take the call at once
  (home district still first) — the behaviour before queues were configurable.

Policy
------
A call of queue (skill S, called district D) may go to a free agent with skill S when
  1. the agent's district is D (tier 0), or it is named in overflow step k of the queue
     (``"*"``: every district not named in an earlier step) and the call has waited at least
     that step's ``after_seconds``, i.e. ``enqueued_at + after_seconds <= now`` (tier k, the
     first step naming the district), and
  2. the call is not confidential, or the agent is cleared for D — however long the wait.
Among the agents a call may go to, it goes to the best by
  (tier, language mismatch, -proficiency, idle_since, agent id):
earlier overflow steps first, then an agent who speaks the caller's language (language is a
preference inside a tier, never a reason to leave a caller waiting or to overflow sooner), then
the best proficiency, then the longest idle.
An agent who frees up takes, among the calls they may take, the best by
  (-priority, enqueued_at, contact id):
the highest priority, then the longest waiting, across all their skills — FIFO within a
priority. Language does not reorder callers.

`pick_agent`, `pick_call` and `reference_assignments` state this policy plainly (linear scans;
the tests use them as the oracle). `Router` implements the same decisions with indexes —
free agents in heaps per (skill, district, language, clearance), waiting calls in heaps per
(skill, district, confidentiality, priority) — so that one decision costs a few dozen heap
peeks regardless of how many agents and callers there are. `assignments` is the batch form.

Using `Router` at run time
--------------------------
Keep the router in step with the world (`upsert_agent` on every agent change, `add_call` /
`remove_call` for callers), then call ``dispatch(now)``: it returns the offers to make and
records them — an offered call is no longer waiting and the agent is no longer free, so no
agent is ever offered two calls. On ring-no-answer, `add_call` the same call again (its
original `enqueued_at` puts it back at the head of its queue) and `upsert_agent` the paused
agent. After each dispatch, ``next_wakeup(now)`` says when an overflow step could next change
the result (None: not before some other event); call ``dispatch`` then.
"""
from __future__ import annotations

import dataclasses
import heapq
import math
from dataclasses import dataclass
from typing import Iterable, Iterator, NamedTuple

from kc.domain import AgentState
from kc.domain import ANY_DISTRICT, EscalationStep, OverflowStep, QueueConfig

# Before queues were configurable every district's agents could take a call at once (home first).
IMMEDIATE_ANYWHERE: tuple[OverflowStep, ...] = (OverflowStep(0.0, (ANY_DISTRICT,)),)


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
    languages: tuple[str, ...] = ()   # none listed: never counts as a language match

    @property
    def free(self) -> bool:
        return self.state is AgentState.READY and self.registered

    def eligible_for(self, call: WaitingCall, policy: "RoutingPolicy | None" = None,
                     now: float | None = None) -> bool:
        """May this agent be offered `call` now? Without a policy: any district (skeleton)."""
        return agent_rank(call, self, policy, now) is not None


class Offer(NamedTuple):
    call: WaitingCall
    agent: AgentSnapshot      # as it was when chosen (READY); the router now holds it RINGING


# ---------------------------------------------------------------------------------- policy


class RoutingPolicy:
    """Queue configurations as the core needs them; immutable once built."""

    def __init__(self, queues: Iterable[QueueConfig] = (),
                 default_overflow: Iterable[OverflowStep] = IMMEDIATE_ANYWHERE) -> None:
        self._queues: dict[tuple[str, str], QueueConfig] = {(q.skill, q.district): q for q in queues}
        self.default_overflow: tuple[OverflowStep, ...] = tuple(default_overflow)
        self._reach: dict[tuple[str, str, str], tuple[int, float] | None] = {}

    @classmethod
    def from_configs(cls, queues: Iterable[QueueConfig]) -> "RoutingPolicy":
        return cls(queues)

    def without_overflow(self) -> "RoutingPolicy":
        """The same queues, but every caller stays with the called district (for comparison)."""
        return RoutingPolicy((dataclasses.replace(q, overflow=()) for q in self._queues.values()),
                             default_overflow=())

    @property
    def queues(self) -> list[QueueConfig]:
        return list(self._queues.values())

    def queue(self, skill: str, district: str) -> QueueConfig:
        """The configuration of queue (skill, district), or the default one."""
        q = self._queues.get((skill, district))
        if q is None:
            q = QueueConfig(skill, district, overflow=self.default_overflow)
        return q

    def steps(self, skill: str, district: str) -> tuple[OverflowStep, ...]:
        q = self._queues.get((skill, district))
        return q.overflow if q is not None else self.default_overflow

    def priority(self, skill: str, district: str) -> int:
        q = self._queues.get((skill, district))
        return q.priority if q is not None else 0

    def escalation(self, skill: str, district: str) -> tuple[EscalationStep, ...]:
        q = self._queues.get((skill, district))
        return q.escalation if q is not None else ()

    @property
    def escalates(self) -> bool:
        """Does any queue raise its callers' priority with the wait?"""
        return any(q.escalation for q in self._queues.values())

    def reach(self, skill: str, call_district: str, agent_district: str) -> tuple[int, float] | None:
        """(tier, after_seconds) at which agents of `agent_district` may take calls of queue
        (skill, call_district): (0, 0) at home, (k, s) via overflow step k; None: never."""
        key = (skill, call_district, agent_district)
        try:
            return self._reach[key]
        except KeyError:
            pass
        found: tuple[int, float] | None = None
        if agent_district == call_district:
            found = (0, 0.0)
        else:
            for tier, step in enumerate(self.steps(skill, call_district), 1):
                if agent_district in step.districts or ANY_DISTRICT in step.districts:
                    found = (tier, step.after_seconds)
                    break
        self._reach[key] = found
        return found


DEFAULT_POLICY = RoutingPolicy()


# ------------------------------------------------------------------ the policy, stated plainly


def escalated_priority(base: int, waited: float, steps: Iterable[EscalationStep]) -> tuple[int, float | None]:
    """(the priority of a caller of base priority `base` who has waited `waited` seconds under
    the queue's escalation steps, the wait at which it rises next or None). Pure: the clock is
    the caller's."""
    priority, following = base, None
    for step in steps:
        if waited >= step.after_seconds:
            priority = base + step.raise_by
        else:
            following = step.after_seconds
            break
    return priority, following


def call_order(call: WaitingCall) -> tuple:
    return (-call.priority, call.enqueued_at, call.contact_id)


def agent_rank(call: WaitingCall, agent: AgentSnapshot, policy: RoutingPolicy | None = None,
               now: float | None = None) -> tuple | None:
    """The agent's rank for this call (lower is better), or None if they may not take it now.
    Without `now`, every overflow step counts as reached."""
    if not agent.free:
        return None
    proficiency = agent.skills.get(call.skill)
    if proficiency is None:
        return None
    if call.confidential and call.district not in agent.cleared_for:
        return None
    reach = (policy or DEFAULT_POLICY).reach(call.skill, call.district, agent.district)
    if reach is None:
        return None
    tier, after = reach
    if now is not None and call.enqueued_at + after > now:
        return None
    return (tier, call.language not in agent.languages, -proficiency, agent.idle_since, agent.id)


def agent_order(call: WaitingCall, agent: AgentSnapshot) -> tuple:
    """Kept for callers of the skeleton: the rank without eligibility checks or overflow steps."""
    return (agent.district != call.district, call.language not in agent.languages,
            -agent.skills[call.skill], agent.idle_since, agent.id)


def pick_agent(call: WaitingCall, agents: Iterable[AgentSnapshot],
               policy: RoutingPolicy | None = None, now: float | None = None) -> AgentSnapshot | None:
    """The agent this call goes to (linear scan; the reference for `Router`)."""
    best, best_rank = None, None
    for agent in agents:
        rank = agent_rank(call, agent, policy, now)
        if rank is not None and (best_rank is None or rank < best_rank):
            best, best_rank = agent, rank
    return best


def pick_call(agent: AgentSnapshot, calls: Iterable[WaitingCall],
              policy: RoutingPolicy | None = None, now: float | None = None) -> WaitingCall | None:
    """The call a free agent takes (linear scan; the reference for `Router`)."""
    eligible = [c for c in calls if agent_rank(c, agent, policy, now) is not None]
    return min(eligible, key=call_order) if eligible else None


def reference_assignments(calls: Iterable[WaitingCall], agents: Iterable[AgentSnapshot],
                          policy: RoutingPolicy | None = None,
                          now: float | None = None) -> list[tuple[WaitingCall, AgentSnapshot]]:
    """Callers in `call_order`, each to its best free agent (linear scans; the test oracle)."""
    free = {a.id: a for a in agents if a.free}
    out = []
    for call in sorted(calls, key=call_order):
        agent = pick_agent(call, free.values(), policy, now)
        if agent is not None:
            out.append((call, agent))
            del free[agent.id]
    return out


def assignments(calls: Iterable[WaitingCall], agents: Iterable[AgentSnapshot],
                policy: RoutingPolicy | None = None,
                now: float | None = None) -> list[tuple[WaitingCall, AgentSnapshot]]:
    """Match waiting callers to free agents: callers in `call_order`, each to its best free
    agent; no agent gets two calls. Without `now`, every overflow step counts as reached.
    Same result as `reference_assignments`, computed with the indexes of `Router`."""
    router = Router(policy)
    router.load(agents, calls)
    return [tuple(o) for o in router.dispatch(math.inf if now is None else now)]


# ---------------------------------------------------------------------------------- router


class _Heap:
    """A binary heap with lazy deletion; `live` counts the valid entries."""
    __slots__ = ("heap", "live")

    def __init__(self) -> None:
        self.heap: list[tuple] = []
        self.live = 0


class _Agent:
    __slots__ = ("snap", "free", "version", "keys")

    def __init__(self, snap: AgentSnapshot) -> None:
        self.snap = snap
        self.free = False
        self.version = 0
        self.keys: tuple[tuple, ...] = ()


class _Call:
    __slots__ = ("call", "seq")

    def __init__(self, call: WaitingCall, seq: int) -> None:
        self.call = call
        self.seq = seq


class Router:
    """The routing policy with indexes, kept up to date incrementally. Not thread-safe."""

    def __init__(self, policy: RoutingPolicy | None = None) -> None:
        self.policy = policy or DEFAULT_POLICY
        self._agents: dict[str, _Agent] = {}
        # free agents: (skill, district, language or None, cleared district or None) -> heap of
        # (-proficiency, idle_since, agent id, version)
        self._abuckets: dict[tuple, _Heap] = {}
        self._free_districts: dict[str, dict[str, int]] = {}   # skill -> district -> free agents
        self._free_count = 0
        # waiting calls: skill -> district -> confidential -> priority -> heap of
        # (enqueued_at, contact id, seq)
        self._calls: dict[int, _Call] = {}
        self._cbuckets: dict[str, dict[str, dict[bool, dict[int, _Heap]]]] = {}
        self._due: list[tuple[float, int, int]] = []            # (time, contact id, seq)
        self._seq = 0
        self._dirty_agents: set[str] = set()
        self._dirty_calls: set[int] = set()

    # ------------------------------------------------------------------ state
    def load(self, agents: Iterable[AgentSnapshot], calls: Iterable[WaitingCall]) -> None:
        """Start from a snapshot, as `assignments` does: callers then pick agents in call order."""
        for agent in agents:
            self.upsert_agent(agent)
        self._dirty_agents.clear()
        for call in calls:
            self.add_call(call)

    def set_policy(self, policy: RoutingPolicy) -> None:
        """New queue configurations: every waiting call is looked at again on the next dispatch."""
        self.policy = policy
        self._due = []
        for entry in self._calls.values():
            self._schedule(entry)
            self._dirty_calls.add(entry.call.contact_id)

    def upsert_agent(self, agent: AgentSnapshot) -> None:
        """Add an agent or replace what the router knows of them (state, skills, idle_since...)."""
        entry = self._agents.get(agent.id)
        if entry is None:
            entry = self._agents[agent.id] = _Agent(agent)
        elif entry.snap == agent:
            return
        if entry.free:
            self._unindex(entry)
        entry.snap = agent
        if agent.free:
            self._index(entry)
            self._dirty_agents.add(agent.id)

    def remove_agent(self, agent_id: str) -> None:
        entry = self._agents.pop(agent_id, None)
        if entry is not None and entry.free:
            self._unindex(entry)
        self._dirty_agents.discard(agent_id)

    def agent(self, agent_id: str) -> AgentSnapshot | None:
        entry = self._agents.get(agent_id)
        return entry.snap if entry else None

    def free_agents(self) -> Iterator[AgentSnapshot]:
        return (e.snap for e in self._agents.values() if e.free)

    def add_call(self, call: WaitingCall) -> None:
        """A caller waits (or waits again after ring-no-answer: same `enqueued_at`)."""
        if call.contact_id in self._calls:
            self.remove_call(call.contact_id)
        self._seq += 1
        entry = self._calls[call.contact_id] = _Call(call, self._seq)
        prios = self._cbuckets.setdefault(call.skill, {}).setdefault(call.district, {}) \
            .setdefault(call.confidential, {})
        heap = prios.get(call.priority)
        if heap is None:
            heap = prios[call.priority] = _Heap()
        heapq.heappush(heap.heap, (call.enqueued_at, call.contact_id, entry.seq))
        heap.live += 1
        if len(heap.heap) > 2 * heap.live + 16:
            self._rebuild_calls(heap)
        self._schedule(entry)
        self._dirty_calls.add(call.contact_id)

    def remove_call(self, contact_id: int) -> WaitingCall | None:
        """The caller left, was answered elsewhere, or is gone for another reason."""
        entry = self._calls.pop(contact_id, None)
        if entry is None:
            return None
        call = entry.call
        dmap = self._cbuckets[call.skill]
        confmap = dmap[call.district]
        prios = confmap[call.confidential]
        heap = prios[call.priority]
        heap.live -= 1
        if heap.live == 0:
            del prios[call.priority]
            if not prios:
                del confmap[call.confidential]
                if not confmap:
                    del dmap[call.district]
                    if not dmap:
                        del self._cbuckets[call.skill]
        self._dirty_calls.discard(contact_id)
        return call

    def waiting(self) -> Iterator[WaitingCall]:
        return (e.call for e in self._calls.values())

    def __contains__(self, contact_id: int) -> bool:
        return contact_id in self._calls

    def __len__(self) -> int:
        return len(self._calls)

    # ------------------------------------------------------------------ decisions
    def dispatch(self, now: float) -> list[Offer]:
        """Every offer to make now, recorded (calls leave the waiting set, agents stop being
        free). Afterwards no free agent may take any waiting call. Agents freed since the last
        dispatch choose first, longest idle first, each taking their best call (unless a better
        free agent for that call was freed at the same time); then new callers, and callers
        that reached an overflow step, in `call_order`, each to their best agent."""
        due = self._due
        while due and due[0][0] <= now:
            _, cid, seq = heapq.heappop(due)
            entry = self._calls.get(cid)
            if entry is not None and entry.seq == seq:
                self._dirty_calls.add(cid)
        offers: list[Offer] = []
        if self._dirty_agents:
            agents = [self._agents[a] for a in self._dirty_agents if a in self._agents]
            self._dirty_agents = set()
            agents.sort(key=lambda e: (e.snap.idle_since, e.snap.id))
            for entry in agents:
                while entry.free:
                    cid = self._best_call(entry, now)
                    if cid is None:
                        break
                    call = self._calls[cid].call
                    chosen = self._best_agent(call, now)   # a better agent freed at the same time?
                    if chosen is None:                      # cannot happen; never offer blindly
                        break
                    offers.append(self._reserve(cid, chosen))
        if self._dirty_calls:
            calls = [self._calls[c].call for c in self._dirty_calls]
            self._dirty_calls = set()
            if self._free_count:
                calls.sort(key=call_order)
                for call in calls:
                    if not self._free_count:
                        break
                    chosen = self._best_agent(call, now)
                    if chosen is not None:
                        offers.append(self._reserve(call.contact_id, chosen))
        return offers

    def on_agent_free(self, agent: AgentSnapshot, now: float) -> WaitingCall | None:
        """Incremental: this agent is free now — which call do they take? Records the offer.
        (For one event at a time; `dispatch` also handles simultaneous events.)"""
        self.upsert_agent(agent)
        self._dirty_agents.discard(agent.id)
        entry = self._agents[agent.id]
        if not entry.free:
            return None
        cid = self._best_call(entry, now)
        if cid is None:
            return None
        return self._reserve(cid, agent.id).call

    def on_call_arrived(self, call: WaitingCall, now: float) -> AgentSnapshot | None:
        """Incremental: this caller starts waiting — which agent gets them? Records the offer;
        if none, the call waits."""
        self.add_call(call)
        self._dirty_calls.discard(call.contact_id)
        chosen = self._best_agent(call, now) if self._free_count else None
        if chosen is None:
            return None
        return self._reserve(call.contact_id, chosen).agent

    def best_agent_for(self, call: WaitingCall, now: float) -> AgentSnapshot | None:
        """Query only (nothing recorded): the free agent `call` would go to."""
        chosen = self._best_agent(call, now)
        return self._agents[chosen].snap if chosen is not None else None

    def best_call_for(self, agent_id: str, now: float) -> WaitingCall | None:
        """Query only (nothing recorded): the waiting call this free agent would take."""
        entry = self._agents.get(agent_id)
        if entry is None or not entry.free:
            return None
        cid = self._best_call(entry, now)
        return self._calls[cid].call if cid is not None else None

    def next_wakeup(self, now: float) -> float | None:
        """The earliest time at which a waiting call reaches an overflow step while an agent is
        free — the next moment `dispatch` could give a different answer without any other event
        (agent or caller change). May be <= now if `dispatch(now)` has not run. None: no such
        moment; ask again after the next event."""
        if not self._free_count:
            return None
        due = self._due
        while due:
            _, cid, seq = due[0]
            entry = self._calls.get(cid)
            if entry is not None and entry.seq == seq:
                return due[0][0]
            heapq.heappop(due)
        return None

    # ------------------------------------------------------------------ internals
    def _schedule(self, entry: _Call) -> None:
        call = entry.call
        last = None
        for step in self.policy.steps(call.skill, call.district):
            if step.after_seconds > 0 and step.after_seconds != last:
                heapq.heappush(self._due, (call.enqueued_at + step.after_seconds,
                                           call.contact_id, entry.seq))
                last = step.after_seconds

    def _index(self, entry: _Agent) -> None:
        snap = entry.snap
        entry.version += 1
        entry.free = True
        self._free_count += 1
        keys = []
        langs = (None, *snap.languages)
        clear = (None, *snap.cleared_for)
        item_tail = (snap.idle_since, snap.id, entry.version)
        for skill, proficiency in snap.skills.items():
            districts = self._free_districts.setdefault(skill, {})
            districts[snap.district] = districts.get(snap.district, 0) + 1
            item = (-proficiency, *item_tail)
            for lang in langs:
                for cleared in clear:
                    key = (skill, snap.district, lang, cleared)
                    keys.append(key)
                    heap = self._abuckets.get(key)
                    if heap is None:
                        heap = self._abuckets[key] = _Heap()
                    heapq.heappush(heap.heap, item)
                    heap.live += 1
                    if len(heap.heap) > 2 * heap.live + 16:
                        self._rebuild_agents(heap)
        entry.keys = tuple(keys)

    def _unindex(self, entry: _Agent) -> None:
        snap = entry.snap
        entry.version += 1
        entry.free = False
        self._free_count -= 1
        for skill in snap.skills:
            districts = self._free_districts[skill]
            n = districts[snap.district] - 1
            if n:
                districts[snap.district] = n
            else:
                del districts[snap.district]
        for key in entry.keys:
            heap = self._abuckets[key]
            heap.live -= 1
            if heap.live == 0:
                heap.heap.clear()
        entry.keys = ()

    def _rebuild_agents(self, heap: _Heap) -> None:
        agents = self._agents
        heap.heap = [e for e in heap.heap
                     if (a := agents.get(e[2])) is not None and a.free and a.version == e[3]]
        heapq.heapify(heap.heap)

    def _rebuild_calls(self, heap: _Heap) -> None:
        calls = self._calls
        heap.heap = [e for e in heap.heap if (c := calls.get(e[1])) is not None and c.seq == e[2]]
        heapq.heapify(heap.heap)

    def _top_agent(self, heap: _Heap) -> tuple | None:
        h = heap.heap
        agents = self._agents
        while h:
            e = h[0]
            a = agents.get(e[2])
            if a is not None and a.free and a.version == e[3]:
                return e
            heapq.heappop(h)
        return None

    def _best_agent(self, call: WaitingCall, now: float) -> str | None:
        districts = self._free_districts.get(call.skill)
        if not districts:
            return None
        skill, home, language = call.skill, call.district, call.language
        cleared = home if call.confidential else None
        reach = self.policy.reach
        buckets = self._abuckets
        best: tuple | None = None
        for district in districts:
            r = reach(skill, home, district)
            if r is None:
                continue
            tier, after = r
            if call.enqueued_at + after > now or (best is not None and tier > best[0]):
                continue
            heap = buckets.get((skill, district, language, cleared))
            if heap is not None and heap.live:
                top = self._top_agent(heap)
                if top is not None:
                    rank = (tier, False, top[0], top[1], top[2])
                    if best is None or rank < best:
                        best = rank
            if best is not None and best[0] == tier and not best[1]:
                # a speaker of the language in this tier: the all-languages bucket can only
                # beat it with another speaker, who is in the language bucket already
                continue
            heap = buckets.get((skill, district, None, cleared))
            if heap is not None and heap.live:
                top = self._top_agent(heap)
                if top is not None:
                    mismatch = language not in self._agents[top[2]].snap.languages
                    rank = (tier, mismatch, top[0], top[1], top[2])
                    if best is None or rank < best:
                        best = rank
        return best[4] if best is not None else None

    def _best_call(self, entry: _Agent, now: float) -> int | None:
        snap = entry.snap
        district, cleared = snap.district, snap.cleared_for
        reach = self.policy.reach
        calls = self._calls
        pop = heapq.heappop
        best: tuple | None = None
        for skill in snap.skills:
            dmap = self._cbuckets.get(skill)
            if not dmap:
                continue
            for home, confmap in dmap.items():
                r = reach(skill, home, district)
                if r is None:
                    continue
                after = r[1]
                for confidential, prios in confmap.items():
                    if confidential and home not in cleared:
                        continue
                    for priority, heap in prios.items():
                        if best is not None and -priority > best[0]:
                            continue
                        h = heap.heap
                        while h:                                  # drop stale tops
                            top = h[0]
                            c = calls.get(top[1])
                            if c is not None and c.seq == top[2]:
                                break
                            pop(h)
                        else:
                            continue
                        if top[0] + after > now:                  # not yet overflowed
                            continue
                        if best is None or (-priority, top[0], top[1]) < best:
                            best = (-priority, top[0], top[1])
        return best[2] if best is not None else None

    def _reserve(self, contact_id: int, agent_id: str) -> Offer:
        call = self.remove_call(contact_id)
        entry = self._agents[agent_id]
        snap = entry.snap
        self._unindex(entry)
        entry.snap = dataclasses.replace(snap, state=AgentState.RINGING)
        self._dirty_agents.discard(agent_id)
        assert call is not None
        return Offer(call, snap)
