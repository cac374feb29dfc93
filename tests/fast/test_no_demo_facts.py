"""No demo fact in product code: a district id, name, number, e-mail address or keyword of
config/demo.yaml found in a product package (pyproject.toml's list) fails this test."""
from __future__ import annotations

import re
import tomllib

from kc.settings import PROJECT_ROOT

from demo_facts import DEMO

SUFFIXES = {".py", ".html", ".j2", ".js", ".css", ".conf", ".txt"}


def demo_values() -> set[str]:
    values = set()
    for d in DEMO["districts"]:
        values |= {d["id"], d["name"], *d.get("numbers", []), *d.get("addresses", [])}
    for words in DEMO["keywords"].values():
        values |= set(words)
    values.add(DEMO["organisation"]["mail_domain"])
    return values


def product_files():
    packages = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    for package in [*packages, "dialplan"]:
        for path in sorted((PROJECT_ROOT / package).rglob("*")):
            if path.suffix in SUFFIXES and "__pycache__" not in path.parts:
                yield path


def find(values: set[str]) -> list[str]:
    patterns = {v: re.compile(r"(?<![\w.@-])" + re.escape(v.lower()) + r"(?![\w@-])") for v in values}
    hits = []
    for path in product_files():
        for n, line in enumerate(path.read_text(encoding="utf-8").lower().splitlines(), 1):
            hits += [f"{path.relative_to(PROJECT_ROOT)}:{n}: {v!r}" for v, rx in patterns.items()
                     if rx.search(line)]
    return hits


def test_the_scan_finds_a_planted_fact(tmp_path, monkeypatch):
    planted = PROJECT_ROOT / "kc" / "_planted_demo_fact.py"
    number = DEMO["districts"][0]["numbers"][0]
    planted.write_text(f'NUMBER = "{number}"\n', encoding="utf-8")
    try:
        assert any("_planted_demo_fact" in hit for hit in find(demo_values()))
    finally:
        planted.unlink()


def test_no_demo_district_number_address_or_keyword_in_product_code():
    values = demo_values()
    assert len(values) > 30
    assert find(values) == []
