"""Operations on the real PBX: `/metrics` moves with real SIPp calls and parses with
Prometheus' own parser, is closed to others, and one call is followed through the structured
call log (`kc logs --contact N`)."""
from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import registered_phone
from kc_instance import KC, ROOT, make_instance, now_iso, remove_instance, running_instance
from own_agents import Crew
from sipp_driver import call

pytestmark = pytest.mark.telephony

BROMMA = "0850810000"
TOKEN = "metrics-test-token-0123456789"
NODE = "node-a"
CREW = Crew(__name__)
ELDER, SOCIAL = CREW.of("elder", "social")
crew = CREW.fixture("ops_kc")


@pytest.fixture(scope="module")
def ops_kc():
    """A centre whose metrics are open to a token only (the tests' address is not allowed)."""
    with running_instance({"KC_METRICS_ALLOW": "192.0.2.1", "KC_METRICS_TOKEN": TOKEN,
                            "KC_NODE": NODE}) as inst:
        yield inst


def scrape(kc, token: str | None = TOKEN) -> tuple[int, str, str]:
    req = urllib.request.Request(kc.url + "/metrics")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


def samples(kc) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape, parsed by Prometheus' own parser: (name, labels) -> value."""
    status, content_type, text = scrape(kc)
    assert status == 200 and content_type.startswith("text/plain"), (status, text[:200])
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found, name, **labels) -> float:
    return found.get((name, tuple(sorted({"node": NODE, **labels}.items()))), 0.0)


def wait_contact(kc, since, predicate, what, timeout=40):
    def find():
        return next((c for c in kc.contacts(since) if predicate(c)), None)
    return kc.wait_for(find, timeout, what)


def test_metrics_are_closed_to_others_and_open_to_the_token(ops_kc):
    assert scrape(ops_kc, token=None)[0] == 403
    assert scrape(ops_kc, token="wrong-token")[0] == 403
    assert scrape(ops_kc, token="demo-admin-token")[0] == 403   # a user's API token is not it
    status, _, text = scrape(ops_kc)
    assert status == 200 and "kc_ami_up" in text


def test_counters_gauges_and_histograms_move_with_real_calls(ops_kc, workdir):
    kc = ops_kc
    before = samples(kc)
    assert value(before, "kc_ami_up") == 1 and value(before, "kc_fastagi_up") == 1
    assert value(before, "kc_district_open", district="bromma") == 1   # always open (tests)
    elderly = {"district": "bromma", "queue": "elderly-care"}

    # 1. a caller waits with nobody logged in, and hangs up: offered and abandoned
    since = now_iso()
    resident = call(workdir, kc.sip_port, BROMMA, digits=[(2.0, "1")], caller_number="0705550001",
                    hangup_after=8)
    kc.wait_for(lambda: value(samples(kc), "kc_callers_waiting", **elderly) == 1, 30,
                "the waiting caller in the gauge")
    kc.wait_for(lambda: value(samples(kc), "kc_longest_wait_seconds", **elderly) >= 1, 15,
                "the longest wait growing")
    resident.wait_ok(40)
    wait_contact(kc, since, lambda c: c["caller"] == "0705550001" and c["outcome"], "abandon")
    kc.wait_for(lambda: value(samples(kc), "kc_calls_abandoned_total", **elderly)
                == value(before, "kc_calls_abandoned_total", **elderly) + 1, 15, "abandoned + 1")

    # 2. an agent logs in and answers the next caller: offered, answered, in target
    agent = registered_phone(kc, workdir, ELDER)
    agent.dial("*21")
    kc.wait_for(lambda: kc.agent(ELDER)["state"] == "ready", 10, "the agent ready")
    assert value(samples(kc), "kc_agents", district="bromma", state="ready") >= 1
    answering = agent.answer_calls(count=1, ring_seconds=1, talk_seconds=4, hangup="agent")
    since = now_iso()
    resident = call(workdir, kc.sip_port, BROMMA, digits=[(2.0, "1")], caller_number="0705550002",
                    hangup_after=None, wait_far_bye=60)
    kc.wait_for(lambda: kc.agent(ELDER)["state"] == "on_call", 40, "the agent on call")
    assert value(samples(kc), "kc_agents", district="bromma", state="on_call") == 1
    answering.wait_ok(60)
    resident.wait_ok(60)
    wait_contact(kc, since, lambda c: c["caller"] == "0705550002" and c["outcome"], "answer")

    after = samples(kc)
    for name, more in (("kc_calls_offered_total", 2), ("kc_calls_abandoned_total", 1),
                       ("kc_calls_answered_total", 1), ("kc_calls_answered_in_target_total", 1),
                       ("kc_calls_overflowed_total", 0)):
        assert value(after, name, **elderly) == value(before, name, **elderly) + more, name
    assert value(after, "kc_callers_waiting", **elderly) == 0
    for name in ("kc_acd_decision_seconds_count", "kc_enqueue_to_ring_seconds_count",
                 "kc_store_write_seconds_count"):
        assert value(after, name) > value(before, name), name
    assert value(after, "kc_enqueue_to_ring_seconds_bucket", le="+Inf") >= 1
    assert value(after, "kc_call_steps_total", layer="agi", step="started") >= 2
    agent.dial("*22")


def test_one_call_is_followed_across_the_layers_in_the_call_log(ops_kc, workdir):
    kc = ops_kc
    since = now_iso()
    resident = call(workdir, kc.sip_port, BROMMA, digits=[(2.0, "1")], caller_number="0705550003",
                    hangup_after=4)
    resident.wait_ok(40)
    contact = wait_contact(kc, since, lambda c: c["caller"] == "0705550003" and c["outcome"],
                           "the contact")

    def steps():
        out = subprocess.run([*KC, "logs", "--contact", str(contact["id"]), "--json"], cwd=ROOT,
                             env=kc.env, capture_output=True, text=True)
        return [json.loads(line) for line in out.stdout.splitlines()] if out.returncode == 0 else []
    records = kc.wait_for(lambda: [r for r in steps() if r["step"] == "abandoned"] and steps(),
                          15, "the contact's steps in the call log")
    assert {r["contact"] for r in records} == {contact["id"]}
    assert {r["node"] for r in records} == {NODE}
    seen = [(r["layer"], r["step"]) for r in records]
    assert seen[0] == ("agi", "started")
    for expected in (("agi", "menu"), ("acd", "enqueued"), ("acd", "abandoned")):
        assert expected in seen, seen
    assert all("0705550003" not in json.dumps(r) for r in records)   # no number in the log
    people = subprocess.run([*KC, "logs", "--contact", str(contact["id"])], cwd=ROOT, env=kc.env,
                            capture_output=True, text=True)
    assert people.returncode == 0 and f"contact={contact['id']} acd/enqueued" in people.stdout
    nobody = subprocess.run([*KC, "logs", "--contact", "999999"], cwd=ROOT, env=kc.env,
                            capture_output=True, text=True)
    assert nobody.returncode == 1 and "no step of contact 999999" in nobody.stdout


def run_kc(inst, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*KC, *args], cwd=ROOT, env=inst.env, capture_output=True, text=True)


def test_a_backup_taken_during_a_call_restores_into_a_fresh_identical_centre(ops_kc, workdir):
    from test_casework_e2e import post_json, session
    kc = ops_kc
    since = "2000-01-01T00:00:00Z"
    client, csrf = session(kc, SOCIAL)
    status, body = post_json(client, csrf, "/desk/manual", {
        "channel": "post", "district": "bromma", "sender": "Brev från en invånare",
        "subject": "Snöröjning", "category_id": "1", "note": "Backupen ska ha den här.",
        "outcome": "resolved_first_contact"})
    assert status == 200, body

    # a resident waits in the school queue (nobody takes it) while the backup is taken (on a
    # busy machine the backup alone can take half a minute: the resident has time)
    resident = call(workdir, kc.sip_port, BROMMA, digits=[(2.0, "2")], caller_number="0705550009",
                    hangup_after=75)
    kc.wait_for(lambda: value(samples(kc), "kc_callers_waiting", district="bromma",
                              queue="school") == 1, 30, "the caller waiting")
    archive = workdir / "centre.tar.gz"
    done = run_kc(kc, "backup", str(archive))
    assert done.returncode == 0, done.stderr
    assert value(samples(kc), "kc_callers_waiting", district="bromma", queue="school") == 1
    resident.wait_ok(120)
    finished = {c["id"]: c for c in kc.contacts(since) if c["outcome"]}
    waiting = wait_contact(kc, since, lambda c: c["caller"] == "0705550009" and c["outcome"],
                           "the waiting caller's contact")

    fresh = make_instance()
    try:
        restored = run_kc(fresh, "restore", str(archive))
        assert restored.returncode == 0, restored.stderr
        again = run_kc(fresh, "restore", str(archive))          # never over a centre
        assert again.returncode == 2 and "fresh directory" in again.stderr
        fresh.start()
        # the same contacts: those finished before the backup alike; the one waiting during it
        # is there and closed at start-up, as the PBX no longer has it
        theirs = {c["id"]: c for c in fresh.contacts(since)}
        assert {i: theirs.get(i) for i in finished if i < waiting["id"]} == \
               {i: c for i, c in finished.items() if i < waiting["id"]}
        fresh.wait_for(lambda: {c["id"]: c for c in fresh.contacts(since)}[waiting["id"]]["outcome"],
                       30, "the interrupted call closed")
        assert fresh.request("GET", f"/api/cases?since={since}")[1] == \
               kc.request("GET", f"/api/cases?since={since}")[1]
        for district in ("bromma", "hasselby-vallingby"):
            assert fresh.request("GET", f"/api/menus/{district}")[1] == \
                   kc.request("GET", f"/api/menus/{district}")[1]
        assert run_kc(fresh, "config", "export").stdout == run_kc(kc, "config", "export").stdout
        assert session(fresh, SOCIAL)[1]                    # users log in as before
        assert (fresh.var / "secrets" / "agi.secret").read_text() == \
               (kc.var / "secrets" / "agi.secret").read_text()
    finally:
        remove_instance(fresh)
