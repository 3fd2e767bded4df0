"""B9: `licenses users import` on files of growing size, each a process of its own (SQLite).

The command streams its file: its peak memory must not grow with the number
of rows. Two files, one ten times the other (10k and 100k rows; --quick: 2k
and 20k), each checked with --dry-run (every row read, validated and looked
up in the account); the smaller also imported for real (a transaction, an
audit event and an outbox email per row). Memory: the peak resident size of
the process from the kernel (`ru_maxrss` of `wait4`). The figure is the
ratio of the two dry runs' peaks; target at most 1.10 (ten times the rows,
at most 10% more memory).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from domain.rules.seats import SEAT_MAXIMUM
from tests.benchmarks.common import REPO_ROOT, Figure, Options, Recorder, say, service_env

MEMORY_RATIO = 1.10


def _write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,firstName,lastName,role,qualification\r\n")
        for number in range(rows):
            out.write(f"user{number:07d}@import.example,Person,Number {number},member,Tester\r\n")


def _run(
    args: list[str], env: dict[str, str], cwd: Path, *, ok: tuple[int, ...] = (0, 1)
) -> tuple[float, int, str]:
    """(seconds, peak RSS in KiB, stdout) of `python -m api.cli ARGS`, which must exit in `ok`."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode not in ok:
        raise RuntimeError(f"licenses {' '.join(args)} exited {process.returncode}: {output}")
    return seconds, usage.ru_maxrss, output


async def b9_import(options: Options, recorder: Recorder) -> None:
    work = options.work_dir / "import"
    work.mkdir(parents=True, exist_ok=True)
    small, large = (2_000, 20_000) if options.quick else (10_000, 100_000)
    env = service_env(f"sqlite://{work / 'import.db'}", work, ENVIRONMENT="development")
    env.pop("REDIS_URL", None)
    _, _, created = _run(
        [
            "account", "create", "--name", "Import", "--owner-email", "owner@import.example",
            "--owner-first-name", "Ida", "--owner-last-name", "Import",
            "--seats", str(min(large + 1, SEAT_MAXIMUM)), "--seat-price-cents", "100", "--json",
        ],
        env,
        REPO_ROOT,
        ok=(0,),
    )  # fmt: skip
    account = json.loads(created)["accountId"]
    files = {}
    for rows in (small, large):
        files[rows] = work / f"users-{rows}.csv"
        _write_csv(files[rows], rows)

    peaks: dict[int, int] = {}
    for rows in (small, large):
        seconds, peak, _ = _run(
            ["users", "import", str(files[rows]), "--account", account, "--dry-run"], env, work
        )
        peaks[rows] = peak
        say(
            f"B9 dry run {rows} rows: {seconds:.1f}s, {rows / seconds:.0f} rows/s, "
            f"peak {peak / 1024:.1f} MiB"
        )
    seconds, peak, report = _run(
        ["users", "import", str(files[small]), "--account", account], env, work
    )
    assert f"Imported {small} of {small} rows" in report, report
    rate = small / seconds
    say(f"B9 import {small} rows: {seconds:.1f}s, {rate:.0f} rows/s, peak {peak / 1024:.1f} MiB")

    ratio = peaks[large] / peaks[small]
    recorder.add(
        Figure(
            name=f"B9 import peak memory, {large} vs {small} rows (dry run)",
            ratio=ratio,
            target=f"<= {MEMORY_RATIO}",
            met=ratio <= MEMORY_RATIO,
            benchmark="B9",
            backend="sqlite",
            details={
                "peak_small_mib": round(peaks[small] / 1024, 1),
                "peak_large_mib": round(peaks[large] / 1024, 1),
                "import_rows_per_second": round(rate, 1),
                "import_peak_mib": round(peak / 1024, 1),
            },
            summary=(
                f"dry run peak {peaks[small] / 1024:.1f} MiB ({small} rows) vs "
                f"{peaks[large] / 1024:.1f} MiB ({large} rows); import {rate:.0f} rows/s, "
                f"peak {peak / 1024:.1f} MiB"
            ),
        )
    )
