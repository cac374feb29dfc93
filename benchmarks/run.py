"""`make bench`: run every `benchmarks/bench_*.py` (or those whose name contains an argument).

    .venv/bin/python -m benchmarks.run [routing reports ...]

Each benchmark is its own script (run in a fresh interpreter, one after the other, so they do
not disturb each other's timings) and merges its section into `var/bench/results.json`.
Exit status: non-zero if any benchmark failed or missed its target.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    wanted = list(sys.argv[1:] if argv is None else argv)
    scripts = sorted(HERE.glob("bench_*.py"))
    if wanted:
        scripts = [s for s in scripts if any(w in s.stem for w in wanted)]
    failed = []
    for script in scripts:
        print(f"== {script.stem}", flush=True)
        started = time.monotonic()
        rc = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        print(f"== {script.stem}: exit {rc} in {time.monotonic() - started:.1f} s", flush=True)
        if rc:
            failed.append(script.stem)
    if failed:
        print(f"failed or missed target: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
