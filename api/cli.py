"""The `licenses` command: serve, worker, scheduler, migrate, account create, billing run,
users import (api/cli_import.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from datetime import datetime
from typing import Any, TypeVar

from api.cli_import import add_users_parser, users_import
from api.logs import configure_logging
from api.settings import ApiSettings, public_url_for
from domain.clock import SYSTEM_CLOCK
from domain.db import close_database, init_database, migrate
from domain.enums import BillingInterval
from domain.errors import DomainError
from domain.settings import Settings, SettingsError, configure_domain

log = logging.getLogger("licenses")
T = TypeVar("T")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="licenses",
        description="Licenses & Users: licences, invitations, billing periods and ownership.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="Run the HTTP API (GraphQL at /graphql).")
    serve.add_argument("--host", help="Address to listen on (default: HOST or 127.0.0.1).")
    serve.add_argument("--port", type=int, help="Port to listen on (default: PORT or 8000).")
    serve.add_argument(
        "--workers", type=int, default=1, help="API processes (production mode only)."
    )

    worker = commands.add_parser("worker", help="Run Dramatiq workers (needs REDIS_URL).")
    worker.add_argument("--processes", type=int, default=2, help="Worker processes.")
    worker.add_argument("--threads", type=int, default=4, help="Threads per process.")

    commands.add_parser(
        "scheduler", help="Enqueue the periodic jobs every minute (needs REDIS_URL)."
    )
    commands.add_parser("migrate", help="Apply pending database migrations and list those applied.")

    account = commands.add_parser("account", help="Manage accounts.")
    account_commands = account.add_subparsers(dest="account_command", required=True)
    create = account_commands.add_parser("create", help="Create an account and its owner.")
    create.add_argument("--name", required=True)
    create.add_argument("--owner-email", required=True)
    create.add_argument("--owner-first-name", required=True)
    create.add_argument("--owner-last-name", required=True)
    create.add_argument("--seats", type=int, required=True)
    create.add_argument("--seat-price-cents", type=int, required=True)
    create.add_argument("--currency", default="USD")
    create.add_argument("--interval", choices=["month", "year"], default="month")
    create.add_argument(
        "--current-period-end",
        type=_iso_datetime,
        help="ISO 8601 with offset; default one interval from now.",
    )
    create.add_argument(
        "--json", action="store_true", help="Print one JSON object on standard output."
    )

    billing = commands.add_parser("billing", help="Billing jobs.")
    billing_commands = billing.add_subparsers(dest="billing_command", required=True)
    billing_commands.add_parser("run", help="Run the period-end job once, now.")

    add_users_parser(commands)
    return parser


def _iso_datetime(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {raw!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give a UTC offset, e.g. 2027-01-31T00:00:00+00:00")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"licenses: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    configure_domain(settings)
    commands: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
        "serve": _serve,
        "worker": _worker,
        "scheduler": _scheduler,
        "migrate": _migrate,
        "account": _account_create,
        "billing": _billing_run,
        "users": _users_import,
    }
    return commands[args.command](args, settings)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn  # noqa: PLC0415 - only this command needs the server

    if args.workers > 1 and settings.embedded:
        print(
            "licenses: --workers needs REDIS_URL (embedded jobs run in one process)",
            file=sys.stderr,
        )
        return 2
    try:
        api_settings = ApiSettings.from_env()
        host, port = args.host or api_settings.host, args.port or api_settings.port
        settings = public_url_for(settings, host=host, port=port)
        if args.workers > 1:
            # Each worker process builds its app from the environment (api.asgi).
            os.environ["PUBLIC_URL"] = settings.public_url
        # A broken persisted-query manifest stops start-up with one line too.
        app = "api.asgi:app" if args.workers > 1 else _app(settings, api_settings)
        if args.workers > 1:
            from api.persisted_queries import load_manifests  # noqa: PLC0415

            load_manifests(api_settings)
    except SettingsError as error:
        print(f"licenses: configuration error: {error}", file=sys.stderr)
        return 2
    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=args.workers,
        log_config=None,
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=30,
    )
    return 0


def _app(settings: Settings, api_settings: ApiSettings) -> Any:
    from api.app import create_app  # noqa: PLC0415

    return create_app(settings, api_settings=api_settings)


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    if settings.embedded:
        print(
            "licenses: worker needs REDIS_URL (embedded mode runs jobs in serve)", file=sys.stderr
        )
        return 2
    from workers.worker_main import run_worker  # noqa: PLC0415

    return run_worker(settings, processes=args.processes, threads=args.threads)


def _scheduler(_: argparse.Namespace, settings: Settings) -> int:
    if settings.embedded:
        print(
            "licenses: scheduler needs REDIS_URL (embedded mode schedules in serve)",
            file=sys.stderr,
        )
        return 2
    from workers.scheduler import run_scheduler  # noqa: PLC0415

    with suppress(KeyboardInterrupt):
        asyncio.run(run_scheduler(settings))
    return 0


def _migrate(_: argparse.Namespace, settings: Settings) -> int:
    def report(name: str) -> None:
        print(f"Applied {name}", flush=True)

    applied = asyncio.run(migrate(settings.database_url, on_applied=report))
    if applied:
        print(f"{len(applied)} migration(s) applied.")
    else:
        print("No migrations pending: the database is up to date.")
    return 0


async def _with_database(settings: Settings, work: Callable[[], Awaitable[T]]) -> T:
    if settings.embedded:
        # Embedded mode migrates on start; so does any command run before serve.
        # The running server's relay delivers what this command commits.
        await migrate(settings.database_url)
    await init_database(settings.database_url)
    dispatch: Any = None
    if not settings.embedded:
        from workers.broker import ProductionDispatch  # noqa: PLC0415

        # Emails this command commits go to the workers at once (the relay
        # would otherwise pick them up within a scheduler interval).
        dispatch = ProductionDispatch(settings=settings)
        await dispatch.start()
    try:
        return await work()
    finally:
        if dispatch is not None:
            await dispatch.stop()
        await close_database()


def _account_create(args: argparse.Namespace, settings: Settings) -> int:
    from domain.services.accounts import create_account  # noqa: PLC0415

    async def create() -> dict[str, str]:
        created = await create_account(
            name=args.name,
            owner_email=args.owner_email,
            owner_first_name=args.owner_first_name,
            owner_last_name=args.owner_last_name,
            seats=args.seats,
            seat_price_cents=args.seat_price_cents,
            currency=args.currency,
            interval=BillingInterval(args.interval.upper()),
            current_period_end=args.current_period_end,
            clock=SYSTEM_CLOCK,
        )
        return {
            "accountId": str(created.account_id),
            "ownerUserId": str(created.owner_user_id),
            "apiToken": created.api_token,
        }

    try:
        result = asyncio.run(_with_database(settings, create))
    except DomainError as refusal:
        where = f" ({refusal.field})" if refusal.field else ""
        print(f"licenses: {refusal.code.value}{where}: {refusal.message}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"Account {result['accountId']} created; owner user {result['ownerUserId']}.\n"
            f"API token (shown once): {result['apiToken']}\n"
            "The owner has been emailed a link to set a password."
        )
    return 0


def _billing_run(_: argparse.Namespace, settings: Settings) -> int:
    from domain.services.billing import PeriodEndReport, run_period_end  # noqa: PLC0415

    async def run() -> PeriodEndReport:
        return await run_period_end(clock=SYSTEM_CLOCK)

    report = asyncio.run(_with_database(settings, run))
    print(
        f"Period end: {report.accounts_due} accounts due, {report.periods_renewed} periods "
        f"renewed, {report.licenses_released} licences released."
    )
    if report.failed_account_ids:
        print(f"Failed (retried on the next run): {list(report.failed_account_ids)}")
        return 1
    return 0


def _users_import(args: argparse.Namespace, settings: Settings) -> int:
    return users_import(args, settings, _with_database)


if __name__ == "__main__":
    sys.exit(main())
