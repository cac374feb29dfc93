"""`kc menu ...`: menus as code.

  kc menu export DISTRICT > menu.yaml     the live menu as YAML
  kc menu import DISTRICT menu.yaml       validate (as the API and pages do) and publish
  kc menu versions DISTRICT               the version history
  kc menu rollback DISTRICT [--to N]      publish the previous (or version N) again
  kc menu share DISTRICT OWNER|--own      play OWNER's menu for DISTRICT (--own: its own again)

Import works against a running service too: the next call reads the new version.
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path

from agi.prompts import PromptCache

from agi import menu_store, menus
from kc.i18n import gettext as _
from kc.clock import system_clock
from kc.errors import KcError, NotFound
from kc.settings import Settings
from kc.store import Store


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("menu", help="export, import, list or roll back a district's menu")
    msub = p.add_subparsers(dest="menu_command", required=True)
    e = msub.add_parser("export", help="print the live menu as YAML")
    e.add_argument("district")
    i = msub.add_parser("import", help="validate and publish a YAML menu")
    i.add_argument("district")
    i.add_argument("file", help="YAML file, or - for standard input")
    i.add_argument("--note", default="", help="a note for the version history")
    v = msub.add_parser("versions", help="list the published versions")
    v.add_argument("district")
    r = msub.add_parser("rollback", help="publish the previous version again")
    r.add_argument("district")
    r.add_argument("--to", type=int, default=None, help="the version to go back to")
    s = msub.add_parser("share", help="let a district play another district's menu")
    s.add_argument("district")
    s.add_argument("owner", nargs="?", default=None, help="the district whose menu it plays")
    s.add_argument("--own", action="store_true", help="stop sharing: play its own menu again")


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:   # no passwd entry (containers)
        return "cli"


async def _run(settings: Settings, args: argparse.Namespace, store: Store) -> int:
    prompts = PromptCache(settings.sounds_dir, audio_root=settings.sounds_dir)
    district = args.district
    if args.menu_command in ("export", "import", "rollback"):
        try:   # a district that plays another's menu has nothing of its own to export or import
            await menus.own_menu(store, district)
        except menus.MenuShared as exc:
            print(f"kc: {exc}", file=sys.stderr)
            return 2
    if args.menu_command == "export":
        current = await store.run(menu_store.current_version, district)
        if current is None:
            raise NotFound(f"no published menu for {district!r}")
        sys.stdout.write(f"# menu of {district}, version {current['version']} "
                         f"({current['created_at']} by {current['created_by']})\n")
        sys.stdout.write(menus.to_yaml(current["body"]))
        return 0
    if args.menu_command == "import":
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        try:
            version = await menus.publish(store, system_clock, prompts, district,
                                          menus.from_yaml(text), _who(), note=args.note or "import")
        except menus.MenuInvalid as exc:
            print("kc: " + _("%(district)s: the menu is not published, %(n)s problem(s):")
                  % {"district": district, "n": len(exc.problems)},
                  file=sys.stderr)
            for problem in exc.problems:
                print(f"  - {problem}", file=sys.stderr)
            return 2
        print(f"published version {version} of the menu of {district}")
        return 0
    if args.menu_command == "share":
        if (args.owner is None) == (not args.own):
            print("kc: " + _("give the district whose menu to play, or --own"), file=sys.stderr)
            return 2
        try:
            await menus.share(store, system_clock, prompts, district, args.owner, _who())
        except menus.InvalidInput as exc:
            print("kc: " + _("%(district)s: not shared: %(why)s")
                  % {"district": district, "why": "; ".join(getattr(exc, "problems", [str(exc)]))},
                  file=sys.stderr)
            return 2
        print(f"{district} plays the menu of {args.owner}" if args.owner
              else f"{district} plays its own menu")
        return 0
    if args.menu_command == "versions":
        for row in await store.run(menu_store.list_versions, district):
            print(f"{row['version']:>4}  {row['created_at']}  {row['created_by']:<16} {row['note']}")
        return 0
    if args.menu_command == "rollback":
        version = await menus.rollback(store, system_clock, prompts, district, _who(), args.to)
        print(f"published version {version} of the menu of {district} (rollback)")
        return 0
    return 1


def run(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.db_path.exists():
        raise KcError(f"{settings.db_path} does not exist: run `kc init --demo` first")
    store = Store(settings.db_path)
    try:
        return asyncio.run(_run(settings, args, store))
    finally:
        store.close()
