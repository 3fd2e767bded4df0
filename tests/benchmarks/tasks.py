"""Work the harness runs through the services, each time in a fresh process.

Tortoise keeps its state per process (one initialisation, one set of query
builders for one dialect), and a run uses several databases on two backends,
so every service call runs here, in a child process that opens one database:

    python -m tests.benchmarks.tasks NAME '{"url": ..., ...}'

It prints one JSON line, the task's result.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from domain.clock import SYSTEM_CLOCK
from domain.db import close_database, init_database, migrate
from domain.settings import Settings, configure_domain
from tests.benchmarks.common import REPO_ROOT, SECRET_KEY


async def accounts(url: str, specs: list[list[Any]], period_end: str | None = None) -> Any:
    """Accounts through the accounts service: [name, seats] each."""
    from domain.services.accounts import create_account  # noqa: PLC0415

    created = []
    for index, (name, seats) in enumerate(specs):
        result = await create_account(
            name=name,
            owner_email=f"owner{index}@{name.lower().replace(' ', '-')}.example",
            owner_first_name="Olive",
            owner_last_name=f"Owner{index}",
            seats=seats,
            seat_price_cents=1200,
            current_period_end=datetime.fromisoformat(period_end) if period_end else None,
            clock=SYSTEM_CLOCK,
        )
        created.append(
            {
                "account_id": result.account_id,
                "api_token": result.api_token,
                "owner_user_id": result.owner_user_id,
            }
        )
    return created


async def invites(url: str, api_token: str, count: int, tag: str) -> Any:
    """`count` invitations through the users service (outbox rows not dispatched)."""
    from domain.services import auth, invitations  # noqa: PLC0415

    actor = await auth.authenticate(bearer=api_token, clock=SYSTEM_CLOCK)
    started = time.perf_counter()
    for n in range(count):
        await invitations.invite_user(
            actor=actor,
            email=f"{tag}{n}@mail.example",
            first_name="Mail",
            last_name=f"Reader{n}",
            clock=SYSTEM_CLOCK,
        )
    return {"seconds": time.perf_counter() - started}


async def period_end(url: str) -> Any:
    """The period-end job, once, timed."""
    from domain.services.billing import run_period_end  # noqa: PLC0415

    started = time.perf_counter()
    report = await run_period_end(clock=SYSTEM_CLOCK)
    return {
        "seconds": time.perf_counter() - started,
        "accounts_due": report.accounts_due,
        "periods_renewed": report.periods_renewed,
        "licenses_released": report.licenses_released,
        "failed": len(report.failed_account_ids),
    }


async def reclaim(url: str) -> Any:
    """The reclaim job, once, timed."""
    from domain.services.reclaim import run_reclaim  # noqa: PLC0415

    started = time.perf_counter()
    report = await run_reclaim(clock=SYSTEM_CLOCK)
    return {
        "seconds": time.perf_counter() - started,
        "notices_sent": report.notices_sent,
        "licenses_released": report.licenses_released,
        "failed": len(report.failed_account_ids),
    }


async def smtp_raw(port: int, count: int, prebuilt: bool = False) -> Any:
    """The floor for B4: `count` invitation emails sent by aiosmtplib over ONE
    connection. Each message is built in the loop (a sender must build what
    it sends) with the standard library alone: EmailMessage, the same
    headers, the text and HTML parts of a rendered invitation (rendered once,
    before the clock starts). `prebuilt`: every message is built before the
    clock starts (the transport alone)."""
    import aiosmtplib  # noqa: PLC0415

    from workers.emails import InvitationEmail, render_email  # noqa: PLC0415

    rendered = render_email(
        InvitationEmail(
            recipient_name="Mail Reader",
            account_name="Mail Benchmark",
            inviter_name=None,
            accept_url="http://127.0.0.1:8000/accept-invitation?token=" + "x" * 43,
            expires_at=datetime.now(UTC),
        )
    )

    def build(n: int) -> EmailMessage:
        message = EmailMessage()
        message["From"] = "Licenses & Users <no-reply@localhost>"
        message["To"] = f"Mail Reader{n} <raw{n}@mail.example>"
        message["Subject"] = rendered.subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = f"<raw-{n}@bench.example>"
        message.set_content(rendered.text, cte="quoted-printable")
        message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
        return message

    ready = [build(n) for n in range(count)] if prebuilt else []
    started = time.perf_counter()
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30) as smtp:
        for n in range(count):
            await smtp.send_message(ready[n] if prebuilt else build(n))
    return {"seconds": time.perf_counter() - started}


TASKS: dict[str, Callable[..., Awaitable[Any]]] = {
    "accounts": accounts,
    "invites": invites,
    "period-end": period_end,
    "reclaim": reclaim,
    "smtp-raw": smtp_raw,
}
# Tasks that open no database.
_NO_DATABASE = frozenset({"smtp-raw"})


async def _run(name: str, arguments: dict[str, Any]) -> Any:
    configure_domain(Settings(secret_key=SECRET_KEY))
    if name == "migrate":
        await migrate(arguments["url"])
        return {"migrated": True}
    if name in _NO_DATABASE:
        return await TASKS[name](**arguments)
    await init_database(arguments["url"])
    try:
        return await TASKS[name](**arguments)
    finally:
        await close_database()


def run_task(name: str, *, prefix: list[str] | None = None, **arguments: Any) -> Any:
    """Run a task in a child process and return its result (`prefix`: e.g. a profiler)."""
    import subprocess  # noqa: PLC0415

    argv = [
        *(prefix or []),
        sys.executable,
        "-m",
        "tests.benchmarks.tasks",
        name,
        json.dumps(arguments),
    ]
    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"task {name} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith(("{", "["))]
    return json.loads(lines[-1])


def main() -> None:
    name, raw = sys.argv[1], sys.argv[2]
    result = asyncio.run(_run(name, json.loads(raw)))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
