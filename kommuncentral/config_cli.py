"""`kc config`: the whole organisation as one YAML file.

  kc config export > city.yaml        every district, skill, queue, agent, user (no passwords),
                                      opening hours, menu, category, keyword and transfer code
  kc config validate city.yaml        every problem, each naming where it is (exit 2), or "valid"
  kc config import city.yaml [--dry-run]
                                      checked as a whole first (nothing changes while any problem
                                      remains, exit 2), then written in one transaction and
                                      audited; --dry-run prints what would change, writes nothing

Importing the file just exported changes nothing. A key given twice is refused. A running
service follows an import within seconds (kommuncentral/follow.py).
"""
from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from city import document, store as city_store
from kc.i18n import gettext as _
from kc import strict_yaml
from kc.clock import iso, system_clock
from kc.errors import InvalidInput, KcError
from kc.settings import Settings
from kc.store import Store


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="the whole organisation as one YAML file",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = p.add_subparsers(dest="config_command", required=True)
    cmds.add_parser("export", help="write the organisation as YAML to stdout")
    v = cmds.add_parser("validate", help="check a file; list every problem")
    v.add_argument("file", help="the YAML file, or - for stdin")
    i = cmds.add_parser("import", help="make the organisation what the file says")
    i.add_argument("file", help="the YAML file, or - for stdin")
    i.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")


def read_document(path: str) -> dict:
    """The checked document in `path`; `ConfigInvalid` (every problem) or `InvalidInput`."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        data = strict_yaml.load(text)
    except InvalidInput as exc:
        raise document.ConfigInvalid([f"{path}: {exc}"]) from None
    return document.validated(data)


def print_changes(changes: list[tuple[str, str, str]], out=sys.stdout) -> None:
    if not changes:
        print("no changes", file=out)
    for section, key, what in changes:
        print(f"  {what:<12} {section}: {key}", file=out)


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.config_command == "validate":
            read_document(args.file)
            print(f"{args.file}: valid")
            return 0
        if not settings.db_path.exists():
            raise KcError(f"{settings.db_path} does not exist: run `kc init` first")
        store = Store(settings.db_path)
        try:
            if args.config_command == "export":
                doc = store.run_sync(city_store.export)
                sys.stdout.write("# The organisation, exported by `kc config export` (no passwords).\n")
                sys.stdout.write(strict_yaml.dump(document.public(doc)))
                return 0
            target = read_document(args.file)
            if args.dry_run:
                todo = store.run_sync(lambda db: city_store.changes(city_store.export(db), target))
                print(f"{len(todo)} change(s) would be made (dry run, nothing written):")
                print_changes(todo)
                return 0
            done = store.run_sync(city_store.apply, target, f"cli:{getpass.getuser()}",
                                  iso(system_clock()), f"kc config import {Path(args.file).name}")
            print(f"{len(done)} change(s) made:")
            print_changes(done)
            return 0
        finally:
            store.close()
    except document.ConfigInvalid as exc:
        print("kc: " + _("%(file)s: not imported, %(n)s problem(s):")
              % {"file": args.file, "n": len(exc.problems)}, file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
