"""Helpers of the billing, seat and ownership tests.

- `add_user(...)`: a user of an account created directly with the models (an
  INVITED one with its pending invitation, a licensed one with its assignment
  and the seat counter moved), independent of the users service.
- Run as a module, a separate OS process for the race tests. It opens the
  database, prints `ready`, waits for a line on stdin (so that every process
  starts at once), runs its job and prints one JSON line:

    python -m tests.domain.billing_worker period-end <database_url> <now ISO 8601>
    python -m tests.domain.billing_worker transfer <database_url> <account_id> \
        <owner_user_id> <target_user_id>...
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import F

from domain import config
from domain.clock import FixedClock, SystemClock
from domain.db import close_database, init_database
from domain.enums import ActorKind, InvitationKind, InvitationStatus, Role, UserStatus
from domain.errors import DomainError
from domain.models import Account, Invitation, LicenseAssignment, User
from domain.principal import Principal
from domain.security import random_token, token_hash
from domain.services.billing import run_period_end
from domain.services.ownership import transfer_ownership

# The same key as tests/conftest.py, so both sides derive the same tokens.
TEST_SECRET_KEY = b"test-secret-key-0123456789abcdef"


async def add_user(
    account_id: int,
    *,
    email: str,
    created_at: datetime,
    status: UserStatus = UserStatus.ENABLED,
    role: Role = Role.MEMBER,
    last_active_at: datetime | None = None,
    invited_at: datetime | None = None,
    invitation_expires_at: datetime | None = None,
) -> User:
    """A user as the users service would leave it; licensed unless DISABLED."""
    local = email.split("@", 1)[0]
    user = await User.create(
        account_id=account_id,
        email=email,
        email_key=email.lower(),
        first_name="Test",
        last_name=local,
        sort_name=f"test {local.lower()}",
        role=role,
        status=status,
        created_at=created_at,
        last_active_at=last_active_at,
    )
    if status != UserStatus.DISABLED:
        taken = await Account.filter(id=account_id, seats_in_use__lt=F("seats_total")).update(
            seats_in_use=F("seats_in_use") + 1
        )
        assert taken == 1, "no licence left for the test user"
        await LicenseAssignment.create(
            account_id=account_id,
            user_id=user.id,
            assigned_at=invited_at or created_at,
            assigned_by_kind=ActorKind.SYSTEM,
        )
    if status == UserStatus.INVITED:
        sent = invited_at or created_at
        await Invitation.create(
            account_id=account_id,
            user_id=user.id,
            kind=InvitationKind.LICENSE,
            email=email,
            token_hash=token_hash(random_token()),
            status=InvitationStatus.PENDING,
            created_at=sent,
            sent_at=sent,
            # Far away by default, so that moving the clock by months does
            # not expire it.
            expires_at=invitation_expires_at or sent + timedelta(days=3650),
        )
    return user


async def _period_end(now: str) -> dict[str, Any]:
    report = await run_period_end(clock=FixedClock(datetime.fromisoformat(now)))
    return asdict(report)


async def _transfer(account_id: str, owner_id: str, targets: list[str]) -> dict[str, Any]:
    owner = Principal(
        account_id=int(account_id), kind=ActorKind.USER, role=Role.OWNER, user_id=int(owner_id)
    )

    async def attempt(target: str) -> str:
        try:
            await transfer_ownership(actor=owner, user_id=target, clock=SystemClock())
        except DomainError as refused:
            return refused.code.value
        return "OK"

    results = await asyncio.gather(*(attempt(t) for t in targets))
    return {"results": dict(zip(targets, results, strict=True))}


async def _main(argv: list[str]) -> None:
    command, database_url, *rest = argv
    config.configure(config.DomainConfig(secret_key=TEST_SECRET_KEY))
    await init_database(database_url)
    try:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        if command == "period-end":
            result = await _period_end(rest[0])
        elif command == "transfer":
            result = await _transfer(rest[0], rest[1], rest[2:])
        else:
            raise SystemExit(f"unknown command {command!r}")
        print(json.dumps(result), flush=True)
    finally:
        await close_database()


async def run_processes(commands: list[list[str]], *, seconds: float = 60) -> list[dict[str, Any]]:
    """Start one process per command, release them together, return their JSON results."""
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.domain.billing_worker",
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for command in commands
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), seconds)
            if line.strip() != b"ready":
                _, err = await process.communicate()
                raise AssertionError(f"worker did not start: {line!r} {err.decode()}")
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        results: list[dict[str, Any]] = []
        for process in processes:
            out, err = await asyncio.wait_for(process.communicate(), seconds)
            if process.returncode != 0:
                raise AssertionError(f"worker failed ({process.returncode}): {err.decode()}")
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
        return results
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))
