"""The OpenAPI description names exactly the `/api/` routes the application has: none missing,
none invented (methods included)."""
from __future__ import annotations

import re

from admin_web.openapi import SPEC
from kc.settings import Settings
from kommuncentral.service import build_app


def test_the_description_is_the_router(tmp_path):
    app = build_app(Settings.from_env({"KC_VAR": str(tmp_path)}))
    have = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if route.method == "HEAD" or not path or not path.startswith("/api/"):
            continue
        have.add((route.method, re.sub(r"\{(\w+)(?::[^}]*)?\}", r"{\1}", path)))
    described = {(method.upper(), path) for path, ops in SPEC["paths"].items() for method in ops}
    assert sorted(have - described) == [], "routes missing from admin_web/openapi.py"
    assert sorted(described - have) == [], "operations in admin_web/openapi.py no route serves"
    assert len(have) > 30
    assert SPEC["openapi"].startswith("3.1")
    for path, ops in SPEC["paths"].items():     # every path parameter is declared
        for op in ops.values():
            declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert declared == set(re.findall(r"\{(\w+)\}", path)), (path, declared)
