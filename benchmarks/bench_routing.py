"""Benchmark: the routing core with 2,000 agents and 10,000 waiting contacts.

    .venv/bin/python benchmarks/bench_routing.py [--agents 2000] [--calls 10000] [--decisions 20000]

A city-sized centre: 13 districts, 8 skills (one confidential), agents with 1–3 skills,
Swedish plus English/Finnish/Arabic speakers; every queue overflows to two neighbouring
districts after 30 s and to every district after 90 s. Times each decision alone
(`time.perf_counter_ns`) and writes section `routing_core` of `var/bench/results.json`:
- `agent_free`: an agent frees up and takes the best of the 10,000 waiting calls
  (`Router.on_agent_free`; the call is put back afterwards so the queue stays at 10,000);
- `call_arrived`: a new caller finds the best of the free agents (`Router.on_call_arrived`;
  10 % of the agents free, across skills and districts);
- `dispatch_mixed`: the run-time loop — a stream of events (agent freed, caller arrived,
  caller hung up, clock advanced past overflow steps), each followed by `Router.dispatch(now)`;
- `batch_assignments_ms`: `assignments()` over the whole snapshot with every agent free.
Target: p99 under 1 ms per decision.
"""
from __future__ import annotations

import argparse
import dataclasses
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from acd.routing import AgentSnapshot, Router, RoutingPolicy, WaitingCall, assignments  # noqa: E402
from benchmarks.results import merge_results  # noqa: E402
from kc.domain import AgentState  # noqa: E402
from kc.queue_config import OverflowStep, QueueConfig  # noqa: E402

DISTRICTS = [f"d{i:02d}" for i in range(13)]
SKILLS = ["elderly-care", "school", "social-services", "switchboard", "housing", "parking",
          "disability", "culture"]
CONFIDENTIAL = {"social-services"}
TARGET_P99_US = 1000.0


def build_policy() -> RoutingPolicy:
    queues = []
    n = len(DISTRICTS)
    for i, district in enumerate(DISTRICTS):
        neighbours = (DISTRICTS[(i + 1) % n], DISTRICTS[(i - 1) % n])
        for skill in SKILLS:
            queues.append(QueueConfig(skill, district, overflow=(
                OverflowStep(30, neighbours), OverflowStep(90, ("*",))),
                priority=1 if skill == "switchboard" else 0))
    return RoutingPolicy(queues)


def make_agents(rnd: random.Random, n: int, now: float) -> list[AgentSnapshot]:
    agents = []
    for i in range(n):
        district = rnd.choice(DISTRICTS)
        skills = {s: rnd.randint(1, 5) for s in rnd.sample(SKILLS, rnd.randint(1, 3))}
        langs = ["sv"] + [lang for lang, p in (("en", .4), ("fi", .05), ("ar", .05)) if rnd.random() < p]
        cleared = (district,) if CONFIDENTIAL & skills.keys() else ()
        agents.append(AgentSnapshot(f"a{i:05d}", district, skills, cleared, AgentState.ON_CALL, True,
                                    now - rnd.uniform(0, 600), tuple(langs)))
    return agents


def make_call(rnd: random.Random, cid: int, at: float) -> WaitingCall:
    skill = rnd.choice(SKILLS)
    return WaitingCall(cid, skill, rnd.choice(DISTRICTS), "sv" if rnd.random() < .85 else rnd.choice(["en", "fi", "ar"]),
                       1 if rnd.random() < .1 else 0, skill in CONFIDENTIAL, at)


def stats(samples_ns: list[int]) -> dict[str, float]:
    s = sorted(samples_ns)
    total = sum(s)

    def pct(p: float) -> float:
        return round(s[min(len(s) - 1, int(p * len(s)))] / 1000, 2)

    return {"decisions": len(s), "decisions_per_second": round(len(s) / (total / 1e9)),
            "mean_us": round(statistics.fmean(s) / 1000, 2), "p50_us": pct(.50), "p99_us": pct(.99),
            "max_us": round(s[-1] / 1000, 2)}


def bench_agent_free(rnd, policy, n_agents, n_calls, n_decisions, now):
    router = Router(policy)
    agents = make_agents(rnd, n_agents, now)
    router.load(agents, [make_call(rnd, i, now - rnd.uniform(0, 600)) for i in range(n_calls)])
    router.dispatch(now)            # everyone is busy: nothing to do
    samples, hits = [], 0
    clock = time.perf_counter_ns
    for i in range(n_decisions):
        agent = rnd.choice(agents)
        t = now + i * 0.01
        free = dataclasses.replace(agent, state=AgentState.READY, idle_since=t)
        t0 = clock()
        call = router.on_agent_free(free, t)
        samples.append(clock() - t0)
        if call is not None:
            hits += 1
            router.add_call(call)                      # keep 10,000 waiting
        router.upsert_agent(agent)                     # busy again
    assert len(router) == n_calls
    return {**stats(samples), "offers": hits}


def bench_call_arrived(rnd, policy, n_agents, n_calls, n_decisions, now):
    router = Router(policy)
    agents = make_agents(rnd, n_agents, now)
    ready = [dataclasses.replace(a, state=AgentState.READY) if rnd.random() < .1 else a for a in agents]
    router.load(ready, [make_call(rnd, i, now - rnd.uniform(0, 600)) for i in range(n_calls)])
    samples, hits = [], 0
    clock = time.perf_counter_ns
    for i in range(n_decisions):
        call = make_call(rnd, 10**6 + i, now - rnd.choice([0, 0, 0, 40, 120]))
        t0 = clock()
        agent = router.on_call_arrived(call, now)
        samples.append(clock() - t0)
        if agent is None:
            router.remove_call(call.contact_id)
        else:
            hits += 1
            router.upsert_agent(agent)                 # free again for the next decision
    assert len(router) == n_calls
    return {**stats(samples), "offers": hits}


def bench_dispatch_mixed(rnd, policy, n_agents, n_calls, n_decisions, now):
    router = Router(policy)
    agents = {a.id: a for a in make_agents(rnd, n_agents, now)}
    next_id = n_calls
    router.load(agents.values(), [make_call(rnd, i, now - rnd.uniform(0, 600)) for i in range(n_calls)])
    router.dispatch(now)
    busy = list(agents)
    samples, offers = [], 0
    clock = time.perf_counter_ns
    t = now
    for _ in range(n_decisions):
        r = rnd.random()
        t += rnd.expovariate(20)          # 20 events a second
        if r < .45 and busy:              # an agent's call ends: ready again
            i = rnd.randrange(len(busy))
            busy[i], busy[-1] = busy[-1], busy[i]
            agent_id = busy.pop()
            router.upsert_agent(dataclasses.replace(agents[agent_id], state=AgentState.READY,
                                                    idle_since=t))
        elif r < .9:                      # a caller arrives
            router.add_call(make_call(rnd, next_id, t))
            next_id += 1
        elif len(router):                 # a caller hangs up
            router.remove_call(rnd.randrange(next_id))
        t0 = clock()
        out = router.dispatch(t)
        samples.append(clock() - t0)
        for offer in out:                 # answered at once: on call
            offers += 1
            busy.append(offer.agent.id)
            router.upsert_agent(dataclasses.replace(agents[offer.agent.id], state=AgentState.ON_CALL))
    return {**stats(samples), "offers": offers, "waiting_at_end": len(router)}


def bench_batch(rnd, policy, n_agents, n_calls, now):
    agents = [dataclasses.replace(a, state=AgentState.READY) for a in make_agents(rnd, n_agents, now)]
    calls = [make_call(rnd, i, now - rnd.uniform(0, 600)) for i in range(n_calls)]
    t0 = time.perf_counter()
    out = assignments(calls, agents, policy, now)
    return {"batch_assignments_ms": round((time.perf_counter() - t0) * 1000, 1),
            "batch_offers": len(out)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--decisions", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    policy = build_policy()
    now = 1_000_000.0
    result: dict = {"agents": args.agents, "waiting_contacts": args.calls,
                    "districts": len(DISTRICTS), "skills": len(SKILLS),
                    "python": platform.python_version(), "target_p99_us": TARGET_P99_US,
                    "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for name, fn in (("agent_free", bench_agent_free), ("call_arrived", bench_call_arrived),
                     ("dispatch_mixed", bench_dispatch_mixed)):
        rnd = random.Random(args.seed)
        result[name] = fn(rnd, policy, args.agents, args.calls, args.decisions, now)
        r = result[name]
        print(f"{name:15s} {r['decisions']:6d} decisions  {r['decisions_per_second']:8d}/s  "
              f"p50 {r['p50_us']:7.1f} µs  p99 {r['p99_us']:7.1f} µs  max {r['max_us']:8.1f} µs  "
              f"offers {r['offers']}", flush=True)
    result.update(bench_batch(random.Random(args.seed), policy, args.agents, args.calls, now))
    print(f"batch assignments() over {args.agents} free agents × {args.calls} calls: "
          f"{result['batch_assignments_ms']} ms, {result['batch_offers']} offers")
    worst = max(result[k]["p99_us"] for k in ("agent_free", "call_arrived", "dispatch_mixed"))
    result["p99_us_worst"] = worst
    result["meets_target"] = worst < TARGET_P99_US
    path = merge_results("routing_core", result)
    print(f"p99 worst {worst} µs (target < {TARGET_P99_US:.0f} µs): "
          f"{'OK' if result['meets_target'] else 'MISSED'}; written to {path}")
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
