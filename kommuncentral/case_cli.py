"""`kc purge [--days N]` (retention: notes removed, numbers pseudonymised after N days, default
`KC_RETENTION_DAYS` or 90) and `kc export PERSON` (every contact of one number/address, JSON)."""
from __future__ import annotations

import argparse
import asyncio
import json

from kc.clock import system_clock
from kc.settings import Settings
from kc.store import Store


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("purge", help="remove notes and pseudonymise numbers older than the retention time")
    p.add_argument("--days", type=int, default=None, help="retention in days (default KC_RETENTION_DAYS or 90)")
    p = sub.add_parser("export", help="everything stored about one phone number or e-mail address (JSON)")
    p.add_argument("person")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from admin_web.casework import run_purge
    from kc import cases

    store = Store(settings.db_path)
    try:
        if args.command == "purge":
            days = args.days or settings.retention_days
            if days < 1:
                raise SystemExit("kc purge: --days must be at least 1")

            async def go() -> dict:
                return await run_purge(settings, store, system_clock, days)
            counts = asyncio.run(go())
            print(f"purged data older than {days} days: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        else:
            print(json.dumps(store.run_sync(cases.export_person, args.person), ensure_ascii=False,
                             indent=2, default=str))
    finally:
        store.close()
    return 0
