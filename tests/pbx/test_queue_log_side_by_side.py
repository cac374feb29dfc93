"""Our queue_log beside app_queue's own, for the same calls in the same Asterisk.

A plain `Read()` + `Queue()` (app_queue, its own queue_log in Asterisk's log directory) with one
member, one of the module's agents' phones, and our menu + ACD with the other one ready, get
the same script at the same moments: one caller answered at once, then two who wait behind the
busy agent, the first of whom hangs up (abandon, position 1) while the second (who entered at
position 2) is answered once the agent is free. For every caller both logs have the same
events, the same number of fields per event, the same positions, and waits, ring and talk
times within 1 s.
"""
from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from conftest import registered_phone
from kc.settings import Settings
from kc_instance import KC, ROOT, make_instance, remove_instance
from own_agents import Crew
from pbx.asterisk import default_run_user
from pbx.runtime import runtime_for
from sipp_driver import call

pytestmark = pytest.mark.telephony

OURS, BASELINE = "0850810000", "0850899992"
CREW = Crew(__name__)
ELDER, ELDER_2 = CREW.of("elder", "elder-2")    # ours; app_queue's member (logged out in ours)
CALL_EVENTS = {"ENTERQUEUE", "CONNECT", "COMPLETEAGENT", "COMPLETECALLER", "ABANDON", "TRANSFER",
               "RINGNOANSWER", "RINGCANCELED", "EXITWITHTIMEOUT", "EXITWITHKEY", "EXITEMPTY"}
# fields that are seconds (compared within 1 s) and places in the queue (compared exactly)
SECONDS = {"CONNECT": (0, 2), "COMPLETEAGENT": (0, 1), "COMPLETECALLER": (0, 1), "ABANDON": (2,)}
POSITIONS = {"ENTERQUEUE": (2,), "ABANDON": (0, 1), "COMPLETEAGENT": (2,), "COMPLETECALLER": (2,)}


@pytest.fixture(scope="module")
def both():
    inst = make_instance()
    inst.env.update(KC_RING_TIMEOUT="15", KC_ANNOUNCE_SECONDS="600", KC_WRAP_UP_SECONDS="0")
    try:
        subprocess.run([*KC, "init", "--demo"], cwd=ROOT, env=inst.env, check=True, capture_output=True)
        subprocess.run([*KC, "render"], cwd=ROOT, env=inst.env, check=True, capture_output=True)
        etc = inst.var / "asterisk" / "etc"
        (etc / "queues.conf").write_text(
            "[general]\npersistentmembers = no\nshared_lastcall = no\nautofill = yes\n\n"
            "[baseline]\nstrategy = ringall\ntimeout = 15\nretry = 1\nwrapuptime = 0\n"
            "ringinuse = no\nautopause = no\nannounce-frequency = 0\nannounce-position = no\n"
            f"joinempty = yes\nleavewhenempty = no\nmember => PJSIP/{ELDER_2}\n")
        (etc / "kc-local-modules.conf").write_text("load => app_queue.so\n")
        (etc / "kc-local-extensions.conf").write_text(
            "[from-residents](+)\n"
            f"exten => {BASELINE},1,Answer()\n"
            " same => n,Read(KCDIGIT,,1,,1,10)\n"
            " same => n,Queue(baseline,,,,600)\n"
            " same => n,Hangup()\n")
        run_user = default_run_user(runtime_for(Settings.from_env(inst.env)))
        ids = runtime_for(Settings.from_env(inst.env)).user_ids(run_user) if run_user else None
        for name in ("queues.conf", "kc-local-modules.conf", "kc-local-extensions.conf"):
            os.chmod(etc / name, 0o644)
            if ids:
                os.chown(etc / name, *ids)
        inst.start()
        CREW.hire(inst)       # app_queue follows its member's endpoint once it exists
        yield inst
    finally:
        remove_instance(inst)


def _side(kc, workdir, number: str, callers: list[str], answering, failures: list) -> None:
    """The script for one side; every side starts it at the same moment."""
    try:
        runs = []
        runs.append(call(workdir, kc.sip_port, number, digits=[(1.5, "1")], caller_number=callers[0],
                         hangup_after=None, wait_far_bye=60))
        time.sleep(3.0)
        runs.append(call(workdir, kc.sip_port, number, digits=[(1.5, "1")], caller_number=callers[1],
                         hangup_after=3))
        time.sleep(1.0)
        runs.append(call(workdir, kc.sip_port, number, digits=[(1.5, "1")], caller_number=callers[2],
                         hangup_after=None, wait_far_bye=60))
        for run in runs:
            run.wait_ok(90)
        answering.wait_ok(60)
    except Exception as exc:      # reported by the test thread
        failures.append(exc)


def _calls(path, callers: list[str]) -> dict[str, list[list[str]]]:
    """caller -> their call events (epoch|callid|queue|agent|event|data...), in order."""
    lines = [ln.split("|") for ln in path.read_text().splitlines()]
    callid_of = {f[1]: f[6] for f in lines if len(f) > 6 and f[4] == "ENTERQUEUE" and f[6] in callers}
    out: dict[str, list[list[str]]] = {c: [] for c in callers}
    for f in lines:
        if f[1] in callid_of and f[4] in CALL_EVENTS:
            out[callid_of[f[1]]].append(f)
    return out


def _phone(kc, workdir, agent):
    """Registered, also if the first REGISTER raced the service's first look at the PBX."""
    for attempt in range(3):
        try:
            return registered_phone(kc, workdir, agent)
        except AssertionError:
            if attempt == 2:
                raise
            time.sleep(2)


def test_our_queue_log_agrees_with_app_queue_for_the_same_calls(both, workdir):
    kc = both
    ours_phone = _phone(kc, workdir, ELDER)
    base_phone = _phone(kc, workdir, ELDER_2)     # logged out in our ACD
    kc.set_state(ELDER, "ready")
    answering = {
        "ours": ours_phone.answer_calls(count=2, ring_seconds=1.0, talk_seconds=8, hangup="agent"),
        "base": base_phone.answer_calls(count=2, ring_seconds=1.0, talk_seconds=8, hangup="agent"),
    }
    callers = {"ours": ["0713000001", "0713000002", "0713000003"],
               "base": ["0713100001", "0713100002", "0713100003"]}
    failures: list = []
    threads = [threading.Thread(target=_side, args=(kc, workdir, number, callers[side],
                                                    answering[side], failures))
               for side, number in (("ours", OURS), ("base", BASELINE))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not failures, failures
    time.sleep(2)
    ours = _calls(kc.var / "log" / "queue_log", callers["ours"])
    base = _calls(kc.var / "asterisk" / "log" / "queue_log", callers["base"])
    print("OURS", *(("|".join(f)) for c in callers["ours"] for f in ours[c]), sep="\n")
    print("BASE", *(("|".join(f)) for c in callers["base"] for f in base[c]), sep="\n")
    for o_caller, b_caller in zip(callers["ours"], callers["base"]):
        o, b = ours[o_caller], base[b_caller]
        assert [f[4] for f in o] == [f[4] for f in b], (o, b)
        for of, bf in zip(o, b):
            event = of[4]
            assert len(of) == len(bf), (event, of, bf)          # fields per event
            for i in POSITIONS.get(event, ()):
                assert of[5 + i] == bf[5 + i], (event, i, of, bf)
            for i in SECONDS.get(event, ()):
                assert abs(int(of[5 + i]) - int(bf[5 + i])) <= 1, (event, i, of, bf)
    # the script did what it says: the second caller abandoned, the third entered second
    assert [f[4] for f in base[callers["base"][1]]] == ["ENTERQUEUE", "ABANDON"]
    assert base[callers["base"][2]][0][7] == "2"
    kc.set_state(ELDER, "logged_out")
