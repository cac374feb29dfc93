"""Schema migrations, in code, recorded by name in `schema_migrations` (the steps: `kc.schema`)."""
from __future__ import annotations


import sqlite_utils

from .schema import STEPS as MIGRATIONS


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
