"""The export reads (domain/reads/exports.py): who may export, and what a batch-by-batch
read promises while the account changes under it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tortoise import connections

from domain.clock import FixedClock
from domain.enums import ActorKind, AuditAction, Role
from domain.errors import DomainError, ErrorCode
from domain.models import AuditEvent, User
from domain.principal import Principal
from domain.reads.exports import export_audit_events, export_users
from domain.services.accounts import CreatedAccount
from tests.support.database import POSTGRES_URL
from tests.support.factories import add_user
from tests.support.principals import as_user

pytestmark = pytest.mark.anyio


async def _events(account_id: int, clock: FixedClock, count: int) -> None:
    for n in range(count):
        await AuditEvent.create(
            account_id=account_id,
            action=AuditAction.SEATS_INCREASED,
            actor_kind=ActorKind.SYSTEM,
            data={"n": n},
            created_at=clock.now() + timedelta(seconds=n),
        )


async def test_given_events_written_during_an_export_when_it_ends_then_it_holds_the_log_as_it_was_at_the_start(  # noqa: E501
    account: CreatedAccount, owner: Principal, clock: FixedClock
):
    await _events(account.account_id, clock, 5)
    at_start = [
        str(e.id) for e in await AuditEvent.filter(account_id=account.account_id).order_by("id")
    ]

    export = await export_audit_events(actor=owner, clock=clock, batch_size=2)
    first = await anext(export.batches)
    await _events(account.account_id, clock, 3)
    rest = [row async for batch in export.batches for row in batch]

    assert [row[0] for row in [*first, *rest]] == at_start


async def test_given_users_renamed_during_an_export_when_it_ends_then_each_user_appears_once(
    account: CreatedAccount, owner: Principal, clock: FixedClock
):
    for n in range(6):
        await add_user(account.account_id, created_at=clock.now(), email=f"u{n}@example.com")
    ids = {str(u.id) for u in await User.filter(account_id=account.account_id)}

    export = await export_users(actor=owner, clock=clock, batch_size=2)
    first = await anext(export.batches)
    await User.filter(account_id=account.account_id).update(first_name="Renamed")
    rest = [row async for batch in export.batches for row in batch]

    exported = [row[0] for row in [*first, *rest]]
    assert sorted(exported) == sorted(ids) and len(exported) == len(ids)
    assert {row[2] for row in rest} == {"Renamed"}


async def test_given_a_member_when_exporting_then_forbidden(
    account: CreatedAccount, clock: FixedClock
):
    member = await add_user(account.account_id, created_at=clock.now(), role=Role.MEMBER)

    for export in (export_users, export_audit_events):
        with pytest.raises(DomainError) as refused:
            await export(actor=as_user(member), clock=clock)
        assert refused.value.code == ErrorCode.FORBIDDEN


@pytest.mark.skipif(POSTGRES_URL is not None, reason="text stored with an offset: SQLite")
async def test_given_a_time_stored_with_another_offset_when_exported_then_it_is_given_in_utc(
    account: CreatedAccount, owner: Principal, clock: FixedClock
):
    # Tortoise stores UTC; another writer of the file may not.
    await connections.get("default").execute_query(
        "UPDATE users SET last_active_at = '2026-01-01 10:00:00.5+02:00' WHERE id = ?",
        [account.owner_user_id],
    )

    export = await export_users(actor=owner, clock=clock)
    [row] = [row async for batch in export.batches for row in batch]

    assert row[10] == "2026-01-01T08:00:00.500000+00:00"
    assert row[9] == "2026-03-10T12:00:00+00:00"  # the test clock's, as stored
