"""One competitor in a multi-process race for licences (test_users_concurrency).

    python -m tests.domain.race_worker DATABASE_URL SECRET_HEX ACCOUNT_ID OWNER_ID
                                       INVITES EMAIL_PREFIX NOW_ISO

Opens its own connection to the database, prints "ready", waits for one line
on standard input (so every process starts at the same moment), sends its
invitations all at once and prints one JSON line: how many succeeded, the
refusals by code, and any other error (which the test treats as a failure).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from datetime import datetime

from domain import config
from domain.clock import FixedClock
from domain.db import close_database, init_database
from domain.errors import DomainError
from domain.services.invitations import InvitationOutcome, invite_user
from tests.support.principals import owner_principal


async def race(argv: list[str]) -> dict[str, object]:
    database_url, secret_hex, account_id, owner_id, invites, prefix, now_iso = argv
    config.configure(config.DomainConfig(secret_key=bytes.fromhex(secret_hex)))
    await init_database(database_url)
    try:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        owner = owner_principal(int(account_id), int(owner_id))
        clock = FixedClock(datetime.fromisoformat(now_iso))
        results = await asyncio.gather(
            *(
                invite_user(
                    actor=owner,
                    email=f"{prefix}-{i}@example.com",
                    first_name="Racer",
                    last_name=f"{prefix} {i}",
                    clock=clock,
                )
                for i in range(int(invites))
            ),
            return_exceptions=True,
        )
    finally:
        await close_database()
    return {
        "invited": sum(isinstance(result, InvitationOutcome) for result in results),
        "refused": dict(
            Counter(result.code.value for result in results if isinstance(result, DomainError))
        ),
        "errors": [
            repr(result)
            for result in results
            if isinstance(result, BaseException) and not isinstance(result, DomainError)
        ],
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(race(sys.argv[1:]))), flush=True)
