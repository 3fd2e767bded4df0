import logging
from datetime import timedelta

import pytest

from domain.enums import ActorKind, AuditAction, Role, UserStatus
from domain.errors import ErrorCode
from domain.models import ApiToken, AuditEvent, LoginFailure, Session, User
from domain.principal import Principal
from domain.security import token_hash
from domain.services import auth
from domain.services.auth import (
    INVALID_CREDENTIALS_MESSAGE,
    authenticate,
    create_api_token,
    login,
    logout,
    prune_login_failures,
    revoke_api_token,
)
from tests.support.assertions import refused
from tests.support.factories import add_user, hashed_password, make_account
from tests.support.principals import as_user
from tests.support.snapshot import database_snapshot

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery staple"
OTHER_PASSWORD = "another long password"


async def set_password(user_id: int, password: str = PASSWORD) -> None:
    await User.filter(id=user_id).update(password_hash=hashed_password(password))


@pytest.fixture
def verifications(monkeypatch) -> list[bool]:
    """Every Argon2 verification login makes, with its result."""
    calls: list[bool] = []
    original = auth.verify_password

    def counting(password_hash: str | None, password: str) -> bool:
        result = original(password_hash, password)
        calls.append(result)
        return result

    monkeypatch.setattr(auth, "verify_password", counting)
    return calls


# --- login -------------------------------------------------------------------


async def test_given_owner_with_password_when_login_then_session_authenticates(account, clock):
    await set_password(account.owner_user_id)

    grant = await login(email="  Owner@Example.COM ", password=PASSWORD, clock=clock)

    assert grant.user.id == account.owner_user_id
    assert grant.expires_at == clock.now() + timedelta(days=14)
    session = await Session.get(token_hash=token_hash(grant.token))
    assert (session.user_id, session.ended_at) == (account.owner_user_id, None)
    principal = await authenticate(bearer=grant.token, clock=clock)
    assert principal == Principal(
        account_id=account.account_id,
        kind=ActorKind.USER,
        role=Role.OWNER,
        user_id=account.owner_user_id,
        session_id=session.id,
    )
    assert await LoginFailure.all().count() == 0


async def test_given_invited_user_with_password_when_login_then_session(account, clock):
    user = await add_user(
        account.account_id,
        email="invited@example.com",
        status=UserStatus.INVITED,
        password=PASSWORD,
        created_at=clock.now(),
    )

    grant = await login(email="invited@example.com", password=PASSWORD, clock=clock)

    assert grant.user.id == user.id


@pytest.mark.parametrize(
    ("case", "email", "password", "account_id"),
    [
        ("unknown email", "nobody@example.com", PASSWORD, None),
        ("wrong password", "member@example.com", "wrong password!", None),
        ("disabled user", "disabled@example.com", PASSWORD, None),
        ("no password", "owner@example.com", PASSWORD, None),
        ("not an email", "not an email", PASSWORD, None),
        ("other account", "member@example.com", PASSWORD, "999999"),
        ("malformed account id", "member@example.com", PASSWORD, "abc"),
        ("account id out of range", "member@example.com", PASSWORD, "99999999999999999"),
        ("password too long", "member@example.com", PASSWORD + "x" * 300, None),
    ],
)
async def test_given_bad_credentials_when_login_then_same_invalid_credentials_and_failures_recorded(
    account, clock, verifications, case, email, password, account_id
):
    await add_user(
        account.account_id, email="member@example.com", password=PASSWORD, created_at=clock.now()
    )
    await add_user(
        account.account_id,
        email="disabled@example.com",
        status=UserStatus.DISABLED,
        password=PASSWORD,
        created_at=clock.now(),
    )
    before = await Session.all().count()

    error = await refused(
        login(
            email=email,
            password=password,
            account_id=account_id,
            client_address="203.0.113.7",
            clock=clock,
        ),
        ErrorCode.INVALID_CREDENTIALS,
    )

    assert (error.message, error.field) == (INVALID_CREDENTIALS_MESSAGE, None)
    assert await Session.all().count() == before
    # Always Argon2 work, never a match, whether or not the email exists.
    assert verifications == [False]
    scopes = sorted(await LoginFailure.all().values_list("scope", flat=True))
    assert len(scopes) == 2
    assert scopes[0] == "client:203.0.113.7"
    assert scopes[1].startswith("email:")


async def test_given_same_email_and_password_in_two_accounts_when_login_then_account_required(
    db, clock
):
    first = await make_account(clock, email="shared@example.com", name="First")
    second = await make_account(clock, email="Shared@Example.com", name="Second")
    await set_password(first.owner_user_id)
    await set_password(second.owner_user_id)

    error = await refused(
        login(email="shared@example.com", password=PASSWORD, clock=clock),
        ErrorCode.ACCOUNT_REQUIRED,
    )
    grant = await login(
        email="shared@example.com",
        password=PASSWORD,
        account_id=str(second.account_id),
        clock=clock,
    )

    assert error.field == "accountId"
    assert grant.user.id == second.owner_user_id
    assert await LoginFailure.all().count() == 0


async def test_given_same_email_with_different_passwords_when_login_then_the_matching_account(
    db, clock
):
    first = await make_account(clock, email="shared@example.com", name="First")
    second = await make_account(clock, email="shared@example.com", name="Second")
    await set_password(first.owner_user_id)
    await set_password(second.owner_user_id, OTHER_PASSWORD)

    grant = await login(email="shared@example.com", password=OTHER_PASSWORD, clock=clock)

    assert grant.user.id == second.owner_user_id


async def test_given_ten_failures_for_an_email_when_login_then_rate_limited_until_window_passes(
    account, clock, verifications
):
    await set_password(account.owner_user_id)
    for attempt in range(10):
        await refused(
            login(
                email="owner@example.com",
                password="wrong password!",
                client_address=f"198.51.100.{attempt}",
                clock=clock,
            ),
            ErrorCode.INVALID_CREDENTIALS,
        )
        clock.advance(timedelta(seconds=10))
    verifications.clear()

    await refused(
        login(
            email="OWNER@example.com",
            password=PASSWORD,
            client_address="192.0.2.1",
            clock=clock,
        ),
        ErrorCode.RATE_LIMITED,
    )
    assert verifications == []  # refused before any password work
    assert await LoginFailure.filter(scope="email:owner@example.com").count() == 10

    clock.advance(timedelta(minutes=15) - timedelta(seconds=101))  # first: 14:59 ago
    await refused(
        login(email="owner@example.com", password=PASSWORD, clock=clock),
        ErrorCode.RATE_LIMITED,
    )
    clock.advance(timedelta(seconds=1))  # the first failure is now 15 minutes old
    grant = await login(email="owner@example.com", password=PASSWORD, clock=clock)
    assert grant.user.id == account.owner_user_id


async def test_given_ten_failures_from_a_client_when_login_then_rate_limited_for_that_client(
    account, clock
):
    await set_password(account.owner_user_id)
    for attempt in range(10):
        await refused(
            login(
                email=f"guess{attempt}@example.com",
                password=PASSWORD,
                client_address="203.0.113.7",
                clock=clock,
            ),
            ErrorCode.INVALID_CREDENTIALS,
        )

    await refused(
        login(
            email="owner@example.com",
            password=PASSWORD,
            client_address="203.0.113.7",
            clock=clock,
        ),
        ErrorCode.RATE_LIMITED,
    )
    other_client = await login(
        email="owner@example.com", password=PASSWORD, client_address="192.0.2.1", clock=clock
    )
    clock.advance(timedelta(minutes=15))
    same_client = await login(
        email="owner@example.com",
        password=PASSWORD,
        client_address="203.0.113.7",
        clock=clock,
    )

    assert other_client.user.id == same_client.user.id == account.owner_user_id


async def test_given_old_and_recent_failures_when_pruned_then_only_recent_remain(db, clock):
    await LoginFailure.create(scope="email:a@example.com", created_at=clock.now())
    clock.advance(timedelta(minutes=10))
    await LoginFailure.create(scope="email:a@example.com", created_at=clock.now())
    clock.advance(timedelta(minutes=5))

    pruned = await prune_login_failures(clock=clock)

    assert pruned == 1
    assert await LoginFailure.all().values_list("created_at", flat=True) == [
        clock.now() - timedelta(minutes=5)
    ]


# --- logout and authenticate -------------------------------------------------------


async def test_given_session_when_logout_then_authenticate_fails(account, clock):
    await set_password(account.owner_user_id)
    grant = await login(email="owner@example.com", password=PASSWORD, clock=clock)
    principal = await authenticate(bearer=grant.token, clock=clock)

    await logout(actor=principal, clock=clock)

    session = await Session.get(id=principal.session_id)
    assert session.ended_at == clock.now()
    await refused(authenticate(bearer=grant.token, clock=clock), ErrorCode.UNAUTHENTICATED)


async def test_given_api_token_principal_when_logout_then_nothing_changes(
    account, api_token_actor, clock
):
    before = await database_snapshot()

    await logout(actor=api_token_actor, clock=clock)

    assert await database_snapshot() == before
    principal = await authenticate(bearer=account.api_token, clock=clock)
    assert principal.token_id == api_token_actor.token_id


async def test_given_expired_session_when_authenticate_then_unauthenticated(account, clock):
    await set_password(account.owner_user_id)
    grant = await login(email="owner@example.com", password=PASSWORD, clock=clock)
    clock.advance(timedelta(days=14) - timedelta(seconds=1))
    await authenticate(bearer=grant.token, clock=clock)

    clock.advance(timedelta(seconds=1))

    await refused(authenticate(bearer=grant.token, clock=clock), ErrorCode.UNAUTHENTICATED)


async def test_given_disabled_user_when_authenticate_then_unauthenticated(account, clock):
    user = await add_user(
        account.account_id, email="member@example.com", password=PASSWORD, created_at=clock.now()
    )
    grant = await login(email="member@example.com", password=PASSWORD, clock=clock)

    await User.filter(id=user.id).update(status=UserStatus.DISABLED)

    await refused(authenticate(bearer=grant.token, clock=clock), ErrorCode.UNAUTHENTICATED)


async def test_given_role_changed_when_authenticate_then_principal_has_current_role(account, clock):
    user = await add_user(
        account.account_id, email="member@example.com", password=PASSWORD, created_at=clock.now()
    )
    grant = await login(email="member@example.com", password=PASSWORD, clock=clock)

    await User.filter(id=user.id).update(role=Role.ADMIN)

    principal = await authenticate(bearer=grant.token, clock=clock)
    assert principal.role == Role.ADMIN


async def test_given_revoked_api_token_when_authenticate_then_unauthenticated(
    account, owner, api_token_actor, clock
):
    await revoke_api_token(actor=owner, token_id=str(api_token_actor.token_id), clock=clock)

    await refused(authenticate(bearer=account.api_token, clock=clock), ErrorCode.UNAUTHENTICATED)


@pytest.mark.parametrize(
    "bearer",
    ["", "nonsense", "lic_nonsense", "x" * 5000, "lic_" + "x" * 5000],
)
async def test_given_unknown_bearer_when_authenticate_then_unauthenticated(account, clock, bearer):
    error = await refused(authenticate(bearer=bearer, clock=clock), ErrorCode.UNAUTHENTICATED)

    assert error.field is None


async def test_given_session_when_requests_within_a_minute_then_last_active_written_once(
    account, clock
):
    await set_password(account.owner_user_id)
    grant = await login(email="owner@example.com", password=PASSWORD, clock=clock)
    first = clock.now()

    await authenticate(bearer=grant.token, clock=clock)
    clock.advance(timedelta(seconds=59))
    await authenticate(bearer=grant.token, clock=clock)
    within_a_minute = (await User.get(id=account.owner_user_id)).last_active_at
    clock.advance(timedelta(seconds=2))
    await authenticate(bearer=grant.token, clock=clock)
    after_a_minute = (await User.get(id=account.owner_user_id)).last_active_at

    assert within_a_minute == first
    assert after_a_minute == clock.now()


async def test_given_recent_activity_when_authenticate_then_one_query(account, clock, caplog):
    await set_password(account.owner_user_id)
    grant = await login(email="owner@example.com", password=PASSWORD, clock=clock)
    await authenticate(bearer=grant.token, clock=clock)
    clock.advance(timedelta(seconds=30))

    with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
        await authenticate(bearer=grant.token, clock=clock)

    statements = [r.getMessage() for r in caplog.records if r.name == "tortoise.db_client"]
    assert len(statements) == 1, statements
    assert statements[0].lstrip().upper().startswith("SELECT")


async def test_given_api_token_when_used_then_last_used_written_at_most_once_a_minute(
    account, api_token_actor, clock
):
    first = clock.now()

    principal = await authenticate(bearer=account.api_token, clock=clock)
    clock.advance(timedelta(seconds=30))
    await authenticate(bearer=account.api_token, clock=clock)
    within_a_minute = (await ApiToken.get(id=api_token_actor.token_id)).last_used_at
    clock.advance(timedelta(seconds=31))
    await authenticate(bearer=account.api_token, clock=clock)
    after_a_minute = (await ApiToken.get(id=api_token_actor.token_id)).last_used_at

    assert principal == api_token_actor
    assert within_a_minute == first
    assert after_a_minute == clock.now()


# --- API tokens ----------------------------------------------------------------


async def test_given_owner_when_create_api_token_then_secret_once_and_audited(
    account, owner, clock
):
    created = await create_api_token(actor=owner, name="  CI deploys ", clock=clock)

    token = await ApiToken.get(id=created.api_token.id)
    assert created.secret.startswith("lic_")
    assert len(created.secret) >= 4 + 43
    assert token.prefix == created.secret[:12]
    assert token.secret_hash == token_hash(created.secret)
    assert (token.name, token.created_by_id, token.account_id) == (
        "CI deploys",
        account.owner_user_id,
        account.account_id,
    )
    event = await AuditEvent.filter(action=AuditAction.API_TOKEN_CREATED).order_by("-id").first()
    assert event is not None
    assert (event.actor_kind, event.actor_user_id, event.data) == (
        ActorKind.USER,
        account.owner_user_id,
        {"apiTokenId": token.id, "name": "CI deploys", "scopes": ["GRAPHQL"]},
    )
    principal = await authenticate(bearer=created.secret, clock=clock)
    assert (principal.kind, principal.role, principal.token_id) == (
        ActorKind.API_TOKEN,
        Role.ADMIN,
        token.id,
    )


async def test_given_api_token_actor_when_create_api_token_then_created_without_creator(
    account, api_token_actor, clock
):
    created = await create_api_token(actor=api_token_actor, name="Nightly", clock=clock)

    assert created.api_token.created_by_id is None
    event = await AuditEvent.filter(action=AuditAction.API_TOKEN_CREATED).order_by("-id").first()
    assert event is not None
    assert (event.actor_kind, event.actor_token_id) == (
        ActorKind.API_TOKEN,
        api_token_actor.token_id,
    )


@pytest.mark.parametrize(
    ("name", "code", "field"),
    [
        ("", ErrorCode.INVALID_INPUT, "name"),
        ("   ", ErrorCode.INVALID_INPUT, "name"),
        ("x" * 101, ErrorCode.INVALID_INPUT, "name"),
        ("line\nbreak", ErrorCode.INVALID_INPUT, "name"),
        ("bidi\u202eoverride", ErrorCode.INVALID_INPUT, "name"),
    ],
)
async def test_given_bad_name_when_create_api_token_then_refused_and_nothing_changes(
    account, owner, clock, name, code, field
):
    before = await database_snapshot()

    error = await refused(create_api_token(actor=owner, name=name, clock=clock), code)

    assert error.field == field
    assert await database_snapshot() == before


async def test_given_member_when_create_or_revoke_api_token_then_forbidden_and_nothing_changes(
    account, api_token_actor, clock
):
    member = await add_user(
        account.account_id, email="member@example.com", password=PASSWORD, created_at=clock.now()
    )
    before = await database_snapshot()

    await refused(
        create_api_token(actor=as_user(member), name="", clock=clock), ErrorCode.FORBIDDEN
    )
    await refused(
        revoke_api_token(
            actor=as_user(member), token_id=str(api_token_actor.token_id), clock=clock
        ),
        ErrorCode.FORBIDDEN,
    )

    assert await database_snapshot() == before


async def test_given_owner_when_revoke_api_token_twice_then_revoked_and_audited_once(
    account, owner, api_token_actor, clock
):
    revoked = await revoke_api_token(
        actor=owner, token_id=str(api_token_actor.token_id), clock=clock
    )
    revoked_at = clock.now()
    clock.advance(timedelta(minutes=1))
    again = await revoke_api_token(
        actor=owner, token_id=f" {api_token_actor.token_id} ", clock=clock
    )

    assert revoked.revoked_at == again.revoked_at == revoked_at
    events = await AuditEvent.filter(action=AuditAction.API_TOKEN_REVOKED)
    assert len(events) == 1
    assert (events[0].actor_user_id, events[0].data) == (
        account.owner_user_id,
        {"apiTokenId": api_token_actor.token_id, "name": "Created with the account"},
    )


@pytest.mark.parametrize("token_id", ["other account", "999999", "abc", "99999999999999999"])
async def test_given_unknown_or_foreign_token_id_when_revoke_then_not_found_and_nothing_changes(
    account, owner, clock, token_id
):
    other = await make_account(clock, email="other@example.com", name="Other")
    if token_id == "other account":
        token_id = str((await ApiToken.get(account_id=other.account_id)).id)
    before = await database_snapshot()

    await refused(
        revoke_api_token(actor=owner, token_id=token_id, clock=clock), ErrorCode.NOT_FOUND
    )

    assert await database_snapshot() == before


async def test_given_token_created_by_admin_when_admin_demoted_and_disabled_then_token_works(
    account, clock
):
    admin = await add_user(
        account.account_id,
        email="admin@example.com",
        role=Role.ADMIN,
        password=PASSWORD,
        created_at=clock.now(),
    )
    created = await create_api_token(actor=as_user(admin), name="Integration", clock=clock)

    await User.filter(id=admin.id).update(role=Role.MEMBER)
    demoted = await authenticate(bearer=created.secret, clock=clock)
    await User.filter(id=admin.id).update(status=UserStatus.DISABLED)
    disabled = await authenticate(bearer=created.secret, clock=clock)

    assert demoted == disabled
    assert (disabled.kind, disabled.role, disabled.account_id) == (
        ActorKind.API_TOKEN,
        Role.ADMIN,
        account.account_id,
    )
    revoked = await revoke_api_token(
        actor=disabled, token_id=str(created.api_token.id), clock=clock
    )
    assert revoked.revoked_at == clock.now()
