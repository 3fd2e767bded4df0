"""The real ASGI app on the test database, and GraphQL requests to it.

`build_app` makes the app (httpx's ASGITransport sends no lifespan events: the test's
`db` fixture has initialised Tortoise, and no background job runs; its clock is the
test's FixedClock). `post`, `gql` and `payload_of` send requests and unpack answers;
`refused_without_change` runs a mutation that must be refused and shows the database
unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import httpx
from starlette.applications import Starlette

from api.app import create_app
from api.settings import ApiSettings
from domain import config
from domain.clock import FixedClock
from domain.settings import Settings
from tests.support.assertions import assert_refused
from tests.support.database import TEST_SECRET_KEY
from tests.support.snapshot import database_snapshot

GRAPHQL = "/graphql"

_API_FIELDS = {item.name for item in dataclasses.fields(ApiSettings)}


def app_settings(database_url: str, **changes: Any) -> Settings:
    return dataclasses.replace(
        Settings.from_env({}),
        database_url=database_url,
        secret_key=TEST_SECRET_KEY.decode(),
        demo_account=False,
        **changes,
    )


def build_app(
    database_url: str,
    clock: FixedClock,
    domain_config: config.DomainConfig,
    *,
    settings: Settings | None = None,
    api_settings: ApiSettings | None = None,
    **changes: Any,
) -> Starlette:
    """The app on `database_url`; `changes` name fields of Settings or ApiSettings."""
    api_changes = {name: value for name, value in changes.items() if name in _API_FIELDS}
    other = {name: value for name, value in changes.items() if name not in _API_FIELDS}
    app = create_app(
        settings or app_settings(database_url, **other),
        api_settings=api_settings or dataclasses.replace(ApiSettings(), **api_changes),
        clock=clock,
    )
    # create_app configured the domain from the settings: keep the test's config.
    config.configure(domain_config)
    return app


def client_for(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def auth_headers(token: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    headers = dict(extra or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


async def post(
    http: httpx.AsyncClient,
    query: str,
    *,
    token: str | None = None,
    variables: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    operation_name: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = dict(variables)
    if operation_name is not None:
        body["operationName"] = operation_name
    return await http.post(GRAPHQL, json=body, headers=auth_headers(token, headers))


async def gql(
    http: httpx.AsyncClient,
    query: str,
    *,
    token: str | None = None,
    variables: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """POST, assert a 200 JSON answer, return the decoded body."""
    response = await post(http, query, token=token, variables=variables, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def top_codes(body: Mapping[str, Any]) -> list[str | None]:
    return [(error.get("extensions") or {}).get("code") for error in body.get("errors") or ()]


def payload_of(body: Mapping[str, Any], field: str) -> dict[str, Any]:
    """The mutation payload, asserting the request itself had no top-level error."""
    assert not body.get("errors"), body
    payload: dict[str, Any] = body["data"][field]
    return payload


async def warm_up(http: httpx.AsyncClient, token: str | None) -> None:
    """One authenticated request, so that the principal's "last active" stamp
    (written at most once a minute) does not show up as a change later."""
    if token is not None:
        await gql(http, "{ licenseAgreement { version } }", token=token)


async def refused_without_change(
    http: httpx.AsyncClient,
    query: str,
    field: str,
    code: str,
    *,
    token: str | None,
    variables: Mapping[str, Any] | None = None,
    error_field: str | None = None,
) -> dict[str, Any]:
    """Run a mutation that must be refused: one error, other fields null, and
    the database exactly as before."""
    await warm_up(http, token)
    before = await database_snapshot()
    payload = payload_of(await gql(http, query, token=token, variables=variables), field)
    assert_refused(payload, code, field=error_field)
    assert await database_snapshot() == before, f"{field} refused with {code} but changed data"
    return payload
