"""`kc`: set up, run and inspect Kommuncentral.

  kc init [--demo | --config FILE] [--nodes FILE]   create var/kc.db (with the demo centre, KC_CONFIG, or the
                     organisation in FILE); never overwrites
  kc config export|validate|import   the whole organisation as YAML (kommuncentral/config_cli.py)
  kc render          write the Asterisk configuration into var/asterisk/
  kc serve           run the service (FastAGI, AMI/ACD, web) against a running Asterisk
  kc asterisk [--node N | --front-door]   render and run only Asterisk (a cluster: its nodes
                     and its Kamailio front door) in the foreground until stopped
  kc up              render, start Asterisk from var/asterisk/, run the service; Ctrl-C stops both
  kc cli COMMAND...  one Asterisk CLI command on the running instance (whichever Asterisk it is)
  kc directory import FILE | search WORDS   the staff directory (kommuncentral/directory_cli.py)
  kc menu export|import|versions|rollback DISTRICT   menus as code (see kc/menu_cli.py)
  kc purge [--days N] | kc export PERSON   retention and a person's data (kc/case_cli.py)
  kc report verify [--from --to]          every report figure recomputed from the contacts (kommuncentral/report_cli.py)
  kc simulate [--seed N] [--hours H] ...   service level with and without overflow (acd/simulate.py)
  kc backup FILE | kc restore FILE | kc logs --contact N   operations (kommuncentral/ops_cli.py)
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
from kommuncentral import case_cli, directory_cli
from kommuncentral import report_cli
from kommuncentral import ops_cli
from kommuncentral.demo import DEMO_FILE
from kc import i18n
from kc.errors import KcError
from kc.i18n import gettext as _
from kc.settings import Settings, describe, markdown_table
from kc import queries
from kc.store import Store

log = logging.getLogger("kc")


def cmd_init(settings: Settings, demo: bool, config: str | None, nodes: str | None = None) -> int:
    from pathlib import Path
    from city.document import ConfigInvalid
    from kommuncentral.demo import load_config

    source = Path(config) if config else (settings.config_file or DEMO_FILE) if demo else None
    existed = settings.db_path.exists()
    if source is not None and not existed:
        try:     # checked before the database is created: a bad file leaves nothing behind
            from kommuncentral.demo import read
            from city.document import validated
            validated(read(source, Path(nodes) if nodes else None))
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
            store.run_sync(load_config, system_clock, source, settings.demo_always_open, "init",
                           Path(nodes) if nodes else None)
            print(f"created {settings.db_path} from {source}")
        else:
            print(f"created empty {settings.db_path}")
    finally:
        store.close()
    settings.secret("ami.secret")
    settings.secret("session.key")
    return 0


async def _render(settings: Settings, node: str | None = None, pbx: bool = True,
                  front: bool = True):
    """Every Asterisk's configuration (the cluster's nodes, or the one; `node`: that one
    only; `pbx` False: none) and the front door's (`front`); returns (the Asterisk contexts
    rendered, the front door or None)."""
    from pbx.asterisk import render_config
    from pbx.kamailio import render_front_door
    from kommuncentral import cluster
    from kommuncentral.service import asterisk_contexts, fallback_prompt

    prompt = await fallback_prompt(settings)
    store = Store(settings.db_path)
    try:
        contexts = _pick(asterisk_contexts(settings, store, prompt), node) if pbx else []
        door = cluster.front_door(settings, store)
    finally:
        store.close()
    for ctx in contexts:
        render_config(ctx)
    if door is not None and front:
        render_front_door(door)
    return contexts, door


def _pick(contexts: list, node: str | None) -> list:
    if node is None:
        return contexts
    chosen = [ctx for ctx in contexts if ctx.node == node]
    if not chosen:
        raise KcError(f"no node {node!r} (the nodes: {', '.join(str(c.node) for c in contexts)})")
    return chosen


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


async def cmd_asterisk(settings: Settings, node: str | None = None,
                       front_door: bool = False) -> int:
    """Only the PBX, in the foreground: the one Asterisk, or the cluster's nodes and its front
    door (`--node NAME`: that node only; `--front-door`: the front door only)."""
    from pbx.kamailio import FrontDoorProcess
    from pbx.process import AsteriskProcess
    from kommuncentral.supervisor import keep_front_door

    _require_db(settings)
    stop = _stop_event()
    contexts, door = await _render(settings, node, pbx=not front_door, front=node is None)
    if front_door and door is None:
        raise KcError("no nodes in the organisation's data: no front door to run")
    procs: list = [AsteriskProcess(c) for c in contexts]
    if door is not None and node is None:
        procs.append(FrontDoorProcess(door))
    keeping = None
    try:
        for proc in procs:
            await proc.start()
            if isinstance(proc, FrontDoorProcess):
                keeping = asyncio.create_task(keep_front_door(proc, stop))
        print("asterisk running" if not front_door else "front door running", flush=True)
        stopped = asyncio.create_task(stop.wait())
        while not stopped.done():
            await asyncio.wait([stopped], timeout=1)
            for proc in procs:
                if not proc.running and not isinstance(proc, FrontDoorProcess):
                    raise KcError(f"{type(proc).__name__} exited with {proc.returncode}")
    finally:
        stop.set()
        if keeping is not None:
            await asyncio.gather(keeping, return_exceptions=True)
        for proc in procs:
            await proc.stop()
    return 0


async def cmd_up(settings: Settings) -> int:
    """Asterisk and the service, supervised: Asterisk restarted when it dies (a limited number
    of times, see `kommuncentral.supervisor`), everything stopped cleanly when it cannot be
    kept up or the service fails; exit status 1 then, for a service manager to see."""
    from pbx.kamailio import FrontDoorProcess
    from pbx.process import AsteriskProcess
    from kommuncentral.demo import demo_logins
    from kommuncentral.service import run_service
    from kommuncentral.supervisor import PbxSupervisor, keep_front_door, single_instance

    _require_db(settings)
    lock = single_instance(settings.var_dir / "kc-up.lock")
    store = Store(settings.db_path)
    try:
        districts = store.run_sync(queries.list_districts)
    finally:
        store.close()
    stop = _stop_event()
    contexts, door = await _render(settings)
    pbxs = [AsteriskProcess(ctx) for ctx in contexts]
    front = FrontDoorProcess(door) if door is not None else None
    for pbx in pbxs:
        await pbx.start()
    if front is not None:
        await front.start()
    supervisors = [PbxSupervisor(pbx) for pbx in pbxs]
    watches = [asyncio.create_task(s.run(stop)) for s in supervisors]
    if front is not None:
        watches.append(asyncio.create_task(keep_front_door(front, stop)))
    try:
        service = asyncio.create_task(run_service(settings, stop))
        await asyncio.sleep(0.5)
        if service.done():
            await service
        print(f"""
Kommuncentral is up.
  Web:      {settings.web_url}/          API: {settings.web_url}/api/health
  SIP:      udp {settings.sip_host}:{settings.sip_port}{"  (Kamailio, the front door)" if front else ""}""", flush=True)
        if front is None:
            print(f"  AMI:      {settings.bind_host}:{settings.ami_port}   FastAGI: {settings.bind_host}:{settings.agi_port}")
        else:
            print(f"  FastAGI:  {settings.bind_host}:{settings.agi_port}   agents register on their node:")
            for ctx in contexts:
                print(f"  Node {ctx.node:<8} SIP {ctx.sip_host}:{ctx.sip_port}  AMI {ctx.ami_host}:{ctx.ami_port}"
                      f"  agents: {', '.join(a.id for a in ctx.agents)[:60]}")
        print("  Residents dial:", flush=True)
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
        await asyncio.gather(*watches, return_exceptions=True)
        if front is not None:
            await front.stop()
        for pbx in pbxs:
            await pbx.stop()
        lock.close()
        print("stopped", flush=True)
    for supervisor in supervisors:
        if supervisor.gave_up:
            print(f"kc: {supervisor.gave_up}", file=sys.stderr)
            return 1
    return 0


async def cmd_cli(settings: Settings, command: str, node: str | None = None) -> int:
    """`asterisk -rx` through the same runtime that started it (in its root, for 22); in a
    cluster on the first node, or on `--node`."""
    from pbx.process import AsteriskProcess

    _require_db(settings)
    ctx = _pick(await _render_context(settings), node)[0]
    rc, out = await AsteriskProcess(ctx)._rx(command, timeout=30)
    print(out, end="")
    return 0 if rc == 0 else 3


async def _render_context(settings: Settings):
    """The contexts `kc asterisk` uses (nothing rendered)."""
    from kommuncentral.service import asterisk_contexts

    store = Store(settings.db_path)
    try:
        return asterisk_contexts(settings, store, None)
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
    p_init.add_argument("--nodes", metavar="FILE",
                        help="on the cluster of Asterisk nodes FILE's `nodes` section names")
    sub.add_parser("render", help="write the Asterisk configuration")
    sub.add_parser("serve", help="run the service")
    p_ast = sub.add_parser("asterisk", help="run only Asterisk (a cluster: its nodes and front door)")
    p_ast.add_argument("--node", help="only this node of the cluster")
    p_ast.add_argument("--front-door", action="store_true", help="only the cluster's front door (Kamailio)")
    sub.add_parser("up", help="run Asterisk and the service together")
    p_cli = sub.add_parser("cli", help="run one Asterisk CLI command, e.g. kc cli pjsip show contacts")
    p_cli.add_argument("--node", help="on this node of the cluster (default: the first)")
    p_cli.add_argument("words", nargs="+")
    menu_cli.add_parser(sub)
    config_cli.add_parser(sub)
    case_cli.add_parser(sub)
    directory_cli.add_parser(sub)
    report_cli.add_parser(sub)
    ops_cli.add_parser(sub)
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
            return cmd_init(settings, args.demo, args.config, args.nodes)
        if args.command == "render":
            contexts, door = asyncio.run(_render(settings))
            for ctx in contexts:
                print(f"rendered {ctx.config_path}")
            if door is not None:
                print(f"rendered {door.config_path}")
            return 0
        if args.command == "serve":
            return asyncio.run(cmd_serve(settings))
        if args.command == "asterisk":
            return asyncio.run(cmd_asterisk(settings, args.node, args.front_door))
        if args.command == "up":
            return asyncio.run(cmd_up(settings))
        if args.command == "cli":
            return asyncio.run(cmd_cli(settings, " ".join(args.words), args.node))
        if args.command == "config":
            return config_cli.run(settings, args)
        if args.command == "menu":
            return menu_cli.run(settings, args)
        if args.command in ("purge", "export"):
            return case_cli.run(settings, args)
        if args.command == "directory":
            return directory_cli.run(settings, args)
        if args.command == "report":
            return report_cli.run(settings, args)
        if args.command in ("backup", "restore", "logs"):
            return ops_cli.run(settings, args)
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
