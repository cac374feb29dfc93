"""Role × route: every GET route the application has, opened by every role, against the one
table of who may (`admin_web/roles.py`), which also renders the README's role table."""
from __future__ import annotations

import re

from admin_web import roles
from kc.settings import PROJECT_ROOT
from test_route_access import FILL, NO_RECORD

from kommuncentral.service import build_app
from kc.settings import Settings
from own_agents import PASSWORD, Crew
from web_client import Peer

CREW = Crew(__name__)
[AGENT] = CREW.of("school")
crew = CREW.fixture()

USERS = {"admin": ("admin", "demo-admin"), "supervisor": ("supervisor", "demo-supervisor"),
         "manager": ("manager", "demo-manager"), "agent": (AGENT, PASSWORD)}
STREAMS = {"/desk/ws", "/wallboard/events"}    # long-lived: opened by their own tests


def _get_routes(kc, methods=("GET",)) -> list[str]:
    app = build_app(Settings.from_env({**kc.env}))
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if route.method in methods and path and "prefix" not in info:
            out.add(path)
    return sorted(out)


def test_every_get_route_is_in_the_table(kc):
    missing = [p for p in _get_routes(kc) if p not in roles.PUBLIC and roles.area_of(p) is None]
    assert missing == []
    named = {r for a in roles.AREAS for r in a.routes}
    assert named - set(_get_routes(kc)) == set()          # none invented
    assert set(roles.PUBLIC) - set(_get_routes(kc, ("GET", "POST"))) == set()


def test_each_role_reaches_exactly_what_the_table_says(kc):
    peers = {}
    for role, (user, password) in USERS.items():
        peers[role] = Peer(kc, "127.0.0.1")
        assert peers[role].login(user, password)[0] == 302, role
    wrong = []
    for template in _get_routes(kc):
        area = roles.area_of(template)
        if area is None or template in STREAMS:
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: FILL.get(m.group(1), NO_RECORD), template)
        for role, peer in peers.items():
            status, headers, _ = peer.request("GET", path)
            refused = status in (401, 403) or (
                status == 302 and headers.get("Location", "").startswith("/login"))
            if refused == (role in area.roles):
                wrong.append((template, role, status))
    assert wrong == []


def test_the_readme_role_table_is_the_code_table():
    readme = (PROJECT_ROOT / "README.md").read_text()
    match = re.search(r"<!-- role table:[^\n]*-->\n(.*?)<!-- end of the role table -->", readme, re.S)
    assert match, "the README has no generated role table"
    assert match.group(1) == roles.markdown_table()
