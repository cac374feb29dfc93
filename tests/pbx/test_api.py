"""The JSON API against a running instance: tokens, roles, validation."""
import urllib.request
from datetime import datetime, timezone

import pytest

from pbx.runtime import runtime_for
from kc.settings import Settings
from own_agents import Crew

CREW = Crew(__name__)
SOCIAL, SCHOOL_HV = CREW.of("social", "school-hv")
crew = CREW.fixture()


@pytest.mark.smoke16
def test_health_needs_no_token_and_names_the_asterisk_in_use(kc):
    settings = Settings.from_env(kc.env)
    expected = runtime_for(settings).installed_version()   # `asterisk -V` of the chosen one
    assert expected is not None
    major = int(expected.split(".")[0])
    assert major == 16 if settings.asterisk == "16" else major >= 20
    assert kc.request("GET", "/api/health", token=None) == (
        200, {"status": "ok", "asterisk": "up", "ami": "up", "asterisk_version": expected})
    with urllib.request.urlopen(kc.url + "/", timeout=10) as resp:   # the home page says it too
        assert f'<span id="asterisk-version">{expected}</span>' in resp.read().decode()


def test_missing_or_wrong_token_is_401_json(kc):
    for token in (None, "nope"):
        for path in ("/api/contacts", "/api/agents"):
            status, body = kc.request("GET", path, token=token)
            assert status == 401 and "error" in body


def test_agents_list_agents_with_skills_district_and_state(kc):
    status, body = kc.request("GET", "/api/agents", token="demo-manager-token")
    assert status == 200
    agents = {a["id"]: a for a in body["agents"]}
    assert {SOCIAL, SCHOOL_HV} <= set(agents)
    assert agents[SOCIAL]["skills"] == {"social-services": 4, "switchboard": 3}
    assert agents[SOCIAL]["state"] == "logged_out"
    assert agents[SCHOOL_HV]["district"] == "hasselby-vallingby"
    for agent in agents.values():
        assert agent["state"] in {"logged_out", "ready", "paused", "ringing", "on_call", "wrap_up"}
        assert isinstance(agent["registered"], bool)


def test_state_change_needs_admin_and_valid_state(kc):
    status, _ = kc.request("POST", f"/api/agents/{SCHOOL_HV}/state", {"state": "ready"},
                           token="demo-manager-token")
    assert status == 403
    assert kc.request("POST", f"/api/agents/{SCHOOL_HV}/state", {"state": "sleeping"})[0] == 422
    assert kc.request("POST", f"/api/agents/{SCHOOL_HV}/state", "ready")[0] == 422
    assert kc.request("POST", "/api/agents/nobody/state", {"state": "ready"})[0] == 404
    assert kc.set_state(SCHOOL_HV, "ready")["state"] == "ready"
    assert kc.set_state(SCHOOL_HV, "paused")["state"] == "paused"
    assert kc.agent(SCHOOL_HV)["state"] == "paused"
    assert kc.set_state(SCHOOL_HV, "logged_out")["state"] == "logged_out"


def test_contacts_since_is_validated(kc):
    status, body = kc.request("GET", "/api/contacts?since=yesterday")
    assert status == 422 and "since" in body["error"]
    now = datetime.now(timezone.utc).isoformat()
    status, body = kc.request("GET", f"/api/contacts?since={now.replace('+', '%2B')}",
                              token="demo-manager-token")
    assert status == 200 and body == {"contacts": []}


@pytest.mark.smoke16
def test_kc_cli_runs_a_command_on_the_running_asterisk(kc):
    import subprocess
    import sys

    settings = Settings.from_env(kc.env)
    out = subprocess.run([sys.executable, "-m", "kommuncentral.cli", "cli", "core", "show", "version"],
                         env=kc.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"Asterisk {runtime_for(settings).installed_version()}")
