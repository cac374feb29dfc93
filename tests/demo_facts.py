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
