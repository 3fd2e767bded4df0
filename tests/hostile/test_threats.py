"""One test per threat of docs/security.md, through the real ASGI app.

Accounts and principals come from tests/api/conftest.py (`principals`): Acme
(owner, ADMIN, MEMBER, API token) and Globex (owner without a password, an
ADMIN). Argon2 runs with cheap parameters there (same library and code paths),
except in the test of the storage parameters, which checks the real ones.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import re
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from argon2 import PasswordHasher, Type
from starlette.applications import Starlette

from api import cli
from api.logs import configure_logging
from domain import security
from domain.enums import EmailKind
from domain.models import ApiToken, Invitation, OutboxMessage, Session, User
from domain.reads import batches, summary
from domain.security import invitation_token, token_hash
from tests.hostile import invariants
from tests.support.database import TEST_SECRET_KEY
from tests.support.factories import PASSWORD
from tests.support.hostile_requests import (
    DEEPLY_NESTED_JSON,
    OVER_LIMIT_QUERIES,
    nested_query,
    oversized_body,
)
from tests.support.http_client import app_settings, gql, payload_of, top_codes
from tests.support.principals import Principals
from tests.support.snapshot import database_snapshot
from workers.mail.message import OutgoingEmail
from workers.outbox.delivery import deliver_outbox_message

pytestmark = pytest.mark.anyio

URL_SAFE_256_BITS = re.compile(r"^[A-Za-z0-9_-]{43}$")  # 32 bytes, base64url, no padding
API_SECRET = re.compile(r"^lic_[A-Za-z0-9_-]{43}$")
ERRORS = "errors { code message field }"

LOGIN = f"""mutation($input: LoginInput!) {{ login(input: $input) {{ token {ERRORS} }} }}"""
ACCEPT = f"""mutation($input: AcceptInvitationInput!) {{
  acceptInvitation(input: $input) {{ token {ERRORS} }} }}"""
INVITE = f"""mutation($input: InviteUserInput!) {{
  inviteUser(input: $input) {{ user {{ id }} invitation {{ id }} {ERRORS} }} }}"""
RESEND = f"mutation($id: ID!) {{ resendInvitation(userId: $id) {{ {ERRORS} }} }}"
LOGOUT = f"mutation {{ logout {{ {ERRORS} }} }}"
CREATE_TOKEN = f"""mutation {{ createApiToken(name: "ci") {{
  secret apiToken {{ id prefix }} {ERRORS} }} }}"""
REVOKE_TOKEN = f"mutation($id: ID!) {{ revokeApiToken(id: $id) {{ {ERRORS} }} }}"
UNASSIGN = f"mutation($id: ID!) {{ unassignLicense(userId: $id) {{ {ERRORS} }} }}"
TRANSFER = f"mutation($id: ID!) {{ transferOwnership(userId: $id) {{ {ERRORS} }} }}"
WHO_AM_I = "{ account { id } }"


def client_at(app: Starlette, address: str) -> httpx.AsyncClient:
    """A client whose requests come from `address` (the rate limit's client scope)."""
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def login(http: httpx.AsyncClient, email: str, password: str, **extra: Any) -> dict[str, Any]:
    body = await gql(
        http, LOGIN, variables={"input": {"email": email, "password": password, **extra}}
    )
    return payload_of(body, "login")


async def refused_as_unauthenticated(http: httpx.AsyncClient, token: str) -> bool:
    body = await gql(http, WHO_AM_I, token=token)
    return body["data"] is None and top_codes(body) == ["UNAUTHENTICATED"]


def secrets_in(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, secret in secrets.items() if secret and secret in text]


# ---------------------------------------------------------------------------
# Tenant isolation


async def test_ids_of_another_account_are_not_found_exactly_like_unknown_ids(
    client, principals: Principals
):
    """Globex's ADMIN aims every id-taking operation at Acme's ids: each answer is
    the one an id that exists nowhere gets (no existence oracle), and no Acme row
    changes."""
    p = principals
    acme_token_id = await ApiToken.filter(account_id=p.account_id).values_list("id", flat=True)
    before = await invariants.account_rows(p.account_id)
    operations = [
        ("unassignLicense", UNASSIGN, "id", str(p.member_id)),
        ("resendInvitation", RESEND, "id", str(p.member_id)),
        ("revokeApiToken", REVOKE_TOKEN, "id", str(acme_token_id[0])),
        (
            "assignLicense",
            f"mutation($id: ID!) {{ assignLicense(userId: $id) {{ {ERRORS} }} }}",
            "id",
            str(p.member_id),
        ),
        (
            "revokeInvitation",
            f"mutation($id: ID!) {{ revokeInvitation(userId: $id) {{ {ERRORS} }} }}",
            "id",
            str(p.member_id),
        ),
        (
            "updateUser",
            f'mutation($id: ID!) {{ updateUser(id: $id, input: {{firstName: "X"}}) '
            f"{{ {ERRORS} }} }}",
            "id",
            str(p.admin_id),
        ),
    ]
    for field, query, name, foreign_id in operations:
        foreign = payload_of(
            await gql(client, query, variables={name: foreign_id}, token=p.other_admin_token), field
        )
        unknown = payload_of(
            await gql(client, query, variables={name: "2000000000"}, token=p.other_admin_token),
            field,
        )
        assert foreign["errors"] == unknown["errors"], field
        assert foreign["errors"][0]["code"] == "NOT_FOUND", field
    read = "query($id: ID!) { account { id user(id: $id) { id email } } }"
    for user_id in (p.owner_id, p.member_id, 2_000_000_000):
        body = await gql(client, read, variables={"id": str(user_id)}, token=p.other_admin_token)
        assert not body.get("errors")
        assert body["data"]["account"] == {"id": str(p.other_account_id), "user": None}
    assert await invariants.account_rows(p.account_id) == before


# ---------------------------------------------------------------------------
# Token theft and revocation


async def test_session_and_api_token_secrets_are_stored_only_as_sha256(
    client, principals: Principals
):
    session = await login(client, "owner@example.com", PASSWORD)
    token = session["token"]
    assert URL_SAFE_256_BITS.match(token), token
    row = await Session.get(token_hash=hashlib.sha256(token.encode()).hexdigest())
    assert row.user_id == principals.owner_id

    created = payload_of(
        await gql(client, CREATE_TOKEN, token=principals.admin_token), "createApiToken"
    )
    secret = created["secret"]
    assert API_SECRET.match(secret), secret
    stored = await ApiToken.get(id=int(created["apiToken"]["id"]))
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert created["apiToken"]["prefix"] == secret[:12] == stored.prefix

    dump = repr(await database_snapshot())
    leaked = secrets_in(
        dump,
        {
            "session token": token,
            "API token secret": secret,
            "secret without its prefix": secret[12:],
            "password": PASSWORD,
            **{f"fixture token {i}": t for i, t in enumerate([principals.api_token])},
        },
    )
    assert not leaked


async def test_a_revoked_api_token_or_an_ended_session_is_refused_at_once(
    client, principals: Principals
):
    p = principals
    # Revoked API token: the very next request is refused.
    token_id = (await ApiToken.get(account_id=p.account_id)).id
    assert not await refused_as_unauthenticated(client, p.api_token)
    revoked = await gql(client, REVOKE_TOKEN, variables={"id": str(token_id)}, token=p.admin_token)
    assert payload_of(revoked, "revokeApiToken")["errors"] == []
    assert await refused_as_unauthenticated(client, p.api_token)

    # Signed out: that session only.
    second = (await login(client, "adam@example.com", PASSWORD))["token"]
    assert payload_of(await gql(client, LOGOUT, token=second), "logout")["errors"] == []
    assert await refused_as_unauthenticated(client, second)
    assert not await refused_as_unauthenticated(client, p.admin_token)

    # Licence released: every session of the user ends.
    unassigned = await gql(
        client, UNASSIGN, variables={"id": str(p.member_id)}, token=p.admin_token
    )
    assert payload_of(unassigned, "unassignLicense")["errors"] == []
    assert await refused_as_unauthenticated(client, p.member_token)

    # Ownership handed over: the previous owner's sessions end.
    moved = await gql(client, TRANSFER, variables={"id": str(p.admin_id)}, token=p.owner_token)
    assert payload_of(moved, "transferOwnership")["errors"] == []
    assert await refused_as_unauthenticated(client, p.owner_token)


# ---------------------------------------------------------------------------
# Invitation-token guessing


async def test_invitation_tokens_are_hmac_sha256_with_256_bits_in_url_safe_characters(
    client, principals: Principals
):
    invited = payload_of(
        await gql(
            client,
            INVITE,
            variables={
                "input": {"email": "new@example.com", "firstName": "New", "lastName": "Person"}
            },
            token=principals.admin_token,
        ),
        "inviteUser",
    )
    invitation = await Invitation.get(id=int(invited["invitation"]["id"]))
    token = invitation_token(invitation.id, invitation.token_version)
    assert URL_SAFE_256_BITS.match(token), token
    digest = hmac.new(
        TEST_SECRET_KEY,
        f"invitation:{invitation.id}:{invitation.token_version}".encode(),
        hashlib.sha256,
    ).digest()
    assert base64.urlsafe_b64decode(token + "=") == digest  # 32 bytes = 256 bits
    assert invitation.token_hash == token_hash(token)
    assert token not in repr(await database_snapshot())

    # A token made with another key, and the one a resend replaced, open nothing.
    forged = base64.urlsafe_b64encode(
        hmac.new(
            b"another-secret-key-0123456789abcdef",
            f"invitation:{invitation.id}:{invitation.token_version}".encode(),
            hashlib.sha256,
        ).digest()
    )
    resent = await gql(
        client, RESEND, variables={"id": invited["user"]["id"]}, token=principals.admin_token
    )
    assert payload_of(resent, "resendInvitation")["errors"] == []
    refusals = []
    for guess in (forged.rstrip(b"=").decode(), token, "A" * 43, token[:-1]):
        body = await gql(
            client, ACCEPT, variables={"input": {"token": guess, "password": "long enough 1"}}
        )
        refusals.append(payload_of(body, "acceptInvitation")["errors"])
    assert all(r == refusals[0] for r in refusals), refusals  # alike: no oracle
    assert refusals[0][0]["code"] == "INVITATION_INVALID"
    current = await Invitation.get(id=invitation.id)
    fresh = invitation_token(current.id, current.token_version)
    body = await gql(
        client, ACCEPT, variables={"input": {"token": fresh, "password": "long enough 1"}}
    )
    assert URL_SAFE_256_BITS.match(payload_of(body, "acceptInvitation")["token"])


# ---------------------------------------------------------------------------
# Brute force on login


async def test_failed_logins_are_limited_per_email_and_per_client_address(
    app, principals: Principals
):
    async with client_at(app, "203.0.113.1") as first, client_at(app, "203.0.113.2") as second:
        for _ in range(10):
            refused = await login(first, "mia@example.com", "wrong password")
            assert refused["errors"][0]["code"] == "INVALID_CREDENTIALS"
        # The email is locked, even with the right password, from anywhere.
        for http in (first, second):
            locked = await login(http, "mia@example.com", PASSWORD)
            assert locked["token"] is None
            assert locked["errors"][0]["code"] == "RATE_LIMITED"
    async with client_at(app, "203.0.113.3") as third, client_at(app, "203.0.113.4") as fourth:
        for attempt in range(10):
            await login(third, f"nobody{attempt}@example.com", "wrong password")
        # The address is locked for every email; another address is not.
        assert (await login(third, "adam@example.com", PASSWORD))["errors"][0][
            "code"
        ] == "RATE_LIMITED"
        assert URL_SAFE_256_BITS.match((await login(fourth, "adam@example.com", PASSWORD))["token"])


# ---------------------------------------------------------------------------
# Enumeration through errors or timing


async def test_a_failed_login_says_the_same_whatever_the_reason(client, principals: Principals):
    p = principals
    await gql(client, UNASSIGN, variables={"id": str(p.member_id)}, token=p.admin_token)  # DISABLED
    invited = await gql(
        client,
        INVITE,
        variables={
            "input": {"email": "ivy@example.com", "firstName": "Ivy", "lastName": "Invited"}
        },
        token=p.admin_token,
    )
    assert payload_of(invited, "inviteUser")["errors"] == []
    cases = {
        "unknown email": ("nobody@example.com", PASSWORD),
        "wrong password": ("adam@example.com", "not the password"),
        "disabled user": ("mia@example.com", PASSWORD),
        "invited, no password yet": ("ivy@example.com", PASSWORD),
        "owner who never set a password": ("boss@globex.example", PASSWORD),
        "not an email": ("not an email", PASSWORD),
        "other account's id": ("adam@example.com", PASSWORD, str(p.other_account_id)),
    }
    answers = {}
    for reason, (email, password, *account) in cases.items():
        extra = {"accountId": account[0]} if account else {}
        answers[reason] = await login(client, email, password, **extra)
    first = next(iter(answers.values()))
    assert first == {
        "token": None,
        "errors": [
            {"code": "INVALID_CREDENTIALS", "message": first["errors"][0]["message"], "field": None}
        ],
    }
    assert all(answer == first for answer in answers.values()), answers


class CountingHasher:
    """Wraps the (cheap) hasher of the tests; counts verifications."""

    def __init__(self, inner: PasswordHasher) -> None:
        self.inner = inner
        self.verified: list[int] = []  # length of each password verified

    def verify(self, hash: str, password: str) -> bool:
        self.verified.append(len(password))
        return self.inner.verify(hash, password)

    def hash(self, password: str) -> str:
        return self.inner.hash(password)


async def test_every_login_verifies_exactly_one_argon2_hash_known_email_or_not(
    client, principals: Principals, monkeypatch
):
    """Timing: an unknown email costs an Argon2 verification like a known one.
    Counted rather than timed (stable on a loaded machine)."""
    counting = CountingHasher(security._hasher())
    monkeypatch.setattr(security, "_hasher", lambda: counting)
    await gql(
        client, UNASSIGN, variables={"id": str(principals.member_id)}, token=principals.admin_token
    )
    cases = [
        ("nobody@example.com", "a wrong password"),
        ("adam@example.com", "a wrong password"),
        ("adam@example.com", PASSWORD),
        ("mia@example.com", PASSWORD),  # DISABLED
        ("boss@globex.example", PASSWORD),  # no password yet
        ("not an email at all", PASSWORD),
        ("nobody@example.com", "x" * 100_000),  # longer than any password may be
    ]
    for email, password in cases:
        counting.verified.clear()
        await login(client, email, password)
        assert len(counting.verified) == 1, (email, counting.verified)
        assert counting.verified[0] <= security.MAX_PASSWORD_LENGTH


# ---------------------------------------------------------------------------
# CSRF with bearer tokens


async def test_the_api_sets_no_cookie_ignores_cookies_and_allows_no_cross_origin_reads(
    client, principals: Principals
):
    signed_in = await client.post(
        "/graphql",
        json={
            "query": LOGIN,
            "variables": {"input": {"email": "adam@example.com", "password": PASSWORD}},
        },
    )
    token = signed_in.json()["data"]["login"]["token"]
    assert token
    responses = [signed_in]
    # A browser would send cookies by itself: they are no credential here.
    for cookie in (f"session={token}", f"token={token}", f"Authorization=Bearer {token}"):
        response = await client.post(
            "/graphql",
            json={"query": WHO_AM_I},
            headers={"Cookie": cookie, "Origin": "https://evil.example"},
        )
        assert top_codes(response.json()) == ["UNAUTHENTICATED"]
        responses.append(response)
    responses.append(
        await client.post(
            "/graphql",
            json={"query": WHO_AM_I},
            headers={"Authorization": f"Bearer {token}", "Origin": "https://evil.example"},
        )
    )
    preflight = await client.options(
        "/graphql",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code >= 400
    responses.append(preflight)
    for response in responses:
        assert "set-cookie" not in response.headers
        assert not [h for h in response.headers if h.startswith("access-control-allow")]


# ---------------------------------------------------------------------------
# Denial of service through expensive queries


async def test_expensive_queries_are_refused_before_they_run(
    client, principals: Principals, monkeypatch
):
    calls = []
    original = batches.assignments_by_user_ids

    async def counted(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return await original(**kwargs)

    monkeypatch.setattr(batches, "assignments_by_user_ids", counted)
    token = principals.owner_token
    for reason, query in OVER_LIMIT_QUERIES.items():
        body = await gql(client, query, token=token)
        assert body["data"] is None, reason
        assert top_codes(body) == ["INVALID_INPUT"], (reason, body)
    assert calls == []  # nothing ran
    body = await gql(client, "{ account { users(first: 201) { totalCount } } }", token=token)
    assert top_codes(body) == ["INVALID_INPUT"]
    huge = await client.post(
        "/graphql",
        content=oversized_body(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    nested_json = await client.post(
        "/graphql",
        content=DEEPLY_NESTED_JSON,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert nested_json.status_code == 400
    # Within the limits the same shapes run.
    assert not (await gql(client, nested_query(10), token=token)).get("errors")


# ---------------------------------------------------------------------------
# Secrets in logs


class KeepingMailer:
    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []

    async def send(self, email: OutgoingEmail) -> None:
        self.sent.append(email)

    async def send_batch(self, emails: Any) -> list[None]:
        self.sent.extend(emails)
        return [None for _ in emails]

    async def aclose(self) -> None:
        return None


@contextmanager
def debug_logs_to(buffer: io.StringIO) -> Iterator[None]:
    """The service's own logging set-up at DEBUG (JSON lines), into `buffer`."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    named = ("tortoise", "aiosqlite", "uvicorn.access", "asyncio")
    levels = {name: logging.getLogger(name).level for name in named}
    configure_logging(level="DEBUG", fmt="json")
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        for name, value in levels.items():
            logging.getLogger(name).setLevel(value)


async def test_debug_logs_of_login_invite_and_accept_hold_no_secret(
    client, principals: Principals, db, clock, monkeypatch
):
    buffer = io.StringIO()
    mailer = KeepingMailer()
    seen: dict[str, str] = {
        "password": PASSWORD,
        "wrong password": "not-the-password-41",
        "new password": "brand new password 7",
        "secret key": TEST_SECRET_KEY.decode(),
        **{
            f"fixture token {i}": t
            for i, t in enumerate(
                [principals.owner_token, principals.admin_token, principals.api_token]
            )
        },
    }
    # An unexpected error on the way, to see what its stack trace tells.
    broken = {"on": False}
    original = summary.summarize

    def sometimes_broken(*args: Any, **kwargs: Any) -> Any:
        if broken["on"]:
            raise RuntimeError("boom")
        return original(*args, **kwargs)

    monkeypatch.setattr(summary, "summarize", sometimes_broken)
    with debug_logs_to(buffer):
        await login(client, "adam@example.com", seen["wrong password"])
        seen["session"] = (await login(client, "adam@example.com", PASSWORD))["token"]
        invited = payload_of(
            await gql(
                client,
                INVITE,
                variables={
                    "input": {"email": "newbie@example.com", "firstName": "New", "lastName": "Bie"}
                },
                token=seen["session"],
            ),
            "inviteUser",
        )
        row = await OutboxMessage.filter(kind=EmailKind.INVITATION).order_by("-id").first()
        assert row is not None
        await deliver_outbox_message(row.id, mailer=mailer, clock=clock, settings=app_settings(db))
        link = next(part for part in mailer.sent[-1].text.split() if "accept-invitation" in part)
        seen["invitation token"] = parse_qs(urlsplit(link).query)["token"][0]
        accepted = await gql(
            client,
            ACCEPT,
            variables={
                "input": {"token": seen["invitation token"], "password": seen["new password"]}
            },
        )
        seen["accepted session"] = payload_of(accepted, "acceptInvitation")["token"]
        created = await gql(client, CREATE_TOKEN, token=seen["accepted session"])
        assert payload_of(created, "createApiToken")["errors"][0]["code"] == "FORBIDDEN"  # MEMBER
        created = await gql(client, CREATE_TOKEN, token=seen["session"])
        seen["API token"] = payload_of(created, "createApiToken")["secret"]
        await gql(client, WHO_AM_I, token=seen["API token"])
        broken["on"] = True
        masked = await gql(client, "{ account { licenses { total } } }", token=seen["API token"])
        assert masked["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    logged = buffer.getvalue()
    # The capture works: the delivery's line and the masked error's stack trace.
    assert "INVITATION sent" in logged
    assert "boom" in logged
    assert invited["user"]["id"]
    hashes = await User.filter(password_hash__isnull=False).values_list("password_hash", flat=True)
    seen.update({f"password hash {i}": h for i, h in enumerate(hashes)})
    assert not secrets_in(logged, seen), secrets_in(logged, seen)
    for line in logged.splitlines():
        json.loads(line)  # one JSON object per line, nothing else
    assert "$argon2" not in logged


# ---------------------------------------------------------------------------
# What responses reveal


FORBIDDEN_WORDS = (
    "traceback",
    'file "',
    "boom",
    "runtimeerror",
    "strawberry",
    "starlette",
    "uvicorn",
    "python",
    "tortoise",
    "asyncpg",
    "sqlite",
    "/srv/",
    "site-packages",
)


async def test_responses_reveal_no_stack_trace_no_server_and_no_version(
    client, principals: Principals, db, monkeypatch
):
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom at /srv/app/domain/reads/summary.py line 3")

    token = principals.owner_token
    auth = {"Authorization": f"Bearer {token}"}
    responses = [
        await client.post("/graphql", json={"query": WHO_AM_I}, headers=auth),
        await client.post("/graphql", json={"query": "{ nope }"}, headers=auth),
        await client.post("/graphql", content=b"{", headers={"Content-Type": "application/json"}),
        await client.put("/graphql", json={"query": WHO_AM_I}),
        await client.get("/nothing-here"),
        await client.get("/healthz"),
        await client.get("/metrics"),
    ]
    monkeypatch.setattr(summary, "summarize", broken)
    masked = await client.post(
        "/graphql", json={"query": "{ account { licenses { total } } }"}, headers=auth
    )
    assert masked.json()["errors"][0]["message"].startswith("Internal server error (request id")
    responses.append(masked)
    for response in responses:
        assert response.status_code < 500 or response is masked
        assert "server" not in response.headers
        assert "x-powered-by" not in response.headers
        text = response.text.lower()
        if response.request.url.path == "/metrics":
            text = text.replace("python_", "")  # the standard process collector's names
        assert not [word for word in FORBIDDEN_WORDS if word in text], response.text[:500]

    # The real server: `licenses serve` turns uvicorn's Server header off.
    captured: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: captured.update(kw))
    args = types.SimpleNamespace(host=None, port=None, workers=1)
    assert cli._serve(args, app_settings(db)) == 0
    assert captured["server_header"] is False


# ---------------------------------------------------------------------------
# Token and password storage parameters


async def test_passwords_use_argon2id_t3_m64mib_p4_and_tokens_sha256():
    defaults = PasswordHasher()
    assert (defaults.time_cost, defaults.memory_cost, defaults.parallelism) == (3, 65536, 4)
    assert defaults.type is Type.ID
    hasher = security._hasher()  # the service's own (no cheap test hasher here)
    assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism, hasher.type) == (
        3,
        65536,
        4,
        Type.ID,
    )
    stored = security.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert security.verify_password(stored, "correct horse battery")
    assert not security.verify_password(stored, "correct horse batterY")
    token = security.random_token()
    assert URL_SAFE_256_BITS.match(token)
    assert len(base64.urlsafe_b64decode(token + "=")) == 32
    assert security.token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert API_SECRET.match(security.new_api_token_secret())
