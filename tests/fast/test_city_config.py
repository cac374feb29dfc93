"""The organisation as one YAML file: validated as a whole (every problem, with where it is),
the export -> import round trip changes nothing, duplicated keys refused, dry runs write
nothing, an import with problems changes nothing. Real SQLite, the real `kc` command."""
from __future__ import annotations

import copy
from datetime import datetime, timezone
import subprocess
import sys

import pytest
import yaml

from city import document, store as city_store
from kc import strict_yaml
from kc.errors import InvalidInput
from kc.settings import PROJECT_ROOT
from kc.store import Store
from demo_template import demo_store
from kommuncentral.demo import DEMO_FILE

from demo_facts import DEMO

KC = [sys.executable, "-m", "kommuncentral.cli"]


def kc(tmp_path, *args, stdin=None):
    env = {"KC_VAR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    return subprocess.run([*KC, *args], cwd=PROJECT_ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def store(tmp_path):
    with demo_store(tmp_path, lambda: datetime(2026, 3, 2, 9, tzinfo=timezone.utc)) as s:
        yield s


def snapshot(store):
    return store.run_sync(lambda db: {t: list(db[t].rows) for t in db.table_names()
                                      if t not in ("call_data_stamp",) and not t.startswith("kb_fts")})


def test_export_then_import_changes_nothing(store):
    exported = strict_yaml.dump(document.public(store.run_sync(city_store.export)))
    assert "demo-agent" not in exported and "password" not in exported and "token" not in exported
    assert "Hässelby-Vällingby" in exported           # å, ä, ö as written
    before = snapshot(store)
    target = document.validated(strict_yaml.load(exported))
    assert store.run_sync(city_store.apply, target, "t", "2026-03-02T10:00:00.000Z") == []
    assert snapshot(store) == before


def test_every_problem_listed_with_where_it_is():
    data = copy.deepcopy(DEMO)
    data["districts"][1]["numbers"] = [data["districts"][0]["numbers"][0], "08-12"]
    data["districts"][0]["switchboard"] = "atlantis"
    data["queues"][0]["skill"] = "juggling"
    data["agents"][0]["district"] = "atlantis"
    data["transfer_codes"]["5"] = "queue:juggling"
    data["districts"][0]["menu"]["nodes"]["main"]["options"]["4"] = {"action": "queue", "skill": "nope"}
    _, problems = document.normalise(data)
    text = "\n".join(problems)
    assert "districts[1] (hasselby-vallingby).numbers[0]: number '0850810000' is also given at " \
           "districts[0] (bromma).numbers[0]" in text
    assert "districts[1] (hasselby-vallingby).numbers[1]: '08-12' is not a phone number" in text
    assert "districts (bromma).switchboard: no district 'atlantis'" in text
    assert "queues[0] (juggling@bromma): no skill 'juggling'" in text
    assert "agents[0] (bromma-101): no district 'atlantis' in service" in text
    assert "transfer_codes.5: no skill 'juggling'" in text
    assert "districts (bromma).menu:" in text and "nope" in text
    assert len(problems) >= 7


def test_an_import_with_problems_changes_nothing_and_exits_2(tmp_path):
    assert kc(tmp_path, "init", "--demo").returncode == 0
    data = copy.deepcopy(DEMO)
    data["districts"][0]["name"] = "Nytt namn"          # a good change ...
    data["districts"][1]["addresses"] = ["not-an-address"]   # ... and a bad one
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    db = Store(tmp_path / "kc.db")
    before = snapshot(db)
    db.close()
    out = kc(tmp_path, "config", "import", str(bad))
    assert out.returncode == 2, out
    assert "districts[1] (hasselby-vallingby).addresses[0]: 'not-an-address' is not an e-mail" in out.stderr
    db = Store(tmp_path / "kc.db")
    try:
        assert snapshot(db) == before
    finally:
        db.close()
    assert kc(tmp_path, "config", "validate", str(bad)).returncode == 2
    assert kc(tmp_path, "config", "validate", str(DEMO_FILE)).returncode == 0


def test_dry_run_prints_changes_and_writes_nothing_then_import_applies_and_audits(tmp_path):
    assert kc(tmp_path, "init", "--demo").returncode == 0
    exported = kc(tmp_path, "config", "export").stdout
    assert kc(tmp_path, "config", "import", "--dry-run", "-", stdin=exported).stdout.startswith("0 change")
    data = strict_yaml.load(exported)
    data["districts"].append({"id": "spanga-tensta", "name": "Spånga-Tensta",
                              "numbers": ["0850830000", "0850830001"],
                              "addresses": ["spanga-tensta@kontakt.example"], "menu_of": "bromma"})
    data["agents"].append({"id": "st-301", "name": "Agent 301", "district": "spanga-tensta",
                           "password": "pw-301", "skills": {k: 3 for k in
                                                            ("elderly-care", "school", "social-services", "switchboard")},
                           "cleared_for": ["spanga-tensta"]})
    text = yaml.safe_dump(data, allow_unicode=True)
    dry = kc(tmp_path, "config", "import", "--dry-run", "-", stdin=text)
    assert dry.returncode == 0 and "add          districts: spanga-tensta" in dry.stdout
    assert "add          agents: st-301" in dry.stdout
    db = Store(tmp_path / "kc.db")
    try:
        assert db.run_sync(lambda d: d["districts"].count_where("id = 'spanga-tensta'")) == 0
    finally:
        db.close()
    done = kc(tmp_path, "config", "import", "-", stdin=text)
    assert done.returncode == 0, done.stderr
    db = Store(tmp_path / "kc.db")
    try:
        rows = db.run_sync(lambda d: list(d.execute(
            "select number from district_numbers where district = 'spanga-tensta' order by number")))
        assert rows == [("0850830000",), ("0850830001",)]
        assert db.run_sync(lambda d: d["audit_log"].count_where("action = 'config.import'")) == 2
    finally:
        db.close()
    # Leaving it out again retires it: history kept, no number answers any more.
    again = kc(tmp_path, "config", "import", "-", stdin=exported)
    assert "retire       districts: spanga-tensta" in again.stdout
    db = Store(tmp_path / "kc.db")
    try:
        assert db.run_sync(lambda d: list(d.execute(
            "select retired_at is not null from districts where id = 'spanga-tensta'"))) == [(1,)]
        assert db.run_sync(lambda d: d["district_numbers"].count_where("district = 'spanga-tensta'")) == 0
    finally:
        db.close()


def test_a_duplicated_key_is_refused():
    text = "districts:\n  - id: a\n    name: A\n    name: B\n"
    with pytest.raises(InvalidInput, match=r"line 4: key 'name' given twice .*first on line 3"):
        strict_yaml.load(text)


def test_menu_import_refuses_two_options_with_one_digit(tmp_path):
    assert kc(tmp_path, "init", "--demo").returncode == 0
    menu = kc(tmp_path, "menu", "export", "bromma").stdout
    doubled = menu.replace("      '1':", "      '1':\n        action: back\n      '1':", 1)
    assert doubled != menu
    out = kc(tmp_path, "menu", "import", "bromma", "-", stdin=doubled)
    assert out.returncode == 2 and "given twice" in out.stderr


def test_init_refuses_a_bad_file_and_creates_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("districts:\n  - {id: x, name: X, numbers: ['1']}\n", encoding="utf-8")
    out = kc(tmp_path, "init", "--config", str(bad))
    assert out.returncode == 2 and "districts[0] (x).numbers[0]" in out.stderr
    assert not (tmp_path / "kc.db").exists()
