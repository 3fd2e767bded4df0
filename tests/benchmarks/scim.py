"""B6: SCIM filtered lists as the account grows (1k, 10k, 100k users).

The requests an identity provider sends before every change (`userName eq`,
`emails[type eq "work"].value eq`) must stay index look-ups, and a page deep
into the account (startIndex/count) a bounded read.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from tests.benchmarks.common import Figure, Options, Recorder, ServerProcess, say
from tests.benchmarks.dataset import SeededAccount, fetch_one
from tests.benchmarks.http_load import HttpConnection, build_request, percentile
from tests.benchmarks.reads import _k

TARGET = 2.0


def _request(server: ServerProcess, token: str, path: str) -> bytes:
    return build_request(
        "GET",
        path,
        host=f"{server.host}:{server.port}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/scim+json"},
    )


def _check(status: int, body: bytes, expect_one: bool) -> None:
    if status != 200 or (expect_one and b'"totalResults":1,' not in body):
        raise RuntimeError(f"HTTP {status}: {body[:300]!r}")


async def _last_email(url: str, account: SeededAccount) -> str:
    # The newest user: the last an id-ordered scan would reach.
    row = await fetch_one(
        url,
        "SELECT email FROM users WHERE account_id = $1 ORDER BY id DESC LIMIT 1",
        "SELECT email FROM users WHERE account_id = ? ORDER BY id DESC LIMIT 1",
        account.account_id,
    )
    return str(row[0])


async def _p50(
    server: ServerProcess, requests: dict[int, bytes], samples: int, expect_one: bool
) -> dict[int, float]:
    latencies: dict[int, list[float]] = {size: [] for size in requests}
    connection = HttpConnection(server.host, server.port)
    try:
        for raw in requests.values():  # warm-up
            for _ in range(5):
                _check(*await connection.request(raw), expect_one)
        block = 10
        for _ in range(0, samples, block):
            for size, raw in requests.items():
                for _ in range(block):
                    started = time.perf_counter()
                    status, body = await connection.request(raw)
                    latencies[size].append(time.perf_counter() - started)
                    _check(status, body, expect_one)
    finally:
        await connection.close()
    return {size: percentile(values, 0.5) for size, values in latencies.items()}


async def b6_scim(
    options: Options,
    recorder: Recorder,
    server: ServerProcess,
    url: str,
    accounts: list[SeededAccount],
    backend: str,
) -> None:
    samples = 50 if options.quick else 200
    emails = {account.users: await _last_email(url, account) for account in accounts}
    sizes = sorted(emails)
    smallest, largest = sizes[0], sizes[-1]
    say(f"B6 SCIM ({backend}): sizes {sizes}")

    def by_filter(template: str) -> dict[int, bytes]:
        return {
            a.users: _request(
                server,
                a.api_token,
                "/scim/v2/Users?filter=" + quote(template.format(email=emails[a.users])),
            )
            for a in accounts
        }

    deep_pages = {
        a.users: _request(
            server, a.api_token, f"/scim/v2/Users?startIndex={a.users // 2}&count=100"
        )
        for a in accounts
    }
    cases = [
        ("userName eq", by_filter('userName eq "{email}"'), True, True),
        (
            'emails[type eq "work"].value eq',
            by_filter('emails[type eq "work"].value eq "{email}"'),
            True,
            True,
        ),
        ("page of 100 at the middle (startIndex)", deep_pages, False, False),
    ]
    for label, requests, expect_one, targeted in cases:
        p50 = await _p50(server, requests, samples, expect_one)
        ratio = p50[largest] / p50[smallest]
        recorder.add(
            Figure(
                name=f"B6 SCIM {label}, p50 {_k(largest)} / {_k(smallest)} users ({backend})",
                ratio=ratio,
                target=f"<= {TARGET:g}" if targeted else "(info)",
                met=(ratio <= TARGET) if targeted else None,
                benchmark="B6",
                backend=backend,
                details={
                    **{f"p50_ms_{s}": round(v * 1000, 3) for s, v in sorted(p50.items())},
                    "samples": samples,
                },
                summary=", ".join(f"{_k(s)}: {v * 1000:.2f} ms" for s, v in sorted(p50.items())),
            )
        )
