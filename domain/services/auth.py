"""Signing in and out, recognising a bearer token, and the account's API tokens.

Timing: the password checks (Argon2, ~50-100 ms each) run in a worker thread
and never inside a database transaction, so a login neither blocks the event
loop nor holds a lock (SQLite serialises every transaction of a process).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.exceptions import OperationalError
from tortoise.expressions import Q

from domain import auth_cache, config
from domain.clock import Clock
from domain.enums import ActorKind, ApiTokenScope, AuditAction, Role
from domain.errors import DomainError, ErrorCode
from domain.models import ApiToken, LoginFailure, Session, User
from domain.principal import Principal, parse_id, require_admin
from domain.rules.seats import LICENSED_STATUSES
from domain.security import (
    API_TOKEN_PREFIX,
    MAX_PASSWORD_LENGTH,
    new_api_token_secret,
    token_hash,
    verify_password,
)
from domain.services.sessions import SessionGrant, start_session
from domain.uow import UnitOfWork, unit_of_work
from domain.validation import EMAIL_MAX, clean_email, clean_name

log = logging.getLogger(__name__)

INVALID_CREDENTIALS_MESSAGE = "The email or password is incorrect."
UNAUTHENTICATED_MESSAGE = "Sign in, or send a valid API token."
API_TOKEN_PREFIX_LENGTH = 12
# Our tokens are 43 (session) or 47 (API token) characters: anything much
# longer is refused without a query.
MAX_BEARER_LENGTH = 200
# LoginFailure.scope is a VARCHAR(400): "client:" + address must fit.
MAX_CLIENT_ADDRESS_LENGTH = 300

# Ids are 32-bit columns; PostgreSQL refuses a larger parameter with an error
# (parse_id lets up to 18 digits through), so such an id is simply not found.
_MAX_ID = 2**31 - 1


def _parse_id(raw: str, *, what: str) -> int:
    key = parse_id(raw, what=what)
    if key > _MAX_ID:
        raise DomainError(ErrorCode.NOT_FOUND, f"No {what} with this ID.")
    return key


# --- login -----------------------------------------------------------------


def _email_key(raw: str) -> str:
    """The key users are stored under (see clean_email); garbage maps to itself.

    An address that is not even valid cannot match a user, but it is still
    rate limited and answered exactly like an unknown one. NUL characters are
    dropped: PostgreSQL refuses them in text, and such an address matches no
    one anyway.
    """
    try:
        return clean_email(raw)[1]
    except DomainError:
        return raw.replace("\x00", "").strip().lower()[:EMAIL_MAX]


def _failure_scopes(email_key: str, client_address: str | None) -> list[str]:
    scopes = [f"email:{email_key}"]
    if client_address:
        scopes.append(f"client:{client_address.strip()[:MAX_CLIENT_ADDRESS_LENGTH]}")
    return scopes


async def _rate_limited(scopes: list[str], now: datetime) -> bool:
    settings = config.current()
    since = now - settings.lookback_rate_limit
    for scope in scopes:
        recent = await LoginFailure.filter(scope=scope, created_at__gt=since).count()
        if recent >= settings.failed_logins_allowed:
            return True
    return False


def _matching_users(candidates: list[User], password: str) -> list[User]:
    """Argon2 against every candidate; at least one verification even with none.

    Runs in a worker thread (argon2-cffi releases the GIL). With zero or one
    candidate the work is the same, so the timing does not tell whether the
    email exists. It does grow with the number of accounts in which the email
    has a password (one verification each): accepted, since it tells only
    that the address is used in several accounts, and the rate limit bounds
    the probing.
    """
    if len(password) > MAX_PASSWORD_LENGTH:
        # No password this long can ever have been set (WEAK_PASSWORD): burn
        # the same work on a bounded input and refuse.
        verify_password(None, password[:MAX_PASSWORD_LENGTH])
        return []
    if not candidates:
        verify_password(None, password)
        return []
    return [user for user in candidates if verify_password(user.password_hash, password)]


async def login(
    *,
    email: str,
    password: str,
    account_id: str | None = None,
    client_address: str | None = None,
    clock: Clock,
) -> SessionGrant:
    """A session for the one licensed user with this email and password.

    Refusals: RATE_LIMITED (checked first, before any password work),
    INVALID_CREDENTIALS (no match, whatever the reason: unknown email,
    DISABLED user, no password yet, wrong password, other account), and
    ACCOUNT_REQUIRED (the password matches in several accounts: the client
    asks again with `accountId`).

    Failures are counted per email and per client address over a sliding
    window (config: 10 per 15 minutes). Refused attempts (rate limited) are
    not recorded: the window then empties by itself, and an attacker hammering
    a locked email does not grow the table. The check and the recording are
    not atomic, so concurrent attempts may overshoot the limit by the number
    of requests in flight; the bound stays the same order of magnitude.

    A successful login does NOT clear the recorded failures. Clearing the
    client scope would let anyone holding one valid login reset the counter of
    their address between guesses at other emails; clearing the email scope
    would let a password that is valid in one account reset the counter that
    protects the same email in another. The cost: a user who mistyped nine
    times, then signed in, has one attempt left until those failures age out.
    """
    now = clock.now()
    key = _email_key(email)
    scopes = _failure_scopes(key, client_address)
    if await _rate_limited(scopes, now):
        raise DomainError(
            ErrorCode.RATE_LIMITED, "Too many failed sign-in attempts; try again later."
        )

    query = User.filter(email_key=key, status__in=LICENSED_STATUSES, password_hash__isnull=False)
    candidates: list[User] = []
    if account_id is None:
        candidates = await query
    else:
        try:
            account_key = _parse_id(account_id, what="account")
        except DomainError:
            pass  # malformed: matches nothing, answered like any other miss
        else:
            candidates = await query.filter(account_id=account_key)

    matches = await asyncio.to_thread(_matching_users, candidates, password)

    if not matches:
        await LoginFailure.bulk_create(
            [LoginFailure(scope=scope, created_at=now) for scope in scopes]
        )
        raise DomainError(ErrorCode.INVALID_CREDENTIALS, INVALID_CREDENTIALS_MESSAGE)
    if len(matches) > 1:
        raise DomainError(
            ErrorCode.ACCOUNT_REQUIRED,
            "This email signs in to several accounts: choose one with accountId.",
            field="accountId",
        )
    # The user could be disabled between the read above and this insert; the
    # session is then harmless, because authenticate() checks the user's
    # licence on every request.
    async with unit_of_work(now) as work:
        return await start_session(work, user=matches[0])


async def prune_login_failures(*, clock: Clock) -> int:
    """Delete failures that no longer count (older than the window); periodic job."""
    cutoff = clock.now() - config.current().lookback_rate_limit
    return await LoginFailure.filter(created_at__lte=cutoff).delete()


async def logout(*, actor: Principal, clock: Clock) -> None:
    """Ends the actor's session. An API token has no session: nothing to do."""
    if actor.session_id is None:
        return
    await Session.filter(
        id=actor.session_id, account_id=actor.account_id, ended_at__isnull=True
    ).update(ended_at=clock.now())
    auth_cache.changed()


# --- every request -----------------------------------------------------------


def _unauthenticated() -> DomainError:
    return DomainError(ErrorCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)


async def authenticate(*, bearer: str, clock: Clock) -> Principal:
    """The principal behind a bearer token, or UNAUTHENTICATED.

    One indexed SELECT (the session joined to its user), unless the
    process's principal cache (domain.auth_cache) holds the token and its
    change feed vouches that nothing which could end it was committed
    since. The "last used" / "last active" times are written at most once
    per `last_active_resolution` with a conditional UPDATE outside any
    transaction: the value last known decides whether to try at all, and
    the WHERE clause makes concurrent requests (any process) write only once.
    """
    now = clock.now()
    if not bearer or len(bearer) > MAX_BEARER_LENGTH:
        raise _unauthenticated()
    hashed = token_hash(bearer)
    stale_before = now - config.current().last_active_resolution
    cache = auth_cache.in_use()
    generation = None
    if cache is not None:
        cached = cache.get(hashed, now)
        if cached is not None:
            if _is_stale(cached.stamped, stale_before):
                cached.stamped = now
                await _stamp(cached.principal, now, stale_before)
            return cached.principal
        generation = cache.generation()

    if bearer.startswith(API_TOKEN_PREFIX):
        api_token = await ApiToken.get_or_none(secret_hash=hashed)
        if api_token is None or api_token.revoked_at is not None:
            raise _unauthenticated()
        stamped = api_token.last_used_at
        if _is_stale(stamped, stale_before):
            await _touch(ApiToken, api_token.id, "last_used_at", now, stale_before)
            stamped = now
        # Tokens belong to the account and act as ADMIN, whatever became of
        # the user who created them.
        principal = Principal(
            account_id=api_token.account_id,
            kind=ActorKind.API_TOKEN,
            role=Role.ADMIN,
            token_id=api_token.id,
            scopes=token_scopes(api_token),
        )
        expires_at: datetime | None = None
    else:
        session = await Session.filter(token_hash=hashed).select_related("user").first()
        if session is None or session.ended_at is not None or session.expires_at <= now:
            raise _unauthenticated()
        user = session.user
        if not user.holds_license or user.account_id != session.account_id:
            raise _unauthenticated()
        stamped = user.last_active_at
        if _is_stale(stamped, stale_before):
            await _touch(User, user.id, "last_active_at", now, stale_before)
            stamped = now
        principal = Principal.of_user(user, session_id=session.id)
        expires_at = session.expires_at
    if cache is not None:
        cache.put(hashed, principal, generation=generation, expires_at=expires_at, stamped=stamped)
    return principal


async def _stamp(principal: Principal, now: datetime, stale_before: datetime) -> None:
    """The activity stamp of a principal served from the cache."""
    if principal.kind == ActorKind.API_TOKEN and principal.token_id is not None:
        await _touch(ApiToken, principal.token_id, "last_used_at", now, stale_before)
    elif principal.user_id is not None:
        await _touch(User, principal.user_id, "last_active_at", now, stale_before)


def _is_stale(last: datetime | None, stale_before: datetime) -> bool:
    return last is None or last < stale_before


async def _touch(
    model: type[ApiToken] | type[User],
    row_id: int,
    column: str,
    now: datetime,
    stale_before: datetime,
) -> None:
    never: dict[str, Any] = {f"{column}__isnull": True}
    before: dict[str, Any] = {f"{column}__lt": stale_before}
    stale = Q(**never) | Q(**before)
    try:
        await model.filter(stale, id=row_id).update(**{column: now})
    except OperationalError:
        # A lost activity stamp must not refuse a valid request (e.g. SQLite
        # busy under a burst of writes from another process).
        log.warning("could not record %s for %s %s", column, model.__name__, row_id, exc_info=True)


# --- API tokens --------------------------------------------------------------


@dataclass(frozen=True)
class CreatedApiToken:
    api_token: ApiToken
    # Shown once: only its hash is stored.
    secret: str


def token_scopes(api_token: ApiToken) -> frozenset[ApiTokenScope]:
    return frozenset(ApiTokenScope(name) for name in api_token.scopes.split())


def _stored_scopes(scopes: Iterable[ApiTokenScope]) -> str:
    chosen = set(scopes)
    if not chosen:
        raise DomainError(
            ErrorCode.INVALID_INPUT, "A token needs at least one scope.", field="scopes"
        )
    return " ".join(scope.value for scope in ApiTokenScope if scope in chosen)


async def issue_api_token(
    work: UnitOfWork,
    *,
    actor: Principal,
    name: str,
    scopes: Iterable[ApiTokenScope] = (ApiTokenScope.GRAPHQL,),
) -> CreatedApiToken:
    """A new token of the actor's account (the caller audits it)."""
    stored_scopes = _stored_scopes(scopes)
    secret = new_api_token_secret()
    api_token = await ApiToken.create(
        account_id=actor.account_id,
        name=name,
        scopes=stored_scopes,
        prefix=secret[:API_TOKEN_PREFIX_LENGTH],
        secret_hash=token_hash(secret),
        created_by_id=actor.acting_user_id,
        created_at=work.now,
        using_db=work.connection,
    )
    return CreatedApiToken(api_token=api_token, secret=secret)


async def create_api_token(
    *,
    actor: Principal,
    name: str,
    scopes: Iterable[ApiTokenScope] = (ApiTokenScope.GRAPHQL,),
    clock: Clock,
) -> CreatedApiToken:
    """ADMIN or OWNER (API tokens too). The token belongs to the account."""
    require_admin(actor)
    token_name = clean_name(name, field="name")
    async with unit_of_work(clock.now()) as work:
        created = await issue_api_token(work, actor=actor, name=token_name, scopes=scopes)
        await work.audit(
            actor=actor,
            action=AuditAction.API_TOKEN_CREATED,
            data={
                "apiTokenId": created.api_token.id,
                "name": token_name,
                "scopes": created.api_token.scopes.split(),
            },
        )
    return created


async def revoke_api_token(*, actor: Principal, token_id: str, clock: Clock) -> ApiToken:
    """ADMIN or OWNER. Another account's token: NOT_FOUND.

    Idempotent: revoking a revoked token succeeds and returns it unchanged,
    with no second audit event (the first revocation's time and actor stand).
    The conditional UPDATE (revoked_at IS NULL) makes two concurrent
    revocations write, and audit, once. A token may revoke itself: the
    request that does it completes, the next one is refused.
    """
    require_admin(actor)
    key = _parse_id(token_id, what="API token")
    async with unit_of_work(clock.now()) as work:
        api_token = (
            await ApiToken.filter(id=key, account_id=actor.account_id)
            .using_db(work.connection)
            .first()
        )
        if api_token is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No API token with this ID.")
        if api_token.revoked_at is not None:
            return api_token
        revoked = (
            await ApiToken.filter(id=key, revoked_at__isnull=True)
            .using_db(work.connection)
            .update(revoked_at=work.now)
        )
        if revoked == 1:
            await work.audit(
                actor=actor,
                action=AuditAction.API_TOKEN_REVOKED,
                data={"apiTokenId": api_token.id, "name": api_token.name},
            )
        await api_token.refresh_from_db(using_db=work.connection)
    return api_token
