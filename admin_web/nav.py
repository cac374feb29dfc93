"""The site's navigation, by role: each area adds its pages here with one line."""
from __future__ import annotations

from typing import Any

from kc.i18n import N_, gettext as _

# (href, label, roles that see it); labels are translated when shown
NAV: list[tuple[str, str, tuple[str, ...]]] = [
    ("/", N_("Overview"), ("admin",)),
    ("/admin/users", N_("Users"), ("admin",)),
    ("/admin/audit", N_("Audit log"), ("admin",)),
    ("/admin/menus", N_("Menus"), ("admin",)),
    ("/admin/phrases", N_("Phrases"), ("admin",)),
    ("/admin/schedule", N_("Opening hours"), ("admin",)),
    ("/desk", N_("Desktop"), ("agent",)),
    ("/cases", N_("Cases"), ("admin", "supervisor", "manager", "agent")),
    ("/reports/fcr", N_("First contact"), ("admin", "supervisor", "manager")),
    ("/admin/casework", N_("Categories"), ("admin",)),
    ("/admin/kb", N_("Knowledge base"), ("admin",)),
    ("/reports", N_("Reports"), ("admin", "supervisor", "manager")),
    ("/wallboard", N_("Wallboard"), ("admin", "supervisor", "manager", "agent")),
    ("/admin/agents", N_("Agents"), ("admin", "supervisor")),
    ("/admin/org", N_("Districts and queues"), ("admin", "supervisor")),
    ("/admin/districts", N_("Districts"), ("admin",)),
    ("/admin/surveys", N_("Survey"), ("admin", "supervisor")),
]


def links_for(user: dict[str, Any] | None) -> list[dict[str, str]]:
    if not user:
        return []
    return [{"href": h, "label": _(label)} for h, label, roles in NAV if user["role"] in roles]


LANDING = {"agent": "/desk", "manager": "/reports", "supervisor": "/wallboard", "admin": "/"}


def landing(user: dict[str, Any] | None) -> str:
    """Where each role starts: an agent at the desk, a manager at the reports, a supervisor at
    the wallboard, an administrator at the overview."""
    return LANDING.get((user or {}).get("role", ""), "/")
