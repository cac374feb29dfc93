"""`kc directory import FILE`: the staff directory from a CSV file (`kc.staff_directory`), and
`kc directory search WORDS`."""
from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from kc import staff_directory
from kc.clock import iso, system_clock
from kc.errors import InvalidInput
from kc.settings import Settings
from kc.store import Store


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("directory", help="the staff directory: import FILE (CSV) or search WORDS")
    what = p.add_subparsers(dest="directory_command", required=True)
    imp = what.add_parser("import", help="replace the directory with a CSV file "
                                         "(name,unit,district,number,available)")
    imp.add_argument("file")
    find = what.add_parser("search", help="people whose name or unit holds the words")
    find.add_argument("words", nargs="*")


def run(settings: Settings, args: argparse.Namespace) -> int:
    store = Store(settings.db_path)
    try:
        if args.directory_command == "import":
            try:
                text = Path(args.file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidInput(f"{args.file}: cannot be read as UTF-8 text: {exc}") from None
            counts = store.run_sync(staff_directory.import_csv, text,
                                    f"cli:{getpass.getuser()}", iso(system_clock()))
            print(f"directory imported: {counts['imported']} people (before: {counts['before']})")
        else:
            for row in store.run_sync(staff_directory.search, " ".join(args.words), 50):
                print(f"{row['id']:>5}  {row['name']:<30} {row['unit']:<24} {row['number']:<14} "
                      f"{'ledig' if row['available'] else 'upptagen'}")
    finally:
        store.close()
    return 0
