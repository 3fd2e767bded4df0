"""The order of a run: servers up, data loaded, each benchmark, everything down."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from tests.benchmarks.common import (
    Options,
    PySpy,
    Recorder,
    ServerProcess,
    say,
    summarize_profile,
)
from tests.benchmarks.dataset import (
    SeededAccount,
    analyze,
    asyncpg_dsn,
    bulk_users,
    create_accounts,
    migrate_database,
)
from tests.benchmarks.exports import b8_export
from tests.benchmarks.reads import b1_read, b2_scale, b7_peer
from tests.benchmarks.scim import b6_scim
from tests.benchmarks.writes import b3_write
from tests.support.local_services import PostgresServer

MAX_SEATS = 100_000


def profile_dir(options: Options) -> Path:
    return options.out.parent / "benchmarks"


def spy_factory(options: Options, pid_of: Callable[[], int], name: str) -> Any:
    if not options.profile:
        return None
    path = profile_dir(options) / f"profile-{name}.txt"

    def start() -> PySpy:
        say(f"  profiling into {path}")
        return PySpy(pid_of(), path)

    return start


def write_profile_summary(options: Options, name: str) -> None:
    if not options.profile:
        return
    raw = profile_dir(options) / f"profile-{name}.txt"
    summary = summarize_profile(raw)
    out = profile_dir(options) / f"profile-{name}.summary.txt"
    out.write_text(summary + "\n")
    say(f"profile {name}: {out}\n{summary[:4000]}")


async def postgres_version(url: str) -> str:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


async def run_all(options: Options, recorder: Recorder, info: dict[str, Any]) -> None:
    started = time.perf_counter()
    api_benchmarks = options.only & {"B1", "B2", "B3", "B6", "B7", "B8"}
    need_pg = (
        "postgres" in options.backends and (api_benchmarks or "B10" in options.only)
    ) or "B5" in options.only
    with contextlib.ExitStack() as stack:
        pg: PostgresServer | None = None
        if need_pg:
            pg = stack.enter_context(PostgresServer(database="licenses"))
            info["postgres"] = await postgres_version(pg.url)
            say(f"PostgreSQL {info['postgres']} at {pg.url} (fsync off: local_services)")
        if api_benchmarks:
            for backend in options.backends:
                await api_run(options, recorder, backend, pg)
        if "B4" in options.only:
            from tests.benchmarks.delivery import b4_email  # noqa: PLC0415

            await b4_email(options, recorder)
        if "B5" in options.only:
            from tests.benchmarks.period_end import b5_billing  # noqa: PLC0415

            assert pg is not None
            await b5_billing(options, recorder, pg)
        if "B10" in options.only:
            from tests.benchmarks.reclaim import b10_reclaim  # noqa: PLC0415

            for backend in options.backends:
                await b10_reclaim(options, recorder, backend, pg)
        if "B9" in options.only:
            from tests.benchmarks.imports import b9_import  # noqa: PLC0415

            await b9_import(options, recorder)
    say(f"done in {time.perf_counter() - started:.0f}s")


async def api_run(
    options: Options, recorder: Recorder, backend: str, pg: PostgresServer | None
) -> None:
    if backend == "postgres":
        assert pg is not None
        url = pg.create_database("bench_api")
    else:
        url = f"sqlite://{options.work_dir / 'bench.db'}"
    t0 = time.perf_counter()
    await migrate_database(url)
    sizes = [1_000, 10_000] if options.quick else [1_000, 10_000, 100_000]
    race_free = 64 if options.quick else 200
    specs = [(f"Size {n}", min(n, MAX_SEATS)) for n in sizes]
    specs += [("B3 GraphQL", MAX_SEATS), ("B3 Baseline", MAX_SEATS), ("B3 Race", race_free + 1)]
    created = await create_accounts(url, specs)
    sized: list[SeededAccount] = []
    for size, account in zip(sizes, created, strict=False):
        sized.append(await bulk_users(url, account, size - 1))
    b3 = dict(zip(("graphql", "baseline", "race"), created[len(sizes) :], strict=True))
    await analyze(url)
    say(f"{backend}: {sum(sizes)} users loaded in {time.perf_counter() - t0:.1f}s")

    server = ServerProcess(url, options.work_dir, f"server-{backend}")
    with server:
        if "B1" in options.only:
            await b1_read(
                options,
                recorder,
                server,
                sized[0],
                backend,
                profile_to=spy_factory(options, lambda: server.pid, f"B1-{backend}"),
            )
            write_profile_summary(options, f"B1-{backend}")
        if "B7" in options.only:
            await b7_peer(options, recorder, server, sized[0], backend)
        if "B2" in options.only:
            await b2_scale(options, recorder, server, sized, backend, database_users=sum(sizes))
        if "B6" in options.only:
            await b6_scim(options, recorder, server, url, sized, backend)
        if "B8" in options.only:
            await b8_export(
                options,
                recorder,
                server,
                sized,
                backend,
                profile_to=spy_factory(options, lambda: server.pid, f"B8-{backend}"),
            )
            write_profile_summary(options, f"B8-{backend}")
        if "B3" in options.only:
            await b3_write(
                options,
                recorder,
                server,
                url,
                b3,
                backend,
                profile_to=spy_factory(options, lambda: server.pid, f"B3-{backend}"),
            )
            write_profile_summary(options, f"B3-{backend}")
        if "B2" in options.only and backend == "postgres" and not options.quick:
            total = await fill_to_a_million(url, sum(sizes))
            await b2_scale(options, recorder, server, sized, backend, database_users=total)


async def fill_to_a_million(url: str, present: int) -> int:
    """Other accounts, ~100k users each, until the database holds 1M users."""
    t0 = time.perf_counter()
    target = 1_000_000
    remaining = target - present
    count = -(-remaining // (MAX_SEATS - 1))
    fillers = await create_accounts(url, [(f"Filler {i}", MAX_SEATS) for i in range(count)])
    for index, account in enumerate(fillers):
        share = remaining // count + (1 if index < remaining % count else 0)
        await bulk_users(url, account, share - 1)
    await analyze(url)
    say(f"filled to {target} users in {time.perf_counter() - t0:.1f}s")
    return target
