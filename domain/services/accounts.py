"""Creating an account with its owner (the `licenses account create` command)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.clock import Clock
from domain.enums import (
    ApiTokenScope,
    AuditAction,
    BillingInterval,
    EmailKind,
    InvitationKind,
    Role,
    UserStatus,
)
from domain.errors import DomainError, ErrorCode
from domain.models import Account, User
from domain.principal import Principal
from domain.rules.money import check_seat_price_cents
from domain.rules.periods import shift
from domain.rules.seats import SEAT_MAXIMUM, SEAT_MINIMUM
from domain.services.auth import issue_api_token
from domain.services.invitation_tokens import create_invitation, email_invitation
from domain.services.licensing import open_assignment, take_license
from domain.uow import unit_of_work
from domain.validation import ACCOUNT_NAME_MAX, clean_email, clean_name, sort_name


@dataclass(frozen=True)
class CreatedAccount:
    account_id: int
    owner_user_id: int
    api_token: str


async def create_account(
    *,
    name: str,
    owner_email: str,
    owner_first_name: str,
    owner_last_name: str,
    seats: int,
    seat_price_cents: int,
    currency: str = "USD",
    interval: BillingInterval = BillingInterval.MONTH,
    current_period_end: datetime | None = None,
    clock: Clock,
) -> CreatedAccount:
    """The owner is ENABLED and licensed at once, with no password: it gets a
    password-set link. No charge is recorded (billing starts at renewal)."""
    now = clock.now()
    account_name = clean_name(name, field="name", maximum=ACCOUNT_NAME_MAX)
    email, email_key = clean_email(owner_email, field="ownerEmail")
    first_name = clean_name(owner_first_name, field="ownerFirstName")
    last_name = clean_name(owner_last_name, field="ownerLastName")
    if not SEAT_MINIMUM <= seats <= SEAT_MAXIMUM:
        raise DomainError(
            ErrorCode.SEAT_LIMIT, f"Seats must be {SEAT_MINIMUM}..{SEAT_MAXIMUM}.", field="seats"
        )
    check_seat_price_cents(seat_price_cents)
    currency_code = currency.strip().upper()
    if len(currency_code) != 3 or not currency_code.isascii() or not currency_code.isalpha():
        raise DomainError(
            ErrorCode.INVALID_INPUT, "Currency is a three-letter ISO 4217 code.", field="currency"
        )
    period_end = current_period_end or shift(now, interval, 1)
    if period_end.tzinfo is None:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            "The period end needs a UTC offset.",
            field="currentPeriodEnd",
        )
    if period_end <= now:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            "The current period must end in the future.",
            field="currentPeriodEnd",
        )
    period_end = period_end.astimezone(now.tzinfo).replace(microsecond=0)

    async with unit_of_work(now) as work:
        account = await Account.create(
            name=account_name,
            seats_total=seats,
            seats_in_use=0,
            seat_price_cents=seat_price_cents,
            currency=currency_code,
            billing_interval=interval,
            billing_anchor=period_end,
            period_index=0,
            current_period_start=shift(period_end, interval, -1),
            current_period_end=period_end,
            created_at=now,
            using_db=work.connection,
        )
        system = Principal.system(account.id)
        owner = await User.create(
            account_id=account.id,
            email=email,
            email_key=email_key,
            first_name=first_name,
            last_name=last_name,
            sort_name=sort_name(first_name, last_name),
            role=Role.OWNER,
            status=UserStatus.ENABLED,
            created_at=now,
            using_db=work.connection,
        )
        await take_license(work, account_id=account.id)
        await open_assignment(work, actor=system, user_id=owner.id)
        invitation = await create_invitation(
            work, actor=system, user=owner, kind=InvitationKind.PASSWORD_SET
        )
        token = await issue_api_token(
            work, actor=system, name="Created with the account", scopes=tuple(ApiTokenScope)
        )
        await work.audit(
            actor=system,
            action=AuditAction.ACCOUNT_CREATED,
            target_user_id=owner.id,
            data={
                "name": account_name,
                "seats": seats,
                "seatPriceCents": seat_price_cents,
                "currency": currency_code,
                "interval": interval.value,
                "currentPeriodEnd": period_end.isoformat(),
            },
        )
        await work.audit(
            actor=system,
            action=AuditAction.API_TOKEN_CREATED,
            data={"apiTokenId": token.api_token.id, "name": token.api_token.name},
        )
        await email_invitation(work, invitation, kind=EmailKind.OWNER_PASSWORD_SET)
    return CreatedAccount(account_id=account.id, owner_user_id=owner.id, api_token=token.secret)
