"""The site's navigation, by role: each area adds its pages here with one line."""
from __future__ import annotations

from typing import Any

# (href, label, roles that see it)
NAV: list[tuple[str, str, tuple[str, ...]]] = [
    ("/admin/users", "Users", ("admin",)),
    ("/admin/audit", "Audit log", ("admin",)),
]


def links_for(user: dict[str, Any] | None) -> list[dict[str, str]]:
    if not user:
        return []
    return [{"href": h, "label": label} for h, label, roles in NAV if user["role"] in roles]
