"""Every action the product writes to the audit log has a name in people's words on the audit
page (`admin_web.words.ACTIONS`), so the page never shows an internal code."""
from __future__ import annotations

import ast
from pathlib import Path

from admin_web.words import ACTIONS

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("kommuncentral", "admin_web", "pbx", "city", "agi", "acd", "cases", "reporting",
            "schedules", "kc")


def _written_actions() -> dict[str, str]:
    """action -> where it is written, for every audit call with the action as a literal (the
    fourth argument of `audit(store, clock, user, action, ...)` and `add_audit(db, at, by,
    action, ...)`)."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call) or len(node.args) < 4:
                    continue
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                action = node.args[3]
                if name in ("audit", "add_audit") and isinstance(action, ast.Constant) \
                        and isinstance(action.value, str):
                    found[action.value] = f"{path.relative_to(ROOT)}:{node.lineno}"
    return found


def test_every_audited_action_has_a_name_for_the_page():
    written = _written_actions()
    assert len(written) > 20, written          # the scan finds the audit calls
    assert {a: where for a, where in written.items() if a not in ACTIONS} == {}
