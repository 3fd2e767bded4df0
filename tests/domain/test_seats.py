"""Seat count: preview, prorated increase, scheduled reduction, cancellation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from domain import config
from domain.enums import AuditAction, ChargeKind, EmailKind, SeatChangeKind
from domain.errors import ErrorCode
from domain.models import Account, AuditEvent, Charge, OutboxMessage
from domain.principal import Principal
from domain.services.seats import (
    cancel_scheduled_seat_change,
    change_seat_count,
    preview_seat_change,
)
from tests.support.assertions import refused
from tests.support.factories import add_user
from tests.support.principals import as_user
from tests.support.snapshot import database_snapshot

pytestmark = pytest.mark.anyio

PERIOD_START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
PERIOD_END = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
PERIOD_SECONDS = 31 * 86_400
AGREED = {"accept_agreement": True, "agreement_version": config.AGREEMENT_VERSION}


async def schedule(owner: Principal, clock, total: int) -> None:
    await change_seat_count(actor=owner, total=total, **AGREED, clock=clock)


async def test_given_ten_days_into_period_when_preview_increase_then_amount_is_prorated_half_up(
    account, owner, clock
):
    clock.advance(timedelta(days=10, microseconds=700_000))

    preview = await preview_seat_change(actor=owner, total=8, clock=clock)

    # 3 seats x 1000 x 21 days / 31 days = 2032.26 -> 2032.
    assert preview.kind == SeatChangeKind.INCREASE
    assert (preview.current_total, preview.new_total) == (5, 8)
    assert preview.amount_due_now_cents == 2032
    assert preview.currency == "USD"
    assert preview.proration_date == datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
    assert preview.effective_at == preview.proration_date
    assert preview.agreement_version == config.AGREEMENT_VERSION
    assert preview.licenses_over_new_total == 0


async def test_given_preview_when_change_later_with_its_proration_date_then_same_amount_is_charged(
    account, owner, clock
):
    clock.advance(timedelta(days=3, hours=5, seconds=17, microseconds=400_000))
    preview = await preview_seat_change(actor=owner, total=12, clock=clock)
    clock.advance(timedelta(minutes=9, seconds=59))
    # A fraction of a second in the input changes nothing.
    again = await preview_seat_change(
        actor=owner,
        total=12,
        proration_date=preview.proration_date + timedelta(microseconds=999_999),
        clock=clock,
    )

    outcome = await change_seat_count(
        actor=owner,
        total=12,
        **AGREED,
        expected_amount_due_cents=preview.amount_due_now_cents,
        proration_date=preview.proration_date,
        clock=clock,
    )

    charge = outcome.charge
    assert charge is not None
    assert charge.amount_cents == preview.amount_due_now_cents
    assert charge.period_start == preview.proration_date
    assert charge.quantity == preview.new_total - preview.current_total
    assert outcome.account.seats_total == preview.new_total
    assert again == preview


async def test_given_increase_when_change_then_charge_audit_and_receipt_are_written(
    account, owner, clock
):
    clock.advance(timedelta(days=10))

    outcome = await change_seat_count(actor=owner, total=8, **AGREED, clock=clock)

    account_row = await Account.get(id=account.account_id)
    assert (account_row.seats_total, account_row.seats_in_use) == (8, 1)
    assert outcome.account.seats_total == 8
    charge = await Charge.get(account_id=account.account_id)
    assert outcome.charge is not None and outcome.charge.id == charge.id
    assert charge.kind == ChargeKind.SEAT_INCREASE
    assert (charge.quantity, charge.unit_amount_cents, charge.amount_cents) == (3, 1000, 2032)
    assert charge.currency == "USD"
    assert (charge.period_start, charge.period_end) == (
        datetime(2026, 3, 20, 12, 0, tzinfo=UTC),
        PERIOD_END,
    )
    audit = await AuditEvent.filter(action=AuditAction.SEATS_INCREASED).get()
    assert audit.actor_user_id == owner.user_id
    assert audit.data == {
        "before": 5,
        "after": 8,
        "amountCents": 2032,
        "currency": "USD",
        "prorationDate": "2026-03-20T12:00:00+00:00",
        "chargeId": charge.id,
    }
    receipt = await OutboxMessage.get(kind=EmailKind.SEAT_CHANGE_RECEIPT)
    assert receipt.payload == {
        "accountId": account.account_id,
        "recipientUserId": account.owner_user_id,
        "kind": "INCREASE",
        "previousTotal": 5,
        "newTotal": 8,
        "chargeId": charge.id,
        "effectiveAt": "2026-03-20T12:00:00+00:00",
    }


async def test_given_api_token_when_increase_then_it_is_allowed(account, api_token_actor, clock):
    outcome = await change_seat_count(actor=api_token_actor, total=6, **AGREED, clock=clock)

    assert outcome.account.seats_total == 6
    audit = await AuditEvent.filter(action=AuditAction.SEATS_INCREASED).get()
    assert audit.actor_token_id == api_token_actor.token_id


async def test_given_expected_amount_differs_when_change_then_amount_mismatch_and_nothing_changes(
    account, owner, clock
):
    preview = await preview_seat_change(actor=owner, total=7, clock=clock)
    before = await database_snapshot()

    error = await refused(
        change_seat_count(
            actor=owner,
            total=7,
            **AGREED,
            expected_amount_due_cents=preview.amount_due_now_cents + 1,
            proration_date=preview.proration_date,
            clock=clock,
        ),
        ErrorCode.AMOUNT_MISMATCH,
    )

    assert error.field == "expectedAmountDueCents"
    assert await database_snapshot() == before


async def test_given_expected_amount_when_change_is_a_reduction_then_only_zero_is_accepted(
    account, owner, clock
):
    # Previewed as an increase (6 seats), but someone went to 8 meanwhile.
    preview = await preview_seat_change(actor=owner, total=6, clock=clock)
    await change_seat_count(actor=owner, total=8, **AGREED, clock=clock)
    before = await database_snapshot()

    await refused(
        change_seat_count(
            actor=owner,
            total=6,
            **AGREED,
            expected_amount_due_cents=preview.amount_due_now_cents,
            clock=clock,
        ),
        ErrorCode.AMOUNT_MISMATCH,
    )
    assert await database_snapshot() == before
    outcome = await change_seat_count(
        actor=owner, total=6, **AGREED, expected_amount_due_cents=0, clock=clock
    )

    assert outcome.account.scheduled_total == 6


async def test_given_reduction_below_usage_and_wrong_amount_then_amount_mismatch_comes_first(
    account, owner, clock
):
    for n in range(3):
        await add_user(
            account.account_id, email=f"u{n}@example.com", created_at=clock.now(), licensed=True
        )

    await refused(
        change_seat_count(actor=owner, total=2, **AGREED, expected_amount_due_cents=1, clock=clock),
        ErrorCode.AMOUNT_MISMATCH,
    )


async def test_given_increase_when_scheduled_reduction_exists_then_it_is_cancelled(
    account, owner, clock
):
    await schedule(owner, clock, 2)

    await change_seat_count(actor=owner, total=6, **AGREED, clock=clock)

    row = await Account.get(id=account.account_id)
    assert (row.seats_total, row.scheduled_total) == (6, None)
    actions = [e.action for e in await AuditEvent.filter(id__gt=0).order_by("id")][2:]
    assert actions == [
        AuditAction.SEAT_REDUCTION_SCHEDULED,
        AuditAction.SEATS_INCREASED,
        AuditAction.SEAT_REDUCTION_CANCELLED,
    ]
    cancelled = await AuditEvent.get(action=AuditAction.SEAT_REDUCTION_CANCELLED)
    assert cancelled.data["scheduledTotal"] == 2


async def test_given_reduction_when_change_then_scheduled_for_period_end_without_charge(
    account, owner, clock
):
    preview = await preview_seat_change(actor=owner, total=3, clock=clock)

    outcome = await change_seat_count(actor=owner, total=3, **AGREED, clock=clock)

    assert preview.kind == SeatChangeKind.DECREASE
    assert preview.amount_due_now_cents == 0
    assert preview.effective_at == PERIOD_END
    assert outcome.charge is None
    assert (outcome.account.seats_total, outcome.account.scheduled_total) == (5, 3)
    assert await Charge.all().count() == 0
    audit = await AuditEvent.get(action=AuditAction.SEAT_REDUCTION_SCHEDULED)
    assert audit.data == {
        "before": 5,
        "after": 3,
        "replacedScheduledTotal": None,
        "effectiveAt": PERIOD_END.isoformat(),
    }
    receipt = await OutboxMessage.get(kind=EmailKind.SEAT_CHANGE_RECEIPT)
    assert receipt.payload["kind"] == "DECREASE"
    assert receipt.payload["chargeId"] is None
    assert receipt.payload["effectiveAt"] == PERIOD_END.isoformat()


async def test_given_scheduled_reduction_when_later_reduction_then_it_replaces_it(
    account, owner, clock
):
    await schedule(owner, clock, 3)

    await schedule(owner, clock, 2)

    row = await Account.get(id=account.account_id)
    assert (row.seats_total, row.scheduled_total) == (5, 2)
    latest = await AuditEvent.filter(action=AuditAction.SEAT_REDUCTION_SCHEDULED).order_by("-id")
    assert latest[0].data["replacedScheduledTotal"] == 3


async def test_given_licences_in_use_when_reduce_below_usage_then_seats_below_usage_no_change(
    account, owner, clock
):
    for n in range(3):
        await add_user(
            account.account_id, email=f"u{n}@example.com", created_at=clock.now(), licensed=True
        )
    preview = await preview_seat_change(actor=owner, total=2, clock=clock)
    before = await database_snapshot()

    error = await refused(
        change_seat_count(actor=owner, total=2, **AGREED, clock=clock),
        ErrorCode.SEATS_BELOW_USAGE,
    )

    assert preview.licenses_over_new_total == 2
    assert error.field == "total"
    assert await database_snapshot() == before
    # Down to exactly the licences in use is allowed.
    await schedule(owner, clock, 4)


async def test_given_scheduled_reduction_when_same_total_requested_then_it_is_cancelled(
    account, owner, clock
):
    await schedule(owner, clock, 3)

    outcome = await change_seat_count(actor=owner, total=5, **AGREED, clock=clock)

    assert outcome.charge is None
    assert (outcome.account.seats_total, outcome.account.scheduled_total) == (5, None)
    assert await AuditEvent.filter(action=AuditAction.SEAT_REDUCTION_CANCELLED).count() == 1
    receipts = await OutboxMessage.filter(kind=EmailKind.SEAT_CHANGE_RECEIPT).order_by("id")
    assert [r.payload["kind"] for r in receipts] == ["DECREASE", "NONE"]


async def test_given_nothing_scheduled_when_same_total_requested_then_nothing_is_written(
    account, owner, clock
):
    before = await database_snapshot()

    outcome = await change_seat_count(actor=owner, total=5, **AGREED, clock=clock)

    assert outcome.charge is None
    assert outcome.account.seats_total == 5
    assert await database_snapshot() == before


async def test_given_scheduled_reduction_when_cancel_then_it_is_dropped_and_audited(
    account, owner, clock
):
    await schedule(owner, clock, 2)

    result = await cancel_scheduled_seat_change(actor=owner, clock=clock)

    assert (result.seats_total, result.scheduled_total) == (5, None)
    audit = await AuditEvent.get(action=AuditAction.SEAT_REDUCTION_CANCELLED)
    assert audit.data == {"scheduledTotal": 2, "total": 5, "reason": "CANCELLED"}


async def test_given_nothing_scheduled_when_cancel_then_success_without_any_write(
    account, api_token_actor, clock
):
    before = await database_snapshot()

    result = await cancel_scheduled_seat_change(actor=api_token_actor, clock=clock)

    assert result.scheduled_total is None
    assert await database_snapshot() == before


async def test_given_member_when_seat_operations_then_forbidden_and_nothing_changes(
    account, owner, clock
):
    await schedule(owner, clock, 3)
    member = as_user(
        await add_user(
            account.account_id, email="m@example.com", created_at=clock.now(), licensed=True
        )
    )
    before = await database_snapshot()

    await refused(preview_seat_change(actor=member, total=0, clock=clock), ErrorCode.FORBIDDEN)
    # FORBIDDEN comes before the input checks.
    await refused(
        change_seat_count(
            actor=member, total=0, accept_agreement=False, agreement_version="x", clock=clock
        ),
        ErrorCode.FORBIDDEN,
    )
    await refused(cancel_scheduled_seat_change(actor=member, clock=clock), ErrorCode.FORBIDDEN)

    assert await database_snapshot() == before


@pytest.mark.parametrize("total", [0, -1, 100_001])
async def test_given_total_out_of_range_when_preview_or_change_then_seat_limit_and_nothing_changes(
    account, owner, clock, total
):
    before = await database_snapshot()

    preview_error = await refused(
        preview_seat_change(actor=owner, total=total, clock=clock), ErrorCode.SEAT_LIMIT
    )
    # Input validation comes before the agreement checks.
    change_error = await refused(
        change_seat_count(
            actor=owner, total=total, accept_agreement=False, agreement_version="old", clock=clock
        ),
        ErrorCode.SEAT_LIMIT,
    )

    assert preview_error.field == change_error.field == "total"
    assert await database_snapshot() == before


@pytest.mark.parametrize(
    "shift",
    [
        timedelta(minutes=10, seconds=1),
        timedelta(days=-1),
        timedelta(seconds=-1),
    ],
    ids=["older-than-10-minutes", "a-day-ahead", "a-second-ahead"],
)
async def test_given_bad_proration_date_when_preview_or_change_then_invalid_input_no_change(
    account, owner, clock, shift
):
    proration_date = clock.now() - shift
    before = await database_snapshot()

    preview_error = await refused(
        preview_seat_change(actor=owner, total=7, proration_date=proration_date, clock=clock),
        ErrorCode.INVALID_INPUT,
    )
    change_error = await refused(
        change_seat_count(
            actor=owner,
            total=7,
            accept_agreement=False,
            agreement_version="old",
            proration_date=proration_date,
            clock=clock,
        ),
        ErrorCode.INVALID_INPUT,
    )

    assert preview_error.field == change_error.field == "prorationDate"
    assert await database_snapshot() == before


async def test_given_naive_or_ten_minutes_old_proration_date_then_naive_refused_old_accepted(
    account, owner, clock
):
    await refused(
        preview_seat_change(
            actor=owner, total=7, proration_date=clock.now().replace(tzinfo=None), clock=clock
        ),
        ErrorCode.INVALID_INPUT,
    )

    preview = await preview_seat_change(
        actor=owner, total=7, proration_date=clock.now() - timedelta(minutes=10), clock=clock
    )

    assert preview.proration_date == clock.now() - timedelta(minutes=10)


@pytest.mark.parametrize(
    ("accept", "version", "code", "field"),
    [
        (False, config.AGREEMENT_VERSION, ErrorCode.AGREEMENT_NOT_ACCEPTED, "acceptAgreement"),
        (False, "1999-01-01", ErrorCode.AGREEMENT_NOT_ACCEPTED, "acceptAgreement"),
        (True, "1999-01-01", ErrorCode.AGREEMENT_OUTDATED, "agreementVersion"),
    ],
)
@pytest.mark.parametrize("total", [9, 2, 5], ids=["increase", "reduction", "same"])
async def test_given_agreement_not_accepted_or_outdated_when_change_then_refused_no_change(
    account, owner, clock, accept, version, code, field, total
):
    before = await database_snapshot()

    error = await refused(
        change_seat_count(
            actor=owner,
            total=total,
            accept_agreement=accept,
            agreement_version=version,
            # A wrong amount would fail later: the agreement comes first.
            expected_amount_due_cents=-1,
            clock=clock,
        ),
        code,
    )

    assert error.field == field
    assert await database_snapshot() == before


async def test_given_concurrent_increases_when_both_commit_then_each_charge_uses_the_total_it_moved(
    account, owner, clock
):
    # Without the conditional update both would be priced from 5 seats.
    first, second = await asyncio.gather(
        change_seat_count(actor=owner, total=7, **AGREED, clock=clock),
        change_seat_count(actor=owner, total=9, **AGREED, clock=clock),
    )

    row = await Account.get(id=account.account_id)
    charges = await Charge.filter(account_id=account.account_id).order_by("id")
    assert row.seats_total == 9
    assert sum(c.quantity for c in charges) == 4
    assert sum(c.amount_cents for c in charges) == 4 * 1000
    # 5 -> 7 -> 9 (two increases), or 5 -> 9 then 7 scheduled as a reduction.
    assert row.scheduled_total in (None, 7)
    assert (first.charge is None) == (row.scheduled_total == 7)
    assert second.charge is not None
