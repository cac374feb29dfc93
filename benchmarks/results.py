"""`var/bench/results.json`: one dict keyed by benchmark name; each benchmark merges its section.

    from benchmarks.results import merge_results
    merge_results("routing_core", {...})

Read-modify-write under an exclusive lock, written to a temporary file and renamed, so two
benchmarks finishing at once do not lose each other's sections.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from kc.settings import Settings


def results_path() -> Path:
    return Settings.from_env().var_dir / "bench" / "results.json"


def merge_results(key: str, section: dict[str, Any], path: Path | None = None) -> Path:
    path = path or results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except json.JSONDecodeError:
            data = {}
        data[key] = section
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                       encoding="utf-8")
        os.replace(tmp, path)
    return path
