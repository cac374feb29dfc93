"""Benchmark: 1,000 callers waiting, every due wait announcement played on time.

    .venv/bin/python benchmarks/bench_announce.py [--callers N --every S --stay S --rate CPS]

A private instance (own var/, free ports, real Asterisk): no agent is logged in, so every
resident who presses 1 waits in `kc-wait`, where each caller is announced every `--every`
seconds (KC_ANNOUNCE_SECONDS, 45 as in production).
SIPp places `--callers` calls at `--rate` calls/s; each caller stays `--stay` seconds.

Measured from Asterisk's own log (verbose 3): each turn of a channel's wait starts where
`kc-wait` clears `KC_ANNOUNCE`, and its announcement is due `--every` seconds later; for each
turn that lasted that long, when the channel started playing the first part (`Playing '...'`),
whether its files were set ahead (`announce,<contact>,ahead`, played by `Background`) or asked
for when due (`announce,<contact>`; how many of each is counted too). A late turn whose files
were set before it was due (`KC_LEFT` > 0) had nothing left to ask: Asterisk's own channel
was late (`late_with_files_set_in_time`).
On time = within `ON_TIME_SECONDS` of being due. Announcements due while a caller was
hanging up (the channel gone within that time) are not counted. Results: section `announce` of
`var/bench/results.json`. Target: every due announcement played on time.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks.bench_acd_pbx import BROMMA, _pct, sipp_counts, vm_hwm_mb  # noqa: E402
from benchmarks.results import merge_results  # noqa: E402
from kc_instance import free_rtp_range, make_instance, release_instance  # noqa: E402
from sipp_driver import _digits, _env, _sipp_binary, free_media_port, free_udp_port  # noqa: E402

ON_TIME_SECONDS = 1.0
_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\] VERBOSE\[\d+\](?:\[(C-[0-9a-f]+)\])? (.*)$")
_TURN = re.compile(r'Executing \[s@kc-wait:\d+\] Set\("([^"]+)", "KC_ANNOUNCE="\)')
_ASKED = re.compile(r'Executing \[t@kc-wait:\d+\] AGI\("([^"]+)", "[^"]*/announce,\d+"\)')
_AHEAD = re.compile(r'Executing \[t@kc-wait:\d+\] BackGround\("([^"]+)", ', re.IGNORECASE)
_LEFT = re.compile(r'Executing \[t@kc-wait:\d+\] Set\("([^"]+)", "KC_LEFT=(-?[0-9.]+)"\)')
_PLAY = re.compile(r"<([^>]+)> Playing '")
_GONE = re.compile(r'Executing \[h@|Spawn extension .* exited non-zero on \'([^\']+)\'')


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def announcements(messages: Path, every: float) -> dict:
    """Per channel: each turn of its wait, and the first `Playing` after it was due."""
    turns: dict[str, list[float]] = {}
    played: dict[str, list[float]] = {}
    ended: dict[str, float] = {}
    asked = set_ahead = 0
    in_time: dict[tuple[str, int], bool] = {}   # (channel, turn): the files were set before due
    for line in messages.read_text(errors="replace").splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        at, text = _epoch(m.group(1)), m.group(3)
        a = _TURN.search(text)
        if a:
            turns.setdefault(a.group(1), []).append(at)
            continue
        if _ASKED.search(text):
            asked += 1
            continue
        if _AHEAD.search(text):
            set_ahead += 1
            continue
        left = _LEFT.search(text)
        if left and left.group(1) in turns:
            in_time[(left.group(1), len(turns[left.group(1)]) - 1)] = float(left.group(2)) > 0
            continue
        p = _PLAY.search(text)
        if p and p.group(1) in turns:
            played.setdefault(p.group(1), []).append(at)
            continue
        g = _GONE.search(text)
        if g and g.group(1):
            ended[g.group(1)] = at
    due: dict[str, list[tuple[float, bool]]] = {}    # (when due, its files set in time)
    for chan, starts in turns.items():     # a turn cut short (a digit, an agent) had nothing due
        for i, start in enumerate(starts):
            nxt = starts[i + 1] if i + 1 < len(starts) else ended.get(chan, float("inf"))
            if nxt > start + every:
                due.setdefault(chan, []).append((start + every, in_time.get((chan, i), False)))
    delays, missed, skipped = [], 0, 0
    late_set_in_time = 0     # late with nothing left to ask: Asterisk's own channel was late
    for chan, turns_due in due.items():
        plays = sorted(played.get(chan, []))
        for i, (start, set_in_time) in enumerate(turns_due):
            nxt = turns_due[i + 1][0] if i + 1 < len(turns_due) else float("inf")
            first = next((t for t in plays if start - 0.05 <= t < nxt), None)   # log: ms
            if first is None:
                if chan in ended and ended[chan] - start < ON_TIME_SECONDS + 1:
                    skipped += 1        # the caller was leaving
                else:
                    missed += 1
                continue
            delays.append(max(0.0, first - start))
            late_set_in_time += delays[-1] > ON_TIME_SECONDS and set_in_time
    return {"due": sum(len(s) for s in due.values()) - skipped, "played": len(delays),
            "not_played": missed, "late": sum(1 for d in delays if d > ON_TIME_SECONDS),
            "delay_ms_p50": _pct([d * 1000 for d in delays], 50),
            "delay_ms_p95": _pct([d * 1000 for d in delays], 95),
            "delay_ms_max": round(max(delays) * 1000, 1) if delays else None,
            "played_from_parts_set_ahead": set_ahead, "asked_over_fastagi": asked,
            "late_with_files_set_in_time": late_set_in_time}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--callers", type=int, default=1000)
    ap.add_argument("--every", type=int, default=45)
    ap.add_argument("--stay", type=float, default=150.0)
    ap.add_argument("--rate", type=int, default=20)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    inst = make_instance()
    rtp_start, rtp_end = free_rtp_range(4 * args.callers + 200)
    inst.env.update(KC_ANNOUNCE_SECONDS=str(args.every), KC_RTP_START=str(rtp_start),
                    KC_RTP_END=str(rtp_end))
    workdir = inst.var / "bench"
    workdir.mkdir()
    result: dict = {"callers": args.callers, "announce_seconds": args.every,
                    "stay_seconds": args.stay, "rate_cps": args.rate, "cpus": os.cpu_count()}
    try:
        inst.start()
        time.sleep(20)    # the service renders the announcements' parts at start-up
        numbers = [f"079{i:07d}" for i in range(args.callers)]
        inf = workdir / "callers.csv"
        inf.write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in numbers))
        xml = _env.get_template("uac_call.xml.j2").render(
            auth=False, reject_codes=(400, 403, 404, 408, 480, 486, 488, 500, 503, 603),
            digits=_digits([(5.0, "1")]), hangup_after_ms=int(args.stay * 1000),
            wait_far_bye_ms=None)
        path = workdir / "callers.xml"
        path.write_text(xml.replace("[caller_number]", "[field0]"))
        argv = [_sipp_binary(), f"127.0.0.1:{inst.sip_port}", "-sf", str(path), "-inf", str(inf),
                "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mp", str(free_media_port()),
                "-m", str(args.callers), "-r", str(args.rate), "-l", str(args.callers),
                "-s", BROMMA, "-nostdin", "-key", "caller_name", "Bench",
                "-trace_screen", "-screen_file", str(workdir / "callers.screen"),
                "-max_retrans", "5", "-timeout", f"{int(args.stay + args.callers / args.rate + 120)}s",
                "-timeout_error"]
        started = time.time()
        proc = subprocess.Popen(argv, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        proc.wait(args.stay + args.callers / args.rate + 300)
        result["seconds"] = round(time.time() - started, 1)
        result["sipp_ok"], result["sipp_failed"] = sipp_counts(workdir / "callers.screen")
        result["service_peak_rss_mb"] = vm_hwm_mb(inst.procs["service"].pid)
        waited = inst.sql("select count(*) from contacts where enqueued_at is not null")[0][0]
        result["callers_waited"] = waited
        result.update(announcements(inst.var / "asterisk" / "log" / "messages", args.every))
        result["on_time_seconds"] = ON_TIME_SECONDS
        result["target_all_on_time"] = (result["due"] > 0 and result["not_played"] == 0
                                        and result["late"] == 0)
    finally:
        release_instance(inst)
    print(json.dumps(result, indent=2), flush=True)
    merge_results("announce", result)
    return 0 if result.get("target_all_on_time") else 1


if __name__ == "__main__":
    sys.exit(main())
