"""Delivering outbox rows: claim, build from the current state, send, record.

Every function here is a plain coroutine taking ids, safe to run any number of
times and from any number of processes at once:

- A row is CLAIMED when its delivery begins (never at enqueue or when a
  worker fetches the message), by a conditional UPDATE (not sent, not
  failed, due) that pushes `available_at` one lease into the future and
  counts the attempt. A duplicate Dramatiq delivery, a second relay or the
  embedded loop finds the row not due and sends nothing. A one-message
  delivery is cut before its lease ends (`DeliveryPolicy.send_budget`), so a
  second claim never overlaps that send, whatever the lease is set to.
- The email is built from the state at send time (the payload holds ids):
  a revoked or superseded invitation is not sent, and the invitation token is
  derived then (`invitation_token(id, token_version)`), never stored.
- The result is recorded right after the SMTP server answers: `sent_at`, or
  the error with the next attempt pushed back exponentially, or `failed_at`
  for a permanent refusal or when the attempts run out.

Duplicate window: a message can be sent twice only when a process stops
(killed, crashed, database unreachable) after the SMTP server accepted the
message and before `sent_at` was committed, or when a send is cut at the end
of its budget just after the server took the message; the row is claimed
again once its lease has passed (or at its retry time). For a batch
(`deliver_due_messages`, embedded mode) the window spans the batch: results
are recorded when the connection is closed, and the batch is not cut at the
lease. Every copy carries the same Message-ID
(`<outbox-{id}@{host of PUBLIC_URL}>`), so mail clients and most servers
collapse such a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any
from urllib.parse import urlencode, urlsplit

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from domain.clock import Clock
from domain.enums import EmailKind, InvitationStatus, Role, SeatChangeKind, UserStatus
from domain.models import Account, Charge, Invitation, OutboxMessage, User
from domain.security import invitation_token
from domain.settings import Settings
from workers.emails import (
    EmailContext,
    InvitationEmail,
    InvitationResentEmail,
    LicenseRemovedEmail,
    LicensesReleasedEmail,
    OwnerPasswordSetEmail,
    OwnershipTransferredToNewOwnerEmail,
    OwnershipTransferredToPreviousOwnerEmail,
    SeatChangeReceiptEmail,
    render_email,
)
from workers.mailer import DeliveryError, Mailer, OutgoingEmail

log = logging.getLogger(__name__)

Enqueue = Callable[[Sequence[int]], Awaitable[None]]

ACCEPT_PATH = "/accept-invitation"
# Stored errors are cut to the columns' length (CharField(500)).
_MAX_ERROR_LENGTH = 500
_LEASE_MARGIN_CAP = timedelta(seconds=10)
_INVITATION_KINDS = frozenset(
    {EmailKind.INVITATION, EmailKind.INVITATION_RESENT, EmailKind.OWNER_PASSWORD_SET}
)


# ---------------------------------------------------------------------------
# Policy and outcomes


@dataclass(frozen=True)
class DeliveryPolicy:
    """How long a claim lasts, when the relay hands a row over again, and how
    retries are spaced.

    `lease` covers a send that STARTED: the row is claimable again once it
    has passed, which is how a message whose sender was killed gets sent.
    The send itself is cut at `send_budget`, shortly before the lease ends.

    `redeliver_after` covers a message that never started: handed to the
    broker, then lost (fetched by a worker that was killed before running
    it, dropped by a Redis restart). Nothing in the database tells such a
    message from one still waiting in the queue, so the relay hands the row
    over again once it has stayed unclaimed that long. A copy that arrives
    later finds the row claimed or sent and does nothing; during a backlog
    each waiting row gets at most one extra message per relay run.
    """

    lease: timedelta = timedelta(minutes=2)
    # Half the default scheduler interval (see from_settings).
    redeliver_after: timedelta = timedelta(seconds=30)
    retry_base: timedelta = timedelta(seconds=15)
    retry_cap: timedelta = timedelta(hours=1)
    # 15 s, 30 s, ... 1 h, then hourly: 20 attempts span about 13 hours.
    max_attempts: int = 20

    def __post_init__(self) -> None:
        if (
            self.lease <= timedelta(0)
            or self.retry_base <= timedelta(0)
            or self.redeliver_after <= timedelta(0)
        ):
            raise ValueError("lease, redeliver_after and retry_base must be positive")
        if self.retry_cap < self.retry_base:
            raise ValueError("retry_cap must be at least retry_base")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    @property
    def send_budget(self) -> timedelta:
        """How long a claimed delivery may take before its send is cut.

        The margin under the lease absorbs clock differences between the
        hosts that compare `available_at` with their own time.
        """
        return self.lease - min(self.lease / 4, _LEASE_MARGIN_CAP)

    def backoff(self, attempts: int) -> timedelta:
        """Delay before attempt `attempts + 1`: base x 2^(attempts - 1), capped."""
        exponent = min(max(attempts - 1, 0), 32)
        return min(self.retry_base * (1 << exponent), self.retry_cap)

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        return cls(
            lease=timedelta(seconds=settings.outbox_lease_seconds),
            # The relay runs every scheduler interval: with half of one, the
            # next run after a loss hands the row over again, even when the
            # runs come a little early.
            redeliver_after=timedelta(seconds=settings.scheduler_interval_seconds) / 2,
            retry_base=timedelta(seconds=settings.outbox_retry_base_seconds),
            retry_cap=timedelta(
                seconds=max(settings.outbox_retry_max_seconds, settings.outbox_retry_base_seconds)
            ),
            max_attempts=settings.outbox_max_attempts,
        )


DEFAULT_POLICY = DeliveryPolicy()


class DeliveryStatus(StrEnum):
    SENT = "SENT"
    # Nothing to send any more (invitation revoked, accepted, superseded,
    # expired...): the row is closed with `sent_at` and the reason in last_error.
    SKIPPED = "SKIPPED"
    # A temporary failure: the row is due again at `retry_at`.
    RETRY = "RETRY"
    # A permanent refusal or too many attempts: `failed_at` is set.
    FAILED = "FAILED"
    # Nothing done: the row is already sent or failed...
    ALREADY_DONE = "ALREADY_DONE"
    # ...or claimed by someone else, or waiting for its next attempt.
    NOT_DUE = "NOT_DUE"
    MISSING = "MISSING"


@dataclass(frozen=True)
class DeliveryOutcome:
    message_id: int
    status: DeliveryStatus
    detail: str | None = None
    retry_at: datetime | None = None


class PayloadError(Exception):
    """The row cannot be turned into an email, now or ever (bad payload,
    missing rows): the row is marked failed."""


@dataclass(frozen=True)
class _Skip:
    reason: str


@dataclass(frozen=True)
class _Prepared:
    email: OutgoingEmail
    invitation_id: int | None


# ---------------------------------------------------------------------------
# One message


async def deliver_outbox_message(
    message_id: int,
    *,
    mailer: Mailer,
    clock: Clock,
    settings: Settings,
    policy: DeliveryPolicy = DEFAULT_POLICY,
) -> DeliveryOutcome:
    """Send one outbox row if it is due and unsent; idempotent."""
    # Taken before the claim, so the claim's own round trip counts too.
    deadline = asyncio.get_running_loop().time() + policy.send_budget.total_seconds()
    now = clock.now()
    claimed, row = await _claim_one(message_id, now, policy)
    if row is None:
        return DeliveryOutcome(message_id, DeliveryStatus.MISSING)
    if not claimed:
        if row.sent_at is not None or row.failed_at is not None:
            return DeliveryOutcome(message_id, DeliveryStatus.ALREADY_DONE)
        return DeliveryOutcome(message_id, DeliveryStatus.NOT_DUE, retry_at=row.available_at)
    prepared = await _prepare_or_close(row, settings=settings, clock=clock, policy=policy)
    if isinstance(prepared, DeliveryOutcome):
        return prepared
    try:
        async with asyncio.timeout_at(deadline):
            await mailer.send(prepared.email)
    except DeliveryError as exc:
        return await _record_failure(row, prepared.invitation_id, exc, clock=clock, policy=policy)
    except TimeoutError:
        error = DeliveryError(
            f"send not finished within {policy.send_budget.total_seconds():g} s "
            "(OUTBOX_LEASE_SECONDS less a margin)",
            permanent=False,
        )
        return await _record_failure(row, prepared.invitation_id, error, clock=clock, policy=policy)
    except Exception as exc:  # a mailer bug must not leave the row claimed forever
        log.exception("outbox %s: unexpected error while sending", row.id)
        error = DeliveryError(f"unexpected error: {exc!r}", permanent=False)
        return await _record_failure(row, prepared.invitation_id, error, clock=clock, policy=policy)
    return await _record_sent(row, prepared.invitation_id, clock=clock)


async def _claim_one(
    message_id: int, now: datetime, policy: DeliveryPolicy
) -> tuple[bool, OutboxMessage | None]:
    # One statement claims the row and reads it back (UPDATE ... RETURNING,
    # both backends): a write, atomic on its own, instead of a transaction
    # of an UPDATE and a SELECT (four round trips). Only a row that was not
    # claimed is read again, to tell why. The claim consumes the hand-off
    # (enqueued_at): if this sender dies, the relay takes the row as soon as
    # the lease has passed.
    client = connections.get("default")
    postgres = client.capabilities.dialect == "postgres"
    lease, key, due = ("$1", "$2", "$3") if postgres else ("?", "?", "?")
    rows = await client.execute_query_dict(
        f"UPDATE outbox_messages SET available_at = {lease}, attempts = attempts + 1, "  # noqa: S608
        "enqueued_at = NULL "
        f"WHERE id = {key} AND sent_at IS NULL AND failed_at IS NULL AND available_at <= {due} "
        f"RETURNING {_outbox_columns()}",
        [now + policy.lease, message_id, now],
    )
    if rows:
        return True, OutboxMessage._init_from_db(**rows[0])
    return False, await OutboxMessage.filter(id=message_id).first()


@cache
def _outbox_columns() -> str:
    # Read once Tortoise is initialised (foreign-key columns are known only then).
    columns = OutboxMessage._meta.db_fields
    assert "account_id" in columns, "Tortoise is not initialised"
    return ", ".join(sorted(columns))


async def _prepare_or_close(
    row: OutboxMessage, *, settings: Settings, clock: Clock, policy: DeliveryPolicy
) -> _Prepared | DeliveryOutcome:
    """The email to send, or the outcome when there is nothing to send."""
    try:
        prepared = await prepare_email(row, settings=settings, now=clock.now())
    except PayloadError as exc:
        error = DeliveryError(f"cannot build the email: {exc}", permanent=True)
        return await _record_failure(row, None, error, clock=clock, policy=policy)
    except Exception as exc:
        if _is_database_error(exc):
            raise
        # A rendering bug: retried with backoff, so a fix deployed in time
        # still sends it.
        log.exception("outbox %s: cannot render the email", row.id)
        error = DeliveryError(f"cannot render the email: {exc!r}", permanent=False)
        return await _record_failure(row, None, error, clock=clock, policy=policy)
    if isinstance(prepared, _Skip):
        return await _record_skipped(row, prepared.reason, clock=clock)
    return prepared


def _is_database_error(exc: Exception) -> bool:
    module = type(exc).__module__
    return module.startswith(("tortoise", "asyncpg", "sqlite3", "aiosqlite")) or isinstance(
        exc, OSError
    )


# ---------------------------------------------------------------------------
# A batch over one connection


async def deliver_due_messages(
    *,
    limit: int = 100,
    mailer: Mailer,
    clock: Clock,
    settings: Settings,
    policy: DeliveryPolicy = DEFAULT_POLICY,
) -> list[DeliveryOutcome]:
    """Claim up to `limit` due rows and send them over one SMTP connection."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    rows = await _claim_due(limit, clock.now(), policy)
    outcomes: list[DeliveryOutcome] = []
    ready: list[tuple[OutboxMessage, _Prepared]] = []
    for row in rows:
        prepared = await _prepare_or_close(row, settings=settings, clock=clock, policy=policy)
        if isinstance(prepared, DeliveryOutcome):
            outcomes.append(prepared)
        else:
            ready.append((row, prepared))
    if not ready:
        return outcomes
    try:
        results = await mailer.send_batch([prepared.email for _, prepared in ready])
    except Exception as exc:
        log.exception("outbox: unexpected error while sending a batch")
        results = [DeliveryError(f"unexpected error: {exc!r}", permanent=False) for _ in ready]
    for (row, prepared), error in zip(ready, results, strict=True):
        if error is None:
            outcomes.append(await _record_sent(row, prepared.invitation_id, clock=clock))
        else:
            outcomes.append(
                await _record_failure(
                    row, prepared.invitation_id, error, clock=clock, policy=policy
                )
            )
    return outcomes


async def _claim_due(limit: int, now: datetime, policy: DeliveryPolicy) -> list[OutboxMessage]:
    lease_until = now + policy.lease
    due = Q(sent_at__isnull=True, failed_at__isnull=True, available_at__lte=now)
    async with in_transaction() as connection:
        if _dialect(connection) == "postgres":
            # Two claimers skip each other's rows instead of waiting for them.
            rows = (
                await OutboxMessage.filter(due)
                .order_by("available_at", "id")
                .limit(limit)
                .select_for_update(skip_locked=True)
                .using_db(connection)
            )
            if rows:
                await (
                    OutboxMessage.filter(id__in=[row.id for row in rows])
                    .using_db(connection)
                    .update(available_at=lease_until, attempts=F("attempts") + 1, enqueued_at=None)
                )
            claimed = rows
        else:
            # SQLite: one conditional UPDATE per row (the transaction holds
            # the write lock, but a row claimed meanwhile must not count).
            candidates = (
                await OutboxMessage.filter(due)
                .order_by("available_at", "id")
                .limit(limit)
                .using_db(connection)
            )
            claimed = []
            for row in candidates:
                won = (
                    await OutboxMessage.filter(Q(id=row.id) & due)
                    .using_db(connection)
                    .update(available_at=lease_until, attempts=F("attempts") + 1, enqueued_at=None)
                )
                if won == 1:
                    claimed.append(row)
    for row in claimed:
        row.attempts += 1
        row.available_at = lease_until
        row.enqueued_at = None
    return claimed


def _dialect(connection: BaseDBAsyncClient) -> str:
    return str(connection.capabilities.dialect)


# ---------------------------------------------------------------------------
# Recording results


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_LENGTH else text[: _MAX_ERROR_LENGTH - 1] + "…"


async def _record_sent(
    row: OutboxMessage, invitation_id: int | None, *, clock: Clock
) -> DeliveryOutcome:
    now = clock.now()
    async with in_transaction() as connection:
        marked = (
            await OutboxMessage.filter(id=row.id, sent_at__isnull=True)
            .using_db(connection)
            .update(sent_at=now, last_error=None)
        )
        if marked == 1 and invitation_id is not None:
            await (
                Invitation.filter(id=invitation_id)
                .using_db(connection)
                .update(
                    sent_at=now,
                    delivery_attempts=F("delivery_attempts") + 1,
                    last_delivery_error=None,
                )
            )
    log.info("outbox %s: %s sent (attempt %s)", row.id, row.kind, row.attempts)
    return DeliveryOutcome(row.id, DeliveryStatus.SENT)


async def _record_skipped(row: OutboxMessage, reason: str, *, clock: Clock) -> DeliveryOutcome:
    now = clock.now()
    async with in_transaction() as connection:
        await (
            OutboxMessage.filter(id=row.id, sent_at__isnull=True, failed_at__isnull=True)
            .using_db(connection)
            .update(sent_at=now, last_error=_cut(f"not sent: {reason}"))
        )
    log.info("outbox %s: %s not sent: %s", row.id, row.kind, reason)
    return DeliveryOutcome(row.id, DeliveryStatus.SKIPPED, detail=reason)


async def _record_failure(
    row: OutboxMessage,
    invitation_id: int | None,
    error: DeliveryError,
    *,
    clock: Clock,
    policy: DeliveryPolicy,
) -> DeliveryOutcome:
    now = clock.now()
    message = _cut(str(error))
    give_up = error.permanent or row.attempts >= policy.max_attempts
    retry_at = None if give_up else now + policy.backoff(row.attempts)
    changes: dict[str, Any] = {"last_error": message}
    if give_up:
        changes["failed_at"] = now
    else:
        changes["available_at"] = retry_at
    async with in_transaction() as connection:
        # Only the claim that made this attempt records it: a stale worker
        # whose lease ran out must not overwrite a newer attempt's result.
        recorded = (
            await OutboxMessage.filter(
                id=row.id, attempts=row.attempts, sent_at__isnull=True, failed_at__isnull=True
            )
            .using_db(connection)
            .update(**changes)
        )
        if recorded == 1 and invitation_id is not None:
            await (
                Invitation.filter(id=invitation_id)
                .using_db(connection)
                .update(
                    delivery_attempts=F("delivery_attempts") + 1,
                    last_delivery_error=message,
                )
            )
    if give_up:
        why = "refused for good" if error.permanent else f"gave up after {row.attempts} attempts"
        log.error("outbox %s: %s %s: %s", row.id, row.kind, why, message)
        return DeliveryOutcome(row.id, DeliveryStatus.FAILED, detail=message)
    log.warning(
        "outbox %s: %s attempt %s failed, next at %s: %s",
        row.id,
        row.kind,
        row.attempts,
        retry_at.isoformat() if retry_at else "?",
        message,
    )
    return DeliveryOutcome(row.id, DeliveryStatus.RETRY, detail=message, retry_at=retry_at)


# ---------------------------------------------------------------------------
# Building the email from the current state


def message_id_header(outbox_id: int, public_url: str) -> str:
    host = urlsplit(public_url).hostname or "localhost"
    return f"<outbox-{outbox_id}@{host}>"


def accept_url(public_url: str, invitation: Invitation) -> str:
    token = invitation_token(invitation.id, invitation.token_version)
    return f"{public_url.rstrip('/')}{ACCEPT_PATH}?{urlencode({'token': token})}"


async def prepare_email(
    row: OutboxMessage, *, settings: Settings, now: datetime
) -> _Prepared | _Skip:
    """The email for `row` as of now, or why nothing is to be sent.

    Raises PayloadError when the payload does not fit the kind.
    """
    kind = EmailKind(row.kind)
    payload = row.payload
    if not isinstance(payload, dict):
        raise PayloadError(f"{kind} payload is not an object: {payload!r}")
    invitation_id: int | None = None
    context: EmailContext
    if kind in _INVITATION_KINDS:
        built = await _invitation_context(kind, payload, settings=settings, now=now)
        if isinstance(built, _Skip):
            return built
        context, to_address, to_name, invitation_id = built
    else:
        context, to_address, to_name = await _notice_context(kind, payload)
    rendered = render_email(context)
    email = OutgoingEmail(
        to_address=to_address,
        to_name=to_name,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=message_id_header(row.id, settings.public_url),
        from_address=settings.mail_from,
    )
    return _Prepared(email=email, invitation_id=invitation_id)


async def _invitation_context(
    kind: EmailKind, payload: Mapping[str, Any], *, settings: Settings, now: datetime
) -> tuple[EmailContext, str, str, int] | _Skip:
    """INVITATION, INVITATION_RESENT, OWNER_PASSWORD_SET: {"invitationId"}
    (an optional "tokenVersion" skips the email once a resend superseded it)."""
    invitation_id = _int(kind, payload, "invitationId")
    # One statement for the invitation, its user, account and inviter.
    invitation = (
        await Invitation.filter(id=invitation_id)
        .select_related("user", "account", "invited_by_user")
        .first()
    )
    if invitation is None:
        raise PayloadError(f"{kind}: invitation {invitation_id} does not exist")
    if invitation.status != InvitationStatus.PENDING:
        return _Skip(f"invitation {invitation_id} is {invitation.status}")
    if invitation.expires_at <= now:
        return _Skip(f"invitation {invitation_id} has expired")
    version = payload.get("tokenVersion")
    if version is not None and version != invitation.token_version:
        return _Skip(f"invitation {invitation_id} was re-sent since")
    user = invitation.user
    if user.status == UserStatus.DISABLED:
        return _Skip(f"user {user.id} no longer holds a licence")
    account = invitation.account
    url = accept_url(settings.public_url, invitation)
    context: EmailContext
    if kind == EmailKind.OWNER_PASSWORD_SET:
        context = OwnerPasswordSetEmail(
            recipient_name=user.name,
            account_name=account.name,
            set_password_url=url,
            expires_at=invitation.expires_at,
        )
    else:
        inviter = invitation.invited_by_user
        context_class = InvitationEmail if kind == EmailKind.INVITATION else InvitationResentEmail
        context = context_class(
            recipient_name=user.name,
            account_name=account.name,
            inviter_name=inviter.name if inviter else None,
            accept_url=url,
            expires_at=invitation.expires_at,
        )
    return context, invitation.email, user.name, invitation.id


async def _notice_context(
    kind: EmailKind, payload: Mapping[str, Any]
) -> tuple[EmailContext, str, str]:
    """The informational emails; payload shapes as the services write them:

    - LICENSE_REMOVED: {"userId"}
    - OWNERSHIP_TRANSFERRED_TO_NEW_OWNER / _TO_PREVIOUS_OWNER: {"accountId",
      "previousOwnerId", "newOwnerId", "recipientUserId"}
    - LICENSES_RELEASED: {"accountId", "recipientUserId" (null: the owner),
      "userIds", "newTotal"}
    - SEAT_CHANGE_RECEIPT: {"accountId", "recipientUserId" (null: the owner),
      "kind", "previousTotal", "newTotal", "chargeId" (null: nothing charged),
      "effectiveAt" (ISO 8601)}
    """
    context: EmailContext
    if kind == EmailKind.LICENSE_REMOVED:
        user = await _user(kind, _int(kind, payload, "userId"))
        account = await _account(kind, user.account_id)
        context = LicenseRemovedEmail(recipient_name=user.name, account_name=account.name)
        return context, user.email, user.name
    account = await _account(kind, _int(kind, payload, "accountId"))
    recipient = await _recipient(kind, payload, account.id)
    if kind in (
        EmailKind.OWNERSHIP_TRANSFERRED_TO_NEW_OWNER,
        EmailKind.OWNERSHIP_TRANSFERRED_TO_PREVIOUS_OWNER,
    ):
        new_owner = await _user(kind, _int(kind, payload, "newOwnerId"))
        previous_owner = await _user(kind, _int(kind, payload, "previousOwnerId"))
        context_class = (
            OwnershipTransferredToNewOwnerEmail
            if kind == EmailKind.OWNERSHIP_TRANSFERRED_TO_NEW_OWNER
            else OwnershipTransferredToPreviousOwnerEmail
        )
        context = context_class(
            recipient_name=recipient.name,
            account_name=account.name,
            new_owner_name=new_owner.name,
            previous_owner_name=previous_owner.name,
        )
    elif kind == EmailKind.LICENSES_RELEASED:
        user_ids = _int_list(kind, payload, "userIds")
        by_id = {user.id: user for user in await User.filter(id__in=user_ids)}
        missing = [user_id for user_id in user_ids if user_id not in by_id]
        if missing:
            raise PayloadError(f"{kind}: users {missing} do not exist")
        context = LicensesReleasedEmail(
            recipient_name=recipient.name,
            account_name=account.name,
            new_total=_int(kind, payload, "newTotal"),
            released=[(by_id[user_id].name, by_id[user_id].email) for user_id in user_ids],
        )
    elif kind == EmailKind.SEAT_CHANGE_RECEIPT:
        charge_id = _optional_int(kind, payload, "chargeId")
        charge = await Charge.filter(id=charge_id).first() if charge_id is not None else None
        if charge_id is not None and charge is None:
            raise PayloadError(f"{kind}: charge {charge_id} does not exist")
        try:
            change_kind = SeatChangeKind(str(payload.get("kind")))
            effective_at = datetime.fromisoformat(str(payload["effectiveAt"]))
        except (KeyError, ValueError) as exc:
            raise PayloadError(f"{kind} payload: bad 'kind' or 'effectiveAt' ({exc})") from None
        context = SeatChangeReceiptEmail(
            recipient_name=recipient.name,
            account_name=account.name,
            previous_total=_int(kind, payload, "previousTotal"),
            new_total=_int(kind, payload, "newTotal"),
            amount_cents=charge.amount_cents if charge else 0,
            currency=charge.currency if charge else account.currency,
            effective_at=effective_at,
            kind=change_kind,
        )
    else:  # pragma: no cover - every EmailKind is handled above
        raise PayloadError(f"no email is built for kind {kind}")
    return context, recipient.email, recipient.name


async def _user(kind: EmailKind, user_id: int) -> User:
    user = await User.filter(id=user_id).first()
    if user is None:
        raise PayloadError(f"{kind}: user {user_id} does not exist")
    return user


async def _account(kind: EmailKind, account_id: int) -> Account:
    account = await Account.filter(id=account_id).first()
    if account is None:
        raise PayloadError(f"{kind}: account {account_id} does not exist")
    return account


async def _recipient(kind: EmailKind, payload: Mapping[str, Any], account_id: int) -> User:
    recipient_id = _optional_int(kind, payload, "recipientUserId")
    if recipient_id is not None:
        return await _user(kind, recipient_id)
    owner = await User.filter(account_id=account_id, role=Role.OWNER).first()
    if owner is None:
        raise PayloadError(f"{kind}: account {account_id} has no owner to write to")
    return owner


def _int(kind: EmailKind, payload: Mapping[str, Any], key: str) -> int:
    value = payload.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise PayloadError(f"{kind} payload needs an integer {key!r}, got {value!r}")
    return value


def _optional_int(kind: EmailKind, payload: Mapping[str, Any], key: str) -> int | None:
    return None if payload.get(key) is None else _int(kind, payload, key)


def _int_list(kind: EmailKind, payload: Mapping[str, Any], key: str) -> list[int]:
    value = payload.get(key)
    if not isinstance(value, list) or not all(
        isinstance(item, int) and not isinstance(item, bool) for item in value
    ):
        raise PayloadError(f"{kind} payload needs a list of integers {key!r}, got {value!r}")
    return list(value)


# ---------------------------------------------------------------------------
# Relay


async def relay_outbox(
    *,
    clock: Clock,
    enqueue: Enqueue,
    limit: int = 500,
    max_batches: int = 20,
    policy: DeliveryPolicy = DEFAULT_POLICY,
) -> int:
    """Hand undelivered due rows that nobody claimed to `enqueue`.

    Covers the broker being down at commit time, a process killed between
    commit and enqueue, rows written by another process (the CLI), messages
    lost by Redis or fetched by a worker that died before starting them
    (handed over more than `policy.redeliver_after` ago and still not
    claimed), and rows whose sender died (their lease has passed).
    Returns how many ids were enqueued.
    """
    total = 0
    for _ in range(max_batches):
        ids = await _mark_for_relay(limit, clock.now(), policy)
        if not ids:
            break
        try:
            await enqueue(ids)
        except BaseException:
            # Not handed over: let the next relay take them at once.
            await OutboxMessage.filter(id__in=ids, sent_at__isnull=True).update(enqueued_at=None)
            raise
        total += len(ids)
        if len(ids) < limit:
            break
    if total:
        log.info("outbox relay: enqueued %s message(s)", total)
    return total


async def _mark_for_relay(limit: int, now: datetime, policy: DeliveryPolicy) -> list[int]:
    stale = now - policy.redeliver_after
    relayable = Q(sent_at__isnull=True, failed_at__isnull=True, available_at__lte=now) & (
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=stale)
    )
    async with in_transaction() as connection:
        query = (
            OutboxMessage.filter(relayable)
            .order_by("available_at", "id")
            .limit(limit)
            .using_db(connection)
        )
        if _dialect(connection) == "postgres":
            query = query.select_for_update(skip_locked=True)
        rows = await query
        ids = [row.id for row in rows]
        if ids:
            await (
                OutboxMessage.filter(Q(id__in=ids) & relayable)
                .using_db(connection)
                .update(enqueued_at=now)
            )
    return ids


async def mark_enqueued(ids: Sequence[int], *, at: datetime) -> None:
    """Record that the ids were handed to the broker: the relay leaves them
    alone for `redeliver_after` from `at`.

    A row already claimed by then (a fast worker) is left unmarked, so that
    its lease alone decides when the relay takes it if that worker dies.
    """
    if ids:
        await OutboxMessage.filter(
            id__in=list(ids), sent_at__isnull=True, available_at__lte=at
        ).update(enqueued_at=at)
