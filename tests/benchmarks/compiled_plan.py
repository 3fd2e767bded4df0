"""The compiled execution plan on and off, side by side, on B1's request.

    .venv/bin/python -m tests.benchmarks.compiled_plan [--backend sqlite|postgres|both]
                                                     [--rounds 4] [--seconds 4]

Two servers (`tests.benchmarks.server`, as for B1) on the same database of a
1,000-user account, one with GRAPHQL_COMPILED_PLAN=on and one with off, take
B1's Users page query in turn: `rounds` rounds of `seconds` per side, 16
clients, the side going first alternating. Before measuring, both must give
byte-identical answers. Figures, per side: requests/s (ratio: median of the
per-round ratios, on / off) and the server process's CPU time per request
(from /proc: on a shared machine it moves far less than requests/s do).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tests.benchmarks.common import ServerProcess, median, say
from tests.benchmarks.dataset import analyze, bulk_users, create_accounts, migrate_database
from tests.benchmarks.http_load import closed_loop
from tests.benchmarks.reads import B1_QUERY, check_graphql, fetch, graphql_request
from tests.support.local_services import PostgresServer

USERS = 1_000
CONCURRENCY = 16


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime: fields 14 and 15 of stat(5), counted from the state (field 3).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_with_plan(url: str, work_dir: Path, mode: str) -> ServerProcess:
    previous = os.environ.get("GRAPHQL_COMPILED_PLAN")
    os.environ["GRAPHQL_COMPILED_PLAN"] = mode
    try:
        return ServerProcess(url, work_dir, f"plan-{mode}")
    finally:
        if previous is None:
            del os.environ["GRAPHQL_COMPILED_PLAN"]
        else:
            os.environ["GRAPHQL_COMPILED_PLAN"] = previous


async def measure(url: str, work_dir: Path, *, rounds: int, seconds: float) -> dict[str, Any]:
    await migrate_database(url)
    (account,) = await create_accounts(url, [("Plan", USERS)])
    account = await bulk_users(url, account, USERS - 1)
    await analyze(url)
    servers = {mode: server_with_plan(url, work_dir, mode) for mode in ("on", "off")}
    with servers["on"], servers["off"]:
        answers = {
            mode: await fetch(server, graphql_request(server, account.api_token, B1_QUERY))
            for mode, server in servers.items()
        }
        if answers["on"] != answers["off"]:
            raise RuntimeError("the two servers answer B1's query differently")
        rps: dict[str, list[float]] = {"on": [], "off": []}
        cpu_ms: dict[str, list[float]] = {"on": [], "off": []}
        for index in range(rounds):
            for mode in ("on", "off") if index % 2 == 0 else ("off", "on"):
                server = servers[mode]
                request = graphql_request(server, account.api_token, B1_QUERY)
                before = cpu_seconds(server.pid)
                result = await closed_loop(
                    server.host,
                    server.port,
                    lambda _index, request=request: request,
                    concurrency=CONCURRENCY,
                    seconds=seconds,
                    check=check_graphql,
                )
                spent = cpu_seconds(server.pid) - before
                if result.errors:
                    raise RuntimeError(f"{mode}: {result.errors} errors: {result.first_error}")
                rps[mode].append(result.rps)
                cpu_ms[mode].append(1000 * spent / max(result.requests, 1))
                say(f"  round {index + 1} plan {mode}: {result.rps:.0f} req/s")
    ratios = [on / off for on, off in zip(rps["on"], rps["off"], strict=True) if off]
    return {
        "rps_on": round(median(rps["on"]), 1),
        "rps_off": round(median(rps["off"]), 1),
        "rps_ratio": round(median(ratios), 3),
        "cpu_ms_per_request_on": round(median(cpu_ms["on"]), 2),
        "cpu_ms_per_request_off": round(median(cpu_ms["off"]), 2),
        "rounds": rounds,
        "round_seconds": seconds,
    }


async def main(backends: list[str], rounds: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="plan-bench-") as work:
        work_dir = Path(work)
        for backend in backends:
            with contextlib.ExitStack() as stack:
                if backend == "postgres":
                    pg = stack.enter_context(PostgresServer(database="licenses"))
                    url = pg.create_database("bench_plan")
                else:
                    url = f"sqlite://{work_dir / 'plan.db'}"
                figures = await measure(url, work_dir, rounds=rounds, seconds=seconds)
            print(
                json.dumps(
                    {"name": "compiled plan on/off, B1 query", "backend": backend, **figures}
                )
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.compiled_plan")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    arguments = parser.parse_args()
    chosen = ["sqlite", "postgres"] if arguments.backend == "both" else [arguments.backend]
    asyncio.run(main(chosen, arguments.rounds, arguments.seconds))
