"""Benchmark: the ACD on a real Asterisk with SIPp, side by side with a plain `Queue()` baseline.

    .venv/bin/python benchmarks/bench_acd_pbx.py [--asterisk 22,16] [--calls N --agents N --talk S --rate CPS]

Without arguments (as `make bench` runs it) two scenarios, each on its own instance:
`agents_free` (110 calls, 120 agents, 10 calls/s: every caller finds a free agent, so the time
measured is the distributor's own) and `saturated` (120 calls, 50 agents, 30 calls/s: callers
wait for agents to free up). With arguments, one scenario, `custom`.

A private instance (own var/, free ports) gets `--agents` extra agents (`bench-NNN`, Bromma,
elderly care) who all register the same SIPp UAS as their phone. Phase 1: `--calls` residents
call Bromma, press 1 in the menu, wait in `kc-wait` and are distributed by the ACD (AMI
Originate). Phase 2, same run, same agents and the same UAS: the agents are logged out of the
ACD and the residents dial a baseline number straight into Asterisk's `Queue()` (app_queue,
static members = the same endpoints, strategy leastrecent, no wrap-up).

Measured per phase: failed calls (residents and agents), peak concurrent resident calls (SIPp's
CurrentCall), and the time from *enqueue* to the agent's INVITE: enqueue = Asterisk's log line of
`UserEvent(KcWaiting)` (ACD) or `Queue()` (baseline) for the caller's channel; INVITE = the agent
UAS's receive time in its message trace (same host clock). The service's peak memory is its
VmHWM. Results: section `acd_pbx` of `var/bench/results.json`, one key per scenario. Targets,
in every scenario: zero failed calls, at least 100 concurrent, ACD p95 <= 1.5x the baseline's.

Every scenario runs on each Asterisk of `--asterisk` (default: 22, then 16 where it is
installed), one after the other in the same run, so the figures compare; results are keyed
`asterisk_22` / `asterisk_16`, each with the version that answered.
"""
from __future__ import annotations

import argparse
import json
import secrets
import os
import re
import signal
import sqlite3
import statistics
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks.results import merge_results  # noqa: E402
from pbx.asterisk import default_run_user  # noqa: E402
from pbx.runtime import RuntimeMissing, runtime_for  # noqa: E402
from agi.prompts import PromptCache  # noqa: E402
from kc.passwords import sip_ha1  # noqa: E402
from kc.settings import Settings  # noqa: E402
from kc_instance import KC, free_rtp_range, make_instance, release_instance  # noqa: E402
from sipp_driver import SipPhone, _digits, _env, _sipp_binary, free_media_port, free_udp_port  # noqa: E402

BROMMA = "0850810000"
BASELINE = "0850899990"
READ_QUEUE = "0850899991"     # the plain Asterisk menu: Read() of one digit, then Queue()
BENCH_AMI_USER = "kcbench"


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100 * (len(values) - 1)))))
    return round(values[k], 1)


def add_agents(db_path: Path, n: int) -> list[str]:
    ids = [f"bench-{i:03d}" for i in range(1, n + 1)]
    with sqlite3.connect(db_path) as db:
        for a in ids:
            db.execute("insert into agents (id, name, district, languages, cleared_for, sip_ha1) "
                       "values (?, ?, 'bromma', '[\"sv\", \"en\"]', '[]', ?)",
                       [a, f"Bench {a}", sip_ha1(a, "kommuncentral", "demo-agent")])
            db.execute("insert into agent_skills (agent, skill, proficiency) values (?, 'elderly-care', 3)", [a])
            db.execute("insert into agent_status (agent, state, reason, since) values (?, 'logged_out', null, '')", [a])
    return ids


def write_baseline(etc: Path, agents: list[str], prompt: str, ami_secret: str,
                   ids: tuple[int, int] | None) -> None:
    members = "\n".join(f"member => PJSIP/{a}" for a in agents)
    (etc / "queues.conf").write_text(
        "[general]\npersistentmembers = no\nshared_lastcall = no\nautofill = yes\n\n"
        "[bench-baseline]\nstrategy = leastrecent\ntimeout = 15\nretry = 1\nwrapuptime = 0\n"
        f"ringinuse = no\nautopause = no\nannounce-frequency = 0\njoinempty = yes\nleavewhenempty = no\n{members}\n")
    (etc / "kc-local-modules.conf").write_text("load => app_queue.so\n")
    (etc / "kc-local-extensions.conf").write_text(
        "[from-residents](+)\n"
        f"exten => {BASELINE},1,Answer()\n"
        " same => n,NoOp(KCBENCH ${CALLERID(num)})\n"
        " same => n,Queue(bench-baseline,,,,600)\n"
        " same => n,Hangup()\n"
        f"exten => {READ_QUEUE},1,Answer()\n"
        " same => n,NoOp(KCBENCH ${CALLERID(num)})\n"
        f" same => n,Read(KCDIGIT,{prompt},1,,1,10)\n"
        " same => n,Queue(bench-baseline,,,,600)\n"
        " same => n,Hangup()\n")
    # the bench's own AMI user: DTMFEnd events, stamped by Asterisk (timestampevents)
    (etc / "kc-local-manager.conf").write_text(
        "[general](+)\ntimestampevents = yes\n\n"
        f"[{BENCH_AMI_USER}]\nsecret = {ami_secret}\ndeny = 0.0.0.0/0.0.0.0\n"
        "permit = 127.0.0.1/255.255.255.255\nread = dtmf\nwrite =\n"
        "eventfilter = Event: DTMFEnd\n")
    for p in (etc / "queues.conf", etc / "kc-local-modules.conf", etc / "kc-local-extensions.conf",
              etc / "kc-local-manager.conf"):
        os.chmod(p, 0o600 if p.name == "kc-local-manager.conf" else 0o644)
        if ids:
            os.chown(p, *ids)


def residents(workdir: Path, sip_port: int, number: str, calls: int, rate: int, first: int,
              digits: list[tuple[float, str]], tag: str) -> tuple[subprocess.Popen, Path, list[str]]:
    """One SIPp UAC making `calls` calls, caller numbers from an injection file."""
    numbers = [f"079{first + i:07d}" for i in range(calls)]
    inf = workdir / f"{tag}.csv"
    inf.write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in numbers))
    xml = _env.get_template("uac_call.xml.j2").render(
        auth=False, reject_codes=(400, 403, 404, 408, 480, 486, 488, 500, 503, 603),
        digits=_digits(digits), hangup_after_ms=None, wait_far_bye_ms=300_000)
    xml = xml.replace("[caller_number]", "[field0]")
    path = workdir / f"{tag}.xml"
    path.write_text(xml)
    stat = workdir / f"{tag}.stat.csv"
    argv = [_sipp_binary(), f"127.0.0.1:{sip_port}", "-sf", str(path), "-inf", str(inf),
            "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mp", str(free_media_port()),
            "-m", str(calls), "-r", str(rate), "-l", str(calls), "-s", number, "-nostdin",
            "-key", "caller_name", "Bench", "-trace_stat", "-stf", str(stat), "-fd", "1",
            "-trace_screen", "-screen_file", str(workdir / f"{tag}.screen"),
            "-trace_err", "-error_file", str(workdir / f"{tag}.err"), "-max_retrans", "5",
            "-timeout", "400s", "-timeout_error"]
    proc = subprocess.Popen(argv, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    return proc, stat, numbers


def sipp_counts(screen: Path) -> tuple[int, int]:
    text = screen.read_text(errors="replace") if screen.exists() else ""
    def last(label):
        vals = re.findall(rf"{label}\s*\|\s*(\d+)\s*\|\s*(\d+)", text)
        return int(vals[-1][1]) if vals else 0
    return last("Successful call"), last("Failed call")


def peak_concurrent(stat: Path) -> int:
    if not stat.exists():
        return 0
    rows = stat.read_text().splitlines()
    if not rows:
        return 0
    head = rows[0].split(";")
    try:
        col = head.index("CurrentCall")
    except ValueError:
        return 0
    best = 0
    for row in rows[1:]:
        parts = row.split(";")
        if len(parts) > col and parts[col].strip().isdigit():
            best = max(best, int(parts[col]))
    return best


_TS = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\]")


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def enqueue_times(messages: Path, db_path: Path) -> tuple[dict[str, float], dict[str, float]]:
    """caller number -> epoch of entering the ACD's kc-wait / the baseline's Queue()."""
    with sqlite3.connect(db_path) as db:
        callers = dict(db.execute("select id, caller from contacts").fetchall())
    acd, base = {}, {}
    chan_num: dict[str, str] = {}
    for line in messages.read_text(errors="replace").splitlines():
        m = _TS.match(line)
        if not m:
            continue
        if "KcWaiting,ContactID: " in line:
            cid = re.search(r"KcWaiting,ContactID: (\d+)", line)
            num = callers.get(int(cid.group(1))) if cid else None
            if num and num not in acd:
                acd[num] = _epoch(m.group(1))
        elif "KCBENCH " in line:
            ch = re.search(r'NoOp\("([^"]+)", "KCBENCH (\d+)"\)', line)
            if ch:
                chan_num[ch.group(1)] = ch.group(2)
        elif "Queue(\"" in line and "bench-baseline" in line:
            ch = re.search(r'Queue\("([^"]+)"', line)
            num = chan_num.get(ch.group(1)) if ch else None
            if num and num not in base:
                base[num] = _epoch(m.group(1))
    return acd, base


def invite_times(trace: Path) -> dict[str, float]:
    """caller number -> epoch of the first INVITE the agents' UAS received for that caller."""
    out: dict[str, float] = {}
    stamp = None
    text = trace.read_text(errors="replace") if trace.exists() else ""
    for block in re.split(r"\n-{10,} ", text):
        m = re.match(r"(\d{4}-\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+)", block.strip())
        if m:
            stamp = m.group(1)
        if "received" not in block[:200] or "INVITE sip:" not in block:
            continue
        frm = re.search(r"^From:.*?<sip:(\d+)@", block, re.M)
        if frm and stamp and frm.group(1) not in out:
            out[frm.group(1)] = datetime.strptime(re.sub(r"\s+", " ", stamp), "%Y-%m-%d %H:%M:%S.%f").timestamp()
    return out


class DtmfListener(threading.Thread):
    """The bench's own AMI session: every DTMFEnd Asterisk received, with Asterisk's own
    timestamp (caller number -> epoch of the first digit's end)."""

    def __init__(self, port: int, secret: str):
        super().__init__(daemon=True)
        self.port, self.secret = port, secret
        self.digits: dict[str, float] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.sendall(f"Action: Login\r\nUsername: {BENCH_AMI_USER}\r\nSecret: {self.secret}\r\n"
                     "Events: dtmf\r\n\r\n".encode())
        sock.settimeout(0.5)
        buf = b""
        while not self.stopped.is_set():
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            buf += data
            while b"\r\n\r\n" in buf:
                block, buf = buf.split(b"\r\n\r\n", 1)
                fields = dict(line.split(": ", 1) for line in block.decode(errors="replace").split("\r\n")
                              if ": " in line)
                if fields.get("Event") == "DTMFEnd" and fields.get("Direction") == "Received":
                    num = fields.get("CallerIDNum", "")
                    if num and num not in self.digits and "Timestamp" in fields:
                        self.digits[num] = float(fields["Timestamp"])
        sock.close()


def vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


SCENARIOS = {
    "agents_free": argparse.Namespace(calls=110, agents=120, talk=10.0, rate=10),
    "saturated": argparse.Namespace(calls=120, agents=50, talk=10.0, rate=30),
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int)
    ap.add_argument("--agents", type=int)
    ap.add_argument("--talk", type=float, default=10.0)
    ap.add_argument("--rate", type=int)
    ap.add_argument("--asterisk", default="22,16",
                    help="which Asterisks (KC_ASTERISK values), comma-separated; missing ones are skipped")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # run `finally` on SIGTERM
    if args.calls is None and args.agents is None and args.rate is None:
        scenarios = dict(SCENARIOS)
    else:
        scenarios = {"custom": argparse.Namespace(calls=args.calls or 120, agents=args.agents or 50,
                                                  talk=args.talk, rate=args.rate or 30)}
    results: dict[str, dict] = {}
    ok = True
    for choice in [c.strip() for c in args.asterisk.split(",") if c.strip()]:
        try:
            runtime = runtime_for(Settings.from_env({"KC_ASTERISK": choice}))
        except RuntimeMissing as exc:
            print(f"-- Asterisk {choice}: skipped ({exc})", flush=True)
            continue
        key = f"asterisk_{choice}"
        results[key] = {"version": runtime.installed_version(), "runtime": runtime.describe()}
        for name, scenario in scenarios.items():
            print(f"-- Asterisk {choice} ({results[key]['version']}), scenario {name}", flush=True)
            results[key][name] = run_scenario(scenario, choice)
            print(json.dumps(results[key][name], indent=2), flush=True)
            merge_results("acd_pbx", dict(results))
            ok = ok and bool(results[key][name].get("target_zero_failed")
                             and results[key][name].get("target_100_concurrent")
                             and results[key][name].get("target_ratio_1_5")
                             and results[key][name].get("target_whole_path_1_2", True))
    return 0 if ok and results else 1


def run_scenario(args: argparse.Namespace, asterisk: str = "22") -> dict:
    inst = make_instance()
    rtp_start, rtp_end = free_rtp_range(4 * (2 * args.calls + args.agents) + 200)
    inst.env.update(KC_ANNOUNCE_SECONDS="600", KC_WRAP_UP_SECONDS="0",
                    KC_RTP_START=str(rtp_start), KC_RTP_END=str(rtp_end), KC_ASTERISK=asterisk)
    runtime = runtime_for(Settings.from_env(inst.env))
    run_user = default_run_user(runtime)
    workdir = inst.var / "bench"
    workdir.mkdir()
    result: dict = {"calls": args.calls, "agents": args.agents, "talk_seconds": args.talk,
                    "rate_cps": args.rate, "cpus": os.cpu_count()}
    try:
        subprocess.run([*KC, "init", "--demo"], cwd=ROOT, env=inst.env, check=True, capture_output=True)
        db_path = inst.var / "kc.db"
        agents = add_agents(db_path, args.agents)
        with sqlite3.connect(db_path) as db:   # the ACD phase measures distribution, not overflow
            db.execute("update queues set wrap_up_seconds = 0")
        # render once to create etc/, then add the baseline (kept: not one of our rendered files)
        subprocess.run([*KC, "render"], cwd=ROOT, env=inst.env, check=True, capture_output=True)
        with sqlite3.connect(db_path) as db:
            body = json.loads(db.execute("select body from menu_versions where district = 'bromma' "
                                         "and published = 1 order by version desc limit 1").fetchone()[0])
        prompt = PromptCache(inst.var / "sounds").path_for(body["nodes"][body["root"]]["prompt"]["sv"], "sv")
        bench_secret = secrets.token_hex(16)
        write_baseline(inst.var / "asterisk" / "etc", agents, str(prompt), bench_secret,
                       runtime.user_ids(run_user) if run_user else None)
        inst.start()
        dtmf = DtmfListener(int(inst.env["KC_AMI_PORT"]), bench_secret)
        dtmf.start()
        uas_port = free_udp_port()
        for a in agents:
            SipPhone(workdir, inst.sip_port, a, "demo-agent", local_port=uas_port).register()
        inst.wait_for(lambda: sum(1 for x in inst.request("GET", "/api/agents")[1]["agents"]
                                  if x["registered"] and x["id"].startswith("bench-")) == len(agents),
                      240, "bench agents registered")
        total = 3 * args.calls
        uas = SipPhone(workdir, inst.sip_port, "bench", "x", local_port=uas_port).answer_calls(
            count=total + 1, ring_seconds=0.2, talk_seconds=args.talk, hangup="agent", timeout=900)
        uas_trace = uas.files["msg"]
        for a in agents:
            inst.set_state(a, "ready")
        # warm-up (not counted): one call through the menu, so every prompt is synthesised
        warm, _, _ = residents(workdir, inst.sip_port, BROMMA, 1, 1, 9000, [(5.0, "1")], "warmup")
        warm.wait(120)
        time.sleep(1)

        phases = {}
        for phase, number, digits, first in (("acd", BROMMA, [(5.0, "1")], 0),
                                              ("baseline", BASELINE, [], 5000),
                                              ("read_queue", READ_QUEUE, [(5.0, "1")], 7000)):
            if phase == "baseline":
                for a in agents:
                    inst.set_state(a, "logged_out")
                time.sleep(2)
            started = time.time()
            proc, stat, numbers = residents(workdir, inst.sip_port, number, args.calls, args.rate,
                                             first, digits, phase)
            proc.wait(600)
            ok, failed = sipp_counts(workdir / f"{phase}.screen")
            phases[phase] = {"numbers": numbers, "ok": ok, "failed": failed,
                             "peak_concurrent_calls": peak_concurrent(stat),
                             "seconds": round(time.time() - started, 1)}
            time.sleep(2)
        service_pid = inst.procs["service"].pid
        result["service_peak_rss_mb"] = vm_hwm_mb(service_pid)
        uas.stop()
        acd_enq, base_enq = enqueue_times(inst.var / "asterisk" / "log" / "messages", db_path)
        invites = invite_times(uas_trace)
        numbers_of = {phase: p["numbers"] for phase, p in phases.items()}
        for phase, enq in (("acd", acd_enq), ("baseline", base_enq)):
            p = phases[phase]
            lat = [(invites[n] - enq[n]) * 1000 for n in p.pop("numbers") if n in enq and n in invites]
            p.update({"measured": len(lat), "enqueue_to_invite_ms_p50": _pct(lat, 50),
                      "enqueue_to_invite_ms_p95": _pct(lat, 95),
                      "enqueue_to_invite_ms_mean": round(statistics.fmean(lat), 1) if lat else None})
            result[phase] = p
        a, b = result["acd"], result["baseline"]
        if a["enqueue_to_invite_ms_p95"] and b["enqueue_to_invite_ms_p95"]:
            result["p95_ratio_acd_to_baseline"] = round(a["enqueue_to_invite_ms_p95"] / b["enqueue_to_invite_ms_p95"], 2)
            result["p50_ratio_acd_to_baseline"] = round(a["enqueue_to_invite_ms_p50"] / b["enqueue_to_invite_ms_p50"], 2)
        # every caller must have reached an agent (SIPp alone counts a caller who waited out
        # the scenario's limit as a success)
        # the whole path: the caller's digit (Asterisk's DTMFEnd) -> the agent's INVITE, the
        # project's menu + ACD against a plain Read() + Queue() in the same Asterisk
        dtmf.stopped.set()
        rq = phases["read_queue"]
        for phase, p in (("acd", result["acd"]), ("read_queue", rq)):
            lat = [(invites[n] - dtmf.digits[n]) * 1000 for n in p.get("numbers", numbers_of[phase])
                   if n in dtmf.digits and n in invites]
            p.update({"digit_measured": len(lat), "digit_to_invite_ms_p50": _pct(lat, 50),
                      "digit_to_invite_ms_p95": _pct(lat, 95),
                      "digit_to_invite_ms_mean": round(statistics.fmean(lat), 1) if lat else None})
        rq.pop("numbers", None)
        result["read_queue"] = rq
        if a.get("digit_to_invite_ms_p95") and rq.get("digit_to_invite_ms_p95"):
            result["whole_path_p95_ratio"] = round(a["digit_to_invite_ms_p95"] / rq["digit_to_invite_ms_p95"], 2)
            result["whole_path_p50_ratio"] = round(a["digit_to_invite_ms_p50"] / rq["digit_to_invite_ms_p50"], 2)
        if args.agents >= args.calls:   # only where every caller finds a free agent at once
            result["target_whole_path_1_2"] = result.get("whole_path_p95_ratio", 99) <= 1.2
        result["target_zero_failed"] = (a["failed"] == 0 and a["ok"] == args.calls
                                        and a["measured"] == args.calls)
        result["target_100_concurrent"] = a["peak_concurrent_calls"] >= 100
        result["target_ratio_1_5"] = result.get("p95_ratio_acd_to_baseline", 99) <= 1.5
        result["note"] = ("enqueue-to-INVITE includes only Asterisk + service time; the menu "
                          "(ACD phase) is before enqueue. Queue() members are rung in Asterisk itself.")
    finally:
        release_instance(inst)
    return result


if __name__ == "__main__":
    sys.exit(main())
