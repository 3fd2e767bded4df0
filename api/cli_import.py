"""`licenses users import FILE.csv --account ID [--dry-run]`: invite the rows of a CSV.

The file is streamed (docs/csv-import.md gives its format): each valid row
is invited on its own through the bulk invitation service, as
`inviteUsers` does, while a progress bar on standard error follows the
file. The report on standard output lists every refused row with its line,
its ErrorCode and the message, then the counts.

The import acts as SYSTEM: whoever runs the command works on the database,
not as a user of the account, and the audit trail says so (actor SYSTEM, no
inviting user) rather than lending the owner's name to invitations the owner
never sent.

Exit status: 0 when every row of the file was imported (or, with
--dry-run, would be); 1 when any row was refused, whether by the file's
format or by the rules, or when the account does not exist; 2 when the file
cannot be used at all (unreadable, not UTF-8, a missing column), with
nothing tried.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from api.users_csv import CsvFileError, CsvRefusal, UsersCsv, check_utf8
from domain.clock import SYSTEM_CLOCK
from domain.errors import DependencyUnavailable, DomainError
from domain.principal import Principal, parse_id
from domain.services.bulk_invitations import InvitationRequest, forecast_each, invite_each
from domain.settings import Settings

_RERUN = (
    "The rows before were imported; run the same file again to go on (those rows are "
    "then refused with EMAIL_TAKEN)."
)


def add_users_parser(commands: Any) -> None:
    users = commands.add_parser("users", help="Manage the users of an account.")
    users_commands = users.add_subparsers(dest="users_command", required=True)
    importing = users_commands.add_parser(
        "import",
        help="Invite the users of a CSV file (email, firstName, lastName, role, qualification).",
        description="Invite each row of a UTF-8 CSV file whose first line names the columns "
        "email, firstName, lastName and optionally role, qualification. Exit 0 when every "
        "row was imported, 1 when any was refused, 2 when the file cannot be used.",
    )
    importing.add_argument("file", type=Path, metavar="FILE.csv")
    importing.add_argument("--account", required=True, help="The account's ID.")
    importing.add_argument(
        "--dry-run",
        action="store_true",
        help="Check every row (emails in the account and in the file, licences) without writing.",
    )


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    refused: list[CsvRefusal] = field(default_factory=list)

    def refuse(self, refusal: CsvRefusal) -> None:
        self.rows += 1
        self.refused.append(refusal)


def users_import(
    args: argparse.Namespace,
    settings: Settings,
    with_database: Callable[
        [Settings, Callable[[], Awaitable[ImportReport]]], Coroutine[Any, Any, ImportReport]
    ],
) -> int:
    try:
        stream: BinaryIO = args.file.open("rb")
    except OSError as error:
        print(f"licenses: cannot read {args.file}: {error.strerror}", file=sys.stderr)
        return 2
    with stream:
        try:
            check_utf8(stream)
            users_csv = UsersCsv(stream)
        except CsvFileError as refusal:
            print(f"licenses: {args.file}: {refusal}", file=sys.stderr)
            return 2
        size = os.fstat(stream.fileno()).st_size

        async def work() -> ImportReport:
            actor = Principal.system(parse_id(args.account, what="account"))
            return await _run(users_csv, actor=actor, dry_run=args.dry_run, size=size)

        try:
            report = asyncio.run(with_database(settings, work))
        except DomainError as refusal:
            print(f"licenses: {refusal.code.value}: {refusal.message}", file=sys.stderr)
            return 1
        except DependencyUnavailable as down:
            print(f"licenses: {down}. {_RERUN}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"licenses: interrupted. {_RERUN}", file=sys.stderr)
            return 130
    _print_report(report, ignored=users_csv.header.ignored, dry_run=args.dry_run)
    return 1 if report.refused else 0


async def _run(users_csv: UsersCsv, *, actor: Principal, dry_run: bool, size: int) -> ImportReport:
    report = ImportReport()
    # The lines of the rows handed to the service, oldest first: it answers
    # them one by one, in order.
    lines: deque[int] = deque()

    def requests() -> Iterator[InvitationRequest]:
        for item in users_csv.rows():
            if isinstance(item, CsvRefusal):
                report.refuse(item)
            else:
                lines.append(item.line)
                yield item.request

    # Only this command draws a bar: the others do not pay for importing rich.
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]} rows"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    answers: AsyncIterator[DomainError | None]
    if dry_run:
        answers = forecast_each(actor=actor, requests=requests(), clock=SYSTEM_CLOCK)
    else:
        answers = _errors_of(invite_each(actor=actor, requests=requests(), clock=SYSTEM_CLOCK))
    with progress:
        task = progress.add_task("Checking" if dry_run else "Importing", total=size, rows=0)
        async for error in answers:
            line = lines.popleft()
            report.rows += 1
            if error is None:
                report.imported += 1
            else:
                report.refused.append(CsvRefusal(line, error))
            progress.update(task, completed=users_csv.position, rows=report.rows)
        # The service read the file to its end: the bar ends full.
        progress.update(task, completed=size, rows=report.rows)
    report.refused.sort(key=lambda refusal: refusal.line)
    return report


async def _errors_of(results: AsyncIterator[Any]) -> AsyncIterator[DomainError | None]:
    async for result in results:
        yield result.error


def _print_report(report: ImportReport, *, ignored: tuple[str, ...], dry_run: bool) -> None:
    if ignored:
        print(f"Ignored columns: {', '.join(ignored)}.")
    for refusal in report.refused:
        error = refusal.error
        where = f" ({error.field})" if error.field else ""
        print(f"Line {refusal.line}: {error.code.value}{where}: {error.message}")
    refused = len(report.refused)
    if dry_run:
        print(
            f"Dry run: {report.imported} of {report.rows} rows would be imported, "
            f"{refused} refused. Nothing was written."
        )
    else:
        print(f"Imported {report.imported} of {report.rows} rows; {refused} refused.")
