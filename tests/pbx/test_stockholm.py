"""config/stockholm.yaml validates and runs: calls in three of its districts reach their own
agents through their regional centre's menu, and the switchboard of a district is answered by
its regional centre."""
from __future__ import annotations


import pytest
import yaml

from kc_instance import ROOT, now_iso, running_instance
from sipp_driver import SipPhone, call

pytestmark = pytest.mark.telephony

CITY = yaml.safe_load((ROOT / "config" / "stockholm.yaml").read_text(encoding="utf-8"))
NUMBERS = {d["id"]: d["numbers"][0] for d in CITY["districts"]}


@pytest.fixture(scope="module")
def city():
    admin = next(u for u in CITY["users"] if u["username"] == "admin")["token"]

    def as_admin(inst):
        request = inst.request
        inst.request = lambda method, path, body=None, token=admin: request(method, path, body, token)

    with running_instance({"KC_CONFIG": str(ROOT / "config" / "stockholm.yaml")}, as_admin,
                          timeout=120) as inst:
        yield inst


def ready(city, tmp_path, agent_id):
    phone = SipPhone(tmp_path, city.sip_port, agent_id, CITY["agent_password"])
    phone.register()
    city.wait_for(lambda: city.agent(agent_id)["registered"], 15, f"{agent_id} registered")
    phone.dial("*21")
    city.wait_for(lambda: city.agent(agent_id)["state"] == "ready", 10, f"{agent_id} ready")
    return phone


@pytest.mark.parametrize("district, digit, agent, skill, queue_district", [
    ("bromma", "1", "bromma-01", "elderly-care", "bromma"),
    ("ostermalm", "2", "ostermalm-07", "school", "ostermalm"),
    ("skarholmen", "1", "skarholmen-01", "elderly-care", "skarholmen"),
    ("spanga-tensta", "0", "hasselby-vallingby-15", "switchboard", "hasselby-vallingby"),
])
def test_calls_in_the_city_reach_their_agents(city, tmp_path, district, digit, agent, skill,
                                               queue_district):
    assert len(CITY["agents"]) == 250 and len(CITY["districts"]) == 14
    since = now_iso()
    phone = ready(city, tmp_path, agent)
    answering = phone.answer_calls(count=1, ring_seconds=1, talk_seconds=2, hangup="agent")
    caller = f"07044{len(since) % 10}{digit}{NUMBERS[district][-5:-3]}"
    resident = call(tmp_path, city.sip_port, NUMBERS[district], digits=[(2.0, digit)],
                    caller_number=caller, hangup_after=None, wait_far_bye=60)
    answering.wait_ok(60)
    assert resident.wait_ok(60).answered
    c = city.wait_for(lambda: next((x for x in city.contacts(since)
                                    if x["caller"] == caller and x["outcome"]), None), 30, "contact")
    assert c["district"] == district and c["agent"] == agent and c["skill"] == skill
    assert c["outcome"] == "answered" and c["agent_district"] == queue_district
    phone.dial("*22")
