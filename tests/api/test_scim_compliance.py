"""scim2-tester's discovery and Users checks against a real `licenses serve`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from tests.support.live_server import LiveServer, create_account


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("scim")
    # The checks create users at random, active or not: seats for all of them.
    account = create_account(work / "account", seats=500)
    with LiveServer(work / "server", account) as live:
        yield live


def test_given_a_live_server_when_scim2_tester_checks_discovery_and_users_then_no_check_fails(
    server: LiveServer,
) -> None:
    http = Client(
        base_url=f"{server.base_url}/scim/v2",
        headers={"Authorization": f"Bearer {server.token}"},
    )
    client = SyncSCIMClient(http)
    client.discover()

    results = check_server(client, resource_types=["User"])

    failures = [
        f"{result.title}: {result.reason}" for result in results if result.status == Status.ERROR
    ]
    assert results and not failures, "\n".join(failures)
    assert any("User" in (result.resource_type or "") for result in results)


def test_given_the_token_licenses_account_create_printed_when_used_then_both_apis_open(
    server: LiveServer,
) -> None:
    http = Client(base_url=server.base_url, headers={"Authorization": f"Bearer {server.token}"})

    graphql = http.post("/graphql", json={"query": "{ account { apiTokens { scopes } } }"})
    scim = http.get("/scim/v2/ServiceProviderConfig")

    assert graphql.json()["data"]["account"]["apiTokens"] == [{"scopes": ["GRAPHQL", "SCIM"]}]
    assert scim.status_code == 200
