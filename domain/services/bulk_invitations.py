"""Bulk invitations: many rows, each invited on its own by `invite_user`.

A row is one use case with its own transaction, so a refused row (a taken
email, no licence left) changes nothing and the others go on: partial
success, one result per row in input order. The rules of a single
invitation are `invite_user`'s; this module adds only the size of a request
and a dry run that foresees each row's answer without writing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

from domain.clock import Clock
from domain.enums import Role
from domain.errors import DomainError, ErrorCode
from domain.models import Account, User
from domain.principal import Principal, require_admin
from domain.rules.bulk import InviteForecast, require_batch_size
from domain.services.invitations import InvitationOutcome, email_taken, invite_user
from domain.services.licensing import no_available_licenses, overdue_invitations
from domain.validation import clean_invitation


@dataclass(frozen=True, slots=True)
class InvitationRequest:
    """One row: the input of one `invite_user`."""

    email: str
    first_name: str
    last_name: str
    role: Role = Role.MEMBER
    qualification: str | None = None


@dataclass(frozen=True, slots=True)
class RowResult:
    """A row's answer: the invitation made, or the refusal (nothing changed)."""

    outcome: InvitationOutcome | None = None
    error: DomainError | None = None


async def invite_users(
    *, actor: Principal, requests: Sequence[InvitationRequest], clock: Clock
) -> list[RowResult]:
    """1..500 rows, each invited on its own; the results in input order.

    The role and the size are checked first: a refusal of the request as a
    whole tries no row."""
    require_admin(actor)
    require_batch_size(len(requests))
    return [result async for result in invite_each(actor=actor, requests=requests, clock=clock)]


async def invite_each(
    *, actor: Principal, requests: Iterable[InvitationRequest], clock: Clock
) -> AsyncIterator[RowResult]:
    """Invite the rows one after the other, as they come, yielding each one's result.

    No limit on the count: a file import streams its rows through here.
    Raises (before the first row) FORBIDDEN for a non-admin and NOT_FOUND for
    an account that does not exist."""
    require_admin(actor)
    await _require_account(actor.account_id)
    for request in requests:
        try:
            outcome = await invite_user(
                actor=actor,
                email=request.email,
                first_name=request.first_name,
                last_name=request.last_name,
                role=request.role,
                qualification=request.qualification,
                clock=clock,
            )
        except DomainError as refusal:
            yield RowResult(error=refusal)
        else:
            yield RowResult(outcome=outcome)


async def forecast_each(
    *, actor: Principal, requests: Iterable[InvitationRequest], clock: Clock
) -> AsyncIterator[DomainError | None]:
    """A dry run of `invite_each`: for each row, the refusal it would meet (None:
    it would be invited), with nothing written.

    The same input checks as `invite_user`, then the account's emails, the
    rows before it and the licences free now (counting those the overdue
    invitations would give back). It foresees the account as it is at the
    start: another change meanwhile can make the real run differ."""
    require_admin(actor)
    account = await _require_account(actor.account_id)
    overdue = await overdue_invitations(account_id=account.id, now=clock.now()).count()
    forecast = InviteForecast(
        available=max(0, account.seats_total - account.seats_in_use + overdue)
    )
    for request in requests:
        try:
            given = clean_invitation(
                email=request.email,
                first_name=request.first_name,
                last_name=request.last_name,
                role=request.role,
                qualification=request.qualification,
            )
        except DomainError as refusal:
            yield refusal
            continue
        in_account = await User.filter(account_id=account.id, email_key=given.email_key).exists()
        code = forecast.admit(given.email_key, in_account=in_account)
        if code is ErrorCode.EMAIL_TAKEN:
            yield email_taken()
        elif code is ErrorCode.NO_AVAILABLE_LICENSES:
            yield no_available_licenses()
        else:
            yield None


async def _require_account(account_id: int) -> Account:
    account = await Account.get_or_none(id=account_id)
    if account is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such account.")
    return account
