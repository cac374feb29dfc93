"""The structured call log (kc.telemetry.StepLog): every step told is one JSON line, read back
per contact in order across rotated files, with nothing of a failed listener lost to the call."""
from __future__ import annotations

import json

from kc.telemetry import StepLog, Telemetry, read_steps
from kommuncentral import cli


def test_steps_are_lines_read_back_per_contact_across_rotation(tmp_path, monkeypatch, capsys):
    path = tmp_path / "log" / "calls.jsonl"
    telemetry = Telemetry()
    telemetry.on_step(lambda record: 1 / 0)        # a broken listener stops nothing
    steps = StepLog(path, "node-a", every=0.01)
    telemetry.on_step(steps)
    telemetry.step("agi", "started", 7, district="bromma", caller=None)
    telemetry.step("acd", "enqueued", 8, district="bromma", queue="school")
    steps.flush()
    path.rename(path.with_name("calls.jsonl.1"))    # logrotate (copytruncate keeps the fd; so does this)
    path.touch()
    steps.close()
    steps = StepLog(path, "node-a")
    telemetry = Telemetry()
    telemetry.on_step(steps)
    telemetry.step("acd", "abandoned", 7, queue="elderly-care", wait=3.5)
    steps.close()
    found = list(read_steps(path, 7))
    assert [(r["layer"], r["step"]) for r in found] == [("agi", "started"), ("acd", "abandoned")]
    assert found[0]["node"] == "node-a" and "caller" not in found[0]     # None is left out
    assert all(set(r) >= {"at", "node", "contact", "layer", "step"} for r in found)
    monkeypatch.setenv("KC_VAR", str(tmp_path))
    assert cli.main(["logs", "--contact", "7", "--json"]) == 0
    assert [json.loads(line)["step"] for line in capsys.readouterr().out.splitlines()] == \
        ["started", "abandoned"]
    assert cli.main(["logs", "--contact", "9"]) == 1
