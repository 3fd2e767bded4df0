"""B8: CSV export of the users of an account (10k and 100k users) through the real server.

`GET /export/users.csv` with the account's API token, read by a plain
stdlib HTTP client in a thread that counts the records and keeps nothing.
Targets (absolute, as the product asks): at least 50,000 rows/s for the
100k account, and a peak memory growth of the server process under 50 MB
while it streams. Memory: the kernel's peak resident size of the server
(VmHWM) is reset to its current size (`/proc/PID/clear_refs`, "5") before
each export and read after it; VmRSS is also sampled every 5 ms as a check.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.benchmarks.common import Figure, Options, Recorder, ServerProcess, median, say
from tests.benchmarks.dataset import SeededAccount
from tests.benchmarks.reads import _k

ROWS_PER_SECOND = 50_000
MEMORY_GROWTH_MB = 50.0
HEADER = b"id,email,firstName,lastName,role,isOwner,status,hasLicense,qualification,"


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def _reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Run:
    rows: int
    seconds: float
    body_bytes: int
    rss_before_kib: int
    peak_kib: int  # VmHWM after a reset, or the sampled maximum when no reset was possible
    sampled_peak_kib: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds

    @property
    def growth_mb(self) -> float:
        return (self.peak_kib - self.rss_before_kib) / 1024


def _download(server: ServerProcess, token: str) -> tuple[int, int, float]:
    """(records after the header, body bytes, seconds) of one export."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=120)
    started = time.perf_counter()
    try:
        connection.request("GET", "/export/users.csv", headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {response.read(300)!r}")
        records = 0
        size = 0
        first = b""
        tail = b""
        while chunk := response.read1(1 << 16):
            if not first:
                first = chunk[: len(HEADER)]
            size += len(chunk)
            # A CRLF may straddle two reads; the benchmark's cells hold none.
            records += (tail + chunk).count(b"\r\n") - tail.count(b"\r\n")
            tail = chunk[-1:]
        seconds = time.perf_counter() - started
    finally:
        connection.close()
    if first != HEADER:
        raise RuntimeError(f"unexpected header: {first!r}")
    return records - 1, size, seconds


def _one_export(server: ServerProcess, account: SeededAccount) -> Run:
    pid = server.pid
    reset = _reset_peak(pid)
    before = _status_kib(pid, "VmRSS")
    sampled = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            sampled.append(_status_kib(pid, "VmRSS"))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        rows, size, seconds = _download(server, account.api_token)
    finally:
        done.set()
        sampler.join()
    if rows != account.users:
        raise RuntimeError(f"exported {rows} rows, the account has {account.users} users")
    sampled_peak = max(sampled)
    peak = _status_kib(pid, "VmHWM") if reset else sampled_peak
    return Run(rows, seconds, size, before, max(peak, sampled_peak), sampled_peak)


async def b8_export(
    options: Options,
    recorder: Recorder,
    server: ServerProcess,
    accounts: list[SeededAccount],
    backend: str,
    profile_to: Any = None,
) -> None:
    # Largest first: its figure includes the first export the server makes.
    measured = sorted((a for a in accounts if a.users >= 10_000), key=lambda a: -a.users)
    largest = measured[0]
    say(f"B8 export ({backend}): {[a.users for a in measured]} users, {options.rounds} rounds")
    runs: dict[int, list[Run]] = {a.users: [] for a in measured}
    for index in range(options.rounds):
        for account in measured:
            last = index == options.rounds - 1 and account is largest
            spy = profile_to() if profile_to is not None and last else None
            run = await asyncio.to_thread(_one_export, server, account)
            if spy is not None:
                spy.stop()
            runs[account.users].append(run)
            say(
                f"  {_k(account.users)}: {run.rows_per_second:,.0f} rows/s, "
                f"+{run.growth_mb:.1f} MB peak ({run.body_bytes / 1e6:.1f} MB sent)"
            )
    big = runs[largest.users]
    rate = median([r.rows_per_second for r in big])
    recorder.add(
        Figure(
            name=f"B8 export users.csv, {_k(largest.users)} users, rows/s ({backend})",
            ratio=None,
            target=f">= {ROWS_PER_SECOND:,} rows/s",
            met=rate >= ROWS_PER_SECOND,
            benchmark="B8",
            backend=backend,
            details={
                "users": largest.users,
                "rows_per_s": [round(r.rows_per_second) for r in big],
                "seconds": [round(r.seconds, 3) for r in big],
                "body_mb": round(big[0].body_bytes / 1e6, 2),
            },
            summary=f"{rate:,.0f} rows/s (median of {len(big)} exports)",
        )
    )
    for size, size_runs in sorted(runs.items()):
        worst = max(r.growth_mb for r in size_runs)
        targeted = size == largest.users
        recorder.add(
            Figure(
                name=f"B8 export users.csv, {_k(size)} users, server memory growth ({backend})",
                ratio=None,
                target=f"< {MEMORY_GROWTH_MB:g} MB" if targeted else "(info)",
                met=(worst < MEMORY_GROWTH_MB) if targeted else None,
                benchmark="B8",
                backend=backend,
                details={
                    "users": size,
                    "growth_mb": [round(r.growth_mb, 1) for r in size_runs],
                    "rss_before_mb": [round(r.rss_before_kib / 1024, 1) for r in size_runs],
                    "sampled_growth_mb": [
                        round((r.sampled_peak_kib - r.rss_before_kib) / 1024, 1) for r in size_runs
                    ],
                },
                summary=f"worst +{worst:.1f} MB over {len(size_runs)} exports",
            )
        )
