"""A token or session ended through one API process stops working at once on another,
although each process serves recently seen tokens from memory (domain/auth_cache.py).

SQLite: two `licenses serve` on one file. PostgreSQL: the production topology of
tests.support.cluster (two APIs, one worker for the owner's password-set email).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cluster import Cluster
from tests.support.cluster_client import require_cluster_tools
from tests.support.live_server import LiveServer, create_account

ACCOUNT = "{ account { id } }"
CREATE_TOKEN = (
    'mutation { createApiToken(name: "second") { apiToken { id } secret errors { code } } }'
)
REVOKE_TOKEN = "mutation($id: ID!) { revokeApiToken(id: $id) { apiToken { id } errors { code } } }"
ACCEPT = (
    "mutation($input: AcceptInvitationInput!) { acceptInvitation(input: $input) "
    "{ token errors { code } } }"
)
LOGOUT = "mutation { logout { errors { code } } }"
PASSWORD = "correct horse battery staple"


def post(http: httpx.Client, url: str, token: str | None, query: str, **variables: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    reply = http.post(url, json={"query": query, "variables": variables}, headers=headers)
    assert reply.status_code == 200, reply.text
    return reply.json()


def accepted(http: httpx.Client, url: str, token: str | None) -> bool:
    """Whether `token` is recognised: the account, or UNAUTHENTICATED."""
    body = post(http, url, token, ACCOUNT)
    if body.get("errors"):
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"], body
        return False
    return bool(body["data"]["account"]["id"])


def second_token(http: httpx.Client, url: str, token: str) -> tuple[str, str]:
    made = post(http, url, token, CREATE_TOKEN)["data"]["createApiToken"]
    assert made["errors"] == []
    return made["apiToken"]["id"], made["secret"]


def revoke_on_one_refused_on_other(http: httpx.Client, one: str, other: str, admin: str) -> None:
    token_id, secret = second_token(http, one, admin)
    assert accepted(http, other, secret) and accepted(http, other, secret)  # cached there now

    revoked = post(http, one, admin, REVOKE_TOKEN, id=token_id)["data"]["revokeApiToken"]
    assert revoked["errors"] == []

    assert not accepted(http, other, secret)
    assert accepted(http, other, admin)


def test_given_two_servers_on_one_sqlite_file_when_one_revokes_a_token_then_the_other_refuses_it(
    tmp_path: Path,
):
    account = create_account(tmp_path / "account")
    with (
        LiveServer(tmp_path / "a", account) as one,
        LiveServer(tmp_path / "b", account, one.database) as other,
        httpx.Client(timeout=30) as http,
    ):
        revoke_on_one_refused_on_other(http, one.graphql_url, other.graphql_url, one.token)


@pytest.mark.slow
def test_given_two_postgres_api_processes_when_one_ends_a_token_or_session_then_the_other_refuses_it():  # noqa: E501
    require_cluster_tools()
    with Cluster(api=2, workers=1, scheduler=False) as cluster, httpx.Client(timeout=30) as http:
        one, other = cluster.graphql_urls
        created = cluster.create_account(owner_email="owner@revoke.example.com")
        revoke_on_one_refused_on_other(http, one, other, created.api_token)

        email = cluster.wait_for_email(to="owner@revoke.example.com")
        session = post(
            http,
            one,
            None,
            ACCEPT,
            input={"token": email.accept_token(cluster.public_url), "password": PASSWORD},
        )["data"]["acceptInvitation"]
        assert session["errors"] == []
        bearer = session["token"]
        assert accepted(http, other, bearer) and accepted(http, other, bearer)

        assert post(http, one, bearer, LOGOUT)["data"]["logout"]["errors"] == []

        assert not accepted(http, other, bearer)
