"""B1 (read throughput against a raw-SQL baseline), B2 (latency as accounts grow)
and B7 (read throughput against a peer written the libraries' documented way)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from tests.benchmarks.common import Figure, Options, Recorder, ServerProcess, median, say
from tests.benchmarks.dataset import SeededAccount
from tests.benchmarks.http_load import (
    HttpConnection,
    LoadResult,
    build_request,
    closed_loop,
    percentile,
)
from tests.benchmarks.peer import PEER_PATH

USER_FIELDS = (
    "id email firstName lastName name role qualification status isOwner hasLicense "
    "lastActiveAt invitation { status expiresAt }"
)
B1_QUERY = (
    "{ account { licenses { total inUse available } users(first: 100) { edges { node { "
    + USER_FIELDS
    + " } } } } }"
)
SUMMARY_QUERY = "{ account { licenses { total inUse available } } }"
PAGE_QUERY = "{ account { users(first: 100) { edges { node { " + USER_FIELDS + " } } } } }"
# Informational variants: the counts a page header would show.
SUMMARY_COUNT_QUERY = "{ account { licenses { total inUse available pendingInvitations } } }"
PAGE_COUNT_QUERY = (
    "{ account { users(first: 100) { totalCount edges { node { " + USER_FIELDS + " } } } } }"
)


def graphql_request(
    server: ServerProcess, token: str, query: str, variables: Any = None, *, path: str = "/graphql"
) -> bytes:
    body = json.dumps({"query": query, "variables": variables}).encode()
    return build_request(
        "POST",
        path,
        host=f"{server.host}:{server.port}",
        body=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )


def check_graphql(status: int, body: bytes) -> None:
    if status != 200 or b'"errors"' in body:
        raise RuntimeError(f"HTTP {status}: {body[:300]!r}")


async def fetch(server: ServerProcess, raw: bytes) -> tuple[int, bytes]:
    connection = HttpConnection(server.host, server.port)
    try:
        return await connection.request(raw)
    finally:
        await connection.close()


# ---------------------------------------------------------------------------
# B1


async def _verify_same_rows(server: ServerProcess, account: SeededAccount) -> None:
    """The baseline must return what the GraphQL query returns."""
    _, body = await fetch(server, graphql_request(server, account.api_token, B1_QUERY))
    answer = json.loads(body)
    if answer.get("errors"):
        raise RuntimeError(f"B1 query failed: {answer['errors']}")
    nodes = [edge["node"] for edge in answer["data"]["account"]["users"]["edges"]]
    _, body = await fetch(server, _baseline_users_request(server, account))
    baseline = json.loads(body)
    if len(nodes) != 100 or [n["id"] for n in nodes] != [u["id"] for u in baseline["users"]]:
        raise RuntimeError("B1: the baseline does not return the GraphQL page's users")
    for node, row in zip(nodes, baseline["users"], strict=True):
        if node != row:
            raise RuntimeError(f"B1: rows differ:\n{node}\n{row}")
    if answer["data"]["account"]["licenses"] != baseline["licenses"]:
        raise RuntimeError("B1: licence summaries differ")


def _baseline_users_request(server: ServerProcess, account: SeededAccount) -> bytes:
    return build_request(
        "GET", f"/bench/users?account={account.account_id}", host=f"{server.host}:{server.port}"
    )


@dataclass
class Sides:
    graphql: list[LoadResult]
    baseline: list[LoadResult]


async def paired_rounds(
    options: Options,
    server: ServerProcess,
    graphql: Any,
    baseline: Any,
    *,
    concurrency: int,
    check_graphql_response: Any = check_graphql,
    check_baseline_response: Any = None,
    between: Any = None,
    profile_to: Any = None,
) -> Sides:
    """Baseline and GraphQL for the same time, alternating which goes first."""
    sides = Sides(graphql=[], baseline=[])
    for index in range(options.rounds):
        order = ("baseline", "graphql") if index % 2 == 0 else ("graphql", "baseline")
        for side in order:
            make, check = (
                (graphql, check_graphql_response)
                if side == "graphql"
                else (baseline, check_baseline_response)
            )
            spy = None
            if profile_to is not None and side == "graphql" and index == options.rounds - 1:
                spy = profile_to()
            result = await closed_loop(
                server.host,
                server.port,
                make,
                concurrency=concurrency,
                seconds=options.round_seconds,
                check=check,
            )
            if spy is not None:
                spy.stop()
            if result.errors:
                raise RuntimeError(f"{side}: {result.errors} errors, first: {result.first_error}")
            getattr(sides, side).append(result)
            say(f"  round {index + 1} {side}: {result.rps:.0f} req/s")
            if between is not None:
                await between(side)
    return sides


def side_summary(results: list[LoadResult]) -> dict[str, float]:
    latencies = [value for result in results for value in result.latencies]
    return {
        "rps": round(median([r.rps for r in results]), 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "requests": sum(r.requests for r in results),
    }


def paired_ratio(sides: Sides) -> float:
    """Median of the per-round ratios (each round's two sides ran back to back)."""
    return median(
        [g.rps / b.rps for g, b in zip(sides.graphql, sides.baseline, strict=True) if b.rps > 0]
    )


async def b1_read(
    options: Options,
    recorder: Recorder,
    server: ServerProcess,
    account: SeededAccount,
    backend: str,
    profile_to: Any = None,
) -> None:
    say(f"B1 read ({backend}): {options.concurrency} clients, account of {account.users} users")
    await _verify_same_rows(server, account)
    ratio, graphql, baseline = await _side_by_side(
        options,
        server,
        graphql_request(server, account.api_token, B1_QUERY),
        _baseline_users_request(server, account),
        profile_to=profile_to,
    )
    recorder.add(
        Figure(
            name=f"B1 read, GraphQL / raw SQL ({backend})",
            ratio=ratio,
            target=">= 0.35 (goal 0.5)",
            met=ratio >= 0.35,
            benchmark="B1",
            backend=backend,
            details={
                "graphql": graphql,
                "baseline": baseline,
                "concurrency": options.concurrency,
                "rounds": options.rounds,
                "round_seconds": options.round_seconds,
                "users_in_account": account.users,
            },
            summary=(
                f"GraphQL {graphql['rps']:.0f} req/s (p50 {graphql['p50_ms']} ms, "
                f"p99 {graphql['p99_ms']} ms); raw SQL {baseline['rps']:.0f} req/s "
                f"(p50 {baseline['p50_ms']} ms, p99 {baseline['p99_ms']} ms)"
            ),
        )
    )


# ---------------------------------------------------------------------------
# B7


async def _verify_peer_agrees(server: ServerProcess, account: SeededAccount) -> None:
    answers = []
    for path in ("/graphql", PEER_PATH):
        _, body = await fetch(
            server, graphql_request(server, account.api_token, B1_QUERY, path=path)
        )
        answer = json.loads(body)
        if answer.get("errors") or not answer.get("data"):
            raise RuntimeError(f"B7: {path} failed: {body[:300]!r}")
        answers.append(answer["data"])
    if answers[0] != answers[1]:
        raise RuntimeError("B7: the peer does not return what the product returns")


def _constant(raw: bytes) -> Any:
    return lambda _: raw


async def _side_by_side(
    options: Options, server: ServerProcess, ours: bytes, baseline: bytes, **rounds: Any
) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """Warm both requests up (connections, caches, the pool), then paired rounds:
    the ratio and each side's summary."""
    for raw in (ours, baseline):
        await closed_loop(
            server.host, server.port, _constant(raw), concurrency=options.concurrency, seconds=1.0
        )
    sides = await paired_rounds(
        options,
        server,
        _constant(ours),
        _constant(baseline),
        concurrency=options.concurrency,
        **rounds,
    )
    return paired_ratio(sides), side_summary(sides.graphql), side_summary(sides.baseline)


async def b7_peer(
    options: Options,
    recorder: Recorder,
    server: ServerProcess,
    account: SeededAccount,
    backend: str,
) -> None:
    """B1's page, ours against the peer (tests/benchmarks/peer.py) in the same process."""
    say(f"B7 peer ({backend}): {options.concurrency} clients, account of {account.users} users")
    await _verify_peer_agrees(server, account)
    ratio, graphql, baseline = await _side_by_side(
        options,
        server,
        graphql_request(server, account.api_token, B1_QUERY),
        graphql_request(server, account.api_token, B1_QUERY, path=PEER_PATH),
        check_baseline_response=check_graphql,
    )
    recorder.add(
        Figure(
            name=f"B7 read, ours / peer Strawberry + Tortoise ({backend})",
            ratio=ratio,
            target=">= 3",
            met=ratio >= 3,
            benchmark="B7",
            backend=backend,
            details={
                "graphql": graphql,
                "peer": baseline,
                "concurrency": options.concurrency,
                "rounds": options.rounds,
                "round_seconds": options.round_seconds,
                "users_in_account": account.users,
            },
            summary=(
                f"ours {graphql['rps']:.0f} req/s (p50 {graphql['p50_ms']} ms); "
                f"peer {baseline['rps']:.0f} req/s (p50 {baseline['p50_ms']} ms)"
            ),
        )
    )


# ---------------------------------------------------------------------------
# B2


async def _p50s(
    server: ServerProcess, accounts: list[SeededAccount], query: str, samples: int
) -> dict[int, float]:
    """Sequential requests (one client), rotating between the accounts in blocks."""
    requests = {a.users: graphql_request(server, a.api_token, query) for a in accounts}
    latencies: dict[int, list[float]] = {a.users: [] for a in accounts}
    connection = HttpConnection(server.host, server.port)
    try:
        for raw in requests.values():  # warm-up
            for _ in range(5):
                check_graphql(*await connection.request(raw))
        block = 10
        for _ in range(0, samples, block):
            for size, raw in requests.items():
                for _ in range(block):
                    started = time.perf_counter()
                    status, body = await connection.request(raw)
                    latencies[size].append(time.perf_counter() - started)
                    check_graphql(status, body)
    finally:
        await connection.close()
    return {size: percentile(values, 0.5) for size, values in latencies.items()}


async def b2_scale(
    options: Options,
    recorder: Recorder,
    server: ServerProcess,
    accounts: list[SeededAccount],
    backend: str,
    database_users: int,
) -> None:
    samples = 50 if options.quick else 200
    sizes = sorted(a.users for a in accounts)
    smallest, largest = sizes[0], sizes[-1]
    say(f"B2 scale ({backend}, {database_users} users in the database): sizes {sizes}")
    cases = [
        ("licence summary", SUMMARY_QUERY, True),
        ("first users page", PAGE_QUERY, True),
        ("licence summary with pendingInvitations", SUMMARY_COUNT_QUERY, False),
        ("first users page with totalCount", PAGE_COUNT_QUERY, False),
    ]
    for label, query, targeted in cases:
        p50 = await _p50s(server, accounts, query, samples)
        ratio = p50[largest] / p50[smallest]
        ms = {f"p50_ms_{size}": round(value * 1000, 3) for size, value in sorted(p50.items())}
        recorder.add(
            Figure(
                name=(
                    f"B2 {label}, p50 {_k(largest)} / {_k(smallest)} users "
                    f"({backend}, {_k(database_users)} users in DB)"
                ),
                ratio=ratio,
                target="<= 1.5" if targeted else "(info)",
                met=(ratio <= 1.5) if targeted else None,
                benchmark="B2",
                backend=backend,
                details={**ms, "samples": samples, "database_users": database_users},
                summary=", ".join(
                    f"{_k(size)}: {value * 1000:.2f} ms" for size, value in sorted(p50.items())
                ),
            )
        )


def _k(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:.3g}M"
    if count >= 1000:
        return f"{count / 1000:.3g}k"
    return str(count)
