"""CSV exports, GET /export/users.csv and /export/audit.csv (SPEC section 11): the rows
of the database, RFC 4180 text safe for spreadsheets, bearer authentication as /graphql,
and failures that never pass for a complete file."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from domain import config
from domain.clock import FixedClock
from domain.enums import ActorKind, ApiTokenScope, AuditAction, Role, UserStatus
from domain.models import ApiToken, AuditEvent, LicenseAssignment, User
from domain.reads import exports
from domain.services import auth
from domain.sql import Statement
from schema.scalars import serialize_datetime
from tests.support.factories import add_user
from tests.support.http_client import auth_headers, build_app, client_for
from tests.support.principals import Principals, owner_principal
from tests.support.served_app import served

pytestmark = pytest.mark.anyio

USERS = "/export/users.csv"
AUDIT = "/export/audit.csv"
BATCH = 3
USER_HEADER = [
    "id",
    "email",
    "firstName",
    "lastName",
    "role",
    "isOwner",
    "status",
    "hasLicense",
    "qualification",
    "createdAt",
    "lastActiveAt",
    "licenseAssignedAt",
]
AUDIT_HEADER = [
    "id",
    "createdAt",
    "action",
    "actorKind",
    "actor.id",
    "actor.email",
    "actor.name",
    "actorToken.id",
    "actorToken.name",
    "target.id",
    "target.email",
    "target.name",
    "data",
]


@pytest.fixture
def small_batches(db: str, clock: FixedClock, domain_config: config.DomainConfig) -> Starlette:
    """The app reading BATCH rows per statement, so every export here spans batches."""
    return build_app(db, clock, domain_config, export_batch_size=BATCH)


@pytest.fixture
async def http(small_batches: Starlette) -> Any:
    async with client_for(small_batches) as client:
        yield client


def records(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.text, newline=""), strict=True))


def text(value: datetime | None) -> str:
    return "" if value is None else serialize_datetime(value)


def flag(value: bool) -> str:
    return "true" if value else "false"


async def users_in_database(account_id: int) -> list[list[str]]:
    """What users.csv must say, from the ORM: oldest first, ties by id."""
    users = await User.filter(account_id=account_id).order_by("created_at", "id")
    open_assignments = {
        a.user_id: a.assigned_at
        for a in await LicenseAssignment.filter(account_id=account_id, unassigned_at__isnull=True)
    }
    return [
        [
            str(u.id),
            u.email,
            u.first_name,
            u.last_name,
            u.role.value,
            flag(u.role == Role.OWNER),
            u.status.value,
            flag(u.holds_license),
            u.qualification or "",
            text(u.created_at),
            text(u.last_active_at),
            text(open_assignments.get(u.id)),
        ]
        for u in users
    ]


async def audit_in_database(account_id: int) -> list[list[Any]]:
    """What audit.csv must say (its data cell parsed), from the ORM: oldest first."""
    users = {u.id: u for u in await User.filter(account_id=account_id)}
    tokens = {t.id: t for t in await ApiToken.filter(account_id=account_id)}
    rows: list[list[Any]] = []
    for e in await AuditEvent.filter(account_id=account_id).order_by("id"):
        actor = users.get(e.actor_user_id) if e.actor_user_id else None
        token = tokens.get(e.actor_token_id) if e.actor_token_id else None
        target = users.get(e.target_user_id) if e.target_user_id else None
        rows.append(
            [
                str(e.id),
                text(e.created_at),
                e.action.value,
                e.actor_kind.value,
                str(actor.id) if actor else "",
                actor.email if actor else "",
                actor.name if actor else "",
                str(token.id) if token else "",
                token.name if token else "",
                str(target.id) if target else "",
                target.email if target else "",
                target.name if target else "",
                e.data,
            ]
        )
    return rows


def parsed_audit(rows: list[list[str]]) -> list[list[Any]]:
    return [[*row[:-1], json.loads(row[-1]) if row[-1] else None] for row in rows]


async def awkward_users(principals: Principals, clock: FixedClock) -> None:
    """Users whose names and qualifications need quoting, some in every status."""
    base = clock.now() - timedelta(days=30)
    await add_user(
        principals.account_id,
        created_at=base,
        first_name="Ann, Jr.",
        last_name='O"Hara',
        qualification='Says "hello", then\r\nleaves',
        last_active_at=base + timedelta(days=2),
    )
    await add_user(
        principals.account_id,
        created_at=base,  # the same time: ordered by id
        email="line@example.com",
        first_name="Multi\nLine",
        last_name="Name",
        status=UserStatus.INVITED,
        licensed=True,
        invited_at=base + timedelta(hours=1),
    )
    await add_user(
        principals.account_id,
        created_at=base + timedelta(days=1),
        email="gone@example.com",
        status=UserStatus.DISABLED,
        qualification="Ünïcödé ✓",
    )
    for n in range(4):
        await add_user(
            principals.account_id,
            # Fractions of a second, and a time given in another zone.
            created_at=base + timedelta(days=3, minutes=n, microseconds=n * 250_001),
            email=f"plain{n}@example.com",
            role=Role.ADMIN if n == 0 else Role.MEMBER,
            last_active_at=(base + timedelta(days=4, microseconds=5)).astimezone(
                timezone(timedelta(hours=2))
            ),
        )


# --- users.csv ---------------------------------------------------------------


async def test_given_users_spanning_several_batches_when_exported_then_the_csv_matches_the_database_row_for_row(  # noqa: E501
    http: httpx.AsyncClient, principals: Principals, clock: FixedClock
):
    await awkward_users(principals, clock)

    response = await http.get(USERS, headers=auth_headers(principals.admin_token))

    header, *rows = records(response)
    expected = await users_in_database(principals.account_id)
    assert header == USER_HEADER
    assert len(expected) > 3 * BATCH
    assert rows == expected
    assert {row[1] for row in rows}.isdisjoint({"boss@globex.example", "eve@globex.example"})


async def test_given_names_with_commas_quotes_and_newlines_when_exported_then_rfc_4180_text(
    http: httpx.AsyncClient, principals: Principals, clock: FixedClock
):
    await awkward_users(principals, clock)

    response = await http.get(USERS, headers=auth_headers(principals.owner_token))

    body = response.content.decode("utf-8")
    assert body.startswith(",".join(USER_HEADER) + "\r\n")
    assert body.endswith("\r\n")
    assert '"Ann, Jr.","O""Hara"' in body
    assert '"Says ""hello"", then\r\nleaves"' in body
    assert '"Multi\nLine",Name' in body
    # Outside quoted fields every record ends with CRLF.
    unquoted = "".join(part for i, part in enumerate(body.split('"')) if i % 2 == 0)
    assert "\n" not in unquoted.replace("\r\n", "")
    assert len(records(response)) == 1 + len(await users_in_database(principals.account_id))


async def test_given_cells_that_start_like_formulas_when_exported_then_each_is_prefixed_with_a_quote(  # noqa: E501
    http: httpx.AsyncClient, principals: Principals, clock: FixedClock
):
    created = clock.now() - timedelta(days=1)
    starts = ['=HYPERLINK("http://evil.example","x")', "+1", "-2+3", "@SUM(A1)", "\tTab", "\rCR"]
    for n, start in enumerate(starts):
        await add_user(
            principals.account_id,
            created_at=created + timedelta(minutes=n),
            email=f"f{n}@example.com",
            first_name=start,
            last_name="Safe",
            qualification=start,
        )

    response = await http.get(USERS, headers=auth_headers(principals.admin_token))

    by_email = {row[1]: row for row in records(response)[1:]}
    for n, start in enumerate(starts):
        row = by_email[f"f{n}@example.com"]
        assert (row[2], row[3], row[8]) == ("'" + start, "Safe", "'" + start)


async def test_given_a_status_when_users_are_exported_then_only_that_status(
    http: httpx.AsyncClient, principals: Principals, clock: FixedClock
):
    await awkward_users(principals, clock)

    response = await http.get(
        USERS, params={"status": "INVITED"}, headers=auth_headers(principals.api_token)
    )

    rows = records(response)[1:]
    expected = [
        row for row in await users_in_database(principals.account_id) if row[6] == "INVITED"
    ]
    assert rows == expected and len(rows) == 1


async def test_given_no_matching_user_when_exported_then_the_header_row_alone(
    http: httpx.AsyncClient, principals: Principals
):
    response = await http.get(
        USERS, params={"status": "DISABLED"}, headers=auth_headers(principals.admin_token)
    )

    assert response.content == (",".join(USER_HEADER) + "\r\n").encode()


async def test_given_an_export_when_answered_then_csv_headers_name_the_account_and_the_date(
    http: httpx.AsyncClient, principals: Principals
):
    users = await http.get(USERS, headers=auth_headers(principals.owner_token))
    audit = await http.get(AUDIT, headers=auth_headers(principals.owner_token))
    with_bom = await http.get(
        USERS, params={"bom": "true"}, headers=auth_headers(principals.owner_token)
    )

    day = "2026-03-10"  # the test clock's
    assert users.headers["content-type"] == "text/csv; charset=utf-8"
    assert users.headers["content-disposition"] == (
        f'attachment; filename="users-account-{principals.account_id}-{day}.csv"'
    )
    assert audit.headers["content-disposition"] == (
        f'attachment; filename="audit-account-{principals.account_id}-{day}.csv"'
    )
    assert users.headers["cache-control"] == "no-store"
    assert users.content.startswith(b"id,email,")  # no byte order mark unless asked
    assert with_bom.content.startswith(b"\xef\xbb\xbfid,email,")
    assert with_bom.content[3:] == users.content


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (USERS, {"status": "ACTIVE"}),
        (USERS, {"bom": "yes"}),
        (USERS, {"sort": "name"}),
        (AUDIT, {"status": "ENABLED"}),
    ],
)
async def test_given_a_bad_parameter_when_exported_then_400_invalid_input(
    http: httpx.AsyncClient, principals: Principals, path: str, params: dict[str, str]
):
    response = await http.get(path, params=params, headers=auth_headers(principals.admin_token))

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "INVALID_INPUT"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]


# --- audit.csv ---------------------------------------------------------------


async def test_given_an_audit_log_spanning_several_batches_when_exported_then_it_matches_the_database_oldest_first(  # noqa: E501
    http: httpx.AsyncClient, principals: Principals, clock: FixedClock
):
    token = await ApiToken.get(account_id=principals.account_id)
    await AuditEvent.create(
        account_id=principals.account_id,
        action=AuditAction.USER_UPDATED,
        actor_kind=ActorKind.API_TOKEN,
        actor_token_id=token.id,
        target_user_id=principals.member_id,
        data={"before": {"lastName": 'O"Hara, Jr.'}, "after": {"lastName": "=1+1\nü"}},
        created_at=clock.now(),
    )
    await AuditEvent.create(
        account_id=principals.account_id,
        action=AuditAction.PERIOD_RENEWED,
        actor_kind=ActorKind.SYSTEM,
        data=None,
        created_at=clock.now() + timedelta(seconds=1),
    )

    response = await http.get(AUDIT, headers=auth_headers(principals.admin_token))

    header, *rows = records(response)
    expected = await audit_in_database(principals.account_id)
    assert header == AUDIT_HEADER
    assert len(expected) > 2 * BATCH
    assert parsed_audit(rows) == expected
    assert {row[0] for row in rows}.isdisjoint(
        {str(e.id) for e in await AuditEvent.filter(account_id=principals.other_account_id)}
    )


async def test_given_another_accounts_admin_when_exporting_then_only_its_own_account(
    http: httpx.AsyncClient, principals: Principals
):
    users = await http.get(USERS, headers=auth_headers(principals.other_admin_token))
    audit = await http.get(AUDIT, headers=auth_headers(principals.other_admin_token))

    assert records(users)[1:] == await users_in_database(principals.other_account_id)
    assert parsed_audit(records(audit)[1:]) == await audit_in_database(principals.other_account_id)
    assert "adam@example.com" not in users.text and "mia@example.com" not in audit.text


# --- who may export ------------------------------------------------------------


@pytest.mark.parametrize("path", [USERS, AUDIT])
@pytest.mark.parametrize("who", ["owner", "admin", "api"])
async def test_given_an_admin_owner_or_api_token_when_exporting_then_200(
    http: httpx.AsyncClient, principals: Principals, path: str, who: str
):
    response = await http.get(path, headers=auth_headers(principals.token(who)))

    assert response.status_code == 200
    assert len(records(response)) > 1


@pytest.mark.parametrize("path", [USERS, AUDIT])
@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer lic_not-a-token", "Basic abc"])
async def test_given_no_valid_bearer_token_when_exporting_then_401_json(
    http: httpx.AsyncClient, principals: Principals, path: str, authorization: str | None
):
    headers = {"Authorization": authorization} if authorization else {}

    response = await http.get(path, headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("path", [USERS, AUDIT])
async def test_given_a_member_or_a_scim_only_token_when_exporting_then_403_json(
    http: httpx.AsyncClient, principals: Principals, clock: FixedClock, path: str
):
    scim_only = await auth.create_api_token(
        actor=owner_principal(principals.account_id, principals.owner_id),
        name="idp",
        scopes=(ApiTokenScope.SCIM,),
        clock=clock,
    )

    member = await http.get(path, headers=auth_headers(principals.member_token))
    provider = await http.get(path, headers=auth_headers(scim_only.secret))

    for response in (member, provider):
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/json"
        assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "Mia" not in member.text


# --- failures -------------------------------------------------------------------


def failing_from(fetch_number: int) -> type:
    """A Statement whose `fetch_number`-th fetch (and every later one) finds the database gone."""
    calls = {"n": 0}

    class Failing(Statement):
        async def rows(self, text: str) -> Any:
            calls["n"] += 1
            if calls["n"] >= fetch_number:
                raise ConnectionRefusedError(111, "Connection refused")
            return await super().rows(text)

    return Failing


@pytest.mark.parametrize("path", [USERS, AUDIT])
async def test_given_the_database_down_when_an_export_starts_then_503_with_retry_after_before_any_byte(  # noqa: E501
    http: httpx.AsyncClient, principals: Principals, monkeypatch: pytest.MonkeyPatch, path: str
):
    monkeypatch.setattr(exports, "Statement", failing_from(1))

    response = await http.get(path, headers=auth_headers(principals.admin_token))

    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]


async def test_given_a_real_server_when_exported_then_a_chunked_body_that_ends_complete(
    small_batches: Starlette, principals: Principals, clock: FixedClock
):
    await awkward_users(principals, clock)

    async with served(small_batches) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        response = await client.get(USERS, headers=auth_headers(principals.admin_token))

    assert response.headers["transfer-encoding"] == "chunked"
    assert records(response)[1:] == await users_in_database(principals.account_id)


async def test_given_the_database_lost_mid_export_when_streaming_then_the_download_ends_visibly_broken(  # noqa: E501
    small_batches: Starlette,
    principals: Principals,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
):
    await awkward_users(principals, clock)
    monkeypatch.setattr(exports, "Statement", failing_from(3))  # after two batches
    received = b""

    async with (
        served(small_batches) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
        client.stream("GET", USERS, headers=auth_headers(principals.admin_token)) as response,
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            async for chunk in response.aiter_bytes():
                received += chunk

    assert response.status_code == 200
    lines = received.decode("utf-8").split("\r\n")
    assert lines[0] == ",".join(USER_HEADER)
    assert len(records_of(received)) == 1 + 2 * BATCH  # what was sent arrived; then the break


def records_of(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


async def test_given_a_head_request_when_answered_then_the_headers_of_get_and_one_batch_read(
    http: httpx.AsyncClient,
    principals: Principals,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
):
    await awkward_users(principals, clock)
    fetched: list[str] = []

    class Counting(Statement):
        async def rows(self, text: str) -> Any:
            fetched.append(text)
            return await super().rows(text)

    monkeypatch.setattr(exports, "Statement", Counting)

    response = await http.head(USERS, headers=auth_headers(principals.admin_token))

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "content-disposition" in response.headers
    assert response.content == b""
    assert len(fetched) == 1  # the first batch (the database answers); not the rest
