"""The centre's metrics, in Prometheus' text format (`GET /metrics`): the only module that
knows Prometheus.

Counters and histograms are fed by `kc.telemetry` (the call steps the distributor's records
tell, the timings of routing decisions, rings and store writes); gauges are read from the
running parts when scraped (waiting callers, agents, the AMI and FastAGI links, the store's
write queue, e-mail tasks, opening hours). The registry is the service's own, never the
library's global one, so two services in one process (tests) never mix. Every series has a
`node` label (`KC_NODE`, default the host name) so several nodes add up in one Prometheus.

The names are the contract with `ops/grafana-dashboard.json` and `ops/prometheus-alerts.yml`
(`tests/fast/test_ops_files.py` checks each name they use is one of `NAMES`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from kc.clock import Clock
from kc.domain import AgentState
from kc.telemetry import ACD_DECISION, ENQUEUE_TO_RING, STORE_WRITE, Telemetry

CALL = ("node", "district", "queue")
# A routing decision takes microseconds to milliseconds; a ring after enqueue milliseconds
# (agents free) to minutes (callers wait); a store job well under a second.
FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
WAIT = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
WRITE = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

# Every metric /metrics serves (a counter's series end in `_total`, a histogram's in
# `_bucket`, `_sum`, `_count`).
COUNTERS = ("kc_calls_offered", "kc_calls_answered", "kc_calls_answered_in_target",
            "kc_calls_abandoned", "kc_calls_overflowed", "kc_call_steps")
HISTOGRAMS = ("kc_acd_decision_seconds", "kc_enqueue_to_ring_seconds", "kc_store_write_seconds")
GAUGES = ("kc_callers_waiting", "kc_longest_wait_seconds", "kc_agents", "kc_district_open",
          "kc_ami_up", "kc_fastagi_up", "kc_fastagi_sessions", "kc_store_write_queue",
          "kc_store_records_delayed", "kc_email_tasks_waiting")
NAMES = frozenset(COUNTERS + HISTOGRAMS + GAUGES)


def series_names() -> frozenset[str]:
    """Every series name a scrape can hold (what dashboards and alert rules may use)."""
    return frozenset([f"{c}_total" for c in COUNTERS] + [f"{c}_created" for c in COUNTERS]
                     + [f"{h}{s}" for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count",
                                                                  "_created")]
                     + list(GAUGES))


@dataclass
class Sources:
    """The running parts the gauges read (each None until the root has built it)."""
    distributor: Any = None      # acd.distributor.Distributor
    ami: Any = None              # acd.ami.AmiLink
    agi: Any = None              # agi.fastagi.FastAgiServer
    store: Any = None            # kc.store.Store
    tasks: Any = None            # acd.tasks.TaskRunner
    catalogue: Any = None        # agi.call_catalogue.LiveCatalogue (opening hours)


class Metrics:
    def __init__(self, node: str, clock: Clock):
        self.node, self.clock = node, clock
        self.sources = Sources()
        self.registry = reg = CollectorRegistry(auto_describe=True)
        self.offered = Counter("kc_calls_offered", "Callers who reached a queue", CALL, registry=reg)
        self.answered = Counter("kc_calls_answered", "Callers an agent answered (call-backs "
                                "included), counted in the queue they waited in", CALL, registry=reg)
        self.in_target = Counter("kc_calls_answered_in_target", "Answered within the queue's "
                                 "service-level target", CALL, registry=reg)
        self.abandoned = Counter("kc_calls_abandoned", "Callers who left a queue before an "
                                 "agent answered", CALL, registry=reg)
        self.overflowed = Counter("kc_calls_overflowed", "Callers answered by an agent of "
                                  "another district", CALL, registry=reg)
        self.steps = Counter("kc_call_steps", "Call steps told by each layer",
                             ("node", "layer", "step"), registry=reg)
        self.timings = {
            ACD_DECISION: Histogram("kc_acd_decision_seconds", "One routing decision "
                                    "(offers to free agents)", ("node",), buckets=FAST, registry=reg),
            ENQUEUE_TO_RING: Histogram("kc_enqueue_to_ring_seconds", "From a caller reaching "
                                       "the queue to the agent's phone being rung (first offer)",
                                       ("node",), buckets=WAIT, registry=reg),
            STORE_WRITE: Histogram("kc_store_write_seconds", "One job of the database's writer",
                                   ("node",), buckets=WRITE, registry=reg),
        }
        self._open: dict[str, bool] = {}
        reg.register(_Live(self))

    def listen(self, telemetry: Telemetry) -> None:
        telemetry.on_step(self.on_step)
        telemetry.on_timing(self.on_timing)

    # ------------------------------------------------------------------ fed by telemetry
    def on_step(self, record: dict[str, Any]) -> None:
        self.steps.labels(self.node, record["layer"], record["step"]).inc()
        if record["layer"] != "acd" or "queue" not in record:
            return
        labels = (self.node, record.get("district", ""), record["queue"])
        step = record["step"]
        if step == "enqueued":
            self.offered.labels(*labels).inc()
        elif step == "abandoned":
            self.abandoned.labels(*labels).inc()
        elif step in ("connected", "callback_agent_answered"):
            self.answered.labels(*labels).inc()
            if record.get("overflowed"):
                self.overflowed.labels(*labels).inc()
            if float(record.get("wait", 0.0)) <= self._target(record["queue"], labels[1]):
                self.in_target.labels(*labels).inc()

    def on_timing(self, name: str, seconds: float, labels: dict[str, str]) -> None:
        histogram = self.timings.get(name)
        if histogram is not None:
            histogram.labels(self.node).observe(seconds)

    def _target(self, skill: str, district: str) -> float:
        dist = self.sources.distributor
        if dist is None:
            return 0.0
        return dist.policy.queue(skill, district).service_level_seconds

    # ------------------------------------------------------------------ the scrape
    async def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type. Opening hours are read here (async)."""
        catalogue = self.sources.catalogue
        if catalogue is not None:
            hours = (await catalogue.current()).hours
            now = self.clock()
            self._open = {d: h.schedule is None or h.schedule.status(now, closes=False).open
                          for d, h in hours.districts.items()}
        # the classic text format (every name here is a legacy one): what Prometheus 2 reads too
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4


class _Live:
    """The gauges: read from the running parts at each scrape."""

    def __init__(self, metrics: Metrics):
        self.m = metrics

    def describe(self) -> list:
        return []        # not known before a scrape; the registry must not call collect early

    def collect(self) -> Iterator[GaugeMetricFamily]:
        m, src, node = self.m, self.m.sources, self.m.node
        yield from self._floor(src.distributor)
        yield _one("kc_district_open", "1 while the district's opening hours say open",
                   ["node", "district"], [([node, d], float(o)) for d, o in sorted(m._open.items())])
        yield _one("kc_ami_up", "1 while the AMI link to Asterisk is logged in", ["node"],
                   [([node], float(bool(src.ami is not None and src.ami.up)))])
        yield _one("kc_fastagi_up", "1 while the FastAGI server listens", ["node"],
                   [([node], float(bool(src.agi is not None and src.agi.listening)))])
        yield _one("kc_fastagi_sessions", "FastAGI sessions open (calls in a menu)", ["node"],
                   [([node], float(src.agi.sessions if src.agi is not None else 0))])
        store = src.store
        yield _one("kc_store_write_queue", "Jobs waiting for (or in) the database's writer",
                   ["node"], [([node], float(store.queued if store is not None else 0))])
        yield _one("kc_store_records_delayed", "Record writes kept until the database takes "
                   "them (0: none)", ["node"], [([node], float(store.delayed if store else 0))])
        yield _one("kc_email_tasks_waiting", "E-mail and web tasks no agent has taken yet",
                   ["node"], [([node], float(src.tasks.waiting if src.tasks is not None else 0))])

    def _floor(self, dist: Any) -> Iterator[GaugeMetricFamily]:
        node = self.m.node
        waiting: dict[tuple[str, str], int] = {}
        longest: dict[tuple[str, str], float] = {}
        agents: dict[tuple[str, str], int] = {}
        if dist is not None:
            now = dist.now()
            for q in dist.policy.queues:
                waiting[(q.district, q.skill)] = 0
                longest[(q.district, q.skill)] = 0.0
            for entry in list(dist.waiting.values()):
                key = (entry.call.district, entry.call.skill)
                waiting[key] = waiting.get(key, 0) + 1
                longest[key] = max(longest.get(key, 0.0), now - entry.call.enqueued_at)
            districts = {rt.agent.district for rt in dist.agents.values()}
            for district in districts:
                for state in AgentState:
                    agents[(district, state.value)] = 0
            for rt in list(dist.agents.values()):
                key = (rt.agent.district, rt.state.value)
                agents[key] = agents.get(key, 0) + 1
        yield _one("kc_callers_waiting", "Callers waiting in the queue now", list(CALL),
                   [([node, d, q], float(n)) for (d, q), n in sorted(waiting.items())])
        yield _one("kc_longest_wait_seconds", "How long the longest-waiting caller has waited",
                   list(CALL), [([node, d, q], w) for (d, q), w in sorted(longest.items())])
        yield _one("kc_agents", "Agents by state (where they work today)",
                   ["node", "district", "state"],
                   [([node, d, s], float(n)) for (d, s), n in sorted(agents.items())])


def _one(name: str, help: str, labels: list[str],
         values: list[tuple[list[str], float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help, labels=labels)
    for label_values, value in values:
        family.add_metric(label_values, value)
    return family


