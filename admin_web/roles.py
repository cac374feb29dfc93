"""Who may open what: the one table of the site's pages and read routes by role.

The README's role table is rendered from it (`markdown_table`; a test keeps them equal), and
`tests/pbx/test_role_matrix.py` walks every GET route the application has, as every role,
against it: a route missing here, or a role let in (or kept out) unlike this table, fails.
Changes (POST/PUT/DELETE) are checked by the handlers with the same roles; finer rules (a
supervisor's own districts, an agent's clearance for confidential matters) come on top.
"""
from __future__ import annotations

from dataclasses import dataclass

ROLES = ("admin", "supervisor", "manager", "agent")
EVERYONE = frozenset(ROLES)
READERS = frozenset({"admin", "supervisor", "manager"})


@dataclass(frozen=True)
class Area:
    what: str                 # the README's first column
    who: str                  # the README's second column, in words
    roles: frozenset[str]     # who may read (GET) its routes
    routes: tuple[str, ...]   # GET path templates as the router names them


AREAS: tuple[Area, ...] = (
    Area("`/wallboard` live per district and queue: waiting, longest wait, agents by state, "
         "answered/abandoned, service level and uncategorised (per district and agent) today",
         "everyone logged in", EVERYONE,
         ("/wallboard", "/wallboard/events", "/api/wallboard")),
    Area("`/reports` offered, answered, abandons (under 5 s apart), service level, availability, "
         "ASA, AHT, overflow, after-hours, call-backs, repeat callers, first-contact resolution; "
         "SVG charts, CSV, Erlang C staffing per hour; definitions on the page; `/reports/fcr`",
         "admin, supervisor, manager", READERS,
         ("/reports", "/reports/fcr", "/api/reports/summary", "/api/reports/table", "/api/reports/rundgang",
          "/api/reports/agents",
          "/api/reports/staffing", "/api/reports/{name}.csv", "/api/reports/charts/{name}.svg",
          "/api/cases/fcr")),
    Area("`/admin/org` districts, skills, queues; `/admin/queues/<skill>/<district>` "
         "service-level target, wrap-up, overflow steps, priority (applied to the next routing "
         "decision)", "supervisor reads; admin edits", frozenset({"admin", "supervisor"}),
         ("/admin/org", "/admin/queues/{skill}/{district}")),
    Area("`/admin/agents` agents' state (log in/out, pause), move to another district for the "
         "day — a supervisor only for the districts they supervise", "admin, supervisor",
         frozenset({"admin", "supervisor"}), ("/admin/agents",)),
    Area("`/admin/agents/new`, `/admin/agents/<id>/edit` new/edit agent (skills with "
         "proficiency, languages, district, clearance); new SIP password applied to Asterisk "
         "without a restart", "admin", frozenset({"admin"}),
         ("/admin/agents/new", "/admin/agents/{agent_id}/edit")),
    Area("`/admin/menus`, `/admin/schedule` menus and opening hours (below)", "admin",
         frozenset({"admin"}),
         ("/admin/menus", "/admin/menus/{district}", "/admin/schedule",
          "/admin/schedule/{district}")),
    Area("`/admin/phrases` the system's own phrases in every language: spoken, recorded or "
         "missing, with an upload for a language without a voice (`/api/phrases`, "
         "`PUT /api/phrases/<key>/<language>/recording`)", "admin", frozenset({"admin"}),
         ("/admin/phrases", "/api/phrases")),
    Area("a menu's prompt or recording as audio (`/admin/menus/sound/<hash>.wav`)",
         "admin, supervisor", frozenset({"admin", "supervisor"}), ("/admin/menus/sound/{name}.wav",)),
    Area("`/admin/districts` add, edit and retire districts (numbers, addresses, region, "
         "switchboard, menu copied or shared, first hours); `/admin/skills` add and edit skills; "
         "applied live as through the API", "admin", frozenset({"admin"}),
         ("/admin/districts", "/admin/districts/new", "/admin/districts/{district}",
          "/admin/skills", "/admin/skills/{skill}")),
    Area("`/api/districts` the districts, retired ones included (the organisation's changes "
         "through `PUT /api/districts/{id}`, `/api/skills/{id}`, `/api/config`: admin)",
         "admin, supervisor, manager", READERS, ("/api/districts",)),
    Area("`/api/directory?q=` the switchboard's staff directory (name, unit, district, "
         "number, available; imported by admins through `POST /api/directory/import` or "
         "`kc directory import`)", "admin, supervisor, manager, agent",
         frozenset({"admin", "supervisor", "manager", "agent"}), ("/api/directory",)),
    Area("`/api/config` the whole organisation as one document (no passwords)", "admin",
         frozenset({"admin"}), ("/api/config",)),
    Area("`/admin/users` users, roles, passwords, unlock, API tokens per user; `/admin/audit` "
         "the audit log (who, what, when, before/after) of every change", "admin",
         frozenset({"admin"}), ("/admin/users", "/admin/audit")),
    Area("`/admin/casework` categories and departments, `/admin/kb` the knowledge base, "
         "`/admin/export` a person's data", "admin", frozenset({"admin"}),
         ("/admin/casework", "/admin/kb", "/admin/export")),
    Area("`/desk` the agent desktop (a user linked to an agent), its after-hours requests",
         "agent", frozenset({"agent"}), ("/desk", "/desk/ws", "/desk/after-hours")),
    Area("a voice message's recording (`/desk/after-hours/<id>/recording`): agents of its "
         "district and supervisors of it; a confidential one only to those cleared",
         "agent, supervisor", frozenset({"agent", "supervisor"}),
         ("/desk/after-hours/{request_id}/recording",)),
    Area("an e-mail's attachment (`/desk/attachments/<id>`): the contact's agent or district, "
         "supervisors of it, admins; a confidential one only to those cleared",
         "agent, supervisor, admin", frozenset({"agent", "supervisor", "admin"}),
         ("/desk/attachments/{attachment_id}",)),
    Area("`/desk/kb` knowledge-base search", "agent, supervisor, admin",
         frozenset({"agent", "supervisor", "admin"}), ("/desk/kb",)),
    Area("`/cases` cases (a confidential case in full only to those cleared for it)",
         "everyone logged in", EVERYONE,
         ("/cases", "/cases/{case_id}", "/api/cases", "/api/cases/{case_id}")),
    Area("the JSON API's contacts, agents, opening hours and after-hours requests (callers of "
         "confidential contacts only to those cleared)", "everyone logged in", EVERYONE,
         ("/api/contacts", "/api/agents", "/api/schedule", "/api/schedule/{district}",
          "/api/schedule/{district}/status", "/api/schedule/{district}/calendar",
          "/api/after-hours")),
    Area("the JSON API's menus and queues", "admin, supervisor, manager (admin changes)", READERS,
         ("/api/menus/{district}", "/api/menus/{district}/share",
          "/api/menus/{district}/versions", "/api/menus/{district}/versions/{version}",
          "/api/queues")),
    Area("`/admin/surveys` the survey after a call per queue: on/off, every n-th caller, the "
         "questions in every menu language", "admin, supervisor (changes: admin, supervisors "
         "of the district)", frozenset({"admin", "supervisor"}), ("/admin/surveys",)),
    Area("`/api/surveys` the surveys' settings, `/api/reports/survey` their answers",
         "admin, supervisor, manager",
         READERS, ("/api/surveys", "/api/reports/survey")),
    Area("`/api/export?person=` everything stored about one person (audited)",
         "admin, supervisor", frozenset({"admin", "supervisor"}), ("/api/export",)),
)

# Open to anyone (no log-in): the front page, logging in and out, choosing the language, the
# public form, health and the API's description; and `/metrics`, which no user opens: it is
# open to the addresses of `KC_METRICS_ALLOW` or the bearer of `KC_METRICS_TOKEN`
# (admin_web/metrics_route.py).
PUBLIC = ("/", "/login", "/logout", "/language", "/kontakt", "/api/health", "/api/openapi.json",
          "/metrics")


def area_of(path: str) -> Area | None:
    for area in AREAS:
        if path in area.routes:
            return area
    return None


def markdown_table() -> str:
    """The README's role table."""
    rows = ["| page | who |", "|---|---|"]
    rows += [f"| {a.what} | {a.who} |" for a in AREAS]
    return "\n".join(rows) + "\n"
