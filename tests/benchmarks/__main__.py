"""python -m tests.benchmarks [--quick] [--only B1,B3] [--backend sqlite|postgres|both]

See docs/benchmarks.md. Every figure is a ratio against a baseline measured
in the same run, side by side, because the machine is shared and absolute
figures are noise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
from pathlib import Path

from tests.benchmarks.common import REPO_ROOT, Options, Recorder, machine, say

ALL = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10")


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one round (< 2 min)")
    parser.add_argument("--only", default=",".join(ALL), help="e.g. B1,B3 (default: all)")
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgres", "both"),
        default="both",
        help="backends for B1-B3 and B6-B10 (B4 and B5 run on PostgreSQL only)",
    )
    parser.add_argument(
        "--out", default=str(REPO_ROOT / "var" / "benchmarks.jsonl"), help="JSON lines file"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the system under test during the last round; profiles in var/benchmarks/",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="B1 clients (16)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args(argv)
    only = frozenset(part.strip().upper() for part in args.only.split(",") if part.strip())
    unknown = only - set(ALL)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    work_dir = Path(tempfile.mkdtemp(prefix="licenses-bench-"))
    options = Options(
        quick=args.quick,
        only=only,
        backends=backends,
        out=Path(args.out),
        work_dir=work_dir,
        profile=args.profile,
        concurrency=args.concurrency,
        keep=args.keep,
    )
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    from tests.benchmarks.run import run_all  # noqa: PLC0415

    recorder = Recorder(options.out)
    info = machine()
    say(f"machine: {info}")
    try:
        asyncio.run(run_all(options, recorder, info))
    finally:
        if not options.keep:
            with contextlib.suppress(OSError):
                shutil.rmtree(options.work_dir)
        else:
            say(f"working directory kept: {options.work_dir}")
    print()
    print(recorder.table())
    missed = [f.name for f in recorder.figures if f.met is False]
    if missed:
        print(f"\nmissed targets: {len(missed)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
