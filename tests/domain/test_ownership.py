"""Ownership transfer: one owner at every instant, refusals that change nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from domain.enums import AuditAction, EmailKind, Role, UserStatus
from domain.errors import DomainError, ErrorCode
from domain.models import AuditEvent, LicenseAssignment, OutboxMessage, Session, User
from domain.principal import Principal
from domain.services.ownership import transfer_ownership
from tests.domain.billing_worker import run_processes
from tests.support.assertions import refused
from tests.support.factories import add_user, make_account
from tests.support.principals import as_user, owner_principal
from tests.support.snapshot import database_snapshot

pytestmark = pytest.mark.anyio


async def open_session(user_id: int, account_id: int, clock, n: int) -> Session:
    return await Session.create(
        account_id=account_id,
        user_id=user_id,
        token_hash=f"{user_id:032d}{n:032d}",
        created_at=clock.now(),
        expires_at=clock.now() + timedelta(days=14),
    )


async def assert_single_enabled_licensed_owner(account_id: int) -> User:
    owners = await User.filter(account_id=account_id, role=Role.OWNER)
    assert len(owners) == 1
    owner = owners[0]
    assert owner.status == UserStatus.ENABLED
    assert await LicenseAssignment.filter(user_id=owner.id, unassigned_at__isnull=True).count() == 1
    return owner


async def test_given_enabled_admin_when_transfer_then_roles_swap_and_previous_owner_signed_out(
    account, owner, clock
):
    target = await add_user(
        account.account_id,
        email="next@example.com",
        role=Role.ADMIN,
        created_at=clock.now(),
        licensed=True,
    )
    for n in range(2):
        await open_session(account.owner_user_id, account.account_id, clock, n)
    target_session = await open_session(target.id, account.account_id, clock, 9)
    clock.advance(timedelta(minutes=1))

    outcome = await transfer_ownership(actor=owner, user_id=str(target.id), clock=clock)

    assert (outcome.previous_owner.id, outcome.previous_owner.role) == (owner.user_id, Role.ADMIN)
    assert (outcome.new_owner.id, outcome.new_owner.role) == (target.id, Role.OWNER)
    assert (await assert_single_enabled_licensed_owner(account.account_id)).id == target.id
    previous = await User.get(id=account.owner_user_id)
    assert (previous.role, previous.status) == (Role.ADMIN, UserStatus.ENABLED)
    sessions = await Session.filter(user_id=account.owner_user_id)
    assert {s.ended_at for s in sessions} == {clock.now()}
    assert (await Session.get(id=target_session.id)).ended_at is None
    audit = await AuditEvent.get(action=AuditAction.OWNERSHIP_TRANSFERRED)
    assert (audit.actor_user_id, audit.target_user_id) == (owner.user_id, target.id)
    assert audit.data == {
        "previousOwnerId": owner.user_id,
        "newOwnerId": target.id,
        "newOwnerPreviousRole": "ADMIN",
    }
    emails = {
        m.kind: m.payload
        for m in await OutboxMessage.filter(
            kind__in=[
                EmailKind.OWNERSHIP_TRANSFERRED_TO_NEW_OWNER,
                EmailKind.OWNERSHIP_TRANSFERRED_TO_PREVIOUS_OWNER,
            ]
        )
    }
    ids = {
        "accountId": account.account_id,
        "previousOwnerId": owner.user_id,
        "newOwnerId": target.id,
    }
    assert emails == {
        EmailKind.OWNERSHIP_TRANSFERRED_TO_NEW_OWNER: {**ids, "recipientUserId": target.id},
        EmailKind.OWNERSHIP_TRANSFERRED_TO_PREVIOUS_OWNER: {
            **ids,
            "recipientUserId": owner.user_id,
        },
    }


async def test_given_member_target_when_transfer_then_member_becomes_owner(account, owner, clock):
    target = await add_user(
        account.account_id, email="m@example.com", created_at=clock.now(), licensed=True
    )

    outcome = await transfer_ownership(actor=owner, user_id=str(target.id), clock=clock)

    assert outcome.new_owner.role == Role.OWNER
    # The new owner can hand it on, and the former owner is now an ADMIN.
    back = await transfer_ownership(
        actor=as_user(outcome.new_owner), user_id=str(owner.user_id), clock=clock
    )
    assert back.new_owner.id == owner.user_id
    assert (await User.get(id=target.id)).role == Role.ADMIN


@pytest.mark.parametrize("who", ["admin", "member", "api_token", "system"])
async def test_given_non_owner_actor_when_transfer_then_forbidden_before_not_found_no_change(
    account, api_token_actor, clock, who
):
    admin = await add_user(
        account.account_id,
        email="a@example.com",
        role=Role.ADMIN,
        created_at=clock.now(),
        licensed=True,
    )
    member = await add_user(
        account.account_id, email="m@example.com", created_at=clock.now(), licensed=True
    )
    actor = {
        "admin": as_user(admin),
        "member": as_user(member),
        "api_token": api_token_actor,
        # The system acts with OWNER rights elsewhere, never owns.
        "system": Principal.system(account.account_id),
    }[who]
    before = await database_snapshot()

    await refused(
        transfer_ownership(actor=actor, user_id=str(member.id), clock=clock), ErrorCode.FORBIDDEN
    )
    await refused(
        transfer_ownership(actor=actor, user_id="999999", clock=clock), ErrorCode.FORBIDDEN
    )

    assert await database_snapshot() == before


async def test_given_unknown_malformed_or_foreign_user_when_transfer_then_not_found_no_change(
    account, owner, clock
):
    other = await make_account(clock, email="other-owner@example.com", name="Other")
    foreigner = await add_user(
        other.account_id, email="f@example.com", created_at=clock.now(), licensed=True
    )
    before = await database_snapshot()

    for user_id in ("999999", "abc", "", str(foreigner.id), str(other.owner_user_id)):
        await refused(
            transfer_ownership(actor=owner, user_id=user_id, clock=clock), ErrorCode.NOT_FOUND
        )

    assert await database_snapshot() == before


@pytest.mark.parametrize("status", [UserStatus.INVITED, UserStatus.DISABLED])
async def test_given_target_not_enabled_when_transfer_then_target_not_eligible_and_nothing_changes(
    account, owner, clock, status
):
    target = await add_user(
        account.account_id,
        email="t@example.com",
        status=status,
        created_at=clock.now(),
        licensed=True,
    )
    before = await database_snapshot()

    await refused(
        transfer_ownership(actor=owner, user_id=str(target.id), clock=clock),
        ErrorCode.TARGET_NOT_ELIGIBLE,
    )

    assert await database_snapshot() == before


async def test_given_owner_itself_when_transfer_then_already_owner_and_nothing_changes(
    account, owner, clock
):
    before = await database_snapshot()

    await refused(
        transfer_ownership(actor=owner, user_id=str(owner.user_id), clock=clock),
        ErrorCode.ALREADY_OWNER,
    )

    assert await database_snapshot() == before


async def test_given_ownership_moved_when_stale_owner_transfers_then_forbidden_no_change(
    account, owner, clock
):
    first = await add_user(
        account.account_id, email="1@example.com", created_at=clock.now(), licensed=True
    )
    second = await add_user(
        account.account_id, email="2@example.com", created_at=clock.now(), licensed=True
    )
    await transfer_ownership(actor=owner, user_id=str(first.id), clock=clock)
    before = await database_snapshot()

    # The principal still says OWNER (built before the transfer).
    await refused(
        transfer_ownership(actor=owner, user_id=str(second.id), clock=clock), ErrorCode.FORBIDDEN
    )
    await refused(
        transfer_ownership(actor=owner, user_id=str(first.id), clock=clock), ErrorCode.FORBIDDEN
    )

    assert await database_snapshot() == before


async def test_given_twenty_concurrent_transfers_when_they_race_then_exactly_one_wins(db, clock):
    created = await make_account(clock, seats=21)
    owner = owner_principal(created.account_id, created.owner_user_id)
    targets = [
        await add_user(
            created.account_id, email=f"t{n}@example.com", created_at=clock.now(), licensed=True
        )
        for n in range(20)
    ]

    results = await asyncio.gather(
        *(transfer_ownership(actor=owner, user_id=str(t.id), clock=clock) for t in targets),
        return_exceptions=True,
    )

    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(e, DomainError) and e.code == ErrorCode.FORBIDDEN for e in losers), losers
    new_owner = await assert_single_enabled_licensed_owner(created.account_id)
    assert new_owner.id == winners[0].new_owner.id
    assert (await User.get(id=owner.user_id)).role == Role.ADMIN
    assert await AuditEvent.filter(action=AuditAction.OWNERSHIP_TRANSFERRED).count() == 1
    assert (
        await OutboxMessage.filter(kind=EmailKind.OWNERSHIP_TRANSFERRED_TO_NEW_OWNER).count() == 1
    )


async def test_given_three_processes_transferring_at_once_then_exactly_one_owner_remains(db, clock):
    created = await make_account(clock, seats=20)
    targets = [
        await add_user(
            created.account_id, email=f"t{n}@example.com", created_at=clock.now(), licensed=True
        )
        for n in range(12)
    ]
    ids = [str(t.id) for t in targets]
    commands = [
        ["transfer", db, str(created.account_id), str(created.owner_user_id), *ids[n::3]]
        for n in range(3)
    ]

    outputs = await run_processes(commands)

    results = [code for out in outputs for code in out["results"].values()]
    assert results.count("OK") == 1
    assert set(results) == {"OK", "FORBIDDEN"}
    winner_id = next(uid for out in outputs for uid, code in out["results"].items() if code == "OK")
    new_owner = await assert_single_enabled_licensed_owner(created.account_id)
    assert str(new_owner.id) == winner_id
    assert await AuditEvent.filter(action=AuditAction.OWNERSHIP_TRANSFERRED).count() == 1
