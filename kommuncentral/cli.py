"""`kc`: set up, run and inspect Kommuncentral.

  kc init [--demo | --config FILE]   create var/kc.db (with the demo centre, KC_CONFIG, or the
                     organisation in FILE); never overwrites
  kc config export|validate|import   the whole organisation as YAML (kommuncentral/config_cli.py)
  kc render          write the Asterisk configuration into var/asterisk/
  kc serve           run the service (FastAGI, AMI/ACD, web) against a running Asterisk
  kc asterisk        render and run only Asterisk (foreground) until stopped
  kc up              render, start Asterisk from var/asterisk/, run the service; Ctrl-C stops both
  kc cli COMMAND...  one Asterisk CLI command on the running instance (whichever Asterisk it is)
  kc menu export|import|versions|rollback DISTRICT   menus as code (see kc/menu_cli.py)
  kc purge [--days N] | kc export PERSON   retention and a person's data (kc/case_cli.py)
  kc report verify [--from --to]          every report figure recomputed from the contacts (kommuncentral/report_cli.py)
  kc simulate [--seed N] [--hours H] ...   service level with and without overflow (acd/simulate.py)
  kc settings [--markdown]   every KC_* setting: current value, default, type, help (kc/settings.py)
"""
from __future__ import annotations

import argparse
import errno
import asyncio
import logging
import signal
import sys

from kc.clock import system_clock
from kommuncentral import config_cli, menu_cli
from kommuncentral import case_cli
from kommuncentral import report_cli
from kommuncentral.demo import DEMO_FILE
from kc import i18n
from kc.errors import KcError
from kc.i18n import gettext as _
from kc.settings import Settings, describe, markdown_table
from kc import queries
from kc.store import Store

log = logging.getLogger("kc")


def cmd_init(settings: Settings, demo: bool, config: str | None) -> int:
    from pathlib import Path
    from city.document import ConfigInvalid
    from kommuncentral.demo import load_config

    source = Path(config) if config else (settings.config_file or DEMO_FILE) if demo else None
    existed = settings.db_path.exists()
    if source is not None and not existed:
        try:     # checked before the database is created: a bad file leaves nothing behind
            from kommuncentral.demo import read
            from city.document import validated
            validated(read(source))
        except ConfigInvalid as exc:
            print("kc: " + _("%(file)s: no centre created, %(n)s problem(s):")
                  % {"file": source, "n": len(exc.problems)}, file=sys.stderr)
            for problem in exc.problems:
                print(f"  - {problem}", file=sys.stderr)
            return 2
    store = Store(settings.db_path)
    try:
        store.run_sync(lambda db: None)  # creates and migrates
        if existed:
            print(f"{settings.db_path} exists; left as it is")
            return 0
        if source is not None:
            store.run_sync(load_config, system_clock, source, settings.demo_always_open)
            print(f"created {settings.db_path} from {source}")
        else:
            print(f"created empty {settings.db_path}")
    finally:
        store.close()
    settings.secret("ami.secret")
    settings.secret("session.key")
    return 0


async def _render(settings: Settings):
    from pbx.asterisk import render_config
    from kommuncentral.service import asterisk_context, fallback_prompt

    prompt = await fallback_prompt(settings)
    store = Store(settings.db_path)
    try:
        ctx = asterisk_context(settings, store, prompt)
    finally:
        store.close()
    render_config(ctx)
    return ctx


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _require_db(settings: Settings) -> None:
    if not settings.db_path.exists():
        raise KcError(f"{settings.db_path} does not exist: run `kc init --demo` first")


async def cmd_serve(settings: Settings) -> int:
    from kommuncentral.service import run_service

    _require_db(settings)
    await run_service(settings, _stop_event())
    return 0


async def cmd_asterisk(settings: Settings) -> int:
    from pbx.process import AsteriskProcess

    _require_db(settings)
    stop = _stop_event()
    pbx = AsteriskProcess(await _render(settings))
    await pbx.start()
    print("asterisk running", flush=True)
    try:
        stopped = asyncio.create_task(stop.wait())
        while not stopped.done():
            await asyncio.wait([stopped], timeout=1)
            if not pbx.running:
                raise KcError(f"Asterisk exited with {pbx.returncode}")
    finally:
        await pbx.stop()
    return 0


async def cmd_up(settings: Settings) -> int:
    """Asterisk and the service, supervised: Asterisk restarted when it dies (a limited number
    of times, see `kommuncentral.supervisor`), everything stopped cleanly when it cannot be
    kept up or the service fails; exit status 1 then, for a service manager to see."""
    from pbx.process import AsteriskProcess
    from kommuncentral.demo import demo_logins
    from kommuncentral.service import run_service
    from kommuncentral.supervisor import PbxSupervisor, single_instance

    _require_db(settings)
    lock = single_instance(settings.var_dir / "kc-up.lock")
    store = Store(settings.db_path)
    try:
        districts = store.run_sync(queries.list_districts)
    finally:
        store.close()
    stop = _stop_event()
    ctx = await _render(settings)
    pbx = AsteriskProcess(ctx)
    await pbx.start()
    supervisor = PbxSupervisor(pbx)
    watch = asyncio.create_task(supervisor.run(stop))
    try:
        service = asyncio.create_task(run_service(settings, stop))
        await asyncio.sleep(0.5)
        if service.done():
            await service
        print(f"""
Kommuncentral is up.
  Web:      {settings.web_url}/          API: {settings.web_url}/api/health
  SIP:      udp {settings.sip_host}:{settings.sip_port}
  AMI:      {settings.bind_host}:{settings.ami_port}   FastAGI: {settings.bind_host}:{settings.agi_port}
  Residents dial:""", flush=True)
        for district in districts:
            print(f"    {', '.join(district.numbers):<24} {district.name}")
        source = settings.config_file or DEMO_FILE
        print(f"  Log-ins set by {source.name} (user / password / role):")
        for user, password, role in demo_logins(source)[:12]:
            print(f"    {user:<12} {password:<16} {role}")
        print("  Ctrl-C stops Asterisk and the service.", flush=True)
        await service
    finally:
        stop.set()
        await asyncio.gather(watch, return_exceptions=True)
        await pbx.stop()
        lock.close()
        print("stopped", flush=True)
    if supervisor.gave_up:
        print(f"kc: {supervisor.gave_up}", file=sys.stderr)
        return 1
    return 0


async def cmd_cli(settings: Settings, command: str) -> int:
    """`asterisk -rx` through the same runtime that started it (in its root, for 22)."""
    from pbx.process import AsteriskProcess

    _require_db(settings)
    rc, out = await AsteriskProcess(await _render_context(settings))._rx(command, timeout=30)
    print(out, end="")
    return 0 if rc == 0 else 3


async def _render_context(settings: Settings):
    """The context `kc asterisk` uses (nothing rendered)."""
    from kommuncentral.service import asterisk_context

    store = Store(settings.db_path)
    try:
        return asterisk_context(settings, store, None)
    finally:
        store.close()


def _os_reason(exc: OSError) -> str:
    """What the system refused, in words (the file's own errors are the common ones)."""
    if exc.filename is None:
        return str(exc.strerror or exc)
    known = {errno.ENOENT: _("there is no such file"), errno.EACCES: _("permission denied"),
             errno.EISDIR: _("it is a folder, not a file"),
             errno.ENOTDIR: _("a part of the path is not a folder")}
    return known.get(exc.errno, str(exc.strerror or exc))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kc", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    p_init = sub.add_parser("init", help="create the database")
    p_init.add_argument("--demo", action="store_true",
                        help="with the demo centre (config/demo.yaml, or the file KC_CONFIG names)")
    p_init.add_argument("--config", metavar="FILE", help="with the organisation in FILE")
    sub.add_parser("render", help="write the Asterisk configuration")
    sub.add_parser("serve", help="run the service")
    sub.add_parser("asterisk", help="run only Asterisk")
    sub.add_parser("up", help="run Asterisk and the service together")
    p_cli = sub.add_parser("cli", help="run one Asterisk CLI command, e.g. kc cli pjsip show contacts")
    p_cli.add_argument("words", nargs="+")
    menu_cli.add_parser(sub)
    config_cli.add_parser(sub)
    case_cli.add_parser(sub)
    report_cli.add_parser(sub)
    from acd import simulate
    sim = sub.add_parser(
        "simulate", help="simulate a shift: service level with and without cross-district overflow")
    simulate.add_arguments(sim)
    sim.set_defaults(demo_file=DEMO_FILE)
    p_settings = sub.add_parser("settings", help="list every setting with its value, default, type and help")
    p_settings.add_argument("--markdown", action="store_true", help="the README's table instead")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        i18n.use(settings.language)
        if args.command == "init":
            return cmd_init(settings, args.demo, args.config)
        if args.command == "render":
            ctx = asyncio.run(_render(settings))
            print(f"rendered {ctx.config_path}")
            return 0
        if args.command == "serve":
            return asyncio.run(cmd_serve(settings))
        if args.command == "asterisk":
            return asyncio.run(cmd_asterisk(settings))
        if args.command == "up":
            return asyncio.run(cmd_up(settings))
        if args.command == "cli":
            return asyncio.run(cmd_cli(settings, " ".join(args.words)))
        if args.command == "config":
            return config_cli.run(settings, args)
        if args.command == "menu":
            return menu_cli.run(settings, args)
        if args.command in ("purge", "export"):
            return case_cli.run(settings, args)
        if args.command == "report":
            return report_cli.run(settings, args)
        if args.command == "simulate":
            return simulate.main(args, settings)
        if args.command == "settings":
            print(markdown_table() if args.markdown else describe(settings), end="")
            return 0
    except KcError as exc:
        print(f"kc: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:       # a file that cannot be read, a port that cannot be opened
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"kc: {where}{_os_reason(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        if type(exc).__name__ in ("AsteriskError", "RuntimeMissing"):
            print("kc: " + _("Asterisk failed: %(why)s") % {"why": exc}, file=sys.stderr)
            return 3
        raise
    return 1


if __name__ == "__main__":
    sys.exit(main())
