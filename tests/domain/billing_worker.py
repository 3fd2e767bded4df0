"""A separate OS process for the billing and ownership race tests.

Run as a module, it opens the database, prints `ready`, waits for a line on
stdin (so that every process starts at once), runs its job and prints one
JSON line:

    python -m tests.domain.billing_worker period-end <database_url> <now ISO 8601>
    python -m tests.domain.billing_worker reclaim <database_url> <now ISO 8601>
    python -m tests.domain.billing_worker transfer <database_url> <account_id> \
        <owner_user_id> <target_user_id>...
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict
from datetime import datetime
from typing import Any

from domain import config
from domain.clock import FixedClock, SystemClock
from domain.db import close_database, init_database
from domain.errors import DomainError
from domain.services.billing import run_period_end
from domain.services.ownership import transfer_ownership
from domain.services.reclaim import run_reclaim
from tests.support.database import TEST_SECRET_KEY  # the test process's: same tokens
from tests.support.principals import owner_principal


async def _period_end(now: str) -> dict[str, Any]:
    report = await run_period_end(clock=FixedClock(datetime.fromisoformat(now)))
    return asdict(report)


async def _reclaim(now: str) -> dict[str, Any]:
    report = await run_reclaim(clock=FixedClock(datetime.fromisoformat(now)))
    return asdict(report)


async def _transfer(account_id: str, owner_id: str, targets: list[str]) -> dict[str, Any]:
    owner = owner_principal(int(account_id), int(owner_id))

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
        elif command == "reclaim":
            result = await _reclaim(rest[0])
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
