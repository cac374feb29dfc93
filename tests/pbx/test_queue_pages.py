"""Queue settings over the API and the page: roles, validation, audit, and the ACD sees them."""
import re

from web_client import Client


def test_queue_settings_api_roles_validation_and_audit(kc):
    status, body = kc.request("GET", "/api/queues", token="demo-manager-token")
    assert status == 200
    names = {q["name"] for q in body["queues"]}
    assert {"elderly-care@bromma", "social-services@hasselby-vallingby"} <= names

    new = {"service_level_seconds": 20, "wrap_up_seconds": 0, "priority": 2,
           "overflow": [{"after_seconds": 45, "districts": ["bromma"]}]}
    assert kc.request("PUT", "/api/queues/school/hasselby-vallingby", new,
                      token="demo-manager-token")[0] == 403
    status, body = kc.request("PUT", "/api/queues/school/hasselby-vallingby",
                              {**new, "overflow": [{"after_seconds": 45, "districts": ["atlantis"]}]})
    assert status == 422 and "atlantis" in body["error"]
    status, body = kc.request("PUT", "/api/queues/school/hasselby-vallingby",
                              {**new, "wrap_up_seconds": -1})
    assert status == 422
    assert kc.request("PUT", "/api/queues/school/nowhere", new)[0] == 404
    status, body = kc.request("PUT", "/api/queues/school/hasselby-vallingby", new)
    assert status == 200 and body["priority"] == 2 and body["overflow"][0]["after_seconds"] == 45
    saved = next(q for q in kc.request("GET", "/api/queues")[1]["queues"]
                 if q["name"] == "school@hasselby-vallingby")
    assert saved["service_level_seconds"] == 20

    client = Client(kc.url)
    client.login("admin", "demo-admin")
    _, _, audit = client.request("GET", "/admin/audit")
    assert "queue.update" in audit and "school@hasselby-vallingby" in audit
    # put it back as the demo had it
    kc.request("PUT", "/api/queues/school/hasselby-vallingby",
               {"service_level_seconds": 30, "wrap_up_seconds": 0, "priority": 0,
                "overflow": [{"after_seconds": 30, "districts": ["bromma"]}]})


def _queue(kc, name: str) -> dict:
    return next(q for q in kc.request("GET", "/api/queues")[1]["queues"] if q["name"] == name)


def test_queue_settings_page_form(kc):
    demo = {k: v for k, v in _queue(kc, "elderly-care@bromma").items()
            if k not in ("name", "skill", "district")}
    status, body = kc.request("PUT", "/api/queues/elderly-care/bromma",
                              {**demo, "written_service_level_seconds": 7200})
    assert status == 200, body
    client = Client(kc.url)
    client.login("admin", "demo-admin")
    status, _, page = client.request("GET", "/admin/queues/elderly-care/bromma")
    assert status == 200 and "30: hasselby-vallingby" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"csrf_token": token, "service_level_seconds": "25", "wrap_up_seconds": "0",
            "priority": "0", "overflow": "thirty: hasselby-vallingby"}
    status, _, page = client.request("POST", "/admin/queues/elderly-care/bromma", form)
    assert status == 422 and "är inte ett antal sekunder" in page
    form["overflow"] = "30: hasselby-vallingby"
    status, headers, _ = client.request("POST", "/admin/queues/elderly-care/bromma", form)
    assert status == 302 and headers["Location"].endswith("saved=1")
    saved = _queue(kc, "elderly-care@bromma")
    assert saved["service_level_seconds"] == 25
    assert saved["written_service_level_seconds"] == 7200      # not on the page: kept
    form["service_level_seconds"] = "30"
    client.request("POST", "/admin/queues/elderly-care/bromma", form)
    supervisor = Client(kc.url)
    supervisor.login("supervisor", "demo-supervisor")
    status, _, page = supervisor.request("GET", "/admin/queues/elderly-care/bromma")
    assert status == 200 and "disabled" in page
    assert supervisor.request("POST", "/admin/queues/elderly-care/bromma", form)[0] == 403
    assert kc.request("PUT", "/api/queues/elderly-care/bromma", demo)[0] == 200
