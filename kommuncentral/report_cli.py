"""`kc report verify [--from DATE] [--to DATE]`: recompute every figure of the period from the raw
contacts and events and compare it with the (cached) report; exit 1 on any difference."""
from __future__ import annotations

import argparse

from kc.clock import system_clock
from kc.settings import Settings
from kc.store import Store


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="check the reports against the contacts")
    rsub = p.add_subparsers(dest="report_command", required=True)
    v = rsub.add_parser("verify", help="recompute every figure of a period and compare with the report")
    v.add_argument("--from", dest="start", default=None, help="local date or ISO time (default: 30 days ago)")
    v.add_argument("--to", dest="end", default=None, help="local date (included) or ISO time (default: now)")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from reporting.definitions import period_from
    from reporting.verify import verify

    period = period_from(args.start, args.end, system_clock())
    store = Store(settings.db_path)
    try:
        compared, problems = store.run_sync(verify, period, settings.rundgang_days)
    finally:
        store.close()
    span = f"{period.as_json()['from_local']} to {period.as_json()['to_local']}"
    for line in problems:
        print(line)
    if problems:
        print(f"{len(problems)} of {compared} figures differ ({span})")
        return 1
    print(f"all {compared} figures agree ({span})")
    return 0
