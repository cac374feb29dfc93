"""The staff directory on a real database: CSV import whole or not at all (audited), search as
the agent types, the keypad's dial-by-name matches; `kc directory import FILE`."""
from __future__ import annotations

import json
import sqlite3

import pytest

from kc import staff_directory as sd
from kc.errors import InvalidInput
from kommuncentral import cli
from test_store import store  # noqa: F401  (the demo centre on a real database)

GOOD = ("name,unit,district,number,available\n"
        "Anna Andersson,Bygglov,bromma,08-508 990 01,ja\n"
        "Örjan Öberg,Parkförvaltning,,0850899002,nej\n"
        "Bo Ödman,Skola,hasselby-vallingby,0850899003,\n")


def test_import_replaces_the_directory_and_is_audited(store):
    counts = store.run_sync(sd.import_csv, GOOD, "admin", "2026-11-27T12:00:00.000Z")
    assert counts == {"before": 0, "imported": 3}
    people = store.run_sync(sd.search, "", 10)
    assert [(p["name"], p["number"], p["available"]) for p in people] == [
        ("Anna Andersson", "0850899001", True), ("Bo Ödman", "0850899003", True),
        ("Örjan Öberg", "0850899002", False)]
    audit = store.run_sync(lambda db: list(db.query(
        "select username, action, after from audit_log where action = 'directory.import'")))
    assert audit and audit[0]["username"] == "admin" and json.loads(audit[0]["after"]) == {"people": 3}


@pytest.mark.parametrize("text, words", [
    ("name,number\nAnna,12\n", ["line 2", "3-20 digits"]),
    ("name,number,district\nAnna,0850899001,nowhere\n", ["line 2", "nowhere"]),
    ("name,number,available\nAnna,0850899001,kanske\n", ["ja/nej"]),
    ("name,phone\nAnna,0850899001\n", ["number", "phone"]),
    ("name,number\n", ["nobody"]),
    ("name,number\nAnna,0850899001,extra\n", ["more fields"]),
    ("\r0", ["name", "number"]),                       # a bare CR ends a line too (was a 500)
    ("name,number\nAnna,\"" + "1" * 140_000 + "\"\n", ["not a CSV file"]),   # past csv's field limit
])
def test_a_bad_file_is_refused_whole_naming_each_problem(store, text, words):
    store.run_sync(sd.import_csv, GOOD, "admin", "2026-11-27T12:00:00.000Z")
    with pytest.raises(InvalidInput) as err:
        store.run_sync(sd.import_csv, text, "admin", "2026-11-27T12:01:00.000Z")
    for word in words:
        assert word in str(err.value)
    assert len(store.run_sync(sd.search, "", 10)) == 3          # nothing lost


def test_lines_may_end_in_cr_lf_or_both(store):
    store.run_sync(sd.import_csv, "name,number\rAnna,0850899001\r\nBo,0850899002\n", "admin",
                   "2026-11-27T12:00:00.000Z")
    assert sorted(p["name"] for p in store.run_sync(sd.search, "", 10)) == ["Anna", "Bo"]


def test_search_any_case_every_word_available_first(store):
    store.run_sync(sd.import_csv, GOOD, "admin", "2026-11-27T12:00:00.000Z")
    assert [p["name"] for p in store.run_sync(sd.search, "ANDERS bygg", 10)] == ["Anna Andersson"]
    assert [p["name"] for p in store.run_sync(sd.search, "ö", 10)] == ["Bo Ödman", "Örjan Öberg"]
    assert store.run_sync(sd.search, "100%_", 10) == []


def test_dial_by_name_keypad_matches_the_surname():
    people = [{"id": 1, "name": "Anna Andersson", "available": True},
              {"id": 2, "name": "Örjan Öberg", "available": True},
              {"id": 3, "name": "Bo Ödman", "available": True},
              {"id": 4, "name": "Cilla Andrén", "available": False}]
    assert sd.keypad_digits("Öberg") == "62374"
    assert [p["id"] for p in sd.keypad_matches(people, "263")] == [1]      # And-ersson
    assert [p["id"] for p in sd.keypad_matches(people, "6")] == [2, 3]     # Ö...: Öberg, Ödman
    assert sd.keypad_matches(people, "9") == []


def test_kc_directory_import_from_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KC_VAR", str(tmp_path))
    assert cli.main(["init", "--demo"]) == 0
    path = tmp_path / "katalog.csv"
    path.write_text(GOOD, encoding="utf-8")
    assert cli.main(["directory", "import", str(path)]) == 0
    assert "3 people" in capsys.readouterr().out
    path.write_text("name,number\nX,1\n", encoding="utf-8")
    assert cli.main(["directory", "import", str(path)]) == 2
    assert "line 2" in capsys.readouterr().err
    with sqlite3.connect(tmp_path / "kc.db") as db:
        assert db.execute("select count(*) from staff_directory").fetchone()[0] == 3
