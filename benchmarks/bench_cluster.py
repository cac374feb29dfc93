"""Benchmark: the caller's last digit → the agent's INVITE, answered on the caller's own node
against answered on the other node (through the trunk between nodes), side by side in one run.

    .venv/bin/python benchmarks/bench_cluster.py [--calls N]

The demo centre on two real Asterisk nodes behind Kamailio (`north` homes Bromma, `west`
Hässelby-Vällingby), one service. Bromma residents call the front door and press 1
(elderly care, which overflows to Hässelby-Vällingby at once). Phase `local`: only a Bromma
agent (on north) is ready; phase `cross_node`: only a Hässelby-Vällingby agent (on west) is. The
phases alternate call by call (the agents' states set between calls), so both see the same
load; calls are spaced so that the agent is free at every digit: the time measured is the menu,
the ACD and the PBX path, never a wait for an agent.

Digit = Asterisk's own DTMFEnd timestamp on north (the bench's AMI user); INVITE = the agent
UAS's receive time in its message trace (same host clock), the first after the digit.
Results: section `cluster` of `var/bench/results.json`. Target: every call answered in both
phases, and the cross-node p50 within 50 ms of the local one (one more SIP hop on one machine).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks.bench_acd_pbx import BENCH_AMI_USER, BROMMA, DtmfListener, _pct  # noqa: E402
from benchmarks.results import merge_results  # noqa: E402
from kc.queue_config import OverflowStep, QueueConfig  # noqa: E402
from kc_instance import KC, make_cluster, remove_cluster, start_cluster  # noqa: E402
from sipp_driver import SipPhone, call  # noqa: E402

PHASES = (("local", "bromma-101", "north"), ("cross_node", "hv-201", "west"))
SPACING = 4.0     # s between calls: the agent (1 s talk) is free again at its next digit
WARM_UP = 2       # rounds not counted: prompts synthesised, the service's paths warm


def invite_times(trace: Path) -> list[float]:
    """Epoch of every INVITE the agent's UAS received, in order."""
    out, stamp = [], None
    for block in re.split(r"\n-{10,} ", trace.read_text(errors="replace") if trace.exists() else ""):
        m = re.match(r"(\d{4}-\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+)", block.strip())
        if m:
            stamp = m.group(1)
        if stamp and "received" in block[:200] and "INVITE sip:" in block:
            out.append(datetime.strptime(re.sub(r"\s+", " ", stamp), "%Y-%m-%d %H:%M:%S.%f").timestamp())
    return sorted(out)


def bench_ami_user(etc: Path, secret: str) -> None:
    """The bench's own AMI user on north: DTMFEnd events, stamped by Asterisk."""
    path = etc / "kc-local-manager.conf"
    path.write_text("[general](+)\ntimestampevents = yes\n\n"
                    f"[{BENCH_AMI_USER}]\nsecret = {secret}\ndeny = 0.0.0.0/0.0.0.0\n"
                    "permit = 127.0.0.1/255.255.255.255\nread = dtmf\nwrite =\n"
                    "eventfilter = Event: DTMFEnd\n")
    os.chmod(path, 0o600)
    owner = (etc / "manager.conf").stat()
    os.chown(path, owner.st_uid, owner.st_gid)


def run(calls: int) -> dict:
    inst = make_cluster((QueueConfig("elderly-care", "bromma", wrap_up_seconds=0,
                                     overflow=(OverflowStep(0, ("hasselby-vallingby",)),)),))
    inst.env.update(KC_WRAP_UP_SECONDS="0", KC_ANNOUNCE_SECONDS="600")
    workdir = inst.var / "bench"
    workdir.mkdir()
    result: dict = {"calls_per_phase": calls, "cpus": os.cpu_count()}
    try:
        subprocess.run([*KC, "render"], cwd=ROOT, env=inst.env, check=True, capture_output=True)
        secret = secrets.token_hex(16)
        bench_ami_user(inst.var / "asterisk" / "nodes" / "north" / "etc", secret)
        start_cluster(inst)
        dtmf = DtmfListener(inst.nodes["north"]["ami"], secret)
        dtmf.start()
        phones = {agent: SipPhone(workdir, inst.nodes[node]["sip"], agent, "demo-agent")
                  for _, agent, node in PHASES}
        for agent, p in phones.items():
            p.register()
            inst.wait_for(lambda a=agent: inst.agent(a)["registered"], 15, f"{agent} registered")
        rounds = WARM_UP + calls
        uas = {agent: p.answer_calls(count=rounds, ring_seconds=0.1, talk_seconds=1.0,
                                     hangup="agent", timeout=120 + rounds * 2 * SPACING)
               for agent, p in phones.items()}
        runs: dict[str, list] = {phase: [] for phase, _, _ in PHASES}
        for i in range(rounds):    # the phases alternate call by call: the same load for both
            for k, (phase, agent, _) in enumerate(PHASES):
                for other in phones:
                    inst.set_state(other, "ready" if other == agent else "logged_out")
                number = f"0793{k}{i:05d}"
                runs[phase].append((number, call(workdir, inst.sip_port, BROMMA, digits=[(3.0, "1")],
                                                  caller_number=number, hangup_after=None,
                                                  wait_far_bye=30)))
                time.sleep(SPACING)
        for phase, agent, node in PHASES:
            answered = sum(1 for _, r in runs[phase][WARM_UP:] if r.wait(60).ok)
            uas[agent].wait(60)
            invites = invite_times(uas[agent].files["msg"])
            lat = []
            for number, _ in runs[phase][WARM_UP:]:
                digit = dtmf.digits.get(number)
                after = [t for t in invites if digit is not None and t >= digit]
                if after:
                    lat.append((after[0] - digit) * 1000)
            result[phase] = {"agent_node": node, "answered": answered, "measured": len(lat),
                             "digit_to_invite_ms_p50": _pct(lat, 50),
                             "digit_to_invite_ms_p95": _pct(lat, 95),
                             "digit_to_invite_ms_mean": round(statistics.fmean(lat), 1) if lat else None}
        dtmf.stopped.set()
        local, cross = result["local"], result["cross_node"]
        if local["digit_to_invite_ms_p50"] is not None and cross["digit_to_invite_ms_p50"] is not None:
            result["cross_minus_local_p50_ms"] = round(
                cross["digit_to_invite_ms_p50"] - local["digit_to_invite_ms_p50"], 1)
        result["target_all_answered"] = local["answered"] == cross["answered"] == calls
        result["target_cross_within_50ms"] = result.get("cross_minus_local_p50_ms", 999) <= 50
    finally:
        remove_cluster(inst)
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=15)
    args = ap.parse_args()
    result = run(args.calls)
    print(json.dumps(result, indent=2), flush=True)
    merge_results("cluster", result)
    return 0 if result.get("target_all_answered") and result.get("target_cross_within_50ms") else 1


if __name__ == "__main__":
    sys.exit(main())
