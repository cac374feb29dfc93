"""What telling operations costs the calls: one call step told to the structured call log and
the metrics (both listening, as in the service), and one `/metrics` scrape of a large centre.

    .venv/bin/python benchmarks/bench_telemetry.py [--steps 20000] [--agents 2000] [--waiting 1000]

Targets: a step's median under 50 µs (a call has about ten, on the event loop; the agent's
phone is rung before any of them), a scrape of 2,000 agents and 1,000 waiting callers under
100 ms (median). The p99 is written too, with the load average: on a shared machine it is the
other processes' (a listener that does nothing has a p99 of tens of µs there).
Writes section `telemetry` of `var/bench/results.json`.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.results import merge_results  # noqa: E402
from kc.domain import AgentState, QueueConfig  # noqa: E402
from kc.telemetry import StepLog, Telemetry  # noqa: E402
from kommuncentral.metrics import Metrics  # noqa: E402

STEP_P50_US = 50.0
SCRAPE_MS = 100.0


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def floor(rnd: random.Random, agents: int, waiting: int, now: float) -> SimpleNamespace:
    districts = [f"d{i}" for i in range(14)]
    skills = [f"s{i}" for i in range(6)]
    states = list(AgentState)
    return SimpleNamespace(
        now=lambda: now,
        policy=SimpleNamespace(queues=[QueueConfig(s, d) for d in districts for s in skills],
                               queue=lambda s, d: QueueConfig(s, d)),
        agents={f"a{i}": SimpleNamespace(agent=SimpleNamespace(district=rnd.choice(districts)),
                                         state=rnd.choice(states)) for i in range(agents)},
        waiting={i: SimpleNamespace(call=SimpleNamespace(district=rnd.choice(districts),
                                                         skill=rnd.choice(skills),
                                                         enqueued_at=now - rnd.uniform(0, 600)))
                 for i in range(waiting)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--waiting", type=int, default=1000)
    args = parser.parse_args(argv)
    rnd = random.Random(1)
    clock = lambda: datetime.now(timezone.utc)   # noqa: E731
    metrics, telemetry = Metrics("bench", clock), Telemetry()
    metrics.listen(telemetry)
    with tempfile.TemporaryDirectory() as tmp:
        steps_log = StepLog(Path(tmp) / "calls.jsonl", "bench")
        telemetry.on_step(steps_log)
        metrics.sources.distributor = floor(rnd, args.agents, args.waiting, time.time())
        samples = []
        for i in range(args.steps):
            step = ("enqueued", "offered", "connected", "completed")[i % 4]
            t0 = time.perf_counter_ns()
            telemetry.step("acd", step, i, district=f"d{i % 14}", queue=f"s{i % 6}",
                           agent="a1", wait=1.5, overflowed=False)
            samples.append((time.perf_counter_ns() - t0) / 1000)
        steps_log.close()
        scrapes = []
        for _ in range(20):
            t0 = time.perf_counter()
            body, _ = asyncio.run(metrics.render())
            scrapes.append((time.perf_counter() - t0) * 1000)
    result = {"steps": args.steps, "step_p50_us": round(pct(samples, 0.5), 1),
              "step_p99_us": round(pct(samples, 0.99), 1), "agents": args.agents,
              "waiting": args.waiting, "scrape_ms_best": round(min(scrapes), 1),
              "scrape_ms_median": round(pct(scrapes, 0.5), 1), "scrape_bytes": len(body),
              "load_average": round(os.getloadavg()[0], 1),
              "targets": {"step_p50_us": STEP_P50_US, "scrape_ms": SCRAPE_MS},
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    result["meets_target"] = (result["step_p50_us"] < STEP_P50_US
                              and result["scrape_ms_median"] < SCRAPE_MS)
    path = merge_results("telemetry", result)
    print(f"call step p50 {result['step_p50_us']} µs, p99 {result['step_p99_us']} µs "
          f"(target: p50 < {STEP_P50_US:.0f}); scrape of {args.agents} agents and {args.waiting} "
          f"waiting: best {result['scrape_ms_best']} ms, median {result['scrape_ms_median']} ms, "
          f"{len(body)} bytes (target < {SCRAPE_MS:.0f}); "
          f"{'OK' if result['meets_target'] else 'MISSED'}; written to {path}")
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
