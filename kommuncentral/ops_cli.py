"""Operations from the shell: `kc backup FILE`, `kc restore FILE`, `kc logs --contact N`.

`kc backup` runs beside the service (an online copy; calls go on); `kc restore` brings a
centre back into a fresh `KC_VAR` (see `kc/backup.py` for what is in an archive). `kc logs`
reads the structured call log (`var/log/calls.jsonl`, rotated files first): one line per
step of a call, from the menu (agi), the distributor (acd) and the desk (web).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from kc import backup
from kc.settings import Settings
from kc.telemetry import read_steps

FIRST = ("at", "node", "contact", "layer", "step")


def add_parser(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("backup", help="write the whole centre into one archive (while it runs)")
    b.add_argument("file", help="the archive to write (.tar.gz)")
    r = sub.add_parser("restore", help="bring a centre back from an archive into a fresh KC_VAR")
    r.add_argument("file", help="an archive `kc backup` wrote")
    lg = sub.add_parser("logs", help="the structured call log: every step of one contact")
    lg.add_argument("--contact", type=int, required=True, metavar="N", help="the contact's id")
    lg.add_argument("--json", action="store_true", help="the records as JSON lines")


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.command == "backup":
        done = backup.backup(settings.var_dir, Path(args.file), settings.node)
        print(f"backed up {done.files} files ({done.bytes} bytes) into {done.path}")
        return 0
    if args.command == "restore":
        done = backup.restore(Path(args.file), settings.var_dir)
        print(f"restored {done.files} files ({done.bytes} bytes) into {done.path}; "
              "start it with `kc up`")
        return 0
    found = 0
    for record in read_steps(settings.call_log, args.contact):
        found += 1
        print(json.dumps(record, ensure_ascii=False) if args.json else line_of(record))
    if not found:
        print(f"kc: no step of contact {args.contact} in {settings.call_log}")
        return 1
    return 0


def line_of(record: dict) -> str:
    """`at node layer step key=value ...` for people."""
    rest = " ".join(f"{k}={json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v}"
                    for k, v in record.items() if k not in FIRST)
    return (f"{record.get('at', '')} {record.get('node', '')} contact={record.get('contact')} "
            f"{record.get('layer', '')}/{record.get('step', '')} {rest}").rstrip()
