"""The site's navigation, by role: each area adds its pages here with one line."""
from __future__ import annotations

from typing import Any

# (href, label, roles that see it)
NAV: list[tuple[str, str, tuple[str, ...]]] = [
    ("/admin/users", "Users", ("admin",)),
    ("/admin/audit", "Audit log", ("admin",)),
    ("/admin/menus", "Menus", ("admin",)),
    ("/admin/schedule", "Opening hours", ("admin",)),
    ("/desk", "Desktop", ("agent",)),
    ("/cases", "Cases", ("admin", "supervisor", "manager", "agent")),
    ("/reports/fcr", "First contact", ("admin", "supervisor", "manager")),
    ("/admin/casework", "Categories", ("admin",)),
    ("/admin/kb", "Knowledge base", ("admin",)),
    ("/reports", "Reports", ("admin", "supervisor", "manager")),
    ("/wallboard", "Wallboard", ("admin", "supervisor", "manager", "agent")),
    ("/admin/agents", "Agents", ("admin", "supervisor")),
    ("/admin/org", "Districts and queues", ("admin", "supervisor")),
    ("/admin/districts", "Stadsdelar", ("admin",)),
    ("/admin/surveys", "Survey", ("admin", "supervisor")),
]


def links_for(user: dict[str, Any] | None) -> list[dict[str, str]]:
    if not user:
        return []
    return [{"href": h, "label": label} for h, label, roles in NAV if user["role"] in roles]
