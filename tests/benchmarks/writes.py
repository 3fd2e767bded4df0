"""B3: inviteUser throughput against the same inserts in one raw-SQL transaction,
and the licence invariant under 64 concurrent clients."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

from tests.benchmarks.common import Figure, Options, Recorder, ServerProcess, say
from tests.benchmarks.dataset import SeededAccount, fetch_one
from tests.benchmarks.http_load import build_request, closed_loop
from tests.benchmarks.reads import graphql_request, paired_ratio, paired_rounds, side_summary

INVITE_MUTATION = (
    "mutation Invite($input: InviteUserInput!) { inviteUser(input: $input) { "
    "user { id email status } invitation { id status expiresAt } errors { code message } } }"
)
CLIENTS = 64
_serial = itertools.count(1)


def check_invited(status: int, body: bytes) -> None:
    if status != 200 or b'"errors":[]' not in body or b'"code"' in body:
        raise RuntimeError(f"HTTP {status}: {body[:300]!r}")


def invite_factory(server: ServerProcess, account: SeededAccount, tag: str) -> Any:
    def make(_: int) -> bytes:
        n = next(_serial)
        variables = {
            "input": {"email": f"{tag}{n}@bench.example", "firstName": "Bench", "lastName": f"N{n}"}
        }
        return graphql_request(server, account.api_token, INVITE_MUTATION, variables)

    return make


def baseline_factory(server: ServerProcess, account: SeededAccount, tag: str) -> Any:
    host = f"{server.host}:{server.port}"

    def make(_: int) -> bytes:
        n = next(_serial)
        body = json.dumps(
            {
                "account": account.account_id,
                "email": f"{tag}{n}@bench.example",
                "firstName": "Bench",
                "lastName": f"N{n}",
            }
        ).encode()
        return build_request(
            "POST",
            "/bench/invite",
            host=host,
            body=body,
            headers={"Content-Type": "application/json"},
        )

    return make


async def undelivered(url: str) -> int:
    row = await fetch_one(
        url,
        "SELECT COUNT(*) FROM outbox_messages WHERE sent_at IS NULL AND failed_at IS NULL "
        "AND available_at <= now()",
        "SELECT COUNT(*) FROM outbox_messages WHERE sent_at IS NULL AND failed_at IS NULL "
        "AND available_at <= strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')",
    )
    return int(row[0])


async def wait_for_outbox(url: str) -> float:
    """Until the embedded runner has delivered every due row; returns the wait."""
    started = time.perf_counter()
    async with asyncio.timeout(300):
        while await undelivered(url):  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.25)
    return time.perf_counter() - started


async def seat_check(url: str, account_id: int) -> tuple[int, int, int]:
    """(seats_total, seats_in_use, users holding a licence)."""
    total, in_use = await fetch_one(
        url,
        "SELECT seats_total, seats_in_use FROM accounts WHERE id = $1",
        "SELECT seats_total, seats_in_use FROM accounts WHERE id = ?",
        account_id,
    )
    (licensed,) = await fetch_one(
        url,
        "SELECT COUNT(*) FROM users WHERE account_id = $1 AND status <> 'DISABLED'",
        "SELECT COUNT(*) FROM users WHERE account_id = ? AND status <> 'DISABLED'",
        account_id,
    )
    return int(total), int(in_use), int(licensed)


async def b3_write(
    options: Options,
    recorder: Recorder,
    server: ServerProcess,
    url: str,
    accounts: dict[str, SeededAccount],
    backend: str,
    profile_to: Any = None,
) -> None:
    say(f"B3 write ({backend}): {CLIENTS} clients")
    drains: list[float] = []

    async def between(side: str) -> None:
        if side == "graphql":
            drains.append(await wait_for_outbox(url))

    graphql = invite_factory(server, accounts["graphql"], f"g{backend[0]}")
    baseline = baseline_factory(server, accounts["baseline"], f"b{backend[0]}")
    # Warm-up.
    await closed_loop(
        server.host,
        server.port,
        graphql,
        concurrency=CLIENTS,
        total=CLIENTS * 2,
        check=check_invited,
    )
    await closed_loop(server.host, server.port, baseline, concurrency=CLIENTS, total=CLIENTS * 2)
    await wait_for_outbox(url)
    sides = await paired_rounds(
        options,
        server,
        graphql,
        baseline,
        concurrency=CLIENTS,
        check_graphql_response=check_invited,
        between=between,
        profile_to=profile_to,
    )
    for name in ("graphql", "baseline"):
        total, in_use, licensed = await seat_check(url, accounts[name].account_id)
        assert in_use <= total, f"{name}: {in_use} licences in use > {total} purchased"
        assert in_use == licensed, f"{name}: counter {in_use} != {licensed} licensed users"
    race = await _race(server, url, accounts["race"])
    ratio = paired_ratio(sides)
    g, b = side_summary(sides.graphql), side_summary(sides.baseline)
    recorder.add(
        Figure(
            name=f"B3 write, inviteUser / raw SQL ({backend})",
            ratio=ratio,
            target=">= 0.3",
            met=ratio >= 0.3,
            benchmark="B3",
            backend=backend,
            details={
                "graphql": g,
                "baseline": b,
                "concurrency": CLIENTS,
                "rounds": options.rounds,
                "round_seconds": options.round_seconds,
                "outbox_drain_seconds": [round(d, 2) for d in drains],
                "race": race,
            },
            summary=(
                f"inviteUser {g['rps']:.0f}/s (p50 {g['p50_ms']} ms, p99 {g['p99_ms']} ms); "
                f"raw SQL {b['rps']:.0f}/s (p50 {b['p50_ms']} ms, p99 {b['p99_ms']} ms); "
                f"race: {race['invited']} of {race['attempts']} invited for "
                f"{race['free_seats']} free seats, in use {race['in_use']}/{race['total']}"
            ),
        )
    )


async def _race(server: ServerProcess, url: str, account: SeededAccount) -> dict[str, int]:
    """64 clients ask for twice the free seats; exactly the free seats are taken."""
    total, in_use, _ = await seat_check(url, account.account_id)
    free = total - in_use
    outcomes: dict[str, int] = {"ok": 0, "refused": 0}

    def check(status: int, body: bytes) -> None:
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
        if b'"errors":[]' in body:
            outcomes["ok"] += 1
        elif b"NO_AVAILABLE_LICENSES" in body:
            outcomes["refused"] += 1
        else:
            raise RuntimeError(f"unexpected answer: {body[:300]!r}")

    result = await closed_loop(
        server.host,
        server.port,
        invite_factory(server, account, "race"),
        concurrency=CLIENTS,
        total=2 * free,
        check=check,
    )
    assert result.errors == 0, result.first_error
    total_after, in_use_after, licensed = await seat_check(url, account.account_id)
    assert in_use_after <= total_after, f"overbooked: {in_use_after} > {total_after}"
    assert in_use_after == licensed, f"counter {in_use_after} != {licensed} licensed users"
    assert outcomes["ok"] == free, f"{outcomes['ok']} invited for {free} free seats"
    await wait_for_outbox(url)
    return {
        "attempts": 2 * free,
        "free_seats": free,
        "invited": outcomes["ok"],
        "refused": outcomes["refused"],
        "total": total_after,
        "in_use": in_use_after,
    }
