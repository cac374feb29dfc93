"""`GET/PUT /api/menus/{district}` on the running service: roles, 422 with the problems, 409 on a
stale base version, history and rollback, announcements; and `kc menu export/import`."""
from __future__ import annotations

import copy
import sqlite3
import subprocess
import sys

from kc_instance import ROOT

DISTRICT = "hasselby-vallingby"


def current(kc):
    status, body = kc.request("GET", f"/api/menus/{DISTRICT}")
    assert status == 200, body
    return body


def test_get_and_put_menu_with_roles_problems_conflicts_and_rollback(kc):
    start = current(kc)
    assert start["menu"]["languages"] == ["sv", "en"] and start["menu"]["root"] == "main"
    assert kc.request("GET", f"/api/menus/{DISTRICT}", token=None)[0] == 401
    assert kc.request("GET", "/api/menus/atlantis")[0] == 404
    # the manager may read, not publish
    assert kc.request("GET", f"/api/menus/{DISTRICT}", token="demo-manager-token")[0] == 200
    status, body = kc.request("PUT", f"/api/menus/{DISTRICT}", start["menu"], token="demo-manager-token")
    assert status == 403

    bad = copy.deepcopy(start["menu"])
    bad["nodes"]["main"]["options"]["4"] = {"action": "submenu", "node": "nowhere"}
    bad["nodes"]["main"]["options"]["5"] = {"action": "queue", "skill": "parking"}
    status, body = kc.request("PUT", f"/api/menus/{DISTRICT}", bad)
    assert status == 422
    assert "main: option '4' points to missing node 'nowhere'" in body["problems"]
    assert any("'parking'" in p for p in body["problems"])
    status, body = kc.request("PUT", f"/api/menus/{DISTRICT}", {"languages": "sv"})
    assert status == 422 and body["problems"]

    good = copy.deepcopy(start["menu"])
    good["nodes"]["main"]["options"]["4"] = {
        "action": "info", "prompt": {"sv": "Vi har öppet åtta till fyra.", "en": "We are open eight to four."}}
    status, body = kc.request("PUT", f"/api/menus/{DISTRICT}",
                              {"menu": good, "base_version": start["version"], "note": "opening hours"})
    assert status == 200, body
    published = body["version"]
    assert published == start["version"] + 1
    assert current(kc)["menu"]["nodes"]["main"]["options"]["4"]["action"] == "info"

    # a second administrator who also started from the old version gets a clear conflict
    other = copy.deepcopy(start["menu"])
    other["nodes"]["main"]["options"]["6"] = {"action": "repeat"}
    status, body = kc.request("PUT", f"/api/menus/{DISTRICT}", {"menu": other, "base_version": start["version"]})
    assert status == 409
    assert body["current_version"] == published and "4" in body["menu"]["nodes"]["main"]["options"]
    assert "changed meanwhile" in body["error"]

    status, body = kc.request("GET", f"/api/menus/{DISTRICT}/versions")
    assert [v["version"] for v in body["versions"]][:2] == [published, start["version"]]
    assert body["versions"][0]["note"] == "opening hours" and body["versions"][0]["created_by"] == "admin"

    status, body = kc.request("POST", f"/api/menus/{DISTRICT}/rollback", {})
    assert status == 200, body
    assert current(kc)["menu"] == start["menu"] and current(kc)["note"] == f"rollback to version {start['version']}"

    with sqlite3.connect(f"file:{kc.var / 'kc.db'}?mode=ro", uri=True) as db:
        actions = [r[0] for r in db.execute(
            "select action from audit_log where target = ? order by id", [f"menu:{DISTRICT}"])]
    assert actions[-2:] == ["menu.publish", "menu.rollback"]


def test_announcement_api_validates(kc):
    status, body = kc.request("PUT", f"/api/menus/{DISTRICT}/announcement",
                              {"texts": {"sv": "Störning"}, "ends_at": "2000-01-01T00:00:00Z"})
    assert status == 422 and any("past" in p for p in body["problems"])
    status, body = kc.request("PUT", f"/api/menus/{DISTRICT}/announcement",
                              {"texts": {"sv": "Störning"}, "ends_at": "2999-01-01T00:00:00Z"},
                              token="demo-manager-token")
    assert status == 403
    status, body = kc.request("PUT", f"/api/menus/{DISTRICT}/announcement",
                              {"texts": {"sv": "Vi har en störning."}, "ends_at": "2999-01-01T00:00:00Z"})
    assert status == 200 and body["texts"] == {"sv": "Vi har en störning."}
    assert kc.request("DELETE", f"/api/menus/{DISTRICT}/announcement")[0] == 200


def test_kc_menu_export_then_import_validates_the_same_way(kc, tmp_path):
    run = lambda *args, **kw: subprocess.run([sys.executable, "-m", "kommuncentral.cli", "menu", *args],  # noqa: E731
                                             cwd=ROOT, env=kc.env, capture_output=True, text=True, **kw)
    exported = run("export", DISTRICT)
    assert exported.returncode == 0, exported.stderr
    assert "languages:" in exported.stdout and "Hässelby-Vällingby" in exported.stdout
    before = current(kc)["version"]

    broken = tmp_path / "broken.yaml"
    broken.write_text(exported.stdout.replace("skill: school", "skill: plumbing"), encoding="utf-8")
    result = run("import", DISTRICT, str(broken))
    assert result.returncode == 2
    assert "main: option '2' queues for unknown skill 'plumbing'" in result.stderr
    assert current(kc)["version"] == before

    good = tmp_path / "menu.yaml"
    good.write_text(exported.stdout, encoding="utf-8")
    result = run("import", DISTRICT, str(good))
    assert result.returncode == 0, result.stderr
    assert current(kc)["version"] == before + 1 and current(kc)["created_by"].startswith("cli")


def test_share_a_menu_over_the_api_roles_rules_and_refused_export(kc):
    share = f"/api/menus/{DISTRICT}/share"
    assert kc.request("PUT", share, {"menu_of": "bromma"}, token=None)[0] == 401
    assert kc.request("PUT", share, {"menu_of": "bromma"}, token="demo-manager-token")[0] == 403
    for body, expected in (({"menu_of": DISTRICT}, "cannot share its own menu"),
                           ({"menu_of": "atlantis"}, "no district 'atlantis'"),
                           ({"menu_of": 7}, "body must be JSON like"),
                           ({}, "body must be JSON like")):
        status, answer = kc.request("PUT", share, body)
        assert status == 422 and expected in answer["error"], (body, answer)
    assert kc.request("PUT", "/api/menus/atlantis/share", {"menu_of": "bromma"})[0] == 404
    run = lambda *args: subprocess.run([sys.executable, "-m", "kommuncentral.cli", "menu", *args],  # noqa: E731
                                       cwd=ROOT, env=kc.env, capture_output=True, text=True,
                                       stdin=subprocess.DEVNULL)
    status, answer = kc.request("PUT", share, {"menu_of": "bromma"})
    assert status == 200 and answer == {"district": DISTRICT, "menu_of": "bromma"}, answer
    try:
        assert kc.request("GET", share)[1] == {"district": DISTRICT, "menu_of": "bromma", "shared_with": []}
        status, answer = kc.request("GET", "/api/menus/bromma")
        assert status == 200 and answer["shared_with"] == [DISTRICT]
        # no chains: the owner may not share the sharer's menu
        status, answer = kc.request("PUT", "/api/menus/bromma/share", {"menu_of": DISTRICT})
        assert status == 422 and "no chains" in answer["error"]
        # the sharer has no menu of its own to read, publish or export while it shares
        status, answer = kc.request("GET", f"/api/menus/{DISTRICT}")
        assert status == 409 and answer["menu_of"] == "bromma" and "uses the menu of Bromma" in answer["error"]
        status, answer = kc.request("PUT", f"/api/menus/{DISTRICT}", kc.request("GET", "/api/menus/bromma")[1]["menu"])
        assert status == 422 and answer["menu_of"] == "bromma" and "uses the menu of Bromma" in answer["error"]
        exported = run("export", DISTRICT)
        assert exported.returncode == 2 and exported.stdout == ""
        assert "uses the menu of Bromma (bromma)" in exported.stderr
        imported = run("import", DISTRICT, "-")
        assert imported.returncode == 2 and "uses the menu of Bromma (bromma)" in imported.stderr
    finally:
        status, answer = kc.request("PUT", share, {"menu_of": None})
        assert status == 200 and answer["menu_of"] is None
    assert current(kc)["menu"]["root"] == "main"
    with sqlite3.connect(f"file:{kc.var / 'kc.db'}?mode=ro", uri=True) as db:
        rows = list(db.execute("select action, username, before, after from audit_log "
                               "where target = ? and action like 'menu.%share' order by id",
                               [f"menu:{DISTRICT}"]))
    assert rows[-2:] == [("menu.share", "admin", '{"menu_of": null}', '{"menu_of": "bromma"}'),
                         ("menu.unshare", "admin", '{"menu_of": "bromma"}', '{"menu_of": null}')]
