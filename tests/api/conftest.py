"""HTTP-level fixtures: the real ASGI app on the test database, and its principals.

The app is called through httpx's ASGITransport, which sends no lifespan
events: the `db` fixture has already initialised Tortoise, and no background
job runs. Its clock is the test's FixedClock.

`principals` builds, through the domain services, one account ("Acme": the
owner, an ADMIN, a MEMBER and the account's API token, each with a bearer
token) and a second account ("Globex") with an ADMIN of its own. Passwords are
hashed with deliberately cheap Argon2 parameters (the production parameters
take ~170 ms per hash); the code paths are the production ones.

Helpers (`post`, `gql`, `payload_of`, ...) are plain functions imported by the
test modules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from starlette.applications import Starlette

from api.app import create_app
from domain import config, security
from domain.clock import FixedClock
from domain.enums import ActorKind, Role
from domain.models import Invitation
from domain.principal import Principal
from domain.services import users
from domain.settings import Settings
from tests.conftest import TEST_SECRET_KEY
from tests.domain.conftest import make_account
from tests.domain.snapshot import database_snapshot

PASSWORD = "correct horse battery staple"
GRAPHQL = "/graphql"

# ---------------------------------------------------------------------------
# App and client


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
    **changes: Any,
) -> Starlette:
    app = create_app(settings or app_settings(database_url, **changes), clock=clock)
    # create_app configured the domain from the settings: keep the test's config.
    config.configure(domain_config)
    return app


def client_for(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
def app(db: str, clock: FixedClock, domain_config: config.DomainConfig) -> Starlette:
    return build_app(db, clock, domain_config)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as http:
        yield http


# ---------------------------------------------------------------------------
# Principals


_CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Argon2id with tiny parameters: hashing and verifying take ~1 ms."""
    monkeypatch.setattr(security, "_hasher", lambda: _CHEAP_HASHER)
    dummy = _CHEAP_HASHER.hash("not a password")
    monkeypatch.setattr(security, "_dummy_hash", lambda: dummy)
    yield


@dataclass(frozen=True)
class Principals:
    account_id: int
    owner_id: int
    admin_id: int
    member_id: int
    owner_token: str
    admin_token: str
    member_token: str
    api_token: str
    other_account_id: int
    other_owner_id: int
    other_admin_id: int
    other_admin_token: str

    def token(self, who: str) -> str | None:
        """By name: none, member, admin, owner, api, other_admin."""
        return {
            "none": None,
            "member": self.member_token,
            "admin": self.admin_token,
            "owner": self.owner_token,
            "api": self.api_token,
            "other_admin": self.other_admin_token,
        }[who]


async def accept_pending_invitation(user_id: int, clock: FixedClock) -> str:
    """Accept the user's latest invitation (owner's password-set link included):
    the bearer token of the session it starts."""
    invitation = await Invitation.filter(user_id=user_id).order_by("-id").first()
    assert invitation is not None
    grant = await users.accept_invitation(
        token=security.invitation_token(invitation.id, invitation.token_version),
        password=PASSWORD,
        clock=clock,
    )
    return grant.token


async def invite_and_accept(
    inviter: Principal, clock: FixedClock, *, email: str, first_name: str, role: Role
) -> tuple[int, str]:
    outcome = await users.invite_user(
        actor=inviter,
        email=email,
        first_name=first_name,
        last_name="Tester",
        role=role,
        clock=clock,
    )
    return outcome.user.id, await accept_pending_invitation(outcome.user.id, clock)


def owner_principal(account_id: int, owner_id: int) -> Principal:
    return Principal(account_id=account_id, kind=ActorKind.USER, role=Role.OWNER, user_id=owner_id)


@pytest.fixture
async def principals(db: str, clock: FixedClock, cheap_password_hashing: None) -> Principals:
    """Acme (5 seats: owner, ADMIN, MEMBER in use) and Globex (3 seats: owner, ADMIN)."""
    acme = await make_account(clock, seats=5)
    owner = owner_principal(acme.account_id, acme.owner_user_id)
    owner_token = await accept_pending_invitation(acme.owner_user_id, clock)
    admin_id, admin_token = await invite_and_accept(
        owner, clock, email="adam@example.com", first_name="Adam", role=Role.ADMIN
    )
    member_id, member_token = await invite_and_accept(
        owner, clock, email="mia@example.com", first_name="Mia", role=Role.MEMBER
    )
    globex = await make_account(clock, seats=3, email="boss@globex.example", name="Globex")
    other_owner = owner_principal(globex.account_id, globex.owner_user_id)
    other_admin_id, other_admin_token = await invite_and_accept(
        other_owner, clock, email="eve@globex.example", first_name="Eve", role=Role.ADMIN
    )
    return Principals(
        account_id=acme.account_id,
        owner_id=acme.owner_user_id,
        admin_id=admin_id,
        member_id=member_id,
        owner_token=owner_token,
        admin_token=admin_token,
        member_token=member_token,
        api_token=acme.api_token,
        other_account_id=globex.account_id,
        other_owner_id=globex.owner_user_id,
        other_admin_id=other_admin_id,
        other_admin_token=other_admin_token,
    )


# ---------------------------------------------------------------------------
# Requests


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


def top_codes(body: Mapping[str, Any]) -> list[str]:
    return [(error.get("extensions") or {}).get("code") for error in body.get("errors") or ()]


def payload_of(body: Mapping[str, Any], field: str) -> dict[str, Any]:
    """The mutation payload, asserting the request itself had no top-level error."""
    assert not body.get("errors"), body
    payload: dict[str, Any] = body["data"][field]
    return payload


def assert_refused(
    payload: Mapping[str, Any], code: str, *, field: str | None = None
) -> dict[str, Any]:
    """Exactly one {code, message, field} error; every other field null."""
    errors = payload["errors"]
    assert len(errors) == 1, payload
    error = errors[0]
    assert set(error) == {"code", "message", "field"}, error
    assert error["code"] == code, payload
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["field"] == field, payload
    others = {name: value for name, value in payload.items() if name != "errors"}
    assert all(value is None for value in others.values()), payload
    return dict(error)


def assert_succeeded(payload: Mapping[str, Any], *fields: str) -> None:
    """errors [] and each documented field non-null."""
    assert payload["errors"] == [], payload
    for name in fields:
        assert payload[name] is not None, (name, payload)


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


class Failures:
    """Run every case of a table, then report all the failing ones at once."""

    def __init__(self) -> None:
        self.found: dict[str, str] = {}

    @contextmanager
    def case(self, name: str) -> Iterator[None]:
        try:
            yield
        except AssertionError as failure:
            self.found[name] = str(failure)

    def check(self) -> None:
        assert self.found == {}, "\n".join(f"{name}: {why}" for name, why in self.found.items())
