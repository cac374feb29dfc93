"""Schema migrations, in code, recorded by name in `schema_migrations`."""
from __future__ import annotations

from typing import Callable

import sqlite_utils

from .web_store import migrate_access, migrate_user_districts
from .agent_admin import create_moves_table
from .queue_config import create_table as create_queues_table
from .schedule_store import create_tables as create_schedule_tables
from .menu_store import create_tables as create_menu_tables
from .menu_store import create_share_table as create_menu_share_table
from .cases import create_attachments_table, create_tables as create_case_tables
from .reports import migrate_report_cache


def add_callback_column(db: sqlite_utils.Database) -> None:
    """Migration ``0008_acd_callback``: the number a waiting caller asked to be called back on."""
    if "callback_number" not in db["contacts"].columns_dict:
        db["contacts"].add_column("callback_number", str)


def _m1_initial(db: sqlite_utils.Database) -> None:
    db["districts"].create({"id": str, "name": str, "number": str}, pk="id")
    db["districts"].create_index(["number"], unique=True)
    db["skills"].create({"id": str, "name": str, "confidential": int}, pk="id")
    db["agents"].create(
        {"id": str, "name": str, "district": str, "languages": str, "cleared_for": str, "sip_ha1": str},
        pk="id",
        foreign_keys=[("district", "districts", "id")],
    )
    db["agent_skills"].create(
        {"agent": str, "skill": str, "proficiency": int},
        pk=("agent", "skill"),
        foreign_keys=[("agent", "agents", "id"), ("skill", "skills", "id")],
    )
    # Login state survives restarts of the service.
    db["agent_status"].create(
        {"agent": str, "state": str, "reason": str, "since": str},
        pk="agent",
        foreign_keys=[("agent", "agents", "id")],
    )
    db["menu_versions"].create(
        {"id": int, "district": str, "version": int, "body": str, "created_at": str,
         "created_by": str, "published": int},
        pk="id",
        foreign_keys=[("district", "districts", "id")],
    )
    db["menu_versions"].create_index(["district", "version"], unique=True)
    db["users"].create(
        {"username": str, "role": str, "password_hash": str, "agent": str,
         "failed_logins": int, "locked_until": str},
        pk="username",
        not_null={"role", "password_hash"},
        defaults={"failed_logins": 0},
    )
    db["api_tokens"].create(
        {"token_hash": str, "username": str, "created_at": str},
        pk="token_hash",
        foreign_keys=[("username", "users", "username")],
    )
    db["contacts"].create(
        {
            "id": int, "channel": str, "district": str, "dialed": str, "caller": str,
            "caller_name": str, "started_at": str, "ended_at": str, "menu_path": str,
            "language": str, "skill": str, "outcome": str, "agent": str, "agent_district": str,
            "overflowed": int, "wait_seconds": float, "talk_seconds": float,
            "confidential": int, "uniqueid": str, "channel_name": str,
            "enqueued_at": str, "answered_at": str,
        },
        pk="id",
        defaults={"overflowed": 0, "confidential": 0, "menu_path": "[]"},
    )
    db["contacts"].create_index(["started_at"])
    db["contacts"].create_index(["uniqueid"])
    db["contact_events"].create(
        {"id": int, "contact_id": int, "at": str, "kind": str, "data": str},
        pk="id",
        foreign_keys=[("contact_id", "contacts", "id")],
    )
    db["contact_events"].create_index(["contact_id"])


# (name, step) in the order they were written. Applied by name, once each, so work on different
# areas can add steps independently: append yours at the end, never rename or edit one.
MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("0001_initial", _m1_initial),
    ("0002_web_access", migrate_access),
    ("0003_acd_queues", create_queues_table),
    ("0004_schedules_after_hours", create_schedule_tables),
    ("0005_menus_drafts_announcements", create_menu_tables),
    ("0006_cases_channels_kb", create_case_tables),
    ("0007_reports_indexes_cache", migrate_report_cache),
    ("0008_acd_callback", add_callback_column),
    ("0009_agent_moves", create_moves_table),
    ("0010_user_districts", migrate_user_districts),
    ("0011_shared_menus", create_menu_share_table),
    ("0012_message_attachments", create_attachments_table),
]


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the steps this database has not seen; returns their names."""
    db.execute("create table if not exists schema_migrations (name text primary key, applied_at text)")
    empty = db.execute("select count(*) from schema_migrations").fetchone()[0] == 0
    if empty and db.execute("PRAGMA user_version").fetchone()[0] >= 1:
        # the first databases counted their one migration in user_version
        db.execute("insert into schema_migrations values ('0001_initial', datetime('now'))")
    done = {row[0] for row in db.execute("select name from schema_migrations")}
    known = {name for name, _ in MIGRATIONS}
    unknown = done - known
    if unknown:
        raise RuntimeError(f"database has migrations this code does not know: {sorted(unknown)}")
    applied = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        with db.conn:
            db.execute("begin")
            step(db)
            db.execute("insert into schema_migrations (name, applied_at) values (?, datetime('now'))",
                       [name])
        applied.append(name)
    return applied
