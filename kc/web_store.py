"""Users, sessions, API tokens and the audit log: the SQL behind the site's access layer."""
from __future__ import annotations

import json
from typing import Any

import sqlite_utils


def user_districts(user: dict[str, Any] | None) -> tuple[str, ...]:
    """The districts of a user row/dict (the `districts` JSON column), () when none."""
    raw = (user or {}).get("districts")
    if isinstance(raw, (list, tuple)):
        return tuple(str(d) for d in raw)
    try:
        value = json.loads(raw or "[]")
    except (TypeError, ValueError):
        return ()
    return tuple(str(d) for d in value) if isinstance(value, list) else ()


def set_user_districts(db: sqlite_utils.Database, username: str, districts: list[str]) -> None:
    db["users"].update(username, {"districts": json.dumps(sorted(set(districts)))})


def get_user(db: sqlite_utils.Database, username: str) -> dict[str, Any] | None:
    rows = list(db["users"].rows_where("username = ?", [username]))
    return rows[0] if rows else None


def list_users(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return [
        {**{k: r[k] for k in ("username", "role", "agent", "failed_logins", "locked_until")},
         "districts": list(user_districts(r))}
        for r in db["users"].rows_where(order_by="username")
    ]


def record_login_failure(db: sqlite_utils.Database, username: str, limit: int,
                         lock_until: str) -> int:
    user = get_user(db, username)
    if user is None:
        return 0
    failures = (user["failed_logins"] or 0) + 1
    fields: dict[str, Any] = {"failed_logins": failures}
    if failures >= limit:
        fields["locked_until"] = lock_until
    db["users"].update(username, fields)
    return failures


def reset_login_failures(db: sqlite_utils.Database, username: str) -> None:
    db["users"].update(username, {"failed_logins": 0, "locked_until": None})


def create_session(db: sqlite_utils.Database, id_hash: str, username: str, csrf: str,
                   created_at: str, expires_at: str) -> None:
    db["web_sessions"].insert({"id_hash": id_hash, "username": username, "csrf": csrf,
                               "created_at": created_at, "expires_at": expires_at})


def session_user(db: sqlite_utils.Database, id_hash: str, now: str) -> dict[str, Any] | None:
    rows = list(db.query(
        "select u.username, u.role, u.agent, u.districts, u.language, s.csrf, s.id_hash as session "
        "from web_sessions s join users u using (username) "
        "where s.id_hash = ? and s.expires_at > ?", [id_hash, now]))
    return rows[0] if rows else None


def set_language(db: sqlite_utils.Database, username: str, language: str) -> str | None:
    """The user's language becomes `language`; returns the one before."""
    rows = list(db.query("select language from users where username = ?", [username]))
    db.execute("update users set language = ? where username = ?", [language, username])
    return rows[0]["language"] if rows else None


def delete_session(db: sqlite_utils.Database, id_hash: str) -> None:
    db.execute("delete from web_sessions where id_hash = ?", [id_hash])


def delete_user_sessions(db: sqlite_utils.Database, username: str) -> list[str]:
    """End every session of a user (password or role changed); returns their id hashes."""
    hashes = [r["id_hash"] for r in db.query(
        "select id_hash from web_sessions where username = ?", [username])]
    db.execute("delete from web_sessions where username = ?", [username])
    return hashes


def delete_expired_sessions(db: sqlite_utils.Database, now: str) -> None:
    db.execute("delete from web_sessions where expires_at <= ?", [now])


def create_user(db: sqlite_utils.Database, username: str, role: str, password_hash: str,
                agent: str | None, districts: list[str] | None = None) -> None:
    db["users"].insert({"username": username, "role": role, "password_hash": password_hash,
                        "agent": agent, "failed_logins": 0,
                        "districts": json.dumps(sorted(set(districts or [])))})


def update_user(db: sqlite_utils.Database, username: str, **fields: Any) -> None:
    db["users"].update(username, fields)


def list_tokens(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(db.query(
        "select substr(token_hash, 1, 12) as id, username, label, created_at from api_tokens "
        "order by created_at"))


def create_token(db: sqlite_utils.Database, token_hash: str, username: str, label: str,
                 created_at: str) -> None:
    db["api_tokens"].insert({"token_hash": token_hash, "username": username, "label": label,
                             "created_at": created_at})


def delete_token(db: sqlite_utils.Database, token_id: str) -> int:
    cur = db.execute("delete from api_tokens where substr(token_hash, 1, 12) = ?", [token_id])
    return cur.rowcount


def add_audit(db: sqlite_utils.Database, at: str, username: str, action: str, target: str,
              before: Any, after: Any) -> None:
    db["audit_log"].insert({
        "at": at, "username": username, "action": action, "target": target,
        "before": json.dumps(before, ensure_ascii=False, default=str),
        "after": json.dumps(after, ensure_ascii=False, default=str),
    })


def list_audit(db: sqlite_utils.Database, limit: int = 200, offset: int = 0) -> list[dict[str, Any]]:
    return [
        {**r, "before": json.loads(r["before"]), "after": json.loads(r["after"])}
        for r in db["audit_log"].rows_where(order_by="id desc", limit=limit, offset=offset)
    ]
