"""The reference lists a case is filed under: the category tree (top categories, each with one
level of subcategories; a category's skill and confidentiality) and the departments a matter
is forwarded to."""
from __future__ import annotations

import sqlite3
from typing import Any

import sqlite_utils

from kc.errors import InvalidInput

from .records import get_row

def list_departments(db: sqlite_utils.Database, active_only: bool = False) -> list[dict[str, Any]]:
    where = "active = 1" if active_only else None
    return list(db["departments"].rows_where(where, order_by="name"))


def save_department(db: sqlite_utils.Database, name: str, dept_id: int | None = None,
                    active: bool = True) -> int:
    name = _clean_name(name)
    try:
        if dept_id is None:
            return db["departments"].insert({"name": name, "active": int(active)}).last_pk
        get_row(db, "departments", dept_id)
        db["departments"].update(dept_id, {"name": name, "active": int(active)})
        return dept_id
    except sqlite3.IntegrityError:
        raise InvalidInput(f"department {name!r} already exists") from None


def list_categories(db: sqlite_utils.Database, active_only: bool = False) -> list[dict[str, Any]]:
    """Flat, ordered as a tree: each top category followed by its subcategories."""
    rows = list(db["case_categories"].rows_where("active = 1" if active_only else None,
                                                 order_by="name"))
    tops = [r for r in rows if r["parent_id"] is None]
    out = []
    for top in tops:
        out.append({**top, "depth": 0, "path": top["name"]})
        for child in rows:
            if child["parent_id"] == top["id"]:
                out.append({**child, "depth": 1, "path": f"{top['name']} / {child['name']}"})
    return out


def category_tree(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    flat = list_categories(db, active_only=True)
    tops = [dict(r, children=[]) for r in flat if r["depth"] == 0]
    by_id = {t["id"]: t for t in tops}
    for r in flat:
        if r["depth"] == 1 and r["parent_id"] in by_id:
            by_id[r["parent_id"]]["children"].append(r)
    return tops


def save_category(db: sqlite_utils.Database, name: str, parent_id: int | None, skill: str | None,
                  confidential: bool, cat_id: int | None = None, active: bool = True) -> int:
    name = _clean_name(name)
    if parent_id is not None:
        parent = get_row(db, "case_categories", parent_id)
        if parent["parent_id"] is not None:
            raise InvalidInput("subcategories are one level deep: choose a top category as parent")
        confidential = confidential or bool(parent["confidential"])
        skill = skill or parent["skill"]
    if skill and not list(db["skills"].rows_where("id = ?", [skill])):
        raise InvalidInput(f"no skill {skill!r}")
    row = {"name": name, "parent_id": parent_id, "skill": skill or None,
           "confidential": int(bool(confidential)), "active": int(active)}
    try:
        if cat_id is None:
            return db["case_categories"].insert(row).last_pk
        current = get_row(db, "case_categories", cat_id)
        if parent_id == cat_id or (parent_id is not None and current["parent_id"] is None
                                   and list(db["case_categories"].rows_where("parent_id = ?", [cat_id]))):
            raise InvalidInput("a category with subcategories cannot become a subcategory")
        db["case_categories"].update(cat_id, row)
        if row["confidential"]:   # confidentiality is inherited downwards
            db.execute("update case_categories set confidential = 1 where parent_id = ?", [cat_id])
        return cat_id
    except sqlite3.IntegrityError:
        raise InvalidInput(f"category {name!r} already exists there") from None


def category_for_skill(db: sqlite_utils.Database, skill: str | None) -> dict[str, Any] | None:
    if not skill:
        return None
    rows = list(db["case_categories"].rows_where(
        "skill = ? and parent_id is null and active = 1", [skill], order_by="id", limit=1))
    return rows[0] if rows else None


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not 1 <= len(name) <= 80:
        raise InvalidInput("name: 1–80 characters")
    return name
