"""`kc init --demo` and `kc init --config FILE`: a centre created from an organisation document
(`config/demo.yaml` is the complete demo; `city.document` says what a document holds)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlite_utils

from city import document, store as city_store
from kc import strict_yaml
from kc.clock import Clock, iso
from kc.settings import PROJECT_ROOT
from schedules.schedule import ALWAYS_OPEN_BODY

DEMO_FILE = PROJECT_ROOT / "config" / "demo.yaml"


def read(source: Path, nodes: Path | None = None) -> Any:
    """The parsed document in `source` (duplicate keys refused); with `nodes`, that file's
    `nodes` section in place of the document's (the same centre on a cluster of nodes)."""
    data = strict_yaml.load(source.read_text(encoding="utf-8"))
    if nodes is not None and isinstance(data, dict):
        extra = strict_yaml.load(nodes.read_text(encoding="utf-8"))
        data["nodes"] = extra.get("nodes") if isinstance(extra, dict) else extra
    return data


def always_open(data: Any) -> Any:
    """`data` with every district open around the clock (setting KC_DEMO_ALWAYS_OPEN: tests
    do not depend on the hour); each keeps its after-hours policy."""
    for district in data.get("districts") or []:
        hours = district.get("hours")
        if isinstance(hours, dict):
            district["hours"] = {**ALWAYS_OPEN_BODY, "after_hours": hours.get("after_hours")}
    return data


def load_config(db: sqlite_utils.Database, clock: Clock, source: Path = DEMO_FILE,
                always_open_hours: bool = False, by: str = "init",
                nodes: Path | None = None) -> list[tuple[str, str, str]]:
    """Create (or bring up to date) the centre `source` describes (on the nodes `nodes`
    names); `ConfigInvalid` listing every problem when it cannot be, and then nothing is
    written."""
    data = read(source, nodes)
    if always_open_hours:
        data = always_open(data)
    return city_store.apply(db, document.validated(data), by, iso(clock()),
                            note=f"created from {source.name}")


def load_demo(db: sqlite_utils.Database, clock: Clock, source: Path = DEMO_FILE,
              always_open: bool = False) -> None:
    """The demo centre; `always_open` (setting KC_DEMO_ALWAYS_OPEN) opens every district
    around the clock."""
    load_config(db, clock, source, always_open, by="demo")


def demo_logins(source: Path = DEMO_FILE) -> list[tuple[str, str, str]]:
    """(username, password, role) for printing by `kc up`: the log-ins the file sets."""
    data = read(source)
    users = [(u["username"], u["password"], u["role"]) for u in data.get("users") or []
             if u.get("password")]
    shared = data.get("agent_password")
    users += [(a["id"], a.get("password", shared), "agent") for a in data.get("agents") or []
              if a.get("password", shared)]
    return users
