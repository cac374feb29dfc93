"""The organisation's own rows (migration ``0014_organisation``): the centre's settings, each
district's numbers and e-mail addresses, the categorisation keywords and the agents' transfer
codes. Plain functions for `Store.run`; the whole document is `city.store`.

Every table here moves the call data stamp (`data_stamp`), so the service's held copies (the
call catalogue, the e-mail directory, the ACD, the PBX's configuration) notice a change made by
any process, without a restart.
"""
from __future__ import annotations

import secrets
from typing import Any, Mapping

import sqlite_utils

SETTING_KEYS = ("mail_domain", "switchboard_skill", "keyword_fallback")


def data_stamp(db: sqlite_utils.Database) -> int:
    """How many changes the organisation and the call data have seen (any process)."""
    return db.execute("select changes from call_data_stamp where id = 1").fetchone()[0]


def settings(db: sqlite_utils.Database) -> dict[str, str]:
    return {k: v for k, v in db.execute("select key, value from org_settings")}


def set_settings(db: sqlite_utils.Database, values: Mapping[str, Any]) -> None:
    have = settings(db)
    for key in SETTING_KEYS:
        value = values.get(key)
        if value is None and key in have:
            db.execute("delete from org_settings where key = ?", [key])
        elif value is not None and have.get(key) != value:
            db.execute("insert or replace into org_settings (key, value) values (?, ?)", [key, value])


def keywords(db: sqlite_utils.Database) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for skill, word in db.execute("select skill, word from category_keywords order by skill, word"):
        out.setdefault(skill, []).append(word)
    return out


def set_keywords(db: sqlite_utils.Database, words: Mapping[str, list[str]]) -> None:
    if keywords(db) == {k: sorted(v) for k, v in words.items()}:
        return
    db.execute("delete from category_keywords")
    db.conn.executemany("insert into category_keywords (skill, word) values (?, ?)",
                   [(skill, w) for skill, ws in words.items() for w in ws])


def transfer_codes(db: sqlite_utils.Database) -> dict[str, str]:
    return {c: t for c, t in db.execute("select code, target from transfer_codes order by code")}


def set_transfer_codes(db: sqlite_utils.Database, codes: Mapping[str, str]) -> None:
    if transfer_codes(db) == dict(codes):
        return
    db.execute("delete from transfer_codes")
    db.conn.executemany("insert into transfer_codes (code, target) values (?, ?)", list(codes.items()))


def write_district(db: sqlite_utils.Database, d: Mapping[str, Any] | None, key: str, at: str) -> None:
    """Write one district of the document (None: retire `key`). Its numbers and addresses
    must have been deleted first (they may move from one district to another)."""
    if d is None or d["retired"]:
        db.execute("update districts set retired_at = coalesce(retired_at, ?) where id = ?", [at, key])
        db.execute("delete from district_numbers where district = ?", [key])
        db.execute("delete from district_addresses where district = ?", [key])
        if d is None:
            return
    numbers = list(d["numbers"])
    row = {"id": key, "name": d["name"], "number": numbers[0] if numbers else None,
           "region": d["region"], "switchboard": d["switchboard"]}
    exists = db["districts"].count_where("id = ?", [key])
    if not d["retired"]:
        row["retired_at"] = None
    elif not exists:
        row["retired_at"] = at
    if exists:
        db.execute("update districts set number = null where id = ?", [key])
    for number in numbers:      # the first number may come from another district
        db.execute("update districts set number = null where number = ?", [number])
    db["districts"].upsert(row, pk="id")
    db.conn.executemany("insert into district_numbers (number, district) values (?, ?)",
                   [(n, key) for n in numbers])
    db.conn.executemany("insert into district_addresses (address, district) values (?, ?)",
                   [(a.lower(), key) for a in d["addresses"]])


def mail_directory(db: sqlite_utils.Database) -> tuple[str | None, dict[str, str],
                                                        dict[str, list[str]], str | None]:
    """(mail domain, address → district of districts in service, keywords, fallback skill)."""
    org = settings(db)
    addresses = {a: d for a, d in db.execute(
        "select a.address, a.district from district_addresses a join districts d on d.id = a.district "
        "where d.retired_at is null order by a.rowid")}
    return org.get("mail_domain"), addresses, keywords(db), org.get("keyword_fallback")


def new_secret() -> str:
    """A password nobody knows, for an agent or user created without one (set it later)."""
    return secrets.token_urlsafe(18)
