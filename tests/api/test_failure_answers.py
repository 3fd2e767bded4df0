"""SPEC section 6: a dependency down or busy gets 503 + Retry-After + SERVICE_UNAVAILABLE
with the request id, on every path; the next request after it is back succeeds."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections import Counter
from typing import Any

import httpx
import pytest

from api.failures import answer_for
from domain.db import close_database, init_database, migrate
from domain.errors import DependencyUnavailable
from tests.support.database import POSTGRES_URL
from tests.support.factories import make_account
from tests.support.http_client import build_app, client_for, gql, post
from tests.support.principals import Principals

pytestmark = pytest.mark.anyio

INVITE = """
mutation Invite($email: String!) {
  inviteUser(input: {email: $email, firstName: "Ann", lastName: "Lee", role: MEMBER}) {
    user { id } errors { code }
  }
}
"""
USERS_PAGE = (
    "query Page { account { users(first: 10) { edges { node { email invitation { status } } } } } }"
)
LOGIN = """
mutation Login($email: String!) {
  login(input: {email: $email, password: "not the password"}) { token errors { code } }
}
"""


def assert_unavailable(response: httpx.Response) -> None:
    """SPEC section 6's answer, with the same request id in header and body."""
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    [error] = body["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]


# ---------------------------------------------------------------------------
# SQLite: another process holds the write lock past the busy timeout

_HOLD_WRITE_LOCK = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()  # released when the test says so, or when it dies
connection.execute("ROLLBACK")
"""


@pytest.mark.slow
@pytest.mark.skipif(POSTGRES_URL is not None, reason="SQLite's write lock: the SQLite run")
async def test_given_another_process_holds_the_sqlite_write_lock_when_a_mutation_runs_then_503_and_the_process_recovers(  # noqa: E501
    client: httpx.AsyncClient, principals: Principals, database_url: str
):
    path = database_url.removeprefix("sqlite://")
    await gql(client, "{ licenseAgreement { version } }", token=principals.admin_token)
    holder = subprocess.Popen(  # noqa: ASYNC220 - starts at once; the test needs its pipes
        [sys.executable, "-c", _HOLD_WRITE_LOCK, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"

        # Each request in a task of its own, as a server runs them (a context
        # variable set by one must not leak into the next).
        blocked = await asyncio.create_task(
            post(client, INVITE, token=principals.admin_token, variables={"email": "a@example.com"})
        )
        # Before the fix, the connection's lock stayed taken: this read hung for good.
        read = await asyncio.wait_for(
            asyncio.create_task(post(client, USERS_PAGE, token=principals.admin_token)), timeout=10
        )
        ready = await asyncio.wait_for(asyncio.create_task(client.get("/readyz")), timeout=10)
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=10)
    after = await gql(
        client, INVITE, token=principals.admin_token, variables={"email": "b@example.com"}
    )

    assert_unavailable(blocked)
    assert read.status_code == 200 and "errors" not in read.json()
    assert ready.status_code == 200
    assert after["data"]["inviteUser"]["errors"] == []


# ---------------------------------------------------------------------------
# PostgreSQL stopped for 10 s under load


async def _one_request(http: httpx.AsyncClient, kind: str, token: str, n: int) -> httpx.Response:
    if kind == "page":
        return await post(http, USERS_PAGE, token=token)
    if kind == "invite":
        return await post(
            http,
            INVITE,
            token=token,
            variables={"email": f"load{n}@example.com"},
            headers={"Idempotency-Key": f"load-key-{n:08d}"},
        )
    if kind == "login":
        return await post(http, LOGIN, variables={"email": "owner@example.com"})
    return await http.get("/readyz")


@pytest.mark.slow
@pytest.mark.skipif(POSTGRES_URL is None, reason="a PostgreSQL outage: the PostgreSQL run")
async def test_given_postgresql_stopped_for_10_s_under_load_when_requests_arrive_then_each_gets_503_and_service_recovers(  # noqa: E501
    clock: Any, domain_config: Any, caplog: pytest.LogCaptureFixture
):
    from tests.support.local_services import PostgresServer  # noqa: PLC0415

    caplog.set_level(logging.INFO, logger="licenses.access")
    with PostgresServer() as pg:
        await migrate(pg.url)
        await init_database(pg.url)
        try:
            account = await make_account(clock, seats=1000)
            app = build_app(pg.url, clock, domain_config)
            async with client_for(app) as http:
                http.timeout = httpx.Timeout(20)
                statuses: Counter[tuple[str, int]] = Counter()
                unavailable: list[httpx.Response] = []
                malformed: list[Any] = []
                counter = 0
                stop = asyncio.Event()

                async def load(kind: str) -> None:
                    nonlocal counter
                    while not stop.is_set():
                        counter += 1
                        response = await _one_request(http, kind, account.api_token, counter)
                        statuses[(kind, response.status_code)] += 1
                        if response.status_code == 200 and kind != "ready":
                            malformed.extend(response.json().get("errors") or ())
                        if response.status_code == 503 and kind != "ready":
                            unavailable.append(response)
                        await asyncio.sleep(0.02)

                kinds = ["page", "page", "invite", "login", "ready"]
                workers = [asyncio.create_task(load(kind)) for kind in kinds]
                await asyncio.sleep(1)
                pg.stop_process()
                await asyncio.sleep(10)
                pg.start()
                await asyncio.sleep(2)
                stop.set()
                await asyncio.gather(*workers)

                recovered = {
                    kind: await _one_request(http, kind, account.api_token, 10**6 + i)
                    for i, kind in enumerate(["page", "invite", "login", "ready"])
                }
                metrics = (await http.get("/metrics")).text
        finally:
            await close_database()

    assert malformed == []  # every 200 was a real answer, not a refused request
    answered = {status for (_, status) in statuses}
    assert answered <= {200, 503}, statuses  # no bare 500, nothing else
    assert {kind for (kind, status) in statuses if status == 503} >= {"page", "invite", "login"}
    for response in unavailable:
        assert_unavailable(response)
    assert all(response.status_code == 200 for response in recovered.values()), recovered
    assert recovered["page"].json().get("errors") is None
    assert recovered["invite"].json()["data"]["inviteUser"]["errors"] == []
    assert 'licenses_http_responses_total{route="/graphql",status="503"}' in metrics
    logged_ids = {getattr(record, "request_id", None) for record in caplog.records}
    assert {response.headers["x-request-id"] for response in unavailable} <= logged_ids


# ---------------------------------------------------------------------------
# The answer builder, the log line


def test_given_a_dependency_failure_when_answered_then_503_else_a_masked_json_500():
    unavailable = answer_for(DependencyUnavailable("database", "locked"), "req-0001")
    unexpected = answer_for(ValueError("bug"), "req-0002")
    refused = answer_for(ConnectionRefusedError(111, "Connection refused"), "req-0003")

    assert unavailable.status_code == 503 and unavailable.headers["retry-after"]
    assert b"SERVICE_UNAVAILABLE" in unavailable.body
    assert unexpected.status_code == 500
    assert unexpected.headers["content-type"] == "application/json"
    assert b"req-0002" in unexpected.body and b"bug" not in unexpected.body
    assert refused.status_code == 503


async def test_given_requests_when_answered_then_each_leaves_one_log_line_without_secrets(
    client: httpx.AsyncClient, principals: Principals, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="licenses.access")

    query = await post(client, USERS_PAGE, token=principals.admin_token)
    health = await client.get("/healthz")
    anonymous = await client.post("/graphql", json={"query": "{ account { name } }"})

    lines = [record for record in caplog.records if record.name == "licenses.access"]
    assert len(lines) == 3
    page, healthz, refused = lines
    assert page.request_id == query.headers["x-request-id"]  # type: ignore[attr-defined]
    assert (page.method, page.path, page.status, page.operation) == (  # type: ignore[attr-defined]
        "POST",
        "/graphql",
        200,
        "Page",
    )
    assert page.principal == "USER" and page.account_id == principals.account_id  # type: ignore[attr-defined]
    assert page.duration_ms >= 0  # type: ignore[attr-defined]
    assert healthz.request_id == health.headers["x-request-id"]  # type: ignore[attr-defined]
    assert refused.principal == "anonymous" and refused.status == anonymous.status_code  # type: ignore[attr-defined]
    text = "\n".join(record.getMessage() for record in lines)
    assert principals.admin_token not in text
    assert "Bearer" not in text


def test_given_a_uvicorn_record_with_color_message_when_formatted_as_json_then_it_is_left_out():
    import json  # noqa: PLC0415

    from api.logs import JsonFormatter  # noqa: PLC0415

    record = logging.makeLogRecord(
        {
            "name": "uvicorn.error",
            "msg": "Started server process [%d]",
            "args": (42,),
            "color_message": "Started server process [\x1b[36m%d\x1b[0m]",
        }
    )

    entry = json.loads(JsonFormatter().format(record))

    assert entry["message"] == "Started server process [42]"
    assert "color_message" not in entry
