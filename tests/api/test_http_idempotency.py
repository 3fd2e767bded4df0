"""The Idempotency-Key header through the real ASGI app and database.

A retry with the same key and body replays the stored response (header
`Idempotent-Replayed: true`) without running the mutation again; two requests
at once run it once; the same key with another body is refused; keys are
scoped to the principal; login and acceptInvitation ignore the header.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from domain import config
from domain.models import ApiToken, Charge, IdempotencyRecord, Invitation, Session
from domain.security import invitation_token
from domain.services import seats
from tests.support.factories import PASSWORD
from tests.support.http_client import post, top_codes
from tests.support.principals import Principals

pytestmark = pytest.mark.anyio

CHANGE_SEATS = """
mutation Seats($input: ChangeSeatCountInput!) {
  changeSeatCount(input: $input) {
    licenses { total inUse }
    charge { id amountCents }
    errors { code message field }
  }
}
"""
CREATE_TOKEN = """
mutation Create($name: String!) {
  createApiToken(name: $name) {
    apiToken { id name prefix }
    secret
    errors { code message field }
  }
}
"""
LOGIN = """
mutation Login($input: LoginInput!) {
  login(input: $input) { token errors { code } }
}
"""
ACCEPT = """
mutation Accept($input: AcceptInvitationInput!) {
  acceptInvitation(input: $input) { token errors { code } }
}
"""


def seats_to(total: int) -> dict[str, Any]:
    return {
        "input": {
            "total": total,
            "acceptAgreement": True,
            "agreementVersion": config.AGREEMENT_VERSION,
        }
    }


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def charges(p: Principals) -> int:
    return await Charge.filter(account_id=p.account_id).count()


def replayed(response: httpx.Response) -> bool:
    return response.headers.get("idempotent-replayed") == "true"


async def test_a_retry_replays_the_response_and_charges_once(client, principals):
    first = await post(
        client,
        CHANGE_SEATS,
        token=principals.owner_token,
        variables=seats_to(7),
        headers=keyed("k1"),
    )
    assert first.status_code == 200
    assert not replayed(first)
    assert first.json()["data"]["changeSeatCount"]["charge"]["amountCents"] == 2000

    retry = await post(
        client,
        CHANGE_SEATS,
        token=principals.owner_token,
        variables=seats_to(7),
        headers=keyed("k1"),
    )

    assert retry.status_code == 200
    assert replayed(retry)
    assert retry.content == first.content
    assert await charges(principals) == 1
    # Without the key, the same body runs again (7 == 7: nothing to charge).
    again = await post(client, CHANGE_SEATS, token=principals.owner_token, variables=seats_to(7))
    assert not replayed(again)
    assert again.json()["data"]["changeSeatCount"]["charge"] is None


async def test_a_refusal_is_replayed_too(client, principals):
    variables = seats_to(0)
    first = await post(
        client, CHANGE_SEATS, token=principals.admin_token, variables=variables, headers=keyed("r")
    )
    retry = await post(
        client, CHANGE_SEATS, token=principals.admin_token, variables=variables, headers=keyed("r")
    )

    assert first.json()["data"]["changeSeatCount"]["errors"][0]["code"] == "SEAT_LIMIT"
    assert replayed(retry)
    assert retry.content == first.content


async def test_concurrent_requests_with_one_key_charge_once(client, principals):
    responses = await asyncio.gather(
        *(
            post(
                client,
                CHANGE_SEATS,
                token=principals.owner_token,
                variables=seats_to(8),
                headers=keyed("concurrent"),
            )
            for _ in range(4)
        )
    )

    assert await charges(principals) == 1
    assert all(response.status_code == 200 for response in responses)
    ran = [response for response in responses if not replayed(response) and not _in_use(response)]
    assert len(ran) == 1
    charge = ran[0].json()["data"]["changeSeatCount"]["charge"]
    assert charge["amountCents"] == 3000
    for response in responses:
        if replayed(response):
            assert response.content == ran[0].content
        elif response is not ran[0]:
            assert top_codes(response.json()) == ["IDEMPOTENCY_KEY_IN_USE"]


async def test_concurrent_token_creations_with_one_key_create_one(client, principals):
    responses = await asyncio.gather(
        *(
            post(
                client,
                CREATE_TOKEN,
                token=principals.api_token,
                variables={"name": "once"},
                headers=keyed("one-token"),
            )
            for _ in range(3)
        )
    )

    assert await ApiToken.filter(name="once").count() == 1
    ran = [response for response in responses if not replayed(response) and not _in_use(response)]
    assert len(ran) == 1
    assert ran[0].json()["data"]["createApiToken"]["secret"].startswith("lic_")


def _in_use(response: httpx.Response) -> bool:
    return top_codes(response.json()) == ["IDEMPOTENCY_KEY_IN_USE"]


async def test_the_same_key_with_another_body_is_refused(client, principals):
    await post(
        client,
        CHANGE_SEATS,
        token=principals.owner_token,
        variables=seats_to(6),
        headers=keyed("k"),
    )

    for variables, query in ((seats_to(9), CHANGE_SEATS), ({"name": "x"}, CREATE_TOKEN)):
        other = await post(
            client, query, token=principals.owner_token, variables=variables, headers=keyed("k")
        )
        assert other.status_code == 200
        assert not replayed(other)
        body = other.json()
        assert body["data"] is None
        assert top_codes(body) == ["IDEMPOTENCY_KEY_REUSED"]

    assert await charges(principals) == 1
    assert await ApiToken.filter(account_id=principals.account_id).count() == 1
    summary = await post(client, "{ account { licenses { total } } }", token=principals.owner_token)
    assert summary.json()["data"]["account"]["licenses"]["total"] == 6


async def test_a_key_belongs_to_its_principal(client, principals):
    results = {}
    for who in ("owner", "admin", "api", "other_admin"):
        response = await post(
            client,
            CREATE_TOKEN,
            token=principals.token(who),
            variables={"name": "deploy"},
            headers=keyed("shared-key"),
        )
        assert not replayed(response), who
        payload = response.json()["data"]["createApiToken"]
        assert payload["errors"] == []
        results[who] = payload["apiToken"]["id"]

    assert len(set(results.values())) == 4
    assert await ApiToken.filter(name="deploy").count() == 4


async def test_a_replayed_create_api_token_does_not_hold_the_secret(client, principals):
    first = await post(
        client,
        CREATE_TOKEN.replace("secret", "secret s2: secret"),
        token=principals.admin_token,
        variables={"name": "ci"},
        headers=keyed("token-once"),
    )
    created = first.json()["data"]["createApiToken"]
    secret = created["secret"]
    assert secret.startswith("lic_")
    assert created["s2"] == secret

    stored = await IdempotencyRecord.get(key="token-once")
    assert stored.response_body is not None
    assert secret not in stored.response_body
    assert created["apiToken"]["prefix"] in stored.response_body

    retry = await post(
        client,
        CREATE_TOKEN.replace("secret", "secret s2: secret"),
        token=principals.admin_token,
        variables={"name": "ci"},
        headers=keyed("token-once"),
    )
    assert replayed(retry)
    replay = retry.json()["data"]["createApiToken"]
    assert replay["secret"] is None
    assert replay["s2"] is None
    assert replay["apiToken"] == created["apiToken"]
    assert replay["errors"] == []
    assert await ApiToken.filter(name="ci").count() == 1


async def test_login_and_accept_invitation_ignore_the_header(client, principals):
    login = {"input": {"email": "adam@example.com", "password": PASSWORD}}
    first = await post(client, LOGIN, variables=login, headers=keyed("login"))
    second = await post(client, LOGIN, variables=login, headers=keyed("login"))
    # Authenticated, beside another mutation: still ignored, no token is stored.
    third = await post(
        client,
        "mutation($input: LoginInput!) "
        "{ login(input: $input) { token } logout { errors { code } } }",
        token=principals.admin_token,
        variables=login,
        headers=keyed("login"),
    )

    tokens = {response.json()["data"]["login"]["token"] for response in (first, second, third)}
    assert len(tokens) == 3
    assert not any(replayed(response) for response in (first, second, third))

    accept = {"input": {"token": "not-a-token", "password": PASSWORD}}
    refusals = [
        await post(
            client, ACCEPT, token=principals.owner_token, variables=accept, headers=keyed("a")
        )
        for _ in range(2)
    ]
    assert not any(replayed(response) for response in refusals)
    assert await IdempotencyRecord.all().count() == 0
    assert await Session.filter(user_id=principals.admin_id).count() == 4


async def test_accept_invitation_with_a_key_runs_each_time(client, principals):
    invite = await post(
        client,
        """mutation { inviteUser(input: {email: "ivy@example.com", firstName: "Ivy",
             lastName: "I"}) { user { id } } }""",
        token=principals.owner_token,
    )
    user_id = int(invite.json()["data"]["inviteUser"]["user"]["id"])
    invitation = await Invitation.get(user_id=user_id)
    token = invitation_token(invitation.id, invitation.token_version)
    variables = {"input": {"token": token, "password": PASSWORD}}

    first = await post(client, ACCEPT, variables=variables, headers=keyed("accept"))
    second = await post(client, ACCEPT, variables=variables, headers=keyed("accept"))

    assert first.json()["data"]["acceptInvitation"]["token"]
    assert second.json()["data"]["acceptInvitation"]["errors"] == [{"code": "INVITATION_INVALID"}]
    assert not replayed(second)


INVALID_KEYS = {
    "empty": "",
    "256 chars": "k" * 256,
    "tab": "tab\there",
    "bell": "bell\x07",
    "del": "del\x7f",
    "latin-1": "caf\xe9",
}


async def test_an_invalid_key_is_refused_and_nothing_runs(client, principals):
    for name, key in INVALID_KEYS.items():
        response = await client.post(
            "/graphql",
            content=json.dumps({"query": CREATE_TOKEN, "variables": {"name": "x"}}).encode(),
            headers=[
                (b"Content-Type", b"application/json"),
                (b"Authorization", f"Bearer {principals.owner_token}".encode()),
                (b"Idempotency-Key", key.encode("latin-1")),
            ],
        )

        assert response.status_code == 200, name
        body = response.json()
        assert body["data"] is None, name
        assert top_codes(body) == ["INVALID_INPUT"], name
        assert "Idempotency-Key" in body["errors"][0]["message"]
    assert await ApiToken.filter(account_id=principals.account_id).count() == 1
    assert await IdempotencyRecord.all().count() == 0


async def test_the_longest_valid_key_works(client, principals):
    key = "~" + "k" * 253 + " "
    first = await post(
        client,
        CREATE_TOKEN,
        token=principals.owner_token,
        variables={"name": "x"},
        headers=keyed(key),
    )
    retry = await post(
        client,
        CREATE_TOKEN,
        token=principals.owner_token,
        variables={"name": "x"},
        headers=keyed(key),
    )
    assert not replayed(first)
    assert replayed(retry)


async def test_without_a_principal_the_key_is_not_used(client, principals):
    response = await post(client, CREATE_TOKEN, variables={"name": "x"}, headers=keyed("anon"))
    assert top_codes(response.json()) == ["UNAUTHENTICATED"]
    assert await IdempotencyRecord.all().count() == 0


async def test_a_query_with_a_key_is_not_recorded(client, principals):
    response = await post(
        client, "{ viewer { id } }", token=principals.owner_token, headers=keyed("query")
    )
    assert response.json()["data"]["viewer"]["id"] == str(principals.owner_id)
    assert await IdempotencyRecord.all().count() == 0


async def test_an_unexpected_error_frees_the_key_for_a_retry(client, principals, monkeypatch):
    real = seats.change_seat_count
    calls = 0

    async def fails_once(**kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database went away")
        return await real(**kwargs)

    monkeypatch.setattr(seats, "change_seat_count", fails_once)
    failed = await post(
        client,
        CHANGE_SEATS,
        token=principals.owner_token,
        variables=seats_to(6),
        headers=keyed("x"),
    )
    assert top_codes(failed.json()) == ["INTERNAL_SERVER_ERROR"]
    assert await IdempotencyRecord.all().count() == 0

    retry = await post(
        client,
        CHANGE_SEATS,
        token=principals.owner_token,
        variables=seats_to(6),
        headers=keyed("x"),
    )
    assert not replayed(retry)
    assert retry.json()["data"]["changeSeatCount"]["charge"]["amountCents"] == 1000
    assert await charges(principals) == 1
