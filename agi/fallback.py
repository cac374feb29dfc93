#!/usr/bin/env python3
"""Process AGI that Asterisk runs itself when the FastAGI service cannot be reached.

The caller hears an apology instead of dead air, and the call is written to a spool file that
the service imports as a contact (outcome `failed`) when it is back, so nothing is lost.
Runs with the standard library and pyst2 only; never imports the service.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path


def _clean(value: str, limit: int = 300) -> str:
    return "".join(ch for ch in value if ch.isprintable())[:limit]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spool", required=True)
    parser.add_argument("--prompt", default="")
    args, _ = parser.parse_known_args(argv)
    from asterisk.agi import AGI  # pyst2; reads the agi_* environment from stdin

    agi = AGI()
    env = agi.env
    try:
        district = agi.get_variable("KC_DISTRICT") or ""
    except Exception:  # caller already gone: record what the headers say
        district = ""
    record = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "district": _clean(district, 64),
        "dialed": _clean(env.get("agi_dnid", "") or env.get("agi_extension", ""), 64),
        "caller": _clean(env.get("agi_callerid", ""), 64),
        "caller_name": _clean(env.get("agi_calleridname", "")),
        "uniqueid": _clean(env.get("agi_uniqueid", ""), 64),
    }
    spool = Path(args.spool)
    spool.mkdir(parents=True, exist_ok=True)
    tmp = spool / f".{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, spool / f"{uuid.uuid4().hex}.json")
    if args.prompt:
        try:
            agi.stream_file(args.prompt)
        except Exception:  # caller gone: the record is written, nothing more to do
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
