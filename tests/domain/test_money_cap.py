"""SPEC section 7: every money amount fits in 2^53 - 1 (JavaScript's safe integers)."""

import pytest

from domain.errors import DomainError, ErrorCode
from domain.models import Account
from domain.rules.money import JS_SAFE_INTEGER_MAX, SEAT_PRICE_MAX_CENTS, check_seat_price_cents
from domain.rules.proration import prorated_amount_cents
from domain.rules.seats import SEAT_MAXIMUM
from domain.services.accounts import create_account

pytestmark = pytest.mark.anyio


def test_given_the_cap_when_a_full_account_renews_then_the_amount_is_a_safe_integer():
    assert SEAT_PRICE_MAX_CENTS * SEAT_MAXIMUM <= JS_SAFE_INTEGER_MAX
    assert (SEAT_PRICE_MAX_CENTS + 1) * SEAT_MAXIMUM > JS_SAFE_INTEGER_MAX
    assert SEAT_PRICE_MAX_CENTS == 90_071_992_547


def test_given_the_cap_when_the_largest_increase_is_prorated_then_it_stays_safe():
    amount = prorated_amount_cents(
        added_seats=SEAT_MAXIMUM - 1,
        seat_price_cents=SEAT_PRICE_MAX_CENTS,
        remaining_seconds=2_678_400,
        period_seconds=2_678_400,
    )

    assert amount <= JS_SAFE_INTEGER_MAX


@pytest.mark.parametrize("cents", [-1, SEAT_PRICE_MAX_CENTS + 1])
def test_given_a_price_outside_the_cap_when_checked_then_invalid_input_names_the_field(cents):
    with pytest.raises(DomainError) as refused:
        check_seat_price_cents(cents)

    assert refused.value.code == ErrorCode.INVALID_INPUT
    assert refused.value.field == "seatPriceCents"


async def test_given_the_cap_when_an_account_is_created_then_it_is_accepted(db, clock):
    created = await create_account(
        name="Dear",
        owner_email="owner@dear.example",
        owner_first_name="Ada",
        owner_last_name="Lovelace",
        seats=SEAT_MAXIMUM,
        seat_price_cents=SEAT_PRICE_MAX_CENTS,
        clock=clock,
    )

    account = await Account.get(id=created.account_id)
    assert account.seat_price_cents == SEAT_PRICE_MAX_CENTS


async def test_given_the_cap_plus_one_when_an_account_is_created_then_it_is_refused(db, clock):
    with pytest.raises(DomainError) as refused:
        await create_account(
            name="Dearer",
            owner_email="owner@dearer.example",
            owner_first_name="Ada",
            owner_last_name="Lovelace",
            seats=1,
            seat_price_cents=SEAT_PRICE_MAX_CENTS + 1,
            clock=clock,
        )

    assert refused.value.code == ErrorCode.INVALID_INPUT
    assert refused.value.field == "seatPriceCents"
    assert await Account.all().count() == 0
