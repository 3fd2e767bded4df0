"""Licences under concurrency: in use never above the total, counters always
equal to the rows they count, and only domain refusals as failures.

On PostgreSQL asyncio.gather runs the transactions truly concurrently over the
connection pool; on SQLite they serialise inside the process, so the race is
also run between separate processes sharing the same database.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.enums import InvitationKind, InvitationStatus, Role, UserStatus
from domain.errors import DomainError, ErrorCode
from domain.models import Account, ApiToken, Invitation, LicenseAssignment, User
from domain.security import invitation_token
from domain.services.invitations import (
    accept_invitation,
    expire_invitations,
    invite_user,
    resend_invitation,
    revoke_invitation,
)
from domain.services.licensing import assign_license, unassign_license
from domain.services.profile import update_user
from tests.support.database import TEST_SECRET_KEY
from tests.support.factories import make_account
from tests.support.principals import api_token_principal, owner_principal

pytestmark = pytest.mark.anyio

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HOLDING = (UserStatus.INVITED, UserStatus.ENABLED)


async def assert_invariants(account_id: int) -> tuple[int, int]:
    """The seat counter never exceeds the total and always equals what it counts."""
    account = await Account.get(id=account_id)
    open_assignments = await LicenseAssignment.filter(
        account_id=account_id, unassigned_at__isnull=True
    ).values_list("user_id", flat=True)
    holders = await User.filter(account_id=account_id, status__in=HOLDING).values_list(
        "id", flat=True
    )
    invited = await User.filter(account_id=account_id, status=UserStatus.INVITED).count()
    pending = await Invitation.filter(
        account_id=account_id, kind=InvitationKind.LICENSE, status=InvitationStatus.PENDING
    ).count()
    assert account.seats_in_use <= account.seats_total
    assert account.seats_in_use == len(open_assignments) == len(holders)
    assert sorted(open_assignments) == sorted(holders)
    assert invited == pending
    assert await User.filter(account_id=account_id, role=Role.OWNER).count() == 1
    return account.seats_in_use, account.seats_total


def split(results: list[Any]) -> tuple[list[Any], Counter[ErrorCode], list[BaseException]]:
    successes = [r for r in results if not isinstance(r, BaseException)]
    refusals = Counter(r.code for r in results if isinstance(r, DomainError))
    others = [r for r in results if isinstance(r, BaseException) and not isinstance(r, DomainError)]
    return successes, refusals, others


async def test_given_10_free_licences_when_50_invites_at_once_then_exactly_10_succeed(db, clock):
    created = await make_account(clock, seats=11)  # the owner holds one
    owner = owner_principal(created.account_id, created.owner_user_id)

    results = await asyncio.gather(
        *(
            invite_user(
                actor=owner,
                email=f"racer{i}@example.com",
                first_name="Racer",
                last_name=str(i),
                clock=clock,
            )
            for i in range(50)
        ),
        return_exceptions=True,
    )

    successes, refusals, others = split(results)
    assert others == []
    assert len(successes) == 10
    assert refusals == {ErrorCode.NO_AVAILABLE_LICENSES: 40}
    assert await assert_invariants(created.account_id) == (11, 11)
    assert await User.filter(account_id=created.account_id, status=UserStatus.INVITED).count() == 10


async def test_given_a_storm_of_mixed_calls_then_invariants_hold_after_every_batch(db, clock):
    created = await make_account(clock, seats=12)
    account_id = created.account_id
    owner = owner_principal(account_id, created.owner_user_id)
    token = await ApiToken.get(account_id=account_id)
    api = api_token_principal(account_id, token.id)
    rng = random.Random(20260310)
    emails = [f"storm{i}@example.com" for i in range(80)]

    async def accept_latest(user_id: int) -> Any:
        invitation = await Invitation.filter(user_id=user_id).order_by("-id").first()
        if invitation is None:
            raise DomainError(ErrorCode.INVITATION_INVALID, "no invitation yet")
        return await accept_invitation(
            token=invitation_token(invitation.id, invitation.token_version),
            password="storm password",
            clock=clock,
        )

    def pick_call(
        user_ids: list[int], invited_ids: list[int]
    ) -> tuple[str, Callable[[], Awaitable[Any]]]:
        actor = rng.choice((owner, api))
        user_id = str(rng.choice(user_ids))
        roll = rng.random()
        if roll < 0.32:
            email = rng.choice(emails)
            return "invite", lambda: invite_user(
                actor=actor, email=email, first_name="Storm", last_name="User", clock=clock
            )
        if roll < 0.47:
            return "assign", lambda: assign_license(actor=actor, user_id=user_id, clock=clock)
        if roll < 0.62:
            return "unassign", lambda: unassign_license(actor=actor, user_id=user_id, clock=clock)
        if roll < 0.74:
            return "revoke", lambda: revoke_invitation(actor=actor, user_id=user_id, clock=clock)
        if roll < 0.84:
            return "resend", lambda: resend_invitation(actor=actor, user_id=user_id, clock=clock)
        if roll < 0.89:
            invited = rng.choice(invited_ids or user_ids)
            return "accept", lambda: accept_latest(invited)
        if roll < 0.92:
            return "expire", lambda: expire_invitations(clock=clock)
        role = rng.choice((Role.ADMIN, Role.MEMBER))
        return "update", lambda: update_user(
            actor=actor, user_id=user_id, role=role, qualification="storm", clock=clock
        )

    outcomes: Counter[tuple[str, str]] = Counter()
    unexpected: list[BaseException] = []
    for batch in range(20):
        user_ids = list(await User.filter(account_id=account_id).values_list("id", flat=True))
        invited_ids = list(
            await User.filter(account_id=account_id, status=UserStatus.INVITED).values_list(
                "id", flat=True
            )
        )
        calls = [pick_call(user_ids, invited_ids) for _ in range(25)]
        results = await asyncio.gather(*(call() for _, call in calls), return_exceptions=True)
        for (name, _), result in zip(calls, results, strict=True):
            if isinstance(result, DomainError):
                outcomes[(name, result.code.value)] += 1
            elif isinstance(result, BaseException):
                unexpected.append(result)
            else:
                outcomes[(name, "ok")] += 1
        assert unexpected == [], unexpected
        await assert_invariants(account_id)
        # Time passes; halfway through, every pending invitation runs past
        # its expiry, so the next batch expires them while it races.
        clock.advance(timedelta(days=8) if batch == 9 else timedelta(hours=rng.randint(0, 12)))

    in_use, total = await assert_invariants(account_id)
    assert total == 12 and in_use <= total
    assert sum(outcomes.values()) == 500
    # The storm did reach every path that moves a licence, and the limit.
    for name in ("invite", "assign", "unassign", "revoke", "resend", "accept"):
        assert outcomes[(name, "ok")] > 0, (name, outcomes)
    assert outcomes[("invite", ErrorCode.NO_AVAILABLE_LICENSES.value)] > 0, outcomes
    assert await Invitation.filter(account_id=account_id, status=InvitationStatus.EXPIRED).exists()


async def _run_race(
    database_url: str, account_id: int, owner_id: int, now: str, *, processes: int, invites: int
) -> list[dict[str, Any]]:
    started = []
    try:
        for n in range(processes):
            started.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "tests.domain.race_worker",
                    database_url,
                    TEST_SECRET_KEY.hex(),
                    str(account_id),
                    str(owner_id),
                    str(invites),
                    f"p{n}",
                    now,
                    cwd=PROJECT_ROOT,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
            )
        for process in started:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
            assert line.strip() == b"ready", line
        for process in started:  # release them together
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        reports = []
        for process in started:
            out, err = await asyncio.wait_for(process.communicate(), timeout=60)
            assert process.returncode == 0, err.decode()
            reports.append(json.loads(out.decode().strip().splitlines()[-1]))
        return reports
    finally:
        for process in started:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_given_10_free_licences_when_3_processes_race_then_exactly_10_succeed(db, clock):
    created = await make_account(clock, seats=11)

    reports = await _run_race(
        db,
        created.account_id,
        created.owner_user_id,
        clock.now().isoformat(),
        processes=3,
        invites=20,
    )

    assert [report["errors"] for report in reports] == [[], [], []]  # no "database is locked"
    assert sum(report["invited"] for report in reports) == 10
    assert sum(report["refused"].get("NO_AVAILABLE_LICENSES", 0) for report in reports) == 50
    assert await assert_invariants(created.account_id) == (11, 11)
    assert await User.filter(account_id=created.account_id).count() == 11
