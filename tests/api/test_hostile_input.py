"""What a hostile or careless client can send, through the real ASGI app.

Limits (depth, aliases, tokens, body size, page size), malformed requests,
control characters and very long strings in every string input of every
mutation, an unexpected exception inside a resolver (masked, logged once with
its request id), introspection and GraphiQL by mode, and the operational
endpoints. Nothing here may answer with a 5xx or a masked internal error,
except the one test that provokes it on purpose.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from api.settings import ApiSettings
from domain import config
from domain.models import ApiToken, Invitation, LoginFailure
from domain.reads import records
from domain.security import invitation_token
from domain.services import invitations
from domain.settings import Settings
from tests.support.assertions import Failures, assert_refused
from tests.support.database import TEST_SECRET_KEY
from tests.support.factories import PASSWORD
from tests.support.hostile_requests import (
    DEEPLY_NESTED_JSON,
    MIB,
    TOKEN_HEAVY_QUERY,
    aliased_query,
    nested_query,
    oversized_body,
)
from tests.support.http_client import (
    GRAPHQL,
    auth_headers,
    build_app,
    client_for,
    gql,
    payload_of,
    post,
    refused_without_change,
    top_codes,
    warm_up,
)
from tests.support.principals import Principals
from tests.support.snapshot import database_snapshot

pytestmark = pytest.mark.anyio

ERRORS = "errors { code message field }"

# ---------------------------------------------------------------------------
# Query limits


async def test_query_depth_limit(client, principals):
    allowed = await gql(client, nested_query(10), token=principals.owner_token)
    assert "errors" not in allowed
    assert allowed["data"]["viewer"]["licenseHistory"]

    refused = await gql(client, nested_query(11), token=principals.owner_token)
    assert refused["data"] is None
    assert top_codes(refused) == ["INVALID_INPUT"]
    assert "maximum operation depth of 10" in refused["errors"][0]["message"]


async def test_alias_limit(client, principals):
    allowed = await gql(client, aliased_query(30), token=principals.owner_token)
    assert "errors" not in allowed
    assert len(allowed["data"]) == 30

    refused = await gql(client, aliased_query(31), token=principals.owner_token)
    assert refused["data"] is None
    assert top_codes(refused) == ["INVALID_INPUT"]
    assert "31 aliases" in refused["errors"][0]["message"]


async def test_token_limit(client, principals):
    refused = await gql(client, TOKEN_HEAVY_QUERY, token=principals.owner_token)
    assert refused["data"] is None
    assert top_codes(refused) == ["INVALID_INPUT"]
    assert "more than 5000 tokens" in refused["errors"][0]["message"]


# ---------------------------------------------------------------------------
# Body size


async def test_a_body_over_one_mib_is_refused_with_413(client, principals):
    response = await client.post(
        GRAPHQL,
        content=oversized_body(),
        headers=auth_headers(principals.owner_token, {"Content-Type": "application/json"}),
    )

    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert response.headers["x-request-id"]


async def test_a_chunked_body_over_one_mib_is_refused_with_413(client, principals):
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ viewer { id } }", "variables": {"pad": "'
        for _ in range(17):
            yield b"x" * 65536
        yield b'"}}'

    response = await client.post(
        GRAPHQL,
        content=chunks(),
        headers=auth_headers(principals.owner_token, {"Content-Type": "application/json"}),
    )

    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_a_body_just_under_one_mib_is_served(client, principals):
    name = "n" * (MIB - 300)
    body = json.dumps(
        {
            "query": f"mutation($name: String!) {{ createApiToken(name: $name) {{ {ERRORS} }} }}",
            "variables": {"name": name},
        }
    )
    assert len(body) < MIB
    response = await client.post(
        GRAPHQL,
        content=body,
        headers=auth_headers(principals.owner_token, {"Content-Type": "application/json"}),
    )

    assert response.status_code == 200
    assert_refused(response.json()["data"]["createApiToken"], "INVALID_INPUT", field="name")


# ---------------------------------------------------------------------------
# Page sizes


@pytest.mark.parametrize("connection", ["users", "charges", "auditLog"])
async def test_first_outside_1_to_200_is_invalid_input(client, principals, connection):
    query = (
        f"query($first: Int) {{ account {{ id {connection}(first: $first) {{ totalCount }} }} }}"
    )
    for first in (0, -1, 201, 10_000):
        body = await gql(client, query, token=principals.admin_token, variables={"first": first})
        assert body["data"]["account"] == {"id": str(principals.account_id), connection: None}
        assert len(body["errors"]) == 1
        error = body["errors"][0]
        assert error["extensions"] == {"code": "INVALID_INPUT", "field": "first"}, first
        assert error["path"] == ["account", connection]
    for first in (1, 200):
        body = await gql(client, query, token=principals.admin_token, variables={"first": first})
        assert "errors" not in body
        assert body["data"]["account"][connection]["totalCount"] >= 0


# ---------------------------------------------------------------------------
# Malformed requests


MALFORMED_BODIES = [
    b"{not json",
    b"",
    b"null",
    b'"a string"',
    b"[]",
    b'[{"query": "{ viewer { id } }"}]',
    b"\xff\xfe{\x00",
    DEEPLY_NESTED_JSON,
    b'{"query": "{ viewer { id } }", "variables": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b"{}",
    b'{"query": 42}',
    b'{"query": "{ viewer { id } }", "variables": "x"}',
    b'{"query": "{ viewer { id } }", "operationName": "Missing"}',
]


async def test_malformed_bodies_are_a_4xx(client, principals):
    failures = Failures()
    for content in MALFORMED_BODIES:
        for key in (None, "malformed-1"):
            extra = {"Content-Type": "application/json"}
            if key:
                extra["Idempotency-Key"] = key
            with failures.case(f"{content[:40]!r} key={key}"):
                response = await client.post(
                    GRAPHQL, content=content, headers=auth_headers(principals.owner_token, extra)
                )
                assert response.status_code == 400, response.text
                assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    failures.check()


async def test_wrong_content_type_is_a_4xx(client, principals):
    before = await ApiToken.all().count()
    content = json.dumps({"query": 'mutation { createApiToken(name: "x") { secret } }'}).encode()
    for content_type in (
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ):
        headers = auth_headers(principals.owner_token, {"Idempotency-Key": "content-type"})
        if content_type:
            headers["Content-Type"] = content_type
        response = await client.post(GRAPHQL, content=content, headers=headers)
        assert 400 <= response.status_code < 500, (content_type, response.text)
    assert await ApiToken.all().count() == before


async def test_get_runs_queries_but_refuses_mutations(client, principals):
    headers = auth_headers(principals.owner_token)
    query = await client.get(GRAPHQL, params={"query": "{ viewer { id } }"}, headers=headers)
    assert query.status_code == 200
    assert query.json() == {"data": {"viewer": {"id": str(principals.owner_id)}}}

    before = await ApiToken.all().count()
    mutation = await client.get(
        GRAPHQL,
        params={"query": 'mutation { createApiToken(name: "via GET") { secret } }'},
        headers={**headers, "Idempotency-Key": "via-get"},
    )
    assert 400 <= mutation.status_code < 500
    assert mutation.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert await ApiToken.all().count() == before

    other_method = await client.put(GRAPHQL, content=b"{}", headers=headers)
    assert other_method.status_code == 405


async def test_a_subscription_or_an_unknown_field_is_a_validation_error(client, principals):
    for query in ("subscription { viewer { id } }", "{ nope }", "{ viewer { id "):
        body = await gql(client, query, token=principals.owner_token)
        assert body["data"] is None
        assert top_codes(body) == ["INVALID_INPUT"], body


# ---------------------------------------------------------------------------
# Control characters and long strings in every string input of every mutation

CONTROL = "a\x00b\x07c\x1b[31m\u202e\r\nd"
LONG = "x" * 10_000
HOSTILE = {"control": CONTROL, "long": LONG}


def _invite(**overrides: str) -> dict[str, Any]:
    values = {"email": "ok@example.com", "firstName": "Ok", "lastName": "Fine", **overrides}
    return {"input": values}


INVITE = f"mutation($input: InviteUserInput!) {{ inviteUser(input: $input) {{ user {{ id }} {ERRORS} }} }}"  # noqa: E501
ACCEPT = f"mutation($input: AcceptInvitationInput!) {{ acceptInvitation(input: $input) {{ token {ERRORS} }} }}"  # noqa: E501
LOGIN = f"mutation($input: LoginInput!) {{ login(input: $input) {{ token {ERRORS} }} }}"
UPDATE = f"mutation($id: ID!, $input: UpdateUserInput!) {{ updateUser(id: $id, input: $input) {{ user {{ id }} {ERRORS} }} }}"  # noqa: E501
SEATS = f"mutation($input: ChangeSeatCountInput!) {{ changeSeatCount(input: $input) {{ charge {{ id }} {ERRORS} }} }}"  # noqa: E501


def _by_user_id(field: str) -> str:
    return f"mutation($userId: ID!) {{ {field}(userId: $userId) {{ {ERRORS} }} }}"


def _seats(**overrides: str) -> dict[str, Any]:
    return {
        "input": {
            "total": 6,
            "acceptAgreement": True,
            "agreementVersion": config.AGREEMENT_VERSION,
            **overrides,
        }
    }


# (mutation, query, variables from the hostile value, code, error field)
STRING_INPUTS: dict[str, tuple[str, str, Any, str, str | None]] = {
    "inviteUser.email": (
        "inviteUser",
        INVITE,
        lambda v, p: _invite(email=v),
        "INVALID_INPUT",
        "email",
    ),
    "inviteUser.firstName": (
        "inviteUser",
        INVITE,
        lambda v, p: _invite(firstName=v),
        "INVALID_INPUT",
        "firstName",
    ),
    "inviteUser.lastName": (
        "inviteUser",
        INVITE,
        lambda v, p: _invite(lastName=v),
        "INVALID_INPUT",
        "lastName",
    ),
    "inviteUser.qualification": (
        "inviteUser",
        INVITE,
        lambda v, p: _invite(qualification=v),
        "INVALID_INPUT",
        "qualification",
    ),
    "resendInvitation.userId": (
        "resendInvitation",
        _by_user_id("resendInvitation"),
        lambda v, p: {"userId": v},
        "NOT_FOUND",
        None,
    ),
    "revokeInvitation.userId": (
        "revokeInvitation",
        _by_user_id("revokeInvitation"),
        lambda v, p: {"userId": v},
        "NOT_FOUND",
        None,
    ),
    "acceptInvitation.token": (
        "acceptInvitation",
        ACCEPT,
        lambda v, p: {"input": {"token": v, "password": PASSWORD}},
        "INVITATION_INVALID",
        None,
    ),
    "login.email": (
        "login",
        LOGIN,
        lambda v, p: {"input": {"email": v, "password": PASSWORD}},
        "INVALID_CREDENTIALS",
        None,
    ),
    "login.password": (
        "login",
        LOGIN,
        lambda v, p: {"input": {"email": "adam@example.com", "password": v}},
        "INVALID_CREDENTIALS",
        None,
    ),
    "login.accountId": (
        "login",
        LOGIN,
        lambda v, p: {"input": {"email": "adam@example.com", "password": PASSWORD, "accountId": v}},
        "INVALID_CREDENTIALS",
        None,
    ),
    "assignLicense.userId": (
        "assignLicense",
        _by_user_id("assignLicense"),
        lambda v, p: {"userId": v},
        "NOT_FOUND",
        None,
    ),
    "unassignLicense.userId": (
        "unassignLicense",
        _by_user_id("unassignLicense"),
        lambda v, p: {"userId": v},
        "NOT_FOUND",
        None,
    ),
    "updateUser.id": (
        "updateUser",
        UPDATE,
        lambda v, p: {"id": v, "input": {"firstName": "Ok"}},
        "NOT_FOUND",
        None,
    ),
    "updateUser.firstName": (
        "updateUser",
        UPDATE,
        lambda v, p: {"id": str(p.member_id), "input": {"firstName": v}},
        "INVALID_INPUT",
        "firstName",
    ),
    "updateUser.lastName": (
        "updateUser",
        UPDATE,
        lambda v, p: {"id": str(p.member_id), "input": {"lastName": v}},
        "INVALID_INPUT",
        "lastName",
    ),
    "updateUser.qualification": (
        "updateUser",
        UPDATE,
        lambda v, p: {"id": str(p.member_id), "input": {"qualification": v}},
        "INVALID_INPUT",
        "qualification",
    ),
    "changeSeatCount.agreementVersion": (
        "changeSeatCount",
        SEATS,
        lambda v, p: _seats(agreementVersion=v),
        "AGREEMENT_OUTDATED",
        "agreementVersion",
    ),
    "transferOwnership.userId": (
        "transferOwnership",
        _by_user_id("transferOwnership"),
        lambda v, p: {"userId": v},
        "NOT_FOUND",
        None,
    ),
    "createApiToken.name": (
        "createApiToken",
        f"mutation($name: String!) {{ createApiToken(name: $name) {{ secret {ERRORS} }} }}",
        lambda v, p: {"name": v},
        "INVALID_INPUT",
        "name",
    ),
    "revokeApiToken.id": (
        "revokeApiToken",
        f"mutation($id: ID!) {{ revokeApiToken(id: $id) {{ apiToken {{ id }} {ERRORS} }} }}",
        lambda v, p: {"id": v},
        "NOT_FOUND",
        None,
    ),
}


async def test_hostile_strings_get_a_clean_refusal(client, principals):
    # Six failed logins below: keep the rate limit out of the way.
    config.configure_with(failed_logins_allowed=100)
    failures = Failures()
    for string_input, (mutation, query, variables, code, field) in STRING_INPUTS.items():
        for kind, value in HOSTILE.items():
            with failures.case(f"{string_input} ({kind})"):
                if mutation == "login":
                    # Public, and a failed login is recorded: no snapshot.
                    body = await gql(client, query, variables=variables(value, principals))
                    assert_refused(payload_of(body, mutation), code, field=field)
                    continue
                token = None if mutation == "acceptInvitation" else principals.owner_token
                payload = await refused_without_change(
                    client,
                    query,
                    mutation,
                    code,
                    token=token,
                    variables=variables(value, principals),
                    error_field=field,
                )
                assert "Internal server error" not in payload["errors"][0]["message"]
    failures.check()
    # 3 inputs x 2 values, each failure counted per email and per client.
    assert await LoginFailure.all().count() == 12


async def test_a_hostile_password_is_opaque_but_bounded(client, principals):
    invited = await gql(client, INVITE, token=principals.owner_token, variables=_invite())
    user_id = int(invited["data"]["inviteUser"]["user"]["id"])
    invitation = await Invitation.get(user_id=user_id)
    token = invitation_token(invitation.id, invitation.token_version)

    await refused_without_change(
        client,
        ACCEPT,
        "acceptInvitation",
        "WEAK_PASSWORD",
        token=None,
        variables={"input": {"token": token, "password": LONG}},
        error_field="password",
    )
    # Any character may be part of a password: only its length is checked.
    accepted = payload_of(
        await gql(client, ACCEPT, variables={"input": {"token": token, "password": CONTROL}}),
        "acceptInvitation",
    )
    assert accepted["errors"] == []
    login = payload_of(
        await gql(
            client, LOGIN, variables={"input": {"email": "ok@example.com", "password": CONTROL}}
        ),
        "login",
    )
    assert login["errors"] == []
    assert login["token"]


async def test_a_hostile_proration_date_is_a_variable_error(client, principals):
    await warm_up(client, principals.owner_token)
    for value in (*HOSTILE.values(), "2026-03-10T12:00:00", "yesterday"):
        before = await database_snapshot()
        body = await gql(
            client, SEATS, token=principals.owner_token, variables=_seats(prorationDate=value)
        )
        assert body["data"] is None
        assert top_codes(body) == ["INVALID_INPUT"], body
        assert "Internal server error" not in body["errors"][0]["message"]
        assert await database_snapshot() == before


@pytest.mark.parametrize(
    ("arguments", "variables", "field"),
    [
        ("users(filter: {search: $v})", "String!", "search"),
        ("users(after: $v)", "String!", "after"),
        ("charges(after: $v)", "String!", "after"),
        ("auditLog(after: $v)", "String!", "after"),
    ],
)
async def test_hostile_strings_in_query_arguments(client, principals, arguments, variables, field):
    connection = arguments.split("(")[0]
    query = f"query($v: {variables}) {{ account {{ id {arguments} {{ totalCount }} }} }}"
    for value in HOSTILE.values():
        body = await gql(client, query, token=principals.owner_token, variables={"v": value})
        assert body["data"]["account"][connection] is None
        assert [error["extensions"] for error in body["errors"]] == [
            {"code": "INVALID_INPUT", "field": field}
        ]


async def test_hostile_user_ids_read_as_null(client, principals):
    query = "query($id: ID!) { account { user(id: $id) { id } } }"
    for value in (*HOSTILE.values(), "99999999999999999999", "-1", "1.0", "0x1"):
        body = await gql(client, query, token=principals.owner_token, variables={"id": value})
        assert body == {"data": {"account": {"user": None}}}, value


# ---------------------------------------------------------------------------
# Unexpected errors


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("kaboom: secret internals")


def _error_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_an_unexpected_error_in_a_mutation_is_masked_and_logged_once(
    client, principals, monkeypatch, caplog
):
    monkeypatch.setattr(invitations, "invite_user", _boom)
    caplog.set_level(logging.INFO)

    response = await post(client, INVITE, token=principals.owner_token, variables=_invite())

    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    body = response.json()
    assert body["data"] is None
    assert body["errors"] == [
        {
            "message": f"Internal server error (request id {request_id})",
            "locations": body["errors"][0]["locations"],
            "path": ["inviteUser"],
            "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        }
    ]
    assert "kaboom" not in response.text
    logged = _error_logs(caplog)
    assert len(logged) == 1, [record.getMessage() for record in logged]
    record = logged[0]
    assert request_id in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert "kaboom: secret internals" in caplog.text
    assert "Traceback" in caplog.text


async def test_an_unexpected_error_in_a_query_field_keeps_the_rest(
    client, principals, monkeypatch, caplog
):
    monkeypatch.setattr(records, "list_api_tokens", _boom)
    caplog.set_level(logging.INFO)

    response = await post(
        client,
        "{ account { id name apiTokens { id } } }",
        token=principals.owner_token,
        headers={"X-Request-ID": "trace-0123456789"},
    )

    assert response.headers["x-request-id"] == "trace-0123456789"
    body = response.json()
    assert body["data"] == {
        "account": {"id": str(principals.account_id), "name": "Acme", "apiTokens": None}
    }
    (error,) = body["errors"]
    assert error["message"] == "Internal server error (request id trace-0123456789)"
    assert error["extensions"]["requestId"] == "trace-0123456789"
    assert error["path"] == ["account", "apiTokens"]
    (record,) = _error_logs(caplog)
    assert "trace-0123456789" in record.getMessage()
    assert "account.apiTokens" in record.getMessage()


async def test_refusals_are_not_logged_as_errors(client, principals, caplog):
    caplog.set_level(logging.INFO)
    await gql(
        client, "{ account { users(first: 0) { totalCount } } }", token=principals.admin_token
    )
    await gql(client, "{ account { billing { currency } } }", token=principals.member_token)
    await gql(client, "{ viewer { id } }")
    await gql(client, "{ nope }", token=principals.admin_token)
    assert _error_logs(caplog) == []


# ---------------------------------------------------------------------------
# Introspection and GraphiQL by mode

INTROSPECTION = "{ __schema { queryType { name } } }"
TYPE_INTROSPECTION = '{ __type(name: "User") { name } }'


async def test_introspection_on_in_development(client, principals):
    body = await gql(client, INTROSPECTION, token=principals.owner_token)
    assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_introspection_off_when_configured(db, clock, domain_config, principals: Principals):
    app = build_app(db, clock, domain_config, introspection=False)
    async with client_for(app) as http:
        for query in (INTROSPECTION, TYPE_INTROSPECTION):
            body = await gql(http, query, token=principals.owner_token)
            assert body["data"] is None
            assert body["errors"]
            assert set(top_codes(body)) == {"INVALID_INPUT"}
            assert "introspection has been disabled" in body["errors"][0]["message"]
        # Everything else is served as usual.
        viewer = await gql(http, "{ viewer { id } }", token=principals.owner_token)
        assert viewer == {"data": {"viewer": {"id": str(principals.owner_id)}}}


async def test_graphiql_in_development_only(db, clock, domain_config, principals):
    html = {"Accept": "text/html"}
    development = build_app(db, clock, domain_config)
    async with client_for(development) as http:
        page = await http.get(GRAPHQL, headers=html)
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()

    environment = {
        "ENVIRONMENT": "production",
        "DATABASE_URL": db,
        "SECRET_KEY": TEST_SECRET_KEY.decode(),
    }
    settings = Settings.from_env(environment)
    api_settings = ApiSettings.from_env(environment)
    assert not api_settings.graphiql
    assert not api_settings.introspection
    production = build_app(db, clock, domain_config, settings=settings, api_settings=api_settings)
    async with client_for(production) as http:
        page = await http.get(GRAPHQL, headers=html)
        assert page.status_code == 404
        assert "graphiql" not in page.text.lower()
        body = await gql(http, INTROSPECTION, token=principals.owner_token)
        assert body["data"] is None
        assert set(top_codes(body)) == {"INVALID_INPUT"}


# ---------------------------------------------------------------------------
# Operational endpoints


async def test_health_readiness_and_metrics(client, principals):
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}

    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok"}

    await gql(client, "query Viewer { viewer { id } }", token=principals.owner_token)
    await gql(client, "{ viewer { id } }")  # UNAUTHENTICATED
    await gql(
        client,
        f'mutation Forbidden {{ createApiToken(name: "x") {{ {ERRORS} }} }}',
        token=principals.member_token,
    )
    await client.post(GRAPHQL, content=b"{not json", headers={"Content-Type": "application/json"})

    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'licenses_graphql_requests_total{operation="Viewer",operation_type="query"}' in text
    assert (
        'licenses_graphql_requests_total{operation="Forbidden",operation_type="mutation"}' in text
    )
    assert 'licenses_graphql_errors_total{code="UNAUTHENTICATED",kind="top_level"}' in text
    assert 'licenses_graphql_errors_total{code="FORBIDDEN",kind="payload"}' in text
    assert 'licenses_graphql_errors_total{code="INVALID_INPUT",kind="top_level"}' in text
    assert "licenses_graphql_request_seconds_bucket" in text
    assert 'licenses_http_responses_total{route="/graphql",status="400"}' in text


async def test_unknown_paths_are_404(client):
    response = await client.get("/nope")
    assert response.status_code == 404
