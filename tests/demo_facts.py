"""The demo's facts for tests, read from config/demo.yaml (the product code holds none)."""
from __future__ import annotations

import copy
from typing import Any

import yaml

from kc.settings import PROJECT_ROOT

DEMO_FILE = PROJECT_ROOT / "config" / "demo.yaml"
DEMO = yaml.safe_load(DEMO_FILE.read_text(encoding="utf-8"))
DISTRICTS = {d["id"]: d for d in DEMO["districts"]}
DEMO_SCHEDULES: dict[str, dict[str, Any]] = {d: v["hours"] for d, v in DISTRICTS.items()}
DEMO_SKILLS = frozenset(s["id"] for s in DEMO["skills"])


def demo_menu(district_name: str) -> dict[str, Any]:
    """The demo's menu as a district named `district_name` plays it."""
    from agi.menu import with_district
    body = copy.deepcopy(DISTRICTS["bromma"]["menu"])
    return with_district(_replace(body, DISTRICTS["bromma"]["name"], "{district}"), district_name)


def _replace(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        return {k: _replace(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, old, new) for v in value]
    return value.replace(old, new) if isinstance(value, str) else value


def with_language(menu: dict[str, Any], language: str, prompt: str,
                  recording: str | None = None) -> dict[str, Any]:
    """A copy of `menu` offered in `language` too: every node's prompt in it is `prompt`, and
    with `recording` (an audio reference) every place a prompt is said in it is recorded: each
    node, and each information or e-service option and fail action."""
    m = copy.deepcopy(menu)
    m["languages"] = [*m["languages"], language]
    for node in m["nodes"].values():
        node["prompt"][language] = prompt
        if recording is None:
            continue
        node.setdefault("audio", {})[language] = recording
        actions = [*node.get("options", {}).values()]
        if isinstance(node.get("on_fail"), dict):
            actions.append(node["on_fail"])
        for action in actions:
            if action.get("action") in ("info", "eservice"):
                action.setdefault("audio", {})[language] = recording
    return m
