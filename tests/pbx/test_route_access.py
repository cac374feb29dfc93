"""Every route of the site, enumerated from the application itself: nobody anonymous gets
past the door, and an agent does not reach what is for administrators."""
from __future__ import annotations

import re

from admin_web import roles
from kommuncentral.service import build_app
from kc.settings import Settings
from own_agents import PASSWORD, Crew
from web_client import Client

CREW = Crew(__name__)
[AGENT] = CREW.of("school")

# Routes meant for the public (or for logging in/out), by path: the one table's.
PUBLIC = set(roles.PUBLIC)
# Ids no record has: a role that may reach a route gets its 404, one that may not is refused
# before the lookup, whatever other modules stored first (a record of another district would
# answer an allowed agent "not your district").
NO_RECORD = "999999"
FILL = {"district": "bromma", "skill": "school", "agent_id": AGENT, "username": "manager",
        "token_id": "0123456789ab", "n": NO_RECORD, "version": NO_RECORD, "name": "a" * 64}


def _routes(kc):
    app = build_app(Settings.from_env({**kc.env}))
    out = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS"):
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if not path or "prefix" in info:       # static files
            continue
        path = re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: FILL.get(m.group(1), NO_RECORD), path)
        out.add((route.method, path))
    return sorted(out)


crew = CREW.fixture()


def test_anonymous_is_refused_everywhere_but_public_routes(kc):
    routes = _routes(kc)
    assert len(routes) > 60, routes                      # the whole site, not a sample
    anonymous = Client(kc.url)
    leaks = []
    for method, path in routes:
        if path in PUBLIC:
            continue
        status, headers, _ = anonymous.request(method, path, {} if method != "GET" else None)
        ok = status in (401, 403) or (status == 302 and headers["Location"].startswith("/login"))
        if not ok:
            leaks.append((method, path, status))
    assert leaks == []


def test_agent_cannot_reach_admin_routes(kc):
    agent = Client(kc.url)
    assert agent.login(AGENT, PASSWORD)[0] == 302
    leaks = []
    for method, path in _routes(kc):
        if method != "GET" or not path.startswith(("/admin", "/api/reports", "/reports",
                                                   "/api/menus", "/api/queues", "/api/export")):
            continue
        status, _, _ = agent.request(method, path)
        if status not in (401, 403, 404):
            leaks.append((path, status))
    assert leaks == []
