"""The loopback cluster of the tests (tests/support/cluster.py): the production topology,
started and stopped without leaving anything behind.

(a) a journey across two API processes, two workers and a scheduler (PostgreSQL, Redis and an
    SMTP server on loopback), then a stop that leaves no process behind;
(b) SIGTERM to an API process while requests are in flight: they all complete, new connections
    are refused.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.cluster import (
    Cluster,
    ManagedProcess,
    pid_alive,
    process_start_time,
    processes_with_marker,
)
from tests.support.cluster_client import GraphQLClient, require_cluster_tools

ACCEPT = """
mutation($input: AcceptInvitationInput!) {
  acceptInvitation(input: $input) { token user { id status role } errors { code message } }
}"""
INVITE = """
mutation($input: InviteUserInput!) {
  inviteUser(input: $input) {
    user { id status } invitation { status } licenses { inUse available }
    errors { code message }
  }
}"""
UNASSIGN = """
mutation($userId: ID!) {
  unassignLicense(userId: $userId) {
    user { id status hasLicense } licenses { total inUse available } errors { code message }
  }
}"""
AGREEMENT = "{ licenseAgreement { version } account { licenses { total inUse available } } }"
CHANGE_SEATS = """
mutation($input: ChangeSeatCountInput!) {
  changeSeatCount(input: $input) {
    licenses { total inUse available } charge { kind quantity amountCents }
    errors { code message }
  }
}"""
TRANSFER = """
mutation($userId: ID!) {
  transferOwnership(userId: $userId) {
    previousOwner { id role } newOwner { id role isOwner } errors { code message }
  }
}"""
VIEWER = "{ viewer { id status role } }"
OWNER = "{ account { id owner { id email } licenses { total inUse } } }"


def _error_codes(body: dict[str, Any]) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors") or []]


def _join(gql: GraphQLClient, cluster: Cluster, email: str, password: str) -> dict[str, Any]:
    """Wait for the invitation to ``email``, accept it; the SessionPayload."""
    invitation = cluster.wait_for_email(to=email, subject_contains="invited to join")
    token = invitation.accept_token(cluster.public_url)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token), token
    return gql.mutate("acceptInvitation", ACCEPT, {"input": {"token": token, "password": password}})


@pytest.mark.slow
def test_journey_across_two_api_processes_then_nothing_is_left() -> None:
    require_cluster_tools()
    started = time.monotonic()
    # keep_files: the logs are read after stop(); removed below once everything passed.
    cluster = Cluster(api=2, workers=2, scheduler=True, keep_files=True)
    with cluster, httpx.Client(timeout=30) as http:
        assert len(cluster.api_urls) == 2
        gql = GraphQLClient(http, cluster.graphql_urls)
        account = cluster.create_account(
            name="Journey Inc",
            owner_email="olive@journey.example.com",
            seats=3,
            seat_price_cents=1200,
        )
        assert account.api_token.startswith("lic_")
        api_token = account.api_token

        # The owner's password-set link (written by the CLI, delivered via the relay).
        welcome = cluster.wait_for_email(
            to="olive@journey.example.com", subject_contains="password"
        )
        owner = gql.mutate(
            "acceptInvitation",
            ACCEPT,
            {
                "input": {
                    "token": welcome.accept_token(cluster.public_url),
                    "password": "olive-password-1",
                }
            },
        )
        owner_token = owner["token"]
        assert owner["user"]["role"] == "OWNER"

        # Invite -> the email arrives -> accept on the other process.
        invited = gql.mutate(
            "inviteUser",
            INVITE,
            {
                "input": {
                    "email": "alice@journey.example.com",
                    "firstName": "Alice",
                    "lastName": "A",
                }
            },
            token=api_token,
        )
        alice_id = invited["user"]["id"]
        assert invited["user"]["status"] == "INVITED"
        assert invited["licenses"] == {"inUse": 2, "available": 1}
        alice = _join(gql, cluster, "alice@journey.example.com", "alice-password-1")
        assert alice["user"] == {"id": alice_id, "status": "ENABLED", "role": "MEMBER"}
        assert gql.query(VIEWER, token=alice["token"])["viewer"]["status"] == "ENABLED"

        # Unassign: the user stays, DISABLED, signed out everywhere.
        released = gql.mutate("unassignLicense", UNASSIGN, {"userId": alice_id}, token=owner_token)
        assert released["user"]["status"] == "DISABLED"
        assert released["licenses"] == {"total": 3, "inUse": 1, "available": 2}
        assert "UNAUTHENTICATED" in _error_codes(gql.raw(VIEWER, token=alice["token"]))
        cluster.wait_for_email(to="alice@journey.example.com", subject_contains="removed")

        # More seats, after reading the agreement to accept.
        before = gql.query(AGREEMENT, token=api_token)
        version = before["licenseAgreement"]["version"]
        assert before["account"]["licenses"]["total"] == 3
        changed = gql.mutate(
            "changeSeatCount",
            CHANGE_SEATS,
            {"input": {"total": 5, "acceptAgreement": True, "agreementVersion": version}},
            token=owner_token,
        )
        assert changed["licenses"] == {"total": 5, "inUse": 1, "available": 4}
        assert changed["charge"]["kind"] == "SEAT_INCREASE"
        assert changed["charge"]["quantity"] == 2

        # Ownership moves to an ENABLED user: a second invited-and-accepted user.
        bob_id = gql.mutate(
            "inviteUser",
            INVITE,
            {
                "input": {
                    "email": "bob@journey.example.com",
                    "firstName": "Bob",
                    "lastName": "B",
                    "role": "ADMIN",
                }
            },
            token=owner_token,
        )["user"]["id"]
        bob = _join(gql, cluster, "bob@journey.example.com", "bob-password-12")
        assert bob["user"]["status"] == "ENABLED"
        moved = gql.mutate("transferOwnership", TRANSFER, {"userId": bob_id}, token=owner_token)
        assert moved["newOwner"] == {"id": bob_id, "role": "OWNER", "isOwner": True}
        assert moved["previousOwner"] == {"id": account.owner_user_id, "role": "ADMIN"}
        assert "UNAUTHENTICATED" in _error_codes(gql.raw(VIEWER, token=owner_token))
        for _ in cluster.api_urls:  # every process sees the new owner
            owner_now = gql.query(OWNER, token=api_token)["account"]
            assert owner_now["owner"]["id"] == bob_id
            assert owner_now["licenses"] == {"total": 5, "inUse": 2}
        cluster.wait_for_email(to="bob@journey.example.com", subject_contains="now the owner")
        cluster.wait_for_email(to="olive@journey.example.com", subject_contains="transferred")

        # Both processes served the journey and count it in their metrics.
        assert all(count >= 5 for count in gql.sent.values()), gql.sent
        for url in cluster.api_urls:
            metrics = http.get(f"{url}/metrics").text
            assert "licenses_graphql_requests_total" in metrics
            assert "licenses_http_responses_total" in metrics
        # Production logs are JSON lines carrying the request id.
        api_log = cluster.api_processes[0].log_path.read_text().splitlines()
        records = [json.loads(line) for line in api_log if line.startswith("{")]
        assert records, "no JSON log line from api-1"

        spawned = {pid: process_start_time(pid) for pid in processes_with_marker(cluster.marker)}
        leaders = [process.pid for process in cluster.processes]
        assert set(leaders) <= set(spawned)
        # The Dramatiq workers run child processes: the scan must have seen them too.
        assert len(spawned) > len(leaders)

    assert cluster.stopped is not None
    assert cluster.stopped.killed == [], cluster.stopped
    assert cluster.stopped.leftovers == []
    assert cluster.leftover_pids() == []
    alive = [pid for pid, start in spawned.items() if pid_alive(pid, start)]
    assert alive == [], f"still running after stop(): {alive}"
    for api in cluster.api_processes:
        assert_graceful_api_exit(api)
    assert time.monotonic() - started < 90
    assert cluster.directory is not None
    shutil.rmtree(cluster.directory)


def assert_graceful_api_exit(api: ManagedProcess) -> None:
    """uvicorn finished its shutdown (it then re-raises SIGTERM, hence 0 or -SIGTERM)."""
    assert api.returncode in (0, -signal.SIGTERM), (api.name, api.returncode)
    messages = [
        json.loads(line).get("message")
        for line in api.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    assert "Application shutdown complete." in messages, api.log_tail()


# --- graceful shutdown -------------------------------------------------------------------------

IN_FLIGHT = 50


def test_sigterm_finishes_in_flight_requests_and_refuses_new_connections() -> None:
    require_cluster_tools()
    with Cluster(api=1, workers=0, scheduler=False) as cluster:
        account = cluster.create_account(owner_email="drain@example.com", seats=7)
        api = cluster.api_processes[0]
        port = cluster.api_ports[0]
        body = json.dumps({"query": "{ account { id licenses { total inUse } } }"}).encode()
        half = len(body) // 2

        async def drive() -> list[httpx.Response]:
            started = 0
            all_started = asyncio.Event()
            release = asyncio.Event()

            async def slow_body() -> AsyncIterator[bytes]:
                # A slow client: headers and half the body now, the rest after SIGTERM.
                nonlocal started
                yield body[:half]
                started += 1
                if started == IN_FLIGHT:
                    all_started.set()
                await release.wait()
                yield body[half:]

            limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=0)
            async with httpx.AsyncClient(timeout=60, limits=limits) as client:
                requests = [
                    asyncio.create_task(
                        client.post(
                            cluster.graphql_urls[0],
                            content=slow_body(),
                            headers={
                                "Authorization": f"Bearer {account.api_token}",
                                "Content-Type": "application/json",
                                "Content-Length": str(len(body)),
                            },
                        )
                    )
                    for _ in range(IN_FLIGHT)
                ]
                await asyncio.wait_for(all_started.wait(), 20)
                await asyncio.sleep(1.0)  # the server has read every request's headers

                api.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + 10
                while True:  # the listening socket closes at once...
                    try:
                        _, writer = await asyncio.open_connection("127.0.0.1", port)
                    except ConnectionRefusedError:
                        break
                    writer.close()
                    assert time.monotonic() < deadline, "still accepting after SIGTERM"
                    await asyncio.sleep(0.1)
                # ... while the process waits for the requests it has.
                assert api.running
                assert not any(request.done() for request in requests)

                release.set()
                return list(await asyncio.gather(*requests))

        responses = asyncio.run(drive())
        assert [r.status_code for r in responses] == [200] * IN_FLIGHT
        for response in responses:
            payload = response.json()
            assert not payload.get("errors"), payload
            assert payload["data"]["account"]["licenses"]["total"] == 7
        api.popen.wait(15)
        assert_graceful_api_exit(api)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{cluster.api_urls[0]}/healthz", timeout=2)
    assert cluster.leftover_pids() == []
    assert cluster.stopped is not None and cluster.stopped.killed == []
