"""The period-end job's two ways of closing a period write the same rows.

On PostgreSQL a plain renewal goes through the set-based path
(`billing_batch`); with that path switched off, the same accounts go one at
a time. Twin accounts, built identically, are closed one way each; every
row of each twin (accounts, charges, audit events, outbox, ...) must then be
equal, ids aside.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from tortoise.models import Model

from domain import config
from domain.clock import FixedClock
from domain.enums import BillingInterval
from domain.models import Account, ApiToken, Charge, Invitation, User
from domain.principal import Principal
from domain.rules.money import SEAT_PRICE_MAX_CENTS
from domain.services import billing
from domain.services.accounts import create_account
from domain.services.billing import run_period_end
from domain.services.billing_batch import DueAccount
from domain.services.invitations import invite_user
from domain.services.seats import change_seat_count
from tests.support import snapshot
from tests.support.database import POSTGRES_URL

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not POSTGRES_URL, reason="the set-based path runs on PostgreSQL only"),
]

CREATED = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
# Invitations sent now expire on Feb 6, after the run: none is overdue.
PREPARED = datetime(2026, 1, 30, 12, 0, tzinfo=UTC)
# Every period below has ended once, none twice.
RUN_AT = datetime(2026, 2, 5, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Twin:
    interval: BillingInterval
    period_end: datetime
    seats: int
    price_cents: int
    invites: int = 0
    scheduled_total: int | None = None


TWINS = [
    # Anchored on the 31st: the next period ends Feb 28.
    Twin(BillingInterval.MONTH, datetime(2026, 1, 31, 12, 0, tzinfo=UTC), 5, 1_000),
    # A reduction the licences in use (owner + 2 invited) fit in exactly.
    Twin(
        BillingInterval.MONTH,
        datetime(2026, 2, 1, tzinfo=UTC),
        5,
        1_250,
        invites=2,
        scheduled_total=3,
    ),
    # The largest amounts a renewal may reach.
    Twin(
        BillingInterval.YEAR, datetime(2026, 2, 2, 8, 30, tzinfo=UTC), 1_000, SEAT_PRICE_MAX_CENTS
    ),
    # Reduced to the owner's licence alone, one second before midnight.
    Twin(
        BillingInterval.MONTH,
        datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC),
        10,
        999,
        invites=1,
        scheduled_total=2,
    ),
]


async def prepare(twin: Twin, clock: FixedClock) -> int:
    clock.at = CREATED
    created = await create_account(
        name="Twin",
        owner_email="owner@example.com",
        owner_first_name="Olive",
        owner_last_name="Owner",
        seats=twin.seats,
        seat_price_cents=twin.price_cents,
        interval=twin.interval,
        current_period_end=twin.period_end,
        clock=clock,
    )
    owner = Principal.of_user(await User.get(id=created.owner_user_id))
    clock.at = PREPARED
    for n in range(twin.invites):
        await invite_user(
            actor=owner,
            email=f"user{n}@example.com",
            first_name="Ada",
            last_name=f"Number {n}",
            clock=clock,
        )
    if twin.scheduled_total is not None:
        await change_seat_count(
            actor=owner,
            total=twin.scheduled_total,
            accept_agreement=True,
            agreement_version=config.AGREEMENT_VERSION,
            clock=clock,
        )
    return created.account_id


# Every table an account's rows live in.
TABLES: tuple[type[Model], ...] = tuple(
    model for model in snapshot.TABLES if model is Account or "account" in model._meta.fk_fields
)
# Random per row (tokens and their hashes), so never the same in twins.
SECRETS = {"token_hash", "secret_hash", "prefix", "password_hash"}
# Ids inside audit data and outbox payloads, by the table they point into.
ID_KEYS: dict[str, type[Model]] = {
    "accountId": Account,
    "apiTokenId": ApiToken,
    "chargeId": Charge,
    "invitationId": Invitation,
    "recipientUserId": User,
    "userId": User,
    "releasedUserIds": User,
    "userIds": User,
}


async def rows_of(account_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every row of the account, each id replaced by its rank among the
    account's rows of the table it names, secrets left out (so twins compare
    equal)."""
    found: dict[type[Model], list[dict[str, Any]]] = {}
    for model in TABLES:
        query = (
            model.filter(id=account_id) if model is Account else model.filter(account_id=account_id)
        )
        found[model] = await query.order_by("id").values()
    rank = {(model, row["id"]): n for model in TABLES for n, row in enumerate(found[model])}

    def ref(model: type[Model], value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, list):
            return [ref(model, item) for item in value]
        return rank.get((model, value), f"foreign {model.__name__} {value}")

    def plain(model: type[Model], row: dict[str, Any]) -> dict[str, Any]:
        references = {
            f"{name}_id": model._meta.fields_map[name].related_model  # type: ignore[attr-defined]
            for name in model._meta.fk_fields
        }
        out: dict[str, Any] = {}
        for column, value in row.items():
            if column in SECRETS:
                continue
            if column == "id":
                out[column] = rank[(model, value)]
            elif column in references:
                out[column] = ref(references[column], value)
            elif isinstance(value, dict):
                out[column] = {
                    key: ref(ID_KEYS[key], item) if key in ID_KEYS else item
                    for key, item in value.items()
                }
            else:
                out[column] = value
        return out

    return {model._meta.db_table: [plain(model, row) for row in found[model]] for model in TABLES}


async def test_given_twin_accounts_when_closed_each_way_then_every_row_is_the_same(
    db, clock, monkeypatch
):
    pairs = [(await prepare(twin, clock), await prepare(twin, clock)) for twin in TWINS]
    clock.at = RUN_AT
    real_batch = billing.renew_batch
    closed_in_batch: set[int] = set()

    async def watched(batch: list[DueAccount], now: datetime) -> set[int]:
        closed = await real_batch(batch, now)
        closed_in_batch.update(closed)
        return closed

    async def switched_off(batch: list[DueAccount], now: datetime) -> set[int]:
        return set()

    monkeypatch.setattr(billing, "renew_batch", watched)
    for set_based, _ in pairs:
        report = await run_period_end(clock=clock, account_id=set_based)
        assert (report.periods_renewed, report.failed_account_ids) == (1, ())
    monkeypatch.setattr(billing, "renew_batch", switched_off)
    for _, one_by_one in pairs:
        report = await run_period_end(clock=clock, account_id=one_by_one)
        assert (report.periods_renewed, report.failed_account_ids) == (1, ())

    assert closed_in_batch == {set_based for set_based, _ in pairs}
    for set_based, one_by_one in pairs:
        assert await rows_of(set_based) == await rows_of(one_by_one)
