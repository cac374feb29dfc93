"""The virtual cluster on one machine: two real Asterisk nodes (`north` homes Bromma, `west`
homes Hässelby-Vällingby) behind a real Kamailio front door, one service driving both.

Residents call the front door; agents register on their home node. Free ports everywhere;
queue configurations written before start (elderly care overflows to the other district after
4 s, school does not overflow).
"""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from kc.queue_config import OverflowStep, QueueConfig
from kc_instance import make_cluster, now_iso, remove_cluster, start_cluster
from own_agents import PASSWORD, Crew
from sipp_driver import SipPhone, call

pytestmark = pytest.mark.telephony

BROMMA, HV = "0850810000", "0850820000"
CREW = Crew(__name__)
ELDER, ELDER_2, ELDER_HV, SCHOOL_HV = CREW.of("elder", "elder-2", "elder-hv", "school-hv")


@pytest.fixture(scope="module")
def cluster():
    inst = make_cluster((
        QueueConfig("elderly-care", "bromma", overflow=(OverflowStep(4, ("hasselby-vallingby",)),)),
        QueueConfig("elderly-care", "hasselby-vallingby", overflow=(OverflowStep(4, ("bromma",)),)),
        QueueConfig("school", "hasselby-vallingby", overflow=()),
        QueueConfig("school", "bromma", overflow=(OverflowStep(0, ("hasselby-vallingby",)),)),
    ))
    inst.env.update(KC_RING_TIMEOUT="8", KC_WRAP_UP_SECONDS="0")
    try:
        start_cluster(inst)
        CREW.hire(inst)       # each on the node that homes its district
        yield inst
    finally:
        if os.environ.get("KC_KEEP_LOGS"):
            print(inst.logs())
        remove_cluster(inst)


def phone(kc, workdir, agent_id: str, node: str) -> SipPhone:
    """The agent's phone, registered on its home node, and the agent ready."""
    p = SipPhone(workdir, kc.nodes[node]["sip"], agent_id, PASSWORD)
    p.register()
    kc.wait_for(lambda: kc.agent(agent_id)["registered"], 10, f"{agent_id} registered")
    kc.set_state(agent_id, "ready")
    return p


def contact_of(kc, since, caller, timeout=40, done=True):
    def find():
        return next((c for c in kc.contacts(since) if c["caller"] == caller
                     and (c["outcome"] or not done)), None)
    return kc.wait_for(find, timeout, f"contact of {caller}")


def nodes_of(kc, contact_id: int) -> tuple:
    return tuple(kc.sql("select node, agent_node from contacts where id = ?", contact_id)[0])


def node_health(kc, name: str) -> dict:
    return next(n for n in (kc.health() or {}).get("nodes", []) if n["node"] == name)


def test_health_lists_every_node_and_the_front_door(cluster):
    health = cluster.health()
    assert [n["node"] for n in health["nodes"]] == ["north", "west"]
    assert all(n["asterisk"] == n["ami"] == "up" and n["asterisk_version"] for n in health["nodes"])
    assert health["front_door"]["status"] == "up"


def test_cross_node_overflow_answer_counts_as_overflowed(cluster, workdir):
    """A Bromma caller (waiting on north) with no Bromma agent ready is answered after the
    overflow time by a Hässelby-Vällingby agent registered on west, through the trunk."""
    since = now_iso()
    agent = phone(cluster, workdir, ELDER_HV, "west")
    answering = agent.answer_calls(count=1, ring_seconds=0.5, talk_seconds=2, hangup="agent")
    resident = call(workdir, cluster.sip_port, BROMMA, digits=[(1.5, "1")],
                    caller_number="0712000001", hangup_after=None, wait_far_bye=45)
    answering.wait_ok(45)
    resident.wait_ok(45)
    contact = contact_of(cluster, since, "0712000001")
    assert contact["outcome"] == "answered" and contact["agent"] == ELDER_HV, contact
    assert contact["district"] == "bromma" and contact["overflowed"] is True
    assert contact["wait_seconds"] >= 4.0
    assert nodes_of(cluster, contact["id"]) == ("north", "west")
    lines = [line.split("|") for line in (cluster.var / "log" / "queue_log").read_text().splitlines()]
    assert any(f[3] == ELDER_HV and f[4] == "CONNECT" and f[2] == "elderly-care@bromma"
               for f in lines)
    cluster.set_state(ELDER_HV, "logged_out")


def test_a_transfer_to_a_queue_is_answered_on_the_other_node(cluster, workdir):
    """A supervisor moves a Bromma caller talking on north to the school queue; only a
    Hässelby-Vällingby school agent (on west) is ready: answered there, through the trunk."""
    since = now_iso()
    first = phone(cluster, workdir, ELDER_2, "north")
    talking = first.answer_calls(count=1, ring_seconds=0.3, talk_seconds=30, hangup="far")
    resident = call(workdir, cluster.sip_port, BROMMA, digits=[(1.5, "1")],
                    caller_number="0712000009", hangup_after=None, wait_far_bye=60)
    cluster.wait_for(lambda: cluster.agent(ELDER_2)["state"] == "on_call", 30, "on call")
    old = contact_of(cluster, since, "0712000009", done=False)
    second = phone(cluster, workdir, SCHOOL_HV, "west")
    answering = second.answer_calls(count=1, ring_seconds=0.3, talk_seconds=1.5, hangup="agent")
    status, body = cluster.request("POST", f"/api/contacts/{old['id']}/transfer", {"to": "queue:school"})
    assert status == 200, body
    assert talking.wait(20).hangup == "far"           # the first agent's leg is released
    answering.wait_ok(30)
    assert resident.wait_ok(30).hangup == "far"
    after = cluster.wait_for(lambda: next((c for c in cluster.contacts(since)
                                           if c["id"] == body["new_contact"] and c["outcome"]), None),
                             20, "transferred contact done")
    before = next(c for c in cluster.contacts(since) if c["id"] == old["id"])
    assert before["outcome"] == "transferred" and before["agent"] == ELDER_2
    assert after["outcome"] == "answered" and after["agent"] == SCHOOL_HV and after["skill"] == "school"
    assert nodes_of(cluster, old["id"]) == ("north", "north")
    assert nodes_of(cluster, after["id"]) == ("north", "west")
    for agent in (ELDER_2, SCHOOL_HV):
        cluster.set_state(agent, "logged_out")


def _west_pid(kc) -> int:
    for path in (kc.var / "asterisk" / "nodes" / "west").rglob("asterisk.pid"):
        return int(path.read_text().strip())
    out = subprocess.run(["pgrep", "-f", f"nodes/west/etc/asterisk.conf"], capture_output=True,
                         text=True).stdout.split()
    return int(out[0])


def test_kill_of_a_node_then_its_return(cluster, workdir):
    since = now_iso()
    bromma = phone(cluster, workdir, ELDER, "north")
    hv = SipPhone(workdir, cluster.nodes["west"]["sip"], SCHOOL_HV, PASSWORD)
    hv.register()
    cluster.wait_for(lambda: cluster.agent(SCHOOL_HV)["registered"], 10, "the school agent registered")
    # a Hässelby-Vällingby caller waiting on west (school: nobody ready, no overflow)
    cut = call(workdir, cluster.sip_port, HV, digits=[(1.5, "2")], caller_number="0712000002",
               hangup_after=None, wait_far_bye=40)
    contact_of(cluster, since, "0712000002", done=False)
    cluster.wait_for(lambda: cluster.sql(
        "select count(*) from contacts where caller = '0712000002' and enqueued_at is not null")[0][0],
        20, "the caller waiting")

    # a Hässelby-Vällingby caller still in the menu on west
    in_menu = call(workdir, cluster.sip_port, HV, caller_number="0712000008", hangup_after=40)
    contact_of(cluster, since, "0712000008", done=False)
    # a Bromma caller talking to a Bromma agent on north while west fails
    talking = bromma.answer_calls(count=1, ring_seconds=0.3, talk_seconds=8, hangup="agent")
    ongoing = call(workdir, cluster.sip_port, BROMMA, digits=[(1.5, "1")], caller_number="0712000006",
                   hangup_after=None, wait_far_bye=45)
    cluster.wait_for(lambda: cluster.agent(ELDER)["state"] == "on_call", 30, "Bromma talking")

    proc = cluster.procs.pop("west")
    os.kill(_west_pid(cluster), signal.SIGKILL)
    killed = time.monotonic()
    cluster.wait_for(lambda: node_health(cluster, "west")["asterisk"] == "down", 10, "west down")
    assert time.monotonic() - killed < 5.0
    assert node_health(cluster, "north")["asterisk"] == "up"
    assert cluster.agent(SCHOOL_HV)["registered"] is False      # unroutable at once
    cluster.wait_for(lambda: cluster.request("GET", "/api/wallboard")[1]["nodes_down"] == ["west"],
                     10, "the wallboard shows west down")
    failed = contact_of(cluster, since, "0712000002", timeout=20)
    assert failed["outcome"] == "failed", failed
    reason = cluster.sql("select data from contact_events where contact_id = ? and kind = 'failed'",
                         failed["id"])
    assert reason and "west" in reason[0][0]
    # the menu's own FastAGI session ends with the node: closed, not left open (the menu
    # cannot tell a node's death from a hang-up, so it says abandoned)
    menu = contact_of(cluster, since, "0712000008", timeout=20)
    assert menu["outcome"] in ("failed", "abandoned") and menu["ended_at"], menu
    in_menu.stop()      # its node is gone: nobody answers its BYE
    proc.wait(20)
    cut.stop()
    talking.wait_ok(30)
    ongoing.wait_ok(30)
    kept = contact_of(cluster, since, "0712000006")      # north's call is not west's to close
    assert kept["outcome"] == "answered" and kept["talk_seconds"] >= 7.0, kept

    # Hässelby-Vällingby's number now reaches north; answered there by the overflow rules
    answering = bromma.answer_calls(count=2, ring_seconds=0.5, talk_seconds=1.5, hangup="agent")
    moved = call(workdir, cluster.sip_port, HV, digits=[(1.5, "1")], caller_number="0712000003",
                 hangup_after=None, wait_far_bye=45)
    moved.wait_ok(45)
    # and Bromma's calls keep working
    local = call(workdir, cluster.sip_port, BROMMA, digits=[(1.5, "1")],
                 caller_number="0712000004", hangup_after=None, wait_far_bye=45)
    local.wait_ok(45)
    answering.wait_ok(45)
    for caller, district in (("0712000003", "hasselby-vallingby"), ("0712000004", "bromma")):
        contact = contact_of(cluster, since, caller)
        assert contact["outcome"] == "answered" and contact["agent"] == ELDER, contact
        assert contact["district"] == district
        assert nodes_of(cluster, contact["id"]) == ("north", "north")
    for caller in ("0712000002", "0712000003", "0712000004", "0712000006", "0712000008"):  # once
        assert cluster.sql("select count(*) from contacts where caller = ?", caller)[0][0] == 1
    cluster.set_state(ELDER, "logged_out")

    # west back: its agents are routable again once their phones register, no service restart
    cluster._start("west", "asterisk", "--node", "west")
    cluster.wait_for(lambda: node_health(cluster, "west")["ami"] == "up", 60, "west back")
    hv = phone(cluster, workdir, ELDER_HV, "west")
    answering = hv.answer_calls(count=1, ring_seconds=0.5, talk_seconds=1.5, hangup="agent")
    back = call(workdir, cluster.sip_port, HV, digits=[(1.5, "1")], caller_number="0712000005",
                hangup_after=None, wait_far_bye=45)
    answering.wait_ok(45)
    back.wait_ok(45)
    contact = contact_of(cluster, since, "0712000005")
    assert contact["outcome"] == "answered" and contact["agent"] == ELDER_HV
    assert nodes_of(cluster, contact["id"]) == ("west", "west")
    cluster.set_state(ELDER_HV, "logged_out")


def test_a_new_number_reaches_its_home_node_through_the_front_door(cluster, workdir):
    """Numbers are data: one added through the API is in the front door's routes within
    seconds (Kamailio restarted on its new files) and reaches the district's home node."""
    since = now_iso()
    status, config = cluster.request("GET", "/api/config")
    assert status == 200
    hv = next(d for d in config["districts"] if d["id"] == "hasselby-vallingby")
    hv["numbers"].append("0850820099")
    status, done = cluster.request("PUT", "/api/config", config)
    assert status == 200 and "Asterisk reloaded" in done["reload"], done
    door = cluster.var / "asterisk" / "front-door"
    assert '"0850820099"' in (door / "kamailio.cfg").read_text()
    cluster.wait_for(lambda: "restarting" in (cluster.var / "front.log").read_text(), 20,
                     "the front door restarted")
    cluster.wait_for(lambda: cluster.health()["front_door"]["status"] == "up", 20, "front door up")
    resident = call(workdir, cluster.sip_port, "0850820099", caller_number="0712000007",
                    hangup_after=3)
    resident.wait_ok(40)
    contact = contact_of(cluster, since, "0712000007")
    assert contact["district"] == "hasselby-vallingby" and contact["dialed"] == "0850820099"
    uniqueid = cluster.sql("select uniqueid from contacts where id = ?", contact["id"])[0][0]
    assert uniqueid.startswith("west-"), uniqueid
