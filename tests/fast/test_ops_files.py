"""The operations team's files: the Grafana dashboard and the Prometheus alert rules use only
metrics `/metrics` serves, and the metrics module's exposition parses with Prometheus' own
parser, moving as the call steps are told."""
from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from kc.telemetry import ACD_DECISION, ENQUEUE_TO_RING, Telemetry
from kommuncentral.metrics import NAMES, Metrics, series_names

OPS = Path(__file__).resolve().parents[2] / "ops"
METRIC = re.compile(r"\bkc_[a-z_]+\b")


def dashboard_exprs() -> list[str]:
    dash = json.loads((OPS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    return exprs


def alert_rules() -> list[dict]:
    rules = yaml.safe_load((OPS / "prometheus-alerts.yml").read_text(encoding="utf-8"))
    return [r for g in rules["groups"] for r in g["rules"]]


def test_every_metric_the_dashboard_and_the_alerts_use_exists():
    exprs = dashboard_exprs() + [r["expr"] for r in alert_rules()]
    used = {name for e in exprs for name in METRIC.findall(e)}
    assert used, "no metric found: the pattern is wrong"
    assert used - series_names() == set()
    # and the other way round: every metric is shown somewhere
    shown = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in used}
    assert NAMES - shown == set()


def test_the_alerts_the_issue_asks_for_are_there_and_complete():
    rules = {r["alert"]: r for r in alert_rules()}
    for name in ("KcQueueMissesServiceLevel", "KcNoAgentLoggedInWhileOpen", "KcAmiLinkDown"):
        assert name in rules
    for rule in rules.values():
        assert rule["for"] and rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
        assert rule["expr"].count("(") == rule["expr"].count(")")


def test_the_exposition_parses_and_moves_with_the_steps():
    clock = lambda: datetime(2026, 11, 30, 10, tzinfo=timezone.utc)   # noqa: E731
    metrics, telemetry = Metrics("node-a", clock), Telemetry()
    metrics.listen(telemetry)

    def scrape() -> dict:
        body, content_type = asyncio.run(metrics.render())
        assert content_type.startswith("text/plain; version=0.0.4")
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for f in text_string_to_metric_families(body.decode()) for s in f.samples}
    where = (("district", "bromma"), ("node", "node-a"), ("queue", "school"))
    telemetry.step("acd", "enqueued", 1, district="bromma", queue="school")
    telemetry.step("acd", "enqueued", 2, district="bromma", queue="school")
    telemetry.step("acd", "connected", 1, district="bromma", queue="school", overflowed=True,
                   wait=3.0)
    telemetry.step("acd", "abandoned", 2, district="bromma", queue="school")
    telemetry.step("agi", "menu", 2, district="bromma")
    telemetry.timing(ACD_DECISION, 0.0002)
    telemetry.timing(ENQUEUE_TO_RING, 0.004)
    found = scrape()
    assert found[("kc_calls_offered_total", where)] == 2
    assert found[("kc_calls_answered_total", where)] == 1
    assert found[("kc_calls_overflowed_total", where)] == 1
    assert found[("kc_calls_abandoned_total", where)] == 1
    assert ("kc_calls_answered_in_target_total", where) not in found   # no distributor: no target
    assert found[("kc_acd_decision_seconds_count", (("node", "node-a"),))] == 1
    assert found[("kc_enqueue_to_ring_seconds_bucket", (("le", "0.005"), ("node", "node-a")))] == 1
    assert found[("kc_call_steps_total", (("layer", "agi"), ("node", "node-a"), ("step", "menu")))] == 1
    assert found[("kc_ami_up", (("node", "node-a"),))] == 0          # nothing built yet: down
