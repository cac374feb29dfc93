"""The SQL behind safe menu editing: drafts, published versions, announcements.

Plain functions over a `sqlite_utils.Database`, run by `Store.run` in the single writer thread,
so a check-then-write inside one function is atomic with respect to every other writer.

- `menu_versions` (from the initial schema): every published version of a district's menu,
  numbered 1, 2, 3... The live one is the highest published version; a rollback publishes an
  older body again as a new version, so the history only grows.
- `menu_drafts`: at most one draft per district, with a `revision` for optimistic concurrency
  and the `base_version` it was started from.
- `menu_announcements`: a temporary announcement per district (text per language, optional
  recording per language) played before the menu until `ends_at`.
"""
from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from kc.i18n import gettext
from kc.errors import InvalidInput, KcError, NotFound


class MenuConflict(KcError):
    """Someone else saved first; carries what is there now so nothing has to be lost."""

    def __init__(self, message: str, current: dict[str, Any] | None):
        super().__init__(message)
        self.current = current


def _district_exists(db: sqlite_utils.Database, district: str) -> None:
    if not list(db.query("select 1 from districts where id = ?", [district])):
        raise NotFound(f"district {district!r}")


def known_skills(db: sqlite_utils.Database) -> set[str]:
    """Skills at least one agent has: the only ones a menu may queue for."""
    return {r[0] for r in db.execute("select distinct skill from agent_skills")}


# ---------------------------------------------------------------- versions


def _version_out(row: dict[str, Any], with_body: bool = True) -> dict[str, Any]:
    out = {"district": row["district"], "version": row["version"], "created_at": row["created_at"],
           "created_by": row["created_by"], "note": row.get("note") or ""}
    if with_body:
        out["body"] = json.loads(row["body"])
    return out


def current_version(db: sqlite_utils.Database, district: str) -> dict[str, Any] | None:
    rows = list(db.query(
        "select * from menu_versions where district = ? and published = 1 "
        "order by version desc limit 1", [district]))
    return _version_out(rows[0]) if rows else None


def live_versions(db: sqlite_utils.Database) -> dict[str, tuple[int, dict[str, Any]]]:
    """district -> (version, body) of its live menu, for every district that has one."""
    rows = db.query(
        "select v.district, v.version, v.body from menu_versions v join ("
        "  select district, max(version) as version from menu_versions where published = 1"
        "  group by district) live using (district, version)")
    return {r["district"]: (r["version"], json.loads(r["body"])) for r in rows}


def get_version(db: sqlite_utils.Database, district: str, version: int) -> dict[str, Any]:
    rows = list(db.query("select * from menu_versions where district = ? and version = ?",
                         [district, version]))
    if not rows:
        raise NotFound(gettext("there is no version %(n)s of the menu of %(district)s")
                       % {"n": version, "district": repr(district)})
    return _version_out(rows[0])


def list_versions(db: sqlite_utils.Database, district: str) -> list[dict[str, Any]]:
    return [_version_out(r, with_body=False) for r in db.query(
        "select * from menu_versions where district = ? order by version desc", [district])]


def publish_version(db: sqlite_utils.Database, district: str, body: dict[str, Any], by: str,
                    at: str, base_version: int | None = None, note: str = "",
                    clear_draft: bool = False) -> int:
    """Store `body` as the next live version. With `base_version`, refuse (MenuConflict) when
    the live version is no longer the one the editor started from."""
    _district_exists(db, district)
    with db.conn:
        db.execute("begin immediate")
        current = current_version(db, district)
        live = current["version"] if current else 0
        if base_version is not None and base_version != live:
            raise MenuConflict(
                f"the menu of {district} was changed meanwhile: you edited version {base_version}, "
                f"the live version is now {live}", current)
        top = db.execute("select coalesce(max(version), 0) from menu_versions where district = ?",
                         [district]).fetchone()[0]
        version = top + 1
        db["menu_versions"].insert({
            "district": district, "version": version,
            "body": json.dumps(body, ensure_ascii=False), "created_at": at, "created_by": by,
            "published": 1, "note": note,
        })
        if clear_draft:
            db.execute("delete from menu_drafts where district = ?", [district])
    return version


# ---------------------------------------------------------------- drafts


def get_draft(db: sqlite_utils.Database, district: str) -> dict[str, Any] | None:
    rows = list(db["menu_drafts"].rows_where("district = ?", [district]))
    if not rows:
        return None
    r = rows[0]
    return {"district": district, "body": json.loads(r["body"]), "base_version": r["base_version"],
            "revision": r["revision"], "updated_at": r["updated_at"], "updated_by": r["updated_by"]}


def save_draft(db: sqlite_utils.Database, district: str, body: dict[str, Any], by: str, at: str,
               revision: int, base_version: int) -> int:
    """Save the draft the editor loaded at `revision` (0: there was none, started from live
    `base_version`). A stale revision raises MenuConflict with the draft that is there now."""
    _district_exists(db, district)
    with db.conn:
        db.execute("begin immediate")
        draft = get_draft(db, district)
        if draft is not None:
            if draft["revision"] != revision:
                raise MenuConflict(
                    f"{draft['updated_by']} saved this draft at {draft['updated_at']} after you "
                    f"opened it (revision {draft['revision']}, yours {revision})", draft)
            base = draft["base_version"]
        else:
            live = current_version(db, district)
            live_version = live["version"] if live else 0
            if revision != 0 or base_version != live_version:
                raise MenuConflict(
                    f"the menu of {district} changed after you opened it (live version is now "
                    f"{live_version})", {"body": live["body"] if live else None,
                                         "base_version": live_version, "revision": 0})
            base = live_version
        new_revision = (draft["revision"] if draft else 0) + 1
        db["menu_drafts"].upsert({
            "district": district, "body": json.dumps(body, ensure_ascii=False),
            "base_version": base, "revision": new_revision, "updated_at": at, "updated_by": by,
        }, pk="district")
    return new_revision


def discard_draft(db: sqlite_utils.Database, district: str) -> bool:
    with db.conn:
        cur = db.execute("delete from menu_drafts where district = ?", [district])
    return cur.rowcount > 0


# ---------------------------------------------------------------- announcements


def _announcement_out(r: dict[str, Any]) -> dict[str, Any]:
    return {"district": r["district"], "texts": json.loads(r["texts"] or "{}"),
            "audio": json.loads(r["audio"] or "{}"), "ends_at": r["ends_at"],
            "updated_at": r["updated_at"], "updated_by": r["updated_by"]}


def get_announcement(db: sqlite_utils.Database, district: str) -> dict[str, Any] | None:
    rows = list(db["menu_announcements"].rows_where("district = ?", [district]))
    return _announcement_out(rows[0]) if rows else None


def all_announcements(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return [_announcement_out(r) for r in db["menu_announcements"].rows]


def set_announcement(db: sqlite_utils.Database, district: str, texts: dict[str, str],
                     audio: dict[str, str], ends_at: str, by: str, at: str) -> None:
    _district_exists(db, district)
    db["menu_announcements"].upsert({
        "district": district, "texts": json.dumps(texts, ensure_ascii=False),
        "audio": json.dumps(audio, ensure_ascii=False), "ends_at": ends_at,
        "updated_at": at, "updated_by": by,
    }, pk="district")


def clear_announcement(db: sqlite_utils.Database, district: str) -> bool:
    with db.conn:
        cur = db.execute("delete from menu_announcements where district = ?", [district])
    return cur.rowcount > 0


# ---------------------------------------------------------------- shared menus
#
# `menu_shares`: a district that plays another district's published menu (`menu_of`, the owner).
# One level only: an owner never shares someone else's menu, a sharer is never an owner, nobody
# shares their own. The sharer's own versions stay in its history and come back when it stops
# sharing; contacts, queues, announcements and opening hours stay the called district's.


def district_names(db: sqlite_utils.Database) -> dict[str, str]:
    return {r[0]: r[1] for r in db.execute("select id, name from districts order by id")}


def menu_of(db: sqlite_utils.Database, district: str) -> str | None:
    """The district whose menu `district` plays, or None for its own."""
    row = db.execute("select menu_of from menu_shares where district = ?", [district]).fetchone()
    return row[0] if row else None


def all_shares(db: sqlite_utils.Database) -> dict[str, str]:
    """sharer -> owner, for every district that uses another's menu."""
    return {r[0]: r[1] for r in db.execute("select district, menu_of from menu_shares order by district")}


def sharers(db: sqlite_utils.Database, owner: str) -> list[str]:
    return [r[0] for r in db.execute(
        "select district from menu_shares where menu_of = ? order by district", [owner])]


def users_of(db: sqlite_utils.Database, owner: str) -> list[str]:
    """Every district whose callers hear `owner`'s menu: the owner first, then its sharers."""
    return [owner, *sharers(db, owner)]


def district_skills(db: sqlite_utils.Database, district: str) -> set[str]:
    """Skills at least one agent of `district` has."""
    return {r[0] for r in db.execute(
        "select distinct s.skill from agent_skills s join agents a on a.id = s.agent "
        "where a.district = ?", [district])}


def share_problems(db: sqlite_utils.Database, district: str, owner: str | None) -> list[str]:
    """Why `district` may not use `owner`'s menu (None: its own again); [] when it may."""
    names = district_names(db)
    if district not in names:
        raise NotFound(f"district {district!r}")
    if owner is None:
        return []
    if owner not in names:
        return [f"there is no district {owner!r} (known: {', '.join(sorted(names))})"]
    if owner == district:
        return [f"{names[district]} cannot share its own menu; send null to use its own menu"]
    owners_owner = menu_of(db, owner)
    if owners_owner is not None:
        return [f"{names[owner]} itself uses the menu of {names.get(owners_owner, owners_owner)}: "
                f"share {names.get(owners_owner, owners_owner)}'s menu directly (no chains)"]
    own_sharers = sharers(db, district)
    if own_sharers:
        return [f"{names[district]}'s menu is used by {', '.join(names[d] for d in own_sharers)}: "
                f"they must stop sharing it first (no chains)"]
    if current_version(db, owner) is None:
        return [f"{names[owner]} has no published menu to share"]
    return []


def set_share(db: sqlite_utils.Database, district: str, owner: str | None, by: str, at: str) -> str | None:
    """Make `district` play `owner`'s menu (None: its own again); returns the previous owner.
    The rules are checked again inside the write, so two administrators cannot build a chain.
    A district with no menu of its own that stops sharing keeps a copy of the shared one."""
    with db.conn:
        db.execute("begin immediate")
        problems = share_problems(db, district, owner)
        if problems:
            raise ShareRefused(problems)
        before = menu_of(db, district)
        if owner is None:
            if before is not None and current_version(db, district) is None:
                live = current_version(db, before)
                if live is not None:
                    db["menu_versions"].insert({
                        "district": district, "version": 1,
                        "body": json.dumps(live["body"], ensure_ascii=False), "created_at": at,
                        "created_by": by, "published": 1,
                        "note": f"copy of version {live['version']} of {before}'s menu"})
            db.execute("delete from menu_shares where district = ?", [district])
        else:
            db["menu_shares"].upsert({"district": district, "menu_of": owner, "updated_at": at,
                                      "updated_by": by}, pk="district")
    return before


class ShareRefused(InvalidInput):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))
