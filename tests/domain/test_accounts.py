from datetime import UTC, datetime

import pytest

from domain.enums import (
    AuditAction,
    BillingInterval,
    EmailKind,
    InvitationKind,
    Role,
    UserStatus,
)
from domain.errors import DomainError, ErrorCode
from domain.models import (
    Account,
    AuditEvent,
    Charge,
    Invitation,
    LicenseAssignment,
    OutboxMessage,
    User,
)
from domain.services.accounts import create_account

pytestmark = pytest.mark.anyio


async def test_create_account_makes_a_licensed_owner_without_charge(db, clock):
    created = await create_account(
        name="Acme",
        owner_email="Owner@Example.com",
        owner_first_name="Ada",
        owner_last_name="Lovelace",
        seats=5,
        seat_price_cents=1200,
        clock=clock,
    )

    account = await Account.get(id=created.account_id)
    owner = await User.get(id=created.owner_user_id)
    assert (account.seats_total, account.seats_in_use) == (5, 1)
    assert account.current_period_end == datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
    assert account.current_period_start == datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert (owner.role, owner.status, owner.password_hash) == (Role.OWNER, UserStatus.ENABLED, None)
    assert owner.email_key == "owner@example.com"
    assert await LicenseAssignment.filter(user_id=owner.id, unassigned_at__isnull=True).count() == 1
    invitation = await Invitation.get(user_id=owner.id)
    assert invitation.kind == InvitationKind.PASSWORD_SET
    assert await Charge.all().count() == 0
    assert created.api_token.startswith("lic_")
    actions = [e.action for e in await AuditEvent.all().order_by("id")]
    assert actions == [AuditAction.ACCOUNT_CREATED, AuditAction.API_TOKEN_CREATED]
    outbox = await OutboxMessage.all()
    assert [m.kind for m in outbox] == [EmailKind.OWNER_PASSWORD_SET]


async def test_create_account_with_period_end_starts_one_interval_before(db, clock):
    created = await create_account(
        name="Acme",
        owner_email="owner@example.com",
        owner_first_name="Ada",
        owner_last_name="Lovelace",
        seats=1,
        seat_price_cents=100,
        interval=BillingInterval.YEAR,
        current_period_end=datetime(2028, 2, 29, 9, 30, tzinfo=UTC),
        clock=clock,
    )

    account = await Account.get(id=created.account_id)
    assert account.current_period_start == datetime(2027, 2, 28, 9, 30, tzinfo=UTC)


async def test_create_account_refuses_zero_seats_and_writes_nothing(db, clock):
    with pytest.raises(DomainError) as refused:
        await create_account(
            name="Acme",
            owner_email="owner@example.com",
            owner_first_name="Ada",
            owner_last_name="Lovelace",
            seats=0,
            seat_price_cents=100,
            clock=clock,
        )

    assert refused.value.code == ErrorCode.SEAT_LIMIT
    assert await Account.all().count() == 0
