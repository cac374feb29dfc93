"""Fault injection on a private instance: the database refusing writes, the service and
Asterisk killed with -9. No caller is lost, no record is lost, none is doubled, and calls
cut by a fault are closed with their true times."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from kc_instance import KC, ROOT, make_instance, now_iso, remove_instance
from own_agents import PASSWORD, Crew
from sipp_driver import SipPhone, call

pytestmark = pytest.mark.telephony

CREW = Crew(__name__)      # hired into each test's own centre
ELDER, ELDER_2 = CREW.of("elder", "elder-2")


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def queue_log(kc) -> list[list[str]]:
    path = kc.var / "log" / "queue_log"
    return [line.split("|") for line in path.read_text().splitlines()] if path.exists() else []


def ready_agent(kc, tmp_path, name: str, states=("ready",)) -> SipPhone:
    phone = SipPhone(tmp_path, kc.sip_port, name, PASSWORD)
    phone.register()
    phone.dial("*21")
    kc.wait_for(lambda: kc.agent(name)["state"] in states, 15, f"{name} ready")
    return phone


def contact_of(kc, since: str, caller: str) -> dict | None:
    return next((c for c in kc.contacts(since) if c["caller"] == caller), None)


def enqueued(kc, caller: str) -> bool:
    return bool(kc.sql("select 1 from contacts where caller = ? and enqueued_at is not null", caller))


def _immutable(kc, on: bool) -> None:
    files = [str(kc.var / name) for name in ("kc.db", "kc.db-wal") if (kc.var / name).exists()]
    subprocess.run(["chattr", "+i" if on else "-i", *files], check=True)


def test_database_refusing_writes_loses_no_caller_and_no_record(own_kc, tmp_path):
    kc = own_kc
    CREW.hire(kc)
    if os.geteuid() != 0:
        pytest.skip("chattr +i needs root")
    since = now_iso()
    first_agent = ready_agent(kc, tmp_path, ELDER)
    talking = first_agent.answer_calls(count=1, ring_seconds=0.5, talk_seconds=40, hangup="far")
    first = call(tmp_path, kc.sip_port, "0850810000", digits=[(2.0, "1")],
                 caller_number="0701110001", hangup_after=14)
    kc.wait_for(lambda: kc.agent(ELDER)["state"] == "on_call", 20, "first call talking")
    second_agent = ready_agent(kc, tmp_path, ELDER_2)
    answering = second_agent.answer_calls(count=1, ring_seconds=0.5, talk_seconds=3, hangup="agent")
    frozen_at = time.time()
    _immutable(kc, True)            # the database file and its log refuse every write
    try:
        second = call(tmp_path, kc.sip_port, "0850810000", digits=[(2.0, "1")],
                      caller_number="0701110002", hangup_after=None, wait_far_bye=40)
        kc.wait_for(lambda: (kc.health() or {}).get("records") == "delayed", 15,
                    "health says records delayed")
        status, board = kc.request("GET", "/api/wallboard")
        assert status == 200 and board["records_delayed"] > 0
        result = second.wait_ok(40)
        assert result.answered and result.hangup == "far", "a new caller reached an agent"
        answering.wait_ok(20)
        first.wait_ok(30)
        time.sleep(max(0.0, frozen_at + 15 - time.time()))
    finally:
        _immutable(kc, False)
    thawed_at = time.time()
    talking.stop()
    kc.wait_for(lambda: "records" not in (kc.health() or {"records": 1}), 20, "records written")
    for name in (ELDER, ELDER_2):
        kc.wait_for(lambda name=name: kc.agent(name)["state"] == "ready", 30, f"{name} not stuck")
    contacts = {c["caller"]: c for c in kc.contacts(since)}
    one, two = contacts["0701110001"], contacts["0701110002"]
    for c in (one, two):
        assert c["outcome"] == "answered", c
        assert ts(c["ended_at"]) < thawed_at - 1, "ended when the call ended, not when written"
    assert 8 <= one["talk_seconds"] <= 14, one
    assert 2 <= two["talk_seconds"] <= 6, two
    assert two["agent"] == ELDER_2
    open_ = kc.sql("select count(*) from contacts where outcome is null and started_at >= ?", since)
    assert open_ == [(0,)]
    lines = queue_log(kc)
    for c in (one, two):
        uniqueid = kc.sql("select uniqueid from contacts where id = ?", c["id"])[0][0]
        mine = [r[4] for r in lines if len(r) > 4 and r[1] == uniqueid]
        assert "CONNECT" in mine and any(e.startswith("COMPLETE") for e in mine), (c, mine)
    assert not (kc.var / "kc.db.pending").exists()


def test_service_killed_with_callers_in_menu_waiting_and_talking(own_kc, tmp_path):
    kc = own_kc
    CREW.hire(kc)
    since = now_iso()
    agent = ready_agent(kc, tmp_path, ELDER)
    talking = agent.answer_calls(count=1, ring_seconds=0.5, talk_seconds=40, hangup="far")
    t = call(tmp_path, kc.sip_port, "0850810000", digits=[(2.0, "1")],
             caller_number="0702220001", hangup_after=16)
    kc.wait_for(lambda: kc.agent(ELDER)["state"] == "on_call", 20, "a caller talking")
    w = call(tmp_path, kc.sip_port, "0850810000", digits=[(2.0, "1")],
             caller_number="0702220002", hangup_after=None, wait_far_bye=70)
    kc.wait_for(lambda: enqueued(kc, "0702220002"), 20,
                "a caller waiting")
    m = call(tmp_path, kc.sip_port, "0850810000", caller_number="0702220003",
             hangup_after=None, wait_far_bye=40)
    kc.wait_for(lambda: contact_of(kc, since, "0702220003"), 15, "a caller in the menu")
    time.sleep(1)
    service = kc.procs.pop("service")
    service.kill()                      # kill -9: nothing is closed, nothing flushed
    service.wait(10)
    time.sleep(3)
    kc.start_service()
    # a caller waits: the agent may be offered the call as soon as they are ready
    second = ready_agent(kc, tmp_path, ELDER_2, ("ready", "ringing"))
    served = second.answer_calls(count=1, ring_seconds=0.5, talk_seconds=2, hangup="agent")
    assert w.wait_ok(60).answered, "the waiting caller is served after the restart"
    served.wait_ok(30)
    t.wait_ok(40)
    m.wait_ok(40)
    talking.stop()
    kc.wait_for(lambda: kc.sql("select count(*) from contacts where outcome is null "
                               "and started_at >= ?", since) == [(0,)], 30, "no contact open")
    rows = kc.sql("select caller, count(*) from contacts where started_at >= ? group by caller",
                  since[:19])
    assert dict(rows) == {"0702220001": 1, "0702220002": 1, "0702220003": 1}, rows
    contacts = {c["caller"]: c for c in kc.contacts(since)}
    assert contacts["0702220001"]["outcome"] == "answered"
    assert contacts["0702220002"]["outcome"] == "answered"
    assert contacts["0702220002"]["agent"] == ELDER_2
    assert contacts["0702220003"]["outcome"] == "failed"       # heard the fallback's apology


# ---------------------------------------------------------------------- `kc up` supervising


@pytest.fixture
def kc_up():
    inst = make_instance()
    subprocess.run([*KC, "init", "--demo"], cwd=ROOT, env=inst.env, check=True, capture_output=True)
    try:
        inst._start("up", "up")
        inst.wait_for(inst.pbx_up,
                      90, "kc up")
        yield inst
    finally:
        remove_instance(inst)


def _asterisk_pid(kc) -> int:
    candidates = list((kc.var / "asterisk" / "run").glob("asterisk.pid"))
    candidates += list(Path("/tmp").glob("kc-ast-*/asterisk.pid"))
    for pid_file in candidates:
        pid = int(pid_file.read_text().strip())
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(kc.var).encode() in cmdline:
            return pid
    raise AssertionError("Asterisk's pid not found")


def test_kc_up_restarts_asterisk_and_closes_cut_calls_at_their_true_time(kc_up, tmp_path):
    kc = kc_up
    CREW.hire(kc)
    second = subprocess.run([*KC, "up"], cwd=ROOT, env=kc.env, capture_output=True, text=True,
                            timeout=60)
    assert second.returncode == 2 and "another `kc up`" in second.stderr, second.stderr
    since = now_iso()
    agent = ready_agent(kc, tmp_path, ELDER)
    talking = agent.answer_calls(count=1, ring_seconds=0.5, talk_seconds=60, hangup="far")
    t = call(tmp_path, kc.sip_port, "0850810000", digits=[(2.0, "1")],
             caller_number="0703330001", hangup_after=None, wait_far_bye=60)
    kc.wait_for(lambda: kc.agent(ELDER)["state"] == "on_call", 20, "a caller talking")
    w = call(tmp_path, kc.sip_port, "0850810000", digits=[(2.0, "1")],
             caller_number="0703330002", hangup_after=None, wait_far_bye=60)
    kc.wait_for(lambda: enqueued(kc, "0703330002"), 20,
                "a caller waiting")
    time.sleep(2)
    killed_at = time.time()
    os.kill(_asterisk_pid(kc), signal.SIGKILL)
    kc.wait_for(lambda: not kc.pbx_up(), 5,
                "the loss noticed")
    kc.wait_for(kc.pbx_up, 10,
                "Asterisk back")
    back = time.time() - killed_at
    assert back < 5, f"Asterisk and AMI back after {back:.1f} s"
    status, board = kc.request("GET", "/api/wallboard")
    assert status == 200 and all(d["waiting"] == 0 for d in board["districts"]), board
    assert kc.agent(ELDER)["state"] != "on_call"
    for run in (t, w, talking):
        run.stop()
    contacts = {c["caller"]: c for c in kc.contacts(since)}
    cut_talk, cut_wait = contacts["0703330001"], contacts["0703330002"]
    assert cut_talk["outcome"] == "answered" and cut_wait["outcome"] == "abandoned"
    for c in (cut_talk, cut_wait):
        assert abs(ts(c["ended_at"]) - killed_at) < 1.5, (c, killed_at)
    assert "kc.supervisor" in (kc.var / "up.log").read_text()
    kc._stop("up")                      # a clean stop: no write-ahead log left behind
    wal = kc.var / "kc.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
