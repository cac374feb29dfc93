"""`kc simulate`: what does cross-district overflow buy? A discrete-event simulation driving the
same routing core as the ACD (`acd.routing.Router`), run twice on the same callers — with the
configured overflow steps and with every caller kept in the called district.

Model
-----
- Callers arrive as a Poisson process per (district, skill) at the given rates per hour, over
  `hours`; each caller draws a language (Swedish, or English with `english_share`), a patience
  (exponential, mean `patience_mean` s: they hang up if not answered by then) and a handle time
  (log-normal, mean `handle_mean` s, coefficient of variation `handle_cv`). The same callers, with
  the same draws, are used for both runs (common random numbers), so the difference is the policy.
- Agents are logged in and ready for the whole shift; an offered call is answered at once; after
  the call the agent does the queue's wrap-up (`QueueConfig.wrap_up_seconds`), then is ready.
  Callers still waiting when the shift ends are served by the agents still there.
- Every event is followed by `Router.dispatch(now)`, and the clock also stops at
  `Router.next_wakeup(now)` — exactly how the distributor drives the core.

Figures per called district (the district the resident dialled):
- service level: answered within the queue's target (`service_level_seconds`) / (answered +
  abandoned);
- ASA: average speed of answer (wait of answered callers);
- abandon rate: abandoned / offered;
- occupancy: time the district's agents spent on calls and wrap-up / their staffed time (the shift);
- overflowed: callers answered by another district's agent.
"""
from __future__ import annotations

import argparse
import dataclasses
import heapq
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from kc.domain import AgentState
from kc.domain import OverflowStep
from kc.queue_config import QueueConfig

from .routing import AgentSnapshot, Router, RoutingPolicy, WaitingCall

# Calls per hour per skill in a district of the demo's size, and how unbalanced the districts
# are by default (the first district gets the heavy load).
DEFAULT_RATES_PER_HOUR = {"elderly-care": 12.0, "school": 7.0, "social-services": 5.0,
                          "switchboard": 4.0}
DEFAULT_WEIGHTS = (1.7, 0.6)
OVERFLOW_AFTER_SECONDS = 30.0   # --overflow-after: the file's queues overflow after this long


def uniform_queues(districts: Iterable[str], skills: Iterable[str],
                   overflow_after: float = OVERFLOW_AFTER_SECONDS) -> list[QueueConfig]:
    """Every skill x district: default service level, no wrap-up, after `overflow_after`
    seconds overflow to the other districts' agents with the skill."""
    districts, skills = list(districts), list(skills)
    out = []
    for district in districts:
        others = tuple(d for d in districts if d != district)
        for skill in skills:
            steps = (OverflowStep(overflow_after, others),) if others else ()
            out.append(QueueConfig(skill, district, overflow=steps))
    return out


@dataclass(frozen=True)
class SimCall:
    contact_id: int
    arrival: float
    district: str
    skill: str
    language: str
    patience: float
    handle: float


@dataclass
class Scenario:
    agents: list[AgentSnapshot]
    queues: list[QueueConfig]
    rates: dict[tuple[str, str], float]          # (district, skill) -> calls per hour
    hours: float = 8.0
    handle_mean: float = 240.0
    handle_cv: float = 0.7
    patience_mean: float = 150.0
    english_share: float = 0.1
    confidential_skills: frozenset[str] = frozenset()
    seed: int = 1

    @property
    def districts(self) -> list[str]:
        seen = dict.fromkeys([a.district for a in self.agents] + [d for d, _ in self.rates])
        return list(seen)


@dataclass
class DistrictFigures:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_in_target: int = 0
    wait_answered: float = 0.0
    overflowed: int = 0
    agents: int = 0
    busy_seconds: float = 0.0
    staffed_seconds: float = 0.0

    @property
    def service_level(self) -> float | None:
        n = self.answered + self.abandoned
        return self.answered_in_target / n if n else None

    @property
    def asa(self) -> float | None:
        return self.wait_answered / self.answered if self.answered else None

    @property
    def abandon_rate(self) -> float | None:
        return self.abandoned / self.offered if self.offered else None

    @property
    def occupancy(self) -> float | None:
        return self.busy_seconds / self.staffed_seconds if self.staffed_seconds else None

    def add(self, other: "DistrictFigures") -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def to_dict(self) -> dict[str, Any]:
        def r(x, n=4):
            return None if x is None else round(x, n)
        return {"offered": self.offered, "answered": self.answered, "abandoned": self.abandoned,
                "overflowed": self.overflowed, "agents": self.agents,
                "service_level": r(self.service_level), "asa_seconds": r(self.asa, 1),
                "abandon_rate": r(self.abandon_rate), "occupancy": r(self.occupancy)}


@dataclass
class SimResult:
    districts: dict[str, DistrictFigures] = field(default_factory=dict)
    decisions: int = 0
    ended_at: float = 0.0

    @property
    def total(self) -> DistrictFigures:
        out = DistrictFigures()
        for fig in self.districts.values():
            out.add(fig)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"districts": {d: f.to_dict() for d, f in self.districts.items()},
                "all": self.total.to_dict()}


# ---------------------------------------------------------------------------- the model


def generate_calls(scenario: Scenario) -> list[SimCall]:
    """The callers of one shift; the same for a given seed whatever the policy."""
    rnd = random.Random(scenario.seed)
    horizon = scenario.hours * 3600.0
    sigma = math.sqrt(math.log(1 + scenario.handle_cv ** 2))
    mu = math.log(scenario.handle_mean) - sigma ** 2 / 2
    calls: list[tuple[float, str, str]] = []
    for (district, skill), per_hour in sorted(scenario.rates.items()):
        if per_hour <= 0:
            continue
        stream = random.Random(f"{scenario.seed}/{district}/{skill}")
        t = stream.expovariate(per_hour / 3600.0)
        while t < horizon:
            calls.append((t, district, skill))
            t += stream.expovariate(per_hour / 3600.0)
    calls.sort()
    out = []
    for i, (t, district, skill) in enumerate(calls, 1):
        out.append(SimCall(i, t, district, skill,
                           "en" if rnd.random() < scenario.english_share else "sv",
                           rnd.expovariate(1.0 / scenario.patience_mean),
                           rnd.lognormvariate(mu, sigma)))
    return out


_ARRIVE, _ABANDON, _DONE, _READY, _WAKE = range(5)


def run(scenario: Scenario, policy: RoutingPolicy, calls: Iterable[SimCall] | None = None) -> SimResult:
    """One shift under `policy`; returns the figures per called district."""
    calls = list(generate_calls(scenario) if calls is None else calls)
    horizon = scenario.hours * 3600.0
    router = Router(policy)
    result = SimResult()
    for d in scenario.districts:
        result.districts[d] = DistrictFigures()
    agents: dict[str, AgentSnapshot] = {}
    for a in scenario.agents:
        snap = dataclasses.replace(a, state=AgentState.READY, registered=True, idle_since=0.0)
        agents[a.id] = snap
        router.upsert_agent(snap)
        fig = result.districts.setdefault(a.district, DistrictFigures())
        fig.agents += 1
        fig.staffed_seconds += horizon
    by_id = {c.contact_id: c for c in calls}
    events: list[tuple[float, int, int, Any]] = []
    seq = 0

    def push(t: float, kind: int, payload: Any) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, payload))

    for c in calls:
        push(c.arrival, _ARRIVE, c)
    last_wake = None
    now = 0.0
    while events:
        now, _, kind, payload = heapq.heappop(events)
        if kind == _ARRIVE:
            c: SimCall = payload
            result.districts.setdefault(c.district, DistrictFigures()).offered += 1
            router.add_call(WaitingCall(c.contact_id, c.skill, c.district, c.language,
                                        policy.priority(c.skill, c.district),
                                        c.skill in scenario.confidential_skills, c.arrival))
            push(c.arrival + c.patience, _ABANDON, c.contact_id)
        elif kind == _ABANDON:
            if router.remove_call(payload) is not None:
                result.districts[by_id[payload].district].abandoned += 1
        elif kind == _DONE:
            agent_id, c = payload
            wrap = policy.queue(c.skill, c.district).wrap_up_seconds
            if wrap > 0:
                push(now + wrap, _READY, agent_id)
                continue
            _ready(router, agents, agent_id, now)
        elif kind == _READY:
            _ready(router, agents, payload, now)
        # _WAKE: nothing but the dispatch below
        for call, agent in router.dispatch(now):
            result.decisions += 1
            c = by_id[call.contact_id]
            fig = result.districts[c.district]
            wait = now - c.arrival
            fig.answered += 1
            fig.wait_answered += wait
            if wait <= policy.queue(c.skill, c.district).service_level_seconds:
                fig.answered_in_target += 1
            if agent.district != c.district:
                fig.overflowed += 1
            busy_until = now + c.handle + policy.queue(c.skill, c.district).wrap_up_seconds
            result.districts[agent.district].busy_seconds += max(0.0, min(busy_until, horizon) - min(now, horizon))
            push(now + c.handle, _DONE, (agent.id, c))
        wake = router.next_wakeup(now)
        if wake is not None and wake > now and wake != last_wake:
            push(wake, _WAKE, None)
            last_wake = wake
    result.ended_at = now
    return result


def _ready(router: Router, agents: dict[str, AgentSnapshot], agent_id: str, now: float) -> None:
    snap = dataclasses.replace(agents[agent_id], state=AgentState.READY, idle_since=now)
    agents[agent_id] = snap
    router.upsert_agent(snap)


def compare(scenario: Scenario) -> dict[str, SimResult]:
    """The same shift with the configured overflow and with none."""
    policy = RoutingPolicy(scenario.queues, default_overflow=())
    calls = generate_calls(scenario)
    return {"without_overflow": run(scenario, policy.without_overflow(), calls),
            "with_overflow": run(scenario, policy, calls)}


# ---------------------------------------------------------------------------- scenarios


def demo_scenario(source: Path, **options: Any) -> Scenario:
    """Agents, skills and districts of an organisation file (`config/demo.yaml` by default),
    every queue overflowing to the other districts after `overflow_after` (30 s), unbalanced
    load (the first district busier) unless `rates` are given."""
    import yaml

    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    districts = [d["id"] for d in data["districts"]]
    skills = [s["id"] for s in data["skills"]]
    agents = [AgentSnapshot(a["id"], a["district"], dict(a["skills"]), tuple(a.get("cleared_for", [])),
                            AgentState.READY, True, 0.0, tuple(a.get("languages", ["sv", "en"])))
              for a in data["agents"]]
    overflow_after = options.pop("overflow_after", OVERFLOW_AFTER_SECONDS)
    return _scenario(agents, uniform_queues(districts, skills, overflow_after), districts, skills,
                     frozenset(s["id"] for s in data["skills"] if s.get("confidential")), **options)


def db_scenario(db, **options: Any) -> Scenario:
    """Agents, skills and queue configurations from a Kommuncentral database."""
    from kc import queries
    from kc.queue_config import list_queue_configs

    districts = [d.id for d in queries.list_districts(db)]
    skills = queries.list_skills(db)
    agents = [AgentSnapshot(a.id, a.district, dict(a.skills), a.cleared_for, AgentState.READY, True,
                            0.0, a.languages) for a in queries.list_agents(db)]
    options.pop("overflow_after", None)
    return _scenario(agents, list_queue_configs(db), districts, [s.id for s in skills],
                     frozenset(s.id for s in skills if s.confidential), **options)


def _scenario(agents, queues, districts, skills, confidential, *, rates=None, load=1.0,
              agents_per_skill=None, **options) -> Scenario:
    if agents_per_skill is not None:
        agents = [AgentSnapshot(f"{d}-{s}-{i}", d, {s: 3}, (d,) if s in confidential else (),
                                AgentState.READY, True, 0.0, ("sv", "en"))
                  for d in districts for s in skills for i in range(agents_per_skill)]
    if rates is None:
        rates = {}
        for i, d in enumerate(districts):
            weight = DEFAULT_WEIGHTS[min(i, len(DEFAULT_WEIGHTS) - 1)]
            for s in skills:
                rates[(d, s)] = DEFAULT_RATES_PER_HOUR.get(s, 5.0) * weight
    for district, skill in rates:
        if district not in districts or skill not in skills:
            from kc.errors import InvalidInput
            raise InvalidInput(f"--rate {district}:{skill}: unknown district or skill")
    rates = {k: v * load for k, v in rates.items()}
    return Scenario(agents=agents, queues=list(queues), rates=rates,
                    confidential_skills=confidential, **options)


# ---------------------------------------------------------------------------- report


def _pct(x: float | None) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def _secs(x: float | None) -> str:
    return "    -" if x is None else f"{x:4.0f}s"


def format_report(scenario: Scenario, results: dict[str, SimResult]) -> str:
    base, ovf = results["without_overflow"], results["with_overflow"]
    offered = base.total.offered
    targets = sorted({q.service_level_seconds for q in scenario.queues}) or [30.0]
    lines = [
        f"Simulated shift: {scenario.hours:g} h, seed {scenario.seed}; {len(scenario.agents)} agents in "
        f"{len(scenario.districts)} districts; {offered} calls offered "
        f"(mean handle {scenario.handle_mean:g} s, mean patience {scenario.patience_mean:g} s).",
        "Arrivals per hour: " + ", ".join(
            f"{d} {sum(v for (dd, _), v in scenario.rates.items() if dd == d):.1f}"
            for d in scenario.districts),
        f"Service level = answered within {'/'.join(f'{t:g}' for t in targets)} s / (answered + abandoned); "
        "ASA = average wait of answered; occupancy of the district's agents.",
        "",
        f"{'':22}{'without overflow':^28}  {'with overflow':^39}",
        f"{'district':<16}{'calls':>6}  {'SL':>6} {'ASA':>5} {'aband':>6} {'occup':>6}  "
        f"{'SL':>6} {'ASA':>5} {'aband':>6} {'occup':>6} {'overflowed':>10}",
    ]
    rows = [(d, base.districts.get(d, DistrictFigures()), ovf.districts.get(d, DistrictFigures()))
            for d in scenario.districts]
    rows.append(("all", base.total, ovf.total))
    for name, b, o in rows:
        lines.append(
            f"{name[:16]:<16}{b.offered:>6}  {_pct(b.service_level)} {_secs(b.asa)} "
            f"{_pct(b.abandon_rate)} {_pct(b.occupancy)}  {_pct(o.service_level)} {_secs(o.asa)} "
            f"{_pct(o.abandon_rate)} {_pct(o.occupancy)} {o.overflowed:>10}")
    b, o = base.total, ovf.total
    if b.service_level is not None and o.service_level is not None:
        lines += ["", f"Overflow between districts: service level {100 * b.service_level:.1f}% -> "
                      f"{100 * o.service_level:.1f}%, abandoned {b.abandoned} -> {o.abandoned} calls, "
                      f"{o.overflowed} calls answered by another district."]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same result)")
    parser.add_argument("--hours", type=float, default=8.0, help="length of the shift (8)")
    parser.add_argument("--source", choices=("demo", "db"), default="demo",
                        help="agents and queues from config/demo.yaml (default) or from var/kc.db")
    parser.add_argument("--agents-per-skill", type=int, metavar="N",
                        help="instead of the roster: N single-skill agents per skill and district")
    parser.add_argument("--rate", action="append", default=[], metavar="DISTRICT:SKILL=PER_HOUR",
                        help="arrival rate (repeatable; given rates replace the default load)")
    parser.add_argument("--load", type=float, default=1.0, help="multiply every arrival rate")
    parser.add_argument("--handle-mean", type=float, default=240.0, help="mean handle time, s (240)")
    parser.add_argument("--patience-mean", type=float, default=150.0,
                        help="mean time a caller waits before hanging up, s (150)")
    parser.add_argument("--english-share", type=float, default=0.1, help="share of English callers")
    parser.add_argument("--overflow-after", type=float, default=OVERFLOW_AFTER_SECONDS,
                        help="demo source: seconds before overflow to the other district (30)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def parse_rates(items: list[str]) -> dict[tuple[str, str], float] | None:
    from kc.errors import InvalidInput

    if not items:
        return None
    rates = {}
    for item in items:
        try:
            key, value = item.split("=", 1)
            district, skill = key.split(":", 1)
            rates[(district, skill)] = float(value)
        except ValueError:
            raise InvalidInput(f"--rate {item!r}: write DISTRICT:SKILL=CALLS_PER_HOUR") from None
    return rates


def scenario_from_args(args: argparse.Namespace, settings=None) -> Scenario:
    from kc.errors import InvalidInput

    if args.hours <= 0 or args.handle_mean <= 0 or args.patience_mean <= 0 or args.load < 0:
        raise InvalidInput("--hours, --handle-mean and --patience-mean must be positive")
    options = dict(rates=parse_rates(args.rate), load=args.load, agents_per_skill=args.agents_per_skill,
                   hours=args.hours, handle_mean=args.handle_mean, patience_mean=args.patience_mean,
                   english_share=args.english_share, seed=args.seed, overflow_after=args.overflow_after)
    if args.source == "db":
        from kc.store import Store

        store = Store(settings.db_path)
        try:
            return store.run_sync(lambda db: db_scenario(db, **options))
        finally:
            store.close()
    return demo_scenario(args.demo_file, **options)


def main(args: argparse.Namespace, settings=None) -> int:
    scenario = scenario_from_args(args, settings)
    results = compare(scenario)
    if args.json:
        print(json.dumps({k: v.to_dict() for k, v in results.items()}, indent=2, ensure_ascii=False))
    else:
        print(format_report(scenario, results))
    return 0
