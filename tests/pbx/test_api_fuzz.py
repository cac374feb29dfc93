"""Property-based fuzzing of the whole JSON API from its own OpenAPI description (schemathesis),
against a private instance this module starts (real Asterisk, real service, real SQLite; only
loopback). For every generated request, valid and invalid alike:

- no 5xx;
- every 4xx has a JSON body `{"error": "<a message>"}`;
- a refused request (4xx) changes nothing stored: the database's content is the same after it.

Bounded (`KC_FUZZ_EXAMPLES` generated examples per operation and mode, default 25, besides the
coverage phase's boundary cases) so `make test` stays within a minute or two: the bound is
this test's own, not the Hypothesis profile's (`make test`'s 300 examples made it some 16,000
requests and five minutes).
"""
from __future__ import annotations

import copy
import hashlib
import os
import sqlite3

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from admin_web.openapi import SPEC
from kc_instance import ROOT, running_instance

EXAMPLES = int(os.environ.get("KC_FUZZ_EXAMPLES", "25"))
# Every generated case has the one test id: under pytest-xdist only the first would run.
pytestmark = pytest.mark.serial


def with_demo_examples(spec: dict) -> dict:
    """The description with the demo's own ids as examples of the path parameters, so valid
    requests reach real districts and agents (the product's description names no demo fact)."""
    demo = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text(encoding="utf-8"))
    ids = {"district": demo["districts"][0]["id"], "agent_id": demo["agents"][0]["id"]}
    spec = copy.deepcopy(spec)
    for path in spec["paths"].values():
        for op in path.values():
            for param in op.get("parameters", []):
                if param.get("in") == "path" and param["name"] in ids:
                    param["schema"] = {**param["schema"], "examples": [ids[param["name"]]]}
    return spec


schema = schemathesis.openapi.from_dict(with_demo_examples(SPEC))
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                max_examples=EXAMPLES, deterministic=True)
# Tables that change by themselves (sessions expire, the report cache warms up at start).
VOLATILE = {"web_sessions", "report_hours", "report_dirty"}


@pytest.fixture(scope="module")
def target():
    with running_instance() as inst:
        yield inst


def service_log(inst) -> str:
    path = inst.var / "service.log"
    return path.read_text(errors="replace")[-2500:] if path.exists() else ""


def fingerprint(inst) -> str:
    """A digest of everything stored (but the volatile tables)."""
    digest = hashlib.sha256()
    with sqlite3.connect(f"file:{inst.var / 'kc.db'}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute(
            "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' "
            "and name not like '%_fts%' order by name")]
        for table in tables:
            if table in VOLATILE:
                continue
            digest.update(table.encode())
            for row in db.execute(f'select * from "{table}" order by rowid'):
                digest.update(repr(row).encode())
    return digest.hexdigest()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)
def test_api_never_fails_and_refusals_change_nothing(case, target):
    before = fingerprint(target)
    response = case.call(base_url=target.url, headers={"Authorization": "Bearer demo-admin-token"},
                         timeout=30)
    status = response.status_code
    where = f"{case.method} {case.formatted_path} {case.query!r} {str(case.body)[:300]!r}"
    assert status < 500, f"{status} from {where}: {response.text[:300]}\n{service_log(target)}"
    if 400 <= status < 500:
        assert (response.headers.get("content-type") or [""])[0].startswith("application/json"), \
            f"{status} without JSON from {where}: {response.text[:200]}"
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"].strip(), \
            f"{status} without a message from {where}: {response.text[:200]}"
        assert fingerprint(target) == before, f"refused ({status}) but stored something: {where}"
